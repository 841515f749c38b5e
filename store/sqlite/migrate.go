package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// ErrSchemaTooNew is returned by Open when the database was written by a
// newer version of this package; opening it could corrupt data we do not
// understand, so we refuse.
var ErrSchemaTooNew = errors.New("database schema is newer than this program supports")

// step is one schema change. sql, then fn, run in one write transaction
// with the version bump, so a step is applied entirely or not at all.
//
// outside, if set, runs first, on a connection of its own and outside any
// transaction, for what SQLite will not do inside one (VACUUM). The
// version is bumped only afterwards, so a crash or a second process may
// run it again: it must be safe to repeat and leave a database that is
// still valid at the previous version.
type step struct {
	sql     string
	fn      func(ctx context.Context, tx *sql.Tx) error
	outside func(ctx context.Context, c *sql.Conn) error
}

// migrations are the schema steps in order; migrations[i] brings the schema
// from version i to i+1 (the version lives in PRAGMA user_version, so it is
// part of the database file and changes atomically with the step). Never
// edit a released step: append a new one. A new database gets them all too
// (while it is still private, see create), so old and new databases have
// the same schema, text for text.
var migrations = []step{
	// 1: initial schema.
	{sql: `
CREATE TABLE node_defs (
	type TEXT PRIMARY KEY,
	def  TEXT NOT NULL
);
CREATE TABLE infras (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	description TEXT,
	targets     TEXT,
	attached    INTEGER NOT NULL DEFAULT 0,
	created_at  TEXT,
	updated_at  TEXT
);
CREATE TABLE instances (
	infra_id      TEXT NOT NULL REFERENCES infras(id) ON DELETE CASCADE,
	node_id       TEXT NOT NULL,
	node_name     TEXT NOT NULL,
	state         TEXT NOT NULL,
	backend       TEXT NOT NULL,
	impl          INTEGER NOT NULL,
	resource      TEXT,
	handle        TEXT,
	address       TEXT NOT NULL,
	priv_address  TEXT NOT NULL,
	failing_since TEXT,
	error         TEXT NOT NULL,
	created_at    TEXT,
	updated_at    TEXT,
	PRIMARY KEY (infra_id, node_id)
);
CREATE TABLE scale_requests (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	infra_id   TEXT NOT NULL REFERENCES infras(id) ON DELETE CASCADE,
	node_name  TEXT NOT NULL,
	delta      INTEGER NOT NULL,
	set_to     INTEGER,
	victim     TEXT NOT NULL,
	created_at TEXT
);
-- No foreign key: the event log outlives deleted infrastructures.
CREATE TABLE events (
	seq       INTEGER PRIMARY KEY AUTOINCREMENT,
	time      TEXT NOT NULL,
	infra_id  TEXT NOT NULL,
	node_name TEXT NOT NULL,
	node_id   TEXT NOT NULL,
	kind      TEXT NOT NULL,
	from_state TEXT NOT NULL,
	to_state  TEXT NOT NULL,
	message   TEXT NOT NULL,
	data      TEXT
);
`},
	// 2: per-infrastructure lookups of events and scaling requests (the
	// latter also serves the ON DELETE CASCADE scan).
	{sql: `
CREATE INDEX events_infra_seq ON events(infra_id, seq);
CREATE INDEX scale_requests_infra ON scale_requests(infra_id, id);
`},
	// 3: the process creating an instance (crash recovery tells a creation
	// in flight from an interrupted one).
	{sql: `
ALTER TABLE instances ADD COLUMN owner TEXT NOT NULL DEFAULT '';
`},
	// 4: leases (store.Leaser); expires_at is Unix nanoseconds.
	{sql: `
CREATE TABLE leases (
	key        TEXT PRIMARY KEY,
	owner      TEXT NOT NULL,
	expires_at INTEGER NOT NULL
) WITHOUT ROWID;
`},
	// 5: where each description came from (store.Infra.Origin); rows
	// written before read as "" (local).
	{sql: `
ALTER TABLE infras ADD COLUMN origin TEXT NOT NULL DEFAULT '';
`},
	// 6: the identity marker: one row with the store's id and when the
	// marker was made (the creation of a new database; the upgrade of an
	// older one). From this version on a database without it is refused:
	// it is not the store the infrastructures were recorded in.
	{sql: `
CREATE TABLE meta (
	one        INTEGER PRIMARY KEY CHECK (one = 1),
	id         TEXT NOT NULL,
	created_at TEXT NOT NULL
);
`, fn: insertMarker},
	// 7: incremental auto-vacuum, so that PruneEvents can give freed pages
	// back to the file system. New databases are made with it; an older
	// one must be rewritten by VACUUM, which SQLite refuses inside a
	// transaction, so it runs before the step's transaction (see step).
	{outside: incrementalVacuum},
	// 8: the result of the last maintenance pass (store.Infra.LastPass),
	// written by SetPassStatus; pass_at NULL (and pass_result '') before
	// the first pass.
	{sql: `
ALTER TABLE infras ADD COLUMN pass_result TEXT NOT NULL DEFAULT '';
ALTER TABLE infras ADD COLUMN pass_error TEXT NOT NULL DEFAULT '';
ALTER TABLE infras ADD COLUMN pass_at TEXT;
ALTER TABLE infras ADD COLUMN pass_failures INTEGER NOT NULL DEFAULT 0;
`},
	// 9: notify properties (store.Infra.Notify), written by SetNotify;
	// NULL when none. The REST service kept them in events of kind
	// "rest.notify" (store.LegacyNotifyKind) before: each infrastructure
	// gets its newest one's data, unless that is over 65536 bytes
	// (store.MaxNotify) or JSON null; the newest is what was in force, so
	// an older one is no substitute. The values are written out, as a
	// step must not change once released (TestMigration9Constants).
	{sql: `
ALTER TABLE infras ADD COLUMN notify TEXT;
UPDATE infras SET notify = (
	SELECT CASE WHEN length(CAST(e.data AS BLOB)) <= 65536 AND e.data <> 'null' THEN e.data END
	FROM events e WHERE e.infra_id = infras.id AND e.kind = 'rest.notify'
	ORDER BY e.seq DESC LIMIT 1);
`},
}

// metaVersion is the first version that has the identity marker.
const metaVersion = 6

// autoVacuumIncremental is PRAGMA auto_vacuum's value for INCREMENTAL.
const autoVacuumIncremental = 2

// schemaVersion is the version this code writes.
func schemaVersion() int { return len(migrations) }

// migrate brings db up to version upto (at most len(migrations)), one
// step per transaction. The version is read again inside each write
// transaction, so that processes migrating the same database at once
// apply each step exactly once.
func migrate(ctx context.Context, db *sql.DB, upto int) error {
	v, err := userVersion(ctx, db)
	if err != nil {
		return err
	}
	if v > schemaVersion() {
		return fmt.Errorf("schema version %d > %d: %w", v, schemaVersion(), ErrSchemaTooNew)
	}
	for v < upto {
		st := migrations[v]
		if st.outside != nil {
			if err := runOutside(ctx, db, st.outside); err != nil {
				return fmt.Errorf("migrate to version %d: %w", v+1, err)
			}
		}
		if v, err = applyStep(ctx, db, v, st); err != nil {
			return err
		}
	}
	return nil
}

// applyStep applies st, which brings version v to v+1, and returns the
// version the database is at afterwards (above v+1 when another process
// got further first).
func applyStep(ctx context.Context, db *sql.DB, v int, st step) (int, error) {
	// db's DSN sets _txlock=immediate, so this takes the write lock now.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return v, fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	var cur int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&cur); err != nil {
		return v, fmt.Errorf("migrate: read version: %w", err)
	}
	switch {
	case cur > schemaVersion():
		return cur, fmt.Errorf("schema version %d > %d: %w", cur, schemaVersion(), ErrSchemaTooNew)
	case cur > v:
		return cur, nil // done by another process meanwhile
	case cur < v:
		return cur, fmt.Errorf("migrate: schema version went back from %d to %d", v, cur)
	}
	if st.sql != "" {
		if _, err := tx.ExecContext(ctx, st.sql); err != nil {
			return v, fmt.Errorf("migrate to version %d: %w", v+1, err)
		}
	}
	if st.fn != nil {
		if err := st.fn(ctx, tx); err != nil {
			return v, fmt.Errorf("migrate to version %d: %w", v+1, err)
		}
	}
	// PRAGMA takes no bound parameters; v is an int we control.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
		return v, fmt.Errorf("migrate: set version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return v, fmt.Errorf("migrate: commit: %w", err)
	}
	return v + 1, nil
}

// runOutside runs fn on a connection of db's pool held for the whole call,
// as connection state (a pending PRAGMA auto_vacuum) must reach VACUUM.
func runOutside(ctx context.Context, db *sql.DB, fn func(context.Context, *sql.Conn) error) error {
	c, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(ctx, c)
}

// insertMarker writes the identity marker (step 6).
func insertMarker(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO meta(one, id, created_at) VALUES (1, ?, ?)`,
		uuid.NewString(), formatTime(time.Now()))
	return err
}

// incrementalVacuum switches an older database to incremental auto-vacuum
// (step 7). Changing auto_vacuum once tables exist takes effect only
// through a VACUUM, which rewrites the whole file; it is atomic (a crash
// leaves the old file) and holds the write lock while it runs, so other
// processes wait (busy_timeout) and then find auto_vacuum set and skip it.
// A database made by create has it already and is not rewritten.
func incrementalVacuum(ctx context.Context, c *sql.Conn) error {
	var mode int
	if err := c.QueryRowContext(ctx, "PRAGMA auto_vacuum").Scan(&mode); err != nil {
		return fmt.Errorf("read auto_vacuum: %w", err)
	}
	if mode == autoVacuumIncremental {
		return nil
	}
	if _, err := c.ExecContext(ctx, "PRAGMA auto_vacuum = INCREMENTAL"); err != nil {
		return fmt.Errorf("set auto_vacuum: %w", err)
	}
	if _, err := c.ExecContext(ctx, "VACUUM"); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	return nil
}

func userVersion(ctx context.Context, db *sql.DB) (int, error) {
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}
