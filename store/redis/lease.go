package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/occopus-go/occopus/store"
)

// A lease is the string key lease:<key> holding the owner, with a PX
// expiry, so Redis ends it by itself. Compare-and-set scripts make sure
// only the owner extends or deletes it.

// acquireScript: KEYS lease; ARGV owner, ttl ms. 1 when owner holds it now.
var acquireScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
	return 1
end
if cur then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// renewScript: KEYS lease; ARGV owner, ttl ms. 1 when renewed.
var renewScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// releaseScript: KEYS lease; ARGV owner. 1 when deleted.
var releaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
`)

// ttlMillis rounds ttl up to whole milliseconds (PX takes milliseconds).
func ttlMillis(ttl time.Duration) int64 {
	return int64((ttl + time.Millisecond - 1) / time.Millisecond)
}

// Acquire implements store.Leaser.
func (s *Store) Acquire(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	if err := store.CheckLease(key, owner, ttl); err != nil {
		return false, fmt.Errorf("redis: acquire lease %s: %w", key, err)
	}
	ok, err := acquireScript.Run(ctx, s.c, []string{s.kLease(key)}, owner, ttlMillis(ttl)).Int()
	if err != nil {
		return false, fmt.Errorf("redis: acquire lease %s: %w", key, err)
	}
	return ok == 1, nil
}

// Renew implements store.Leaser.
func (s *Store) Renew(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	if err := store.CheckLease(key, owner, ttl); err != nil {
		return false, fmt.Errorf("redis: renew lease %s: %w", key, err)
	}
	ok, err := renewScript.Run(ctx, s.c, []string{s.kLease(key)}, owner, ttlMillis(ttl)).Int()
	if err != nil {
		return false, fmt.Errorf("redis: renew lease %s: %w", key, err)
	}
	return ok == 1, nil
}

// Release implements store.Leaser.
func (s *Store) Release(ctx context.Context, key, owner string) error {
	if err := store.CheckLease(key, owner, time.Millisecond); err != nil {
		return fmt.Errorf("redis: release lease %s: %w", key, err)
	}
	if err := releaseScript.Run(ctx, s.c, []string{s.kLease(key)}, owner).Err(); err != nil {
		return fmt.Errorf("redis: release lease %s: %w", key, err)
	}
	return nil
}

// Holder implements store.Leaser.
func (s *Store) Holder(ctx context.Context, key string) (string, error) {
	owner, err := s.c.Get(ctx, s.kLease(key)).Result()
	if errors.Is(err, goredis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("redis: lease holder %s: %w", key, err)
	}
	return owner, nil
}
