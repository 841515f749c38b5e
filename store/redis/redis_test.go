package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/occopus-go/occopus/store"
	"github.com/occopus-go/occopus/store/storetest"
)

// The tests need a Redis server: start a private one with
//
//	eval "$(scripts/services.sh redis)"
//
// which exports OCCOPUS_TEST_REDIS_ADDR and OCCOPUS_TEST_REDIS_PASS. Without
// it the tests skip, except under CI=true, where they fail. Each store gets
// its own random prefix, and its keys are deleted when the test ends;
// OCCOPUS_TEST_REDIS_DB picks the database (default 0).

func testOptions(t testing.TB) Options {
	t.Helper()
	addr := os.Getenv("OCCOPUS_TEST_REDIS_ADDR")
	if addr == "" {
		msg := "OCCOPUS_TEST_REDIS_ADDR unset; start a server with: eval \"$(scripts/services.sh redis)\""
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: redis tests must run)")
		}
		t.Skip(msg)
	}
	db := 0
	if s := os.Getenv("OCCOPUS_TEST_REDIS_DB"); s != "" {
		var err error
		if db, err = strconv.Atoi(s); err != nil {
			t.Fatalf("OCCOPUS_TEST_REDIS_DB: %v", err)
		}
	}
	return Options{Addr: addr, DB: db, Password: os.Getenv("OCCOPUS_TEST_REDIS_PASS"), Prefix: randomPrefix(t)}
}

func randomPrefix(t testing.TB) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "occotest:" + hex.EncodeToString(b) + ":"
}

// openTest opens a store under a fresh prefix and removes its keys after
// the test.
func openTest(t testing.TB) *Store {
	t.Helper()
	return openWith(t, testOptions(t))
}

func openWith(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// t.Context is done by now.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := flush(ctx, s.c, opts.Prefix); err != nil {
			t.Errorf("flush %s: %v", opts.Prefix, err)
		}
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// flush deletes every key under prefix (which has no glob characters).
func flush(ctx context.Context, c *goredis.Client, prefix string) error {
	keys, err := keysUnder(ctx, c, prefix)
	if err != nil || len(keys) == 0 {
		return err
	}
	return c.Unlink(ctx, keys...).Err()
}

func keysUnder(ctx context.Context, c *goredis.Client, prefix string) ([]string, error) {
	var keys []string
	it := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for it.Next(ctx) {
		keys = append(keys, it.Val())
	}
	return keys, it.Err()
}

func TestConformance(t *testing.T) {
	testOptions(t) // skip (or fail) once, not per subtest
	storetest.Run(t, func(t *testing.T) store.Store { return openTest(t) })
}

func TestLeaser(t *testing.T) {
	testOptions(t)
	storetest.RunLeaser(t, func(t *testing.T) (store.Leaser, storetest.Advance) {
		s := openTest(t)
		return s, func(t *testing.T, d time.Duration) { advanceLeases(t, s, d) }
	})
}

// advanceScript: KEYS lease keys; ARGV ms. Takes ms off each key's expiry
// and deletes the keys with no more left, as ms of the server's time would.
var advanceScript = goredis.NewScript(`
for _, k in ipairs(KEYS) do
	local left = redis.call('PTTL', k)
	if left > 0 then
		if left <= tonumber(ARGV[1]) then redis.call('DEL', k)
		else redis.call('PEXPIRE', k, left - tonumber(ARGV[1])) end
	end
end
return 0
`)

// advanceLeases makes d of the Redis server's time go by for s's leases
// (the server's clock cannot be moved; the leases' remaining times can).
func advanceLeases(t *testing.T, s *Store, d time.Duration) {
	t.Helper()
	ctx := t.Context()
	keys, err := keysUnder(ctx, s.c, s.kLease(""))
	if err != nil {
		t.Fatalf("advance leases: %v", err)
	}
	if len(keys) == 0 {
		return
	}
	if err := advanceScript.Run(ctx, s.c, keys, d.Milliseconds()).Err(); err != nil {
		t.Fatalf("advance leases: %v", err)
	}
}

func TestLeaseExpiresInRedis(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	if ok, err := s.Acquire(ctx, "k", "a", 1500*time.Microsecond); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	// The ttl rounds up to whole milliseconds, never down to none.
	if pttl := s.c.PTTL(ctx, s.kLease("k")).Val(); pttl <= 0 || pttl > 2*time.Millisecond {
		t.Fatalf("PTTL %v, want (0, 2ms]", pttl)
	}
	if ok, err := s.Renew(ctx, "k", "a", time.Minute); err != nil {
		t.Fatal(err)
	} else if ok {
		if pttl := s.c.PTTL(ctx, s.kLease("k")).Val(); pttl < 59*time.Second {
			t.Fatalf("renewed PTTL %v, want about 1m", pttl)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	opts := testOptions(t)
	t.Run("wrong password", func(t *testing.T) {
		if opts.Password == "" {
			t.Skip("server has no password")
		}
		o := opts
		o.Password = "wrong"
		if s, err := Open(t.Context(), o); err == nil {
			s.Close()
			t.Fatal("Open with a wrong password succeeded")
		}
	})
	t.Run("nothing listening", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		s, err := Open(ctx, Options{Addr: "127.0.0.1:1"})
		if err == nil {
			s.Close()
			t.Fatal("Open of a closed port succeeded")
		}
		if !strings.HasPrefix(err.Error(), "redis: open 127.0.0.1:1") {
			t.Fatalf("error %q", err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := Open(ctx, opts); !errors.Is(err, context.Canceled) {
			t.Fatalf("Open with canceled ctx: %v", err)
		}
	})
	t.Run("default prefix", func(t *testing.T) {
		o := opts
		o.Prefix = ""
		s, err := Open(t.Context(), o)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if s.prefix != DefaultPrefix {
			t.Fatalf("prefix %q", s.prefix)
		}
	})
}

// Every key lives under the prefix, and two prefixes on one database are
// separate stores.
func TestPrefixIsolation(t *testing.T) {
	opts := testOptions(t)
	a := openWith(t, opts)
	optsB := opts
	optsB.Prefix = randomPrefix(t)
	b := openWith(t, optsB)
	ctx := t.Context()

	fill(t, a, "x")
	if _, err := b.Infra(ctx, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("store b sees a's infra: %v", err)
	}
	if evs, err := b.Events(ctx, "", 0, 0); err != nil || len(evs) != 0 {
		t.Fatalf("store b sees a's events: %v %v", evs, err)
	}
	if ok, err := b.Acquire(ctx, "lease", "b", time.Minute); err != nil || !ok {
		t.Fatalf("b cannot take a lease a holds under its own prefix: %v %v", ok, err)
	}

	keys, err := keysUnder(ctx, a.c, opts.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"meta": true, "nodedefs": true, "infra:x": true, "infras": true, "instances:x": true, "instorder:x": true,
		"scale:x": true, "events": true, "events:x": true, "eventinfras": true, "seq:infra": true,
		"seq:instance": true, "seq:scale": true, "seq:event": true, "lease:lease": true,
	}
	got := map[string]bool{}
	for _, k := range keys {
		got[strings.TrimPrefix(k, opts.Prefix)] = true
	}
	for k := range want {
		if !got[k] {
			t.Errorf("key %s missing (have %v)", k, got)
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("unexpected key %s", k)
		}
	}

	// DeleteInfra leaves only the shared keys, none of x's events.
	if err := a.DeleteInfra(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	keys, err = keysUnder(ctx, a.c, opts.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		switch strings.TrimPrefix(k, opts.Prefix) {
		case "infra:x", "instances:x", "instorder:x", "scale:x", "events:x":
			t.Errorf("key %s survives DeleteInfra", k)
		}
	}
	if n := a.c.ZCard(ctx, a.kInfras()).Val(); n != 0 {
		t.Errorf("infras index has %d members after delete", n)
	}
	if n := a.c.XLen(ctx, a.kEvents()).Val(); n != 0 {
		t.Errorf("events stream has %d entries after x's delete", n)
	}
	if m := a.c.SMembers(ctx, a.kEventInfras()).Val(); len(m) != 0 {
		t.Errorf("eventinfras after delete: %v", m)
	}
}

// fill stores one of everything for infra id.
func fill(t testing.TB, s *Store, id string) {
	t.Helper()
	ctx := t.Context()
	now := time.Now()
	steps := []error{
		s.PutNodeDefs(ctx, map[string]json.RawMessage{"web": json.RawMessage(`[{"type":"docker"}]`)}),
		s.CreateInfra(ctx, store.Infra{ID: id, Name: "n", CreatedAt: now, UpdatedAt: now}),
		s.PutInstance(ctx, store.Instance{InfraID: id, NodeID: "i1", NodeName: "web", State: store.StateReady}),
		s.AppendEvent(ctx, store.Event{InfraID: id, Kind: "infra.created"}),
		acquire(ctx, s, "lease", "a"),
	}
	_, err := s.AddScaleRequest(ctx, store.ScaleRequest{InfraID: id, NodeName: "web", Delta: 1})
	steps = append(steps, err)
	for i, err := range steps {
		if err != nil {
			t.Fatalf("fill step %d: %v", i, err)
		}
	}
}

// acquire takes a lease for a minute; an error unless it did.
func acquire(ctx context.Context, s *Store, key, owner string) error {
	ok, err := s.Acquire(ctx, key, owner, time.Minute)
	if err == nil && !ok {
		err = fmt.Errorf("lease %s not acquired", key)
	}
	return err
}

func TestErrorMessages(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	_, err := s.Infra(ctx, "gone")
	if !errors.Is(err, store.ErrNotFound) || err.Error() != "redis: infra gone: not found" {
		t.Errorf("Infra: %v", err)
	}
	if err := s.UpdateInfra(ctx, store.Infra{ID: "gone"}); err == nil || err.Error() != "redis: update infra gone: not found" {
		t.Errorf("UpdateInfra: %v", err)
	}
	if err := s.CreateInfra(ctx, store.Infra{ID: "x"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateInfra(ctx, store.Infra{ID: "x"}); !errors.Is(err, store.ErrExists) ||
		err.Error() != "redis: create infra x: already exists" {
		t.Errorf("CreateInfra twice: %v", err)
	}
	if err := s.PutInstance(ctx, store.Instance{InfraID: "gone", NodeID: "i"}); !errors.Is(err, store.ErrNotFound) ||
		err.Error() != "redis: put instance gone/i: infra: not found" {
		t.Errorf("PutInstance: %v", err)
	}
}

func TestRejectsInvalidJSON(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	bad := json.RawMessage(`{"a":`)
	if err := s.CreateInfra(ctx, store.Infra{ID: "x"}); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"node def":   s.PutNodeDefs(ctx, map[string]json.RawMessage{"t": bad}),
		"create":     s.CreateInfra(ctx, store.Infra{ID: "y", Description: bad}),
		"update":     s.UpdateInfra(ctx, store.Infra{ID: "x", Description: bad}),
		"resource":   s.PutInstance(ctx, store.Instance{InfraID: "x", NodeID: "i", Resource: bad}),
		"handle":     s.PutInstance(ctx, store.Instance{InfraID: "x", NodeID: "i", Handle: bad}),
		"event data": s.AppendEvent(ctx, store.Event{Kind: "k", Data: bad}),
	} {
		if err == nil {
			t.Errorf("%s: invalid JSON accepted", name)
		}
	}
	if _, err := s.Infra(ctx, "y"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("infra with bad description stored: %v", err)
	}
}

// JSON documents come back byte for byte (no re-encoding).
func TestRawJSONVerbatim(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	doc := json.RawMessage("{ \"a\" : \"<&>\",\n \"b\": [1, 2.50, 1e3] }")
	if err := s.CreateInfra(ctx, store.Infra{ID: "x", Description: doc}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutInstance(ctx, store.Instance{InfraID: "x", NodeID: "i", Resource: doc, Handle: doc}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvent(ctx, store.Event{InfraID: "x", Kind: "k", Data: doc}); err != nil {
		t.Fatal(err)
	}
	in, err := s.Infra(ctx, "x")
	if err != nil || string(in.Description) != string(doc) {
		t.Errorf("description %q, %v", in.Description, err)
	}
	inst, err := s.Instance(ctx, "x", "i")
	if err != nil || string(inst.Resource) != string(doc) || string(inst.Handle) != string(doc) {
		t.Errorf("instance %q %q, %v", inst.Resource, inst.Handle, err)
	}
	evs, err := s.Events(ctx, "x", 0, 0)
	if err != nil || len(evs) != 1 || string(evs[0].Data) != string(doc) {
		t.Errorf("events %+v, %v", evs, err)
	}
}

// Instances created at the same instant keep the order of first insertion,
// also after being replaced.
func TestInstanceTiesKeepInsertionOrder(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	if err := s.CreateInfra(ctx, store.Infra{ID: "x"}); err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	ids := []string{"c", "a", "b", "z"}
	for _, id := range ids {
		if err := s.PutInstance(ctx, store.Instance{InfraID: "x", NodeID: id, CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutInstance(ctx, store.Instance{InfraID: "x", NodeID: "a", CreatedAt: at, State: "ready"}); err != nil {
		t.Fatal(err)
	}
	list, err := s.Instances(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, in := range list {
		got = append(got, in.NodeID)
	}
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Fatalf("order %v, want %v", got, ids)
	}
	// Same for infrastructures, including ones without a creation time
	// (which sort first, x among them) and times before 1970.
	for _, c := range []struct {
		id string
		at time.Time
	}{{"i2", at}, {"i1", at}, {"old", time.Date(1900, 1, 1, 0, 0, 0, 5, time.UTC)}, {"zero", time.Time{}}, {"i3", at}} {
		if err := s.CreateInfra(ctx, store.Infra{ID: c.id, CreatedAt: c.at}); err != nil {
			t.Fatal(err)
		}
	}
	infras, err := s.Infras(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, in := range infras {
		got = append(got, in.ID)
	}
	if want := "x,zero,old,i2,i1,i3"; strings.Join(got, ",") != want {
		t.Fatalf("infras order %v, want %s", got, want)
	}
}

func BenchmarkInfra(b *testing.B) { storetest.BenchInfra(b, openTest(b)) }

func BenchmarkPutInstance(b *testing.B) { storetest.BenchPutInstance(b, openTest(b)) }

// UpdateTargets consumes any number of requests in one call.
func TestUpdateTargetsManyConsumed(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	if err := s.CreateInfra(ctx, store.Infra{ID: "x"}); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for range 2500 {
		r, err := s.AddScaleRequest(ctx, store.ScaleRequest{InfraID: "x", NodeName: "web", Delta: 1})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	keep := ids[len(ids)-1]
	if err := s.UpdateTargets(ctx, "x", map[string]int{"web": 2499}, ids[:len(ids)-1]); err != nil {
		t.Fatal(err)
	}
	left, err := s.ScaleRequests(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].ID != keep {
		t.Fatalf("%d requests left, want only %d", len(left), keep)
	}
}

// The conformance suite's PruneEvents part with tiny batches, so that
// every loop runs many times.
func TestPruneSmallBatches(t *testing.T) {
	testOptions(t)
	old := pruneBatch
	pruneBatch = 2
	t.Cleanup(func() { pruneBatch = old })
	storetest.RunPrune(t, func(t *testing.T) store.Store { return openTest(t) })
}

// DeleteInfra removes an infra's entries from the stream of all events
// across pages (of 100), leaving the others' entries.
func TestDeleteInfraManyEvents(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	for _, id := range []string{"x", "y"} {
		if err := s.CreateInfra(ctx, store.Infra{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 250 {
		if err := s.AppendEvent(ctx, store.Event{InfraID: "x", Kind: "k"}); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			if err := s.AppendEvent(ctx, store.Event{InfraID: "y", Kind: "k", Message: strconv.Itoa(i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.DeleteInfra(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	all, err := s.Events(ctx, "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range all {
		got = append(got, e.InfraID+"/"+e.Message)
	}
	if strings.Join(got, ",") != "y/0,y/50,y/100,y/150,y/200" {
		t.Fatalf("events left: %v", got)
	}
	if n := s.c.Exists(ctx, s.kInfraEvents("x")).Val(); n != 0 {
		t.Error("events:x survives")
	}
}

// Origin is the hash field origin, absent when "" (as in records written
// before it existed, which read as "").
func TestOriginField(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	if err := s.CreateInfra(ctx, store.Infra{ID: "x", Origin: store.OriginNetwork}); err != nil {
		t.Fatal(err)
	}
	if v := s.c.HGet(ctx, s.kInfra("x"), "origin").Val(); v != "network" {
		t.Fatalf("origin field %q", v)
	}
	if err := s.UpdateInfra(ctx, store.Infra{ID: "x"}); err != nil {
		t.Fatal(err)
	}
	if s.c.HExists(ctx, s.kInfra("x"), "origin").Val() {
		t.Fatal("origin field kept after update to \"\"")
	}
	// An old record: the fields of the layout before origin.
	if err := s.c.HSet(ctx, s.kInfra("old"), "id", "old", "name", "n", "attached", "1", "order", "o").Err(); err != nil {
		t.Fatal(err)
	}
	in, err := s.Infra(ctx, "old")
	if err != nil || in.Origin != "" || !in.Attached {
		t.Fatalf("old record: %+v %v", in, err)
	}
}

func TestCheck(t *testing.T) {
	opts := testOptions(t)
	s := openWith(t, opts)
	ctx := t.Context()
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	// A second process sees the same marker, and ID is that marker.
	other := openWith(t, opts)
	if other.id != s.id {
		t.Fatalf("second Open: id %s, first %s", other.id, s.id)
	}
	if id, err := other.ID(ctx); err != nil || id != s.id || len(id) != 36 {
		t.Fatalf("ID = %q, %v; want the marker %s", id, err, s.id)
	}
	if marker, err := s.c.HGet(ctx, s.kMeta(), "id").Result(); err != nil || marker != s.id {
		t.Fatalf("meta id %q (%v), ID %q", marker, err, s.id)
	}
	fill(t, s, "x")

	// The store's data is flushed: Check says so, with the key.
	if err := flush(ctx, s.c, opts.Prefix); err != nil {
		t.Fatal(err)
	}
	err := s.Check(ctx)
	if !errors.Is(err, store.ErrNoIdentity) || !strings.Contains(err.Error(), opts.Prefix+"meta is gone") {
		t.Fatalf("Check after flush: %v", err)
	}
	t.Log(err)
	// Another process starts anew there: a different store.
	fresh := openWith(t, opts)
	if fresh.id == s.id {
		t.Fatal("a new store got the old id")
	}
	err = s.Check(ctx)
	if !errors.Is(err, store.ErrNoIdentity) || !strings.Contains(err.Error(), "not store "+s.id) {
		t.Fatalf("Check after a new start: %v", err)
	}
	t.Log(err)
	if err := fresh.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// A store written before the marker and eventinfras (and origin): Open
// gives it a marker and indexes its events, so PruneEvents finds them,
// also those of infrastructures deleted back then (whose events stayed).
func TestOldLayout(t *testing.T) {
	opts := testOptions(t)
	s := openWith(t, opts)
	ctx := t.Context()
	fill(t, s, "x")
	for i := range 230 { // more than a page of the index build
		id := "gone"
		if i%2 == 0 {
			id = ""
		}
		if err := s.AppendEvent(ctx, store.Event{InfraID: id, Kind: "k", Time: time.Date(2020, 1, 1, 0, 0, i, 0, time.UTC)}); err != nil {
			t.Fatal(err)
		}
	}
	// What the older code did not write.
	if err := s.c.Del(ctx, s.kMeta(), s.kEventInfras()).Err(); err != nil {
		t.Fatal(err)
	}

	old := openWith(t, opts)
	if old.id == "" || old.id == s.id {
		t.Fatalf("marker of the upgraded store: %q (before: %q)", old.id, s.id)
	}
	if err := old.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if v := old.c.HGet(ctx, old.kMeta(), "version").Val(); v != "2" {
		t.Errorf("layout version %q", v)
	}
	members := old.c.SMembers(ctx, old.kEventInfras()).Val()
	slices.Sort(members)
	if strings.Join(members, ",") != ",gone,x" {
		t.Fatalf("eventinfras %q", members)
	}
	if in, err := old.Infra(ctx, "x"); err != nil || in.Origin != "" {
		t.Fatalf("old infra: %+v %v", in, err)
	}
	// Everything from 2020 goes; the emptied streams and their ids too.
	n, err := old.PruneEvents(ctx, time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC), 0)
	if err != nil || n != 230 {
		t.Fatalf("PruneEvents: %d %v, want 230", n, err)
	}
	for _, id := range []string{"gone", ""} {
		if old.c.Exists(ctx, old.kInfraEvents(id)).Val() != 0 {
			t.Errorf("events:%s survives being emptied", id)
		}
	}
	members = old.c.SMembers(ctx, old.kEventInfras()).Val()
	if strings.Join(members, ",") != "x" {
		t.Errorf("eventinfras after pruning: %q", members)
	}
	if evs, err := old.Events(ctx, "", 0, 0); err != nil || len(evs) != 1 || evs[0].InfraID != "x" {
		t.Errorf("events left: %+v %v", evs, err)
	}
}

func TestFence(t *testing.T) {
	testOptions(t)
	storetest.RunFence(t, func(t *testing.T) storetest.LeasingStore { return openTest(t) })
}
