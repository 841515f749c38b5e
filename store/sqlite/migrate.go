package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrSchemaTooNew is returned by Open when the database was written by a
// newer version of this package; opening it could corrupt data we do not
// understand, so we refuse.
var ErrSchemaTooNew = errors.New("database schema is newer than this program supports")

// migrations are the schema steps in order; migrations[i] brings the schema
// from version i to i+1 (the version lives in PRAGMA user_version, so it is
// part of the database file and changes atomically with the step). Never
// edit a released step: append a new one.
var migrations = []string{
	// 1: initial schema.
	`
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
`,
	// 2: per-infrastructure lookups of events and scaling requests (the
	// latter also serves the ON DELETE CASCADE scan).
	`
CREATE INDEX events_infra_seq ON events(infra_id, seq);
CREATE INDEX scale_requests_infra ON scale_requests(infra_id, id);
`,
	// 3: the process creating an instance (crash recovery tells a creation
	// in flight from an interrupted one).
	`
ALTER TABLE instances ADD COLUMN owner TEXT NOT NULL DEFAULT '';
`,
	// 4: leases (store.Leaser); expires_at is Unix nanoseconds.
	`
CREATE TABLE leases (
	key        TEXT PRIMARY KEY,
	owner      TEXT NOT NULL,
	expires_at INTEGER NOT NULL
) WITHOUT ROWID;
`,
}

// schemaVersion is the version this code writes.
func schemaVersion() int { return len(migrations) }

// migrate brings db up to version upto (at most len(migrations)). The check
// is repeated inside a write transaction so that processes opening the same
// fresh database at once apply each step exactly once.
func migrate(ctx context.Context, db *sql.DB, upto int) error {
	v, err := userVersion(ctx, db)
	if err != nil {
		return err
	}
	if v > schemaVersion() {
		return fmt.Errorf("schema version %d > %d: %w", v, schemaVersion(), ErrSchemaTooNew)
	}
	if v >= upto {
		return nil
	}
	// db's DSN sets _txlock=immediate, so this takes the write lock now.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("migrate: read version: %w", err)
	}
	if v > schemaVersion() {
		return fmt.Errorf("schema version %d > %d: %w", v, schemaVersion(), ErrSchemaTooNew)
	}
	for ; v < upto; v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migrate to version %d: %w", v+1, err)
		}
	}
	// PRAGMA takes no bound parameters; v is an int we control.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v)); err != nil {
		return fmt.Errorf("migrate: set version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
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
