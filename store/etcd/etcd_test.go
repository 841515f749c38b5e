package etcd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/occopus-go/occopus/internal/etcdtest"
	"github.com/occopus-go/occopus/store"
	"github.com/occopus-go/occopus/store/storetest"
)

// The tests run a private etcd (internal/etcdtest: the etcd binary of
// Debian's etcd-server package), one cluster per top-level test; each
// store gets its own random prefix.

func randomPrefix(t testing.TB) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "occotest/" + hex.EncodeToString(b) + "/"
}

func opener(c *etcdtest.Cluster) func(t *testing.T) *Store {
	return func(t *testing.T) *Store {
		t.Helper()
		s, err := Open(t.Context(), Options{Endpoints: c.Endpoints(), Prefix: randomPrefix(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := s.c.Delete(ctx, s.prefix, clientv3.WithPrefix()); err != nil {
				t.Errorf("clean %s: %v", s.prefix, err)
			}
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		})
		return s
	}
}

func TestConformance(t *testing.T) {
	open := opener(etcdtest.Start(t, 1))
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

// etcd's leases run on the server's clock, which a test cannot move: advance
// ends every lease key with no more than d left (deleting the key and
// revoking its lease, as expiry does) and moves the others onto a lease
// granted for what they have left minus d. The key's create revision, the
// fencing token, is kept by the rewrite.
func TestLeaser(t *testing.T) {
	open := opener(etcdtest.Start(t, 1))
	storetest.RunLeaser(t, func(t *testing.T) (store.Leaser, storetest.Advance) {
		s := open(t)
		return s, func(t *testing.T, d time.Duration) { advanceLeases(t, s, d) }
	})
}

func advanceLeases(t *testing.T, s *Store, d time.Duration) {
	t.Helper()
	ctx := t.Context()
	g, err := s.c.Get(ctx, s.k("lease/"), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range g.Kvs {
		old := clientv3.LeaseID(kv.Lease)
		ttl, err := s.c.TimeToLive(ctx, old)
		if err != nil {
			t.Fatal(err)
		}
		left := time.Duration(ttl.TTL)*time.Second - d
		if ttl.TTL <= 0 || left <= 0 {
			if _, err := s.c.Delete(ctx, string(kv.Key)); err != nil {
				t.Fatal(err)
			}
			s.revoke(ctx, old)
			continue
		}
		gr, err := s.c.Grant(ctx, int64(left/time.Second))
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision)).
			Then(clientv3.OpPut(string(kv.Key), string(kv.Value), clientv3.WithLease(gr.ID))).Commit()
		if err != nil || !r.Succeeded {
			t.Fatalf("move lease key %s onto a shorter lease: %v (succeeded %v)", kv.Key, err, r != nil && r.Succeeded)
		}
		s.revoke(ctx, old)
	}
}

func TestFence(t *testing.T) {
	open := opener(etcdtest.Start(t, 1))
	storetest.RunFence(t, func(t *testing.T) storetest.LeasingStore { return open(t) })
}

// The fencing token is the lease key's create revision: an owner that
// lost the lease and took it again has a new token, and a write made
// under the old one is refused although the owner's name matches.
func TestFenceRevision(t *testing.T) {
	s := opener(etcdtest.Start(t, 1))(t)
	ctx := t.Context()
	if err := s.CreateInfra(ctx, store.Infra{ID: "x", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Acquire(ctx, "infra:x", "a", time.Minute); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	s.mu.Lock()
	old := s.tokens["infra:x"]
	s.mu.Unlock()
	// Another process deletes and re-puts the key with the same owner
	// name (a lease lost and retaken elsewhere).
	lk := s.kLease("infra:x")
	if _, err := s.c.Delete(ctx, lk); err != nil {
		t.Fatal(err)
	}
	if _, err := s.c.Put(ctx, lk, "a"); err != nil {
		t.Fatal(err)
	}
	fa := store.WithFence(ctx, store.Fence{Key: "infra:x", Owner: "a"})
	err := s.SetPassStatus(fa, "x", store.PassStatus{Result: store.PassOK})
	if !errors.Is(err, store.ErrFenced) {
		t.Fatalf("write under token %d after the key was re-made: %v, want ErrFenced", old.rev, err)
	}
	// Acquiring again (it is a's) takes the new token.
	if ok, err := s.Acquire(ctx, "infra:x", "a", time.Minute); err != nil || !ok {
		t.Fatalf("reacquire: %v %v", ok, err)
	}
	if err := s.SetPassStatus(fa, "x", store.PassStatus{Result: store.PassOK}); err != nil {
		t.Fatal(err)
	}
}

func TestHolders(t *testing.T) {
	s := opener(etcdtest.Start(t, 1))(t)
	ctx := t.Context()
	for i, k := range []string{"infra:a", "infra:b/c", "other"} {
		if ok, err := s.Acquire(ctx, k, fmt.Sprint("o", i), time.Minute); err != nil || !ok {
			t.Fatalf("acquire %s: %v %v", k, ok, err)
		}
	}
	got, err := s.Holders(ctx, "infra:")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["infra:a"] != "o0" || got["infra:b/c"] != "o1" {
		t.Fatalf("holders %v", got)
	}
}

// More consumed requests than one transaction holds operations still go
// in the one transaction of UpdateTargets (as ranges).
func TestUpdateTargetsManyConsumed(t *testing.T) {
	s := opener(etcdtest.Start(t, 1))(t)
	ctx := t.Context()
	if err := s.CreateInfra(ctx, store.Infra{ID: "x", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for range 300 {
		r, err := s.AddScaleRequest(ctx, store.ScaleRequest{InfraID: "x", NodeName: "n", Delta: 1})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	// Keep every tenth: 30 runs.
	var consumed []int64
	for i, id := range ids {
		if i%10 != 9 {
			consumed = append(consumed, id)
		}
	}
	if err := s.UpdateTargets(ctx, "x", map[string]int{"n": 271}, consumed); err != nil {
		t.Fatal(err)
	}
	left, err := s.ScaleRequests(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 30 {
		t.Fatalf("%d requests left, want 30", len(left))
	}
	for i, r := range left {
		if r.ID != ids[10*i+9] {
			t.Fatalf("left[%d] = %d, want %d", i, r.ID, ids[10*i+9])
		}
	}
}

func TestPruneSmallBatches(t *testing.T) {
	old := pruneBatch
	pruneBatch = 2
	t.Cleanup(func() { pruneBatch = old })
	open := opener(etcdtest.Start(t, 1))
	storetest.RunPrune(t, func(t *testing.T) store.Store { return open(t) })
}

func TestOpenErrors(t *testing.T) {
	c := etcdtest.Start(t, 1)
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"nothing listening", Options{Endpoints: []string{"http://127.0.0.1:1"}, DialTimeout: 500 * time.Millisecond}, "127.0.0.1:1"},
		{"cert without key", Options{Endpoints: c.Endpoints(), CertFile: "/nonexistent.crt"}, "both a certificate file and a key file"},
		{"missing CA", Options{Endpoints: c.Endpoints(), CAFile: "/nonexistent/ca.pem"}, "TLS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(t.Context(), tc.opts)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not name %q", err, tc.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	s := opener(etcdtest.Start(t, 1))(t)
	ctx := t.Context()
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.c.Delete(ctx, s.k("meta/id")); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(ctx); !errors.Is(err, store.ErrNoIdentity) {
		t.Fatalf("Check after the marker went: %v, want ErrNoIdentity", err)
	}
}
