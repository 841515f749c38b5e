package etcd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/occopus-go/occopus/store"
)

// A lease is the key lease/<key> holding the owner, attached to an etcd
// lease granted for the ttl, so the cluster deletes it by itself when the
// ttl passes without a keep-alive: expiry is judged by the cluster's
// leader, not by any client's clock. etcd grants whole seconds and
// never less than its minimum (about 1.5 heartbeat-election rounds), so
// a ttl is rounded up to a second. The key's create revision is the
// fencing token: it changes whenever another owner (or the same one,
// after a loss) takes the key.

// ttlSeconds rounds ttl up to whole seconds.
func ttlSeconds(ttl time.Duration) int64 {
	return int64((ttl + time.Second - 1) / time.Second)
}

// Acquire implements store.Leaser: grant an etcd lease, then put the key
// on it if nobody holds it; if owner holds it, move it onto the new lease
// (that is the extension to ttl) and revoke the old one.
func (s *Store) Acquire(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	if err := store.CheckLease(key, owner, ttl); err != nil {
		return false, fmt.Errorf("etcd: acquire lease %s: %w", key, err)
	}
	lk := s.kLease(key)
	gr, err := s.c.Grant(ctx, ttlSeconds(ttl))
	if err != nil {
		return false, fmt.Errorf("etcd: acquire lease %s: %w", key, err)
	}
	resp, err := s.c.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(lk), "=", 0)).
		Then(clientv3.OpPut(lk, owner, clientv3.WithLease(gr.ID))).
		Else(clientv3.OpGet(lk)).Commit()
	if err != nil {
		s.revoke(ctx, gr.ID)
		return false, fmt.Errorf("etcd: acquire lease %s: %w", key, err)
	}
	if resp.Succeeded {
		s.setToken(key, owner, resp.Header.Revision)
		return true, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 || string(kvs[0].Value) != owner {
		s.revoke(ctx, gr.ID)
		return false, nil // held by another (or released just now: try again later)
	}
	cur := kvs[0]
	r2, err := s.c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(lk), "=", cur.ModRevision)).
		Then(clientv3.OpPut(lk, owner, clientv3.WithLease(gr.ID))).Commit()
	if err != nil || !r2.Succeeded {
		s.revoke(ctx, gr.ID)
		if err != nil {
			return false, fmt.Errorf("etcd: acquire lease %s: %w", key, err)
		}
		return false, nil // lost in between
	}
	s.setToken(key, owner, cur.CreateRevision)
	if cur.Lease != 0 && clientv3.LeaseID(cur.Lease) != gr.ID {
		s.revoke(ctx, clientv3.LeaseID(cur.Lease))
	}
	return true, nil
}

func (s *Store) setToken(key, owner string, rev int64) {
	s.mu.Lock()
	s.tokens[key] = token{owner: owner, rev: rev}
	s.mu.Unlock()
}

// revoke ends an etcd lease that is not needed (any more); failing is
// harmless, as it ends by itself.
func (s *Store) revoke(ctx context.Context, id clientv3.LeaseID) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	s.c.Revoke(rctx, id) //nolint:errcheck // expires anyway
}

// Renew implements store.Leaser: a keep-alive of the etcd lease the key
// is on, when owner holds it; a different ttl moves the key onto a new
// lease, as Acquire does.
func (s *Store) Renew(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	if err := store.CheckLease(key, owner, ttl); err != nil {
		return false, fmt.Errorf("etcd: renew lease %s: %w", key, err)
	}
	g, err := s.c.Get(ctx, s.kLease(key))
	if err != nil {
		return false, fmt.Errorf("etcd: renew lease %s: %w", key, err)
	}
	if len(g.Kvs) == 0 || string(g.Kvs[0].Value) != owner {
		return false, nil
	}
	kv := g.Kvs[0]
	ka, err := s.c.KeepAliveOnce(ctx, clientv3.LeaseID(kv.Lease))
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return false, nil // expired: the key goes with it
	}
	if err != nil {
		return false, fmt.Errorf("etcd: renew lease %s: %w", key, err)
	}
	if ka.TTL == ttlSeconds(ttl) {
		return true, nil
	}
	return s.Acquire(ctx, key, owner, ttl)
}

// Release implements store.Leaser: delete the key if owner holds it, and
// revoke its etcd lease.
func (s *Store) Release(ctx context.Context, key, owner string) error {
	if err := store.CheckLease(key, owner, time.Millisecond); err != nil {
		return fmt.Errorf("etcd: release lease %s: %w", key, err)
	}
	lk := s.kLease(key)
	resp, err := s.c.Txn(ctx).If(clientv3.Compare(clientv3.Value(lk), "=", owner)).
		Then(clientv3.OpGet(lk), clientv3.OpDelete(lk)).Commit()
	if err != nil {
		return fmt.Errorf("etcd: release lease %s: %w", key, err)
	}
	if resp.Succeeded {
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 && kvs[0].Lease != 0 {
			s.revoke(ctx, clientv3.LeaseID(kvs[0].Lease))
		}
		s.mu.Lock()
		if t, ok := s.tokens[key]; ok && t.owner == owner {
			delete(s.tokens, key)
		}
		s.mu.Unlock()
	}
	return nil
}

// Holder implements store.Leaser.
func (s *Store) Holder(ctx context.Context, key string) (string, error) {
	g, err := s.c.Get(ctx, s.kLease(key))
	if err != nil {
		return "", fmt.Errorf("etcd: lease holder %s: %w", key, err)
	}
	if len(g.Kvs) == 0 {
		return "", nil
	}
	return string(g.Kvs[0].Value), nil
}

// Holders implements store.HolderLister: every lease key under prefix
// with its owner, from one range read.
func (s *Store) Holders(ctx context.Context, prefix string) (map[string]string, error) {
	p := s.k("lease/")
	g, err := s.c.Get(ctx, p+esc(prefix), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("etcd: lease holders %s: %w", prefix, err)
	}
	out := make(map[string]string, len(g.Kvs))
	for _, kv := range g.Kvs {
		k, err := unesc(string(kv.Key)[len(p):])
		if err != nil {
			return nil, fmt.Errorf("etcd: lease holders: key %q: %w", kv.Key, err)
		}
		out[k] = string(kv.Value)
	}
	return out, nil
}
