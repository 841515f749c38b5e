package redis

import (
	"context"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/occopus-go/occopus/store"
)

// Fencing (store.WithFence) on Redis: the write runs as MULTI/EXEC under
// WATCH of the lease key, after a GET in the same connection shows the
// fence's owner holding it; any change of the key meanwhile (taken over,
// expired, released, but also renewed: PEXPIRE touches it) aborts EXEC,
// and the check runs again. So a write lands only while the owner holds
// the lease, as far as this Redis knows: with replication and failover a
// replica may not have seen the latest lease (see README, HA).

// fenceTries bounds the retries when the lease key changes under a write
// (its renewal, every third of the ttl, is the usual cause).
const fenceTries = 8

// fenced runs write in MULTI/EXEC under the fence ctx carries, or
// directly (pipe nil) without one.
func (s *Store) fenced(ctx context.Context, write func(p goredis.Cmdable) error) error {
	f, ok := store.FenceFrom(ctx)
	if !ok {
		return write(s.c)
	}
	lk := s.kLease(f.Key)
	for range fenceTries {
		err := s.c.Watch(ctx, func(tx *goredis.Tx) error {
			owner, err := tx.Get(ctx, lk).Result()
			if errors.Is(err, goredis.Nil) || err == nil && owner != f.Owner {
				return fmt.Errorf("%w: lease %s of %s", store.ErrFenced, f.Key, f.Owner)
			}
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p goredis.Pipeliner) error { return write(p) })
			return err
		}, lk)
		if !errors.Is(err, goredis.TxFailedErr) {
			return err
		}
	}
	return fmt.Errorf("%w: lease %s of %s kept changing under the write", store.ErrFenced, f.Key, f.Owner)
}

// run runs script like Script.Run, fenced as fenced says: inside
// MULTI/EXEC with EVAL (EVALSHA cannot fall back there).
func (s *Store) run(ctx context.Context, script *goredis.Script, keys []string, args ...any) *goredis.Cmd {
	if _, ok := store.FenceFrom(ctx); !ok {
		return script.Run(ctx, s.c, keys, args...)
	}
	var cmd *goredis.Cmd
	err := s.fenced(ctx, func(p goredis.Cmdable) error {
		cmd = script.Eval(ctx, p, keys, args...)
		return nil
	})
	if err != nil {
		c := goredis.NewCmd(ctx)
		c.SetErr(err)
		return c
	}
	return cmd
}
