package store

import (
	"context"
	"errors"
	"time"
)

// ErrBadLease is returned (wrapped) for a lease call with an empty key or
// owner or a ttl under one millisecond.
var ErrBadLease = errors.New("invalid lease arguments")

// Leaser hands out named, time-limited, exclusive leases, so that processes
// sharing one store can agree on who does a piece of work (for example who
// maintains an infrastructure). It is separate from Store so a store need
// not support it; the sqlite and redis stores both do:
//
//	if l, ok := s.(store.Leaser); ok { ... }
//
// At most one owner holds a key at a time. A lease ends when its ttl passes
// without a renewal, or when its owner releases it. Owners must be unique
// per holder (e.g. host/pid/start); the store trusts them. Expiry is judged
// by the store's clock (Redis server; for SQLite, the local clock).
type Leaser interface {
	// Acquire takes the lease on key for owner for ttl and reports whether
	// it did. It fails (false, nil) while another owner holds the key.
	// Acquiring a lease owner already holds succeeds and extends it to ttl.
	Acquire(ctx context.Context, key, owner string, ttl time.Duration) (bool, error)
	// Renew extends owner's lease on key to ttl from now. It reports false
	// (nil error) when owner does not hold the key, e.g. because the lease
	// expired; the lease must then be acquired again.
	Renew(ctx context.Context, key, owner string, ttl time.Duration) (bool, error)
	// Release ends owner's lease on key. A lease held by another owner is
	// left alone; releasing a lease one does not hold (any more) is not an
	// error.
	Release(ctx context.Context, key, owner string) error
	// Holder returns the owner holding key now, or "" when nobody does
	// (never held, released or expired).
	Holder(ctx context.Context, key string) (string, error)
}

// CheckLease validates the arguments of a Leaser call; Release, which has
// no ttl, passes time.Millisecond.
func CheckLease(key, owner string, ttl time.Duration) error {
	if key == "" || owner == "" || ttl < time.Millisecond {
		return ErrBadLease
	}
	return nil
}

// HolderLister is implemented by leasers that can list the holders of
// many keys in one read (etcd), so that a replica can see which
// infrastructures nobody maintains without a call per key.
type HolderLister interface {
	// Holders returns every held key that starts with prefix, with its
	// owner.
	Holders(ctx context.Context, prefix string) (map[string]string, error)
}
