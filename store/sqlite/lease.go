package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/occopus-go/occopus/store"
)

var _ store.Leaser = (*Store)(nil)

// Leases live in the leases table (schema step 4). Each call is a single
// statement on the writer connection, so it is atomic against other
// connections and processes; expiry is judged by the local clock, which
// all processes sharing one database file have in common.

// clock is the time leases are judged by.
func (s *Store) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// Acquire implements store.Leaser: insert, or take over a row that expired
// or is owner's own.
func (s *Store) Acquire(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	if err := store.CheckLease(key, owner, ttl); err != nil {
		return false, fmt.Errorf("sqlite: acquire lease %s: %w", key, err)
	}
	now := s.clock()
	res, err := s.wexec(ctx, `INSERT INTO leases(key, owner, expires_at) VALUES (?, ?, ?)
		ON CONFLICT(key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
		WHERE leases.expires_at <= ? OR leases.owner = excluded.owner`,
		key, owner, now.Add(ttl).UnixNano(), now.UnixNano())
	if err != nil {
		return false, fmt.Errorf("sqlite: acquire lease %s: %w", key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: acquire lease %s: %w", key, err)
	}
	return n == 1, nil
}

// Renew implements store.Leaser.
func (s *Store) Renew(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	if err := store.CheckLease(key, owner, ttl); err != nil {
		return false, fmt.Errorf("sqlite: renew lease %s: %w", key, err)
	}
	now := s.clock()
	res, err := s.wexec(ctx, `UPDATE leases SET expires_at = ?
		WHERE key = ? AND owner = ? AND expires_at > ?`,
		now.Add(ttl).UnixNano(), key, owner, now.UnixNano())
	if err != nil {
		return false, fmt.Errorf("sqlite: renew lease %s: %w", key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: renew lease %s: %w", key, err)
	}
	return n == 1, nil
}

// Release implements store.Leaser. An expired row of owner's goes too;
// expired rows of others are left for the next Acquire to take over.
func (s *Store) Release(ctx context.Context, key, owner string) error {
	if err := store.CheckLease(key, owner, time.Millisecond); err != nil {
		return fmt.Errorf("sqlite: release lease %s: %w", key, err)
	}
	if _, err := s.wexec(ctx, `DELETE FROM leases WHERE key = ? AND owner = ?`, key, owner); err != nil {
		return fmt.Errorf("sqlite: release lease %s: %w", key, err)
	}
	return nil
}

// Holder implements store.Leaser.
func (s *Store) Holder(ctx context.Context, key string) (string, error) {
	var owner string
	err := s.r.QueryRowContext(ctx, `SELECT owner FROM leases WHERE key = ? AND expires_at > ?`, key, s.clock().UnixNano()).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("sqlite: lease holder %s: %w", key, err)
	}
	return owner, nil
}
