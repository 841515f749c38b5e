// Package sqlite implements store.Store on SQLite (modernc.org/sqlite, pure
// Go). Several processes may share one database file: WAL mode lets readers
// run beside the single writer, and busy_timeout makes writers wait for each
// other instead of failing.
//
// Times are stored as fixed-width RFC 3339 UTC text with nanoseconds, so they
// round-trip exactly (as instants; the location comes back as UTC) and sort
// correctly as text. A zero time is stored as NULL.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/occopus-go/occopus/store"
)

// busyTimeout is how long a statement waits for another connection's lock.
const busyTimeout = 10 * time.Second

// Store is a store.Store backed by one SQLite database file.
type Store struct {
	// w is limited to one connection: SQLite has one writer at a time
	// anyway, and queueing in Go (which honours ctx) beats spinning in
	// the busy handler. Cross-process writers still meet busy_timeout.
	w *sql.DB
	// r serves reads concurrently (WAL readers do not block the writer).
	r *sql.DB
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the database at path and migrates its
// schema to the current version. The parent directory is created with mode
// 0700 and a new database file with 0600 (SQLite gives the -wal and -shm
// files the same mode).
func Open(ctx context.Context, path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// Create the file ourselves: SQLite would make it 0644.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	f.Close()

	w, err := sql.Open("sqlite", dsn(abs, true))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn(abs, false))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// Keep readers open: each new connection re-runs the pragmas.
	nr := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(nr)
	r.SetMaxIdleConns(nr)
	s := &Store{w: w, r: r}
	if err := initDB(ctx, w); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return s, nil
}

// initDB migrates the schema, retrying while the database is busy. While a
// fresh file is still in rollback-journal mode, processes opening it at once
// can deadlock on lock upgrades; SQLite then fails one of them at once with
// SQLITE_BUSY instead of waiting, so the wait is ours. Once the file is in
// WAL mode (persistent) this does not happen.
func initDB(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyTimeout)
	wait := time.Millisecond
	for {
		err := migrate(ctx, db, schemaVersion())
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait + time.Duration(rand.Int64N(int64(wait)))):
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// dsn builds the connection string. The pragmas go in the DSN because the
// driver then runs them on every new connection of the pool, not just the
// first. Writers begin IMMEDIATE so a transaction never has to upgrade a
// read lock to a write lock, which can fail with SQLITE_BUSY regardless of
// busy_timeout.
func dsn(abs string, writer bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	if writer {
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	u := url.URL{Scheme: "file", OmitHost: true, Path: abs, RawQuery: q.Encode()}
	return u.String()
}

// Close closes the database.
func (s *Store) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// tx runs fn in one write transaction.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// PutNodeDefs implements store.Store.
func (s *Store) PutNodeDefs(ctx context.Context, defs map[string]json.RawMessage) error {
	for typ, def := range defs {
		if !json.Valid(def) {
			return fmt.Errorf("sqlite: put node def %s: invalid JSON", typ)
		}
	}
	if len(defs) == 0 {
		return nil
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO node_defs(type, def) VALUES (?, ?)
			ON CONFLICT(type) DO UPDATE SET def = excluded.def`)
		if err != nil {
			return err
		}
		defer st.Close()
		for typ, def := range defs {
			if _, err := st.ExecContext(ctx, typ, string(def)); err != nil {
				return fmt.Errorf("%s: %w", typ, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: put node defs: %w", err)
	}
	return nil
}

// NodeDef implements store.Store.
func (s *Store) NodeDef(ctx context.Context, typ string) (json.RawMessage, error) {
	var def string
	err := s.r.QueryRowContext(ctx, `SELECT def FROM node_defs WHERE type = ?`, typ).Scan(&def)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: node def %s: %w", typ, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: node def %s: %w", typ, err)
	}
	return json.RawMessage(def), nil
}

// NodeDefTypes implements store.Store.
func (s *Store) NodeDefTypes(ctx context.Context) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT type FROM node_defs ORDER BY type`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: node def types: %w", err)
	}
	types, err := collect(rows, func(rows *sql.Rows) (string, error) {
		var t string
		return t, rows.Scan(&t)
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: node def types: %w", err)
	}
	return types, nil
}

// CreateInfra implements store.Store.
func (s *Store) CreateInfra(ctx context.Context, in store.Infra) error {
	targets, err := encodeTargets(in.Targets)
	if err != nil {
		return fmt.Errorf("sqlite: create infra %s: %w", in.ID, err)
	}
	if err := checkJSON("description", in.Description); err != nil {
		return fmt.Errorf("sqlite: create infra %s: %w", in.ID, err)
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO infras(id, name, description, targets, attached, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING`,
		in.ID, in.Name, rawValue(in.Description), targets, in.Attached, timeValue(in.CreatedAt), timeValue(in.UpdatedAt))
	if err != nil {
		return fmt.Errorf("sqlite: create infra %s: %w", in.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: create infra %s: %w", in.ID, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: create infra %s: %w", in.ID, store.ErrExists)
	}
	return nil
}

// UpdateInfra implements store.Store. UpdatedAt is set from in.UpdatedAt,
// or to the current time when that is zero; CreatedAt is kept.
func (s *Store) UpdateInfra(ctx context.Context, in store.Infra) error {
	targets, err := encodeTargets(in.Targets)
	if err != nil {
		return fmt.Errorf("sqlite: update infra %s: %w", in.ID, err)
	}
	if err := checkJSON("description", in.Description); err != nil {
		return fmt.Errorf("sqlite: update infra %s: %w", in.ID, err)
	}
	updated := in.UpdatedAt
	if updated.IsZero() {
		updated = time.Now()
	}
	res, err := s.w.ExecContext(ctx, `UPDATE infras SET name = ?, description = ?, targets = ?, attached = ?, updated_at = ?
		WHERE id = ?`,
		in.Name, rawValue(in.Description), targets, in.Attached, timeValue(updated), in.ID)
	if err != nil {
		return fmt.Errorf("sqlite: update infra %s: %w", in.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: update infra %s: %w", in.ID, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: update infra %s: %w", in.ID, store.ErrNotFound)
	}
	return nil
}

// UpdateTargets implements store.Store.
func (s *Store) UpdateTargets(ctx context.Context, infraID string, targets map[string]int, consumed []int64) error {
	enc, err := encodeTargets(targets)
	if err != nil {
		return fmt.Errorf("sqlite: update targets %s: %w", infraID, err)
	}
	list, err := json.Marshal(consumed)
	if err != nil {
		return fmt.Errorf("sqlite: update targets %s: %w", infraID, err)
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE infras SET targets = ?, updated_at = ? WHERE id = ?`, enc, timeValue(time.Now()), infraID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return store.ErrNotFound
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM scale_requests
			WHERE infra_id = ? AND id IN (SELECT value FROM json_each(?))`, infraID, string(list))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: update targets %s: %w", infraID, err)
	}
	return nil
}

const infraCols = `id, name, description, targets, attached, created_at, updated_at`

func scanInfra(sc interface{ Scan(...any) error }) (store.Infra, error) {
	var (
		in                   store.Infra
		desc, targets        sql.NullString
		createdAt, updatedAt sql.NullString
		err                  error
	)
	if err := sc.Scan(&in.ID, &in.Name, &desc, &targets, &in.Attached, &createdAt, &updatedAt); err != nil {
		return in, err
	}
	in.Description = rawFrom(desc)
	if targets.Valid {
		if err := json.Unmarshal([]byte(targets.String), &in.Targets); err != nil {
			return in, fmt.Errorf("targets: %w", err)
		}
	}
	if in.CreatedAt, err = parseTime(createdAt); err != nil {
		return in, err
	}
	if in.UpdatedAt, err = parseTime(updatedAt); err != nil {
		return in, err
	}
	return in, nil
}

// Infra implements store.Store.
func (s *Store) Infra(ctx context.Context, id string) (store.Infra, error) {
	in, err := scanInfra(s.r.QueryRowContext(ctx, `SELECT `+infraCols+` FROM infras WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Infra{}, fmt.Errorf("sqlite: infra %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Infra{}, fmt.Errorf("sqlite: infra %s: %w", id, err)
	}
	return in, nil
}

// Infras implements store.Store. Ties in creation time keep insertion order.
func (s *Store) Infras(ctx context.Context) ([]store.Infra, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+infraCols+` FROM infras ORDER BY created_at, rowid`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: infras: %w", err)
	}
	out, err := collect(rows, func(rows *sql.Rows) (store.Infra, error) { return scanInfra(rows) })
	if err != nil {
		return nil, fmt.Errorf("sqlite: infras: %w", err)
	}
	return out, nil
}

// DeleteInfra implements store.Store. Instances and scaling requests go with
// it through ON DELETE CASCADE, inside the same implicit transaction.
func (s *Store) DeleteInfra(ctx context.Context, id string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM infras WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("sqlite: delete infra %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: delete infra %s: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: delete infra %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// PutInstance implements store.Store. An upsert rather than REPLACE keeps
// the row's rowid, which breaks ties in creation order.
func (s *Store) PutInstance(ctx context.Context, in store.Instance) error {
	if err := checkJSON("resource", in.Resource); err != nil {
		return fmt.Errorf("sqlite: put instance %s/%s: %w", in.InfraID, in.NodeID, err)
	}
	if err := checkJSON("handle", in.Handle); err != nil {
		return fmt.Errorf("sqlite: put instance %s/%s: %w", in.InfraID, in.NodeID, err)
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO instances(infra_id, node_id, node_name, state, backend, impl,
			resource, handle, address, priv_address, failing_since, error, created_at, updated_at, owner)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(infra_id, node_id) DO UPDATE SET
			node_name = excluded.node_name, state = excluded.state, backend = excluded.backend,
			impl = excluded.impl, resource = excluded.resource, handle = excluded.handle,
			address = excluded.address, priv_address = excluded.priv_address,
			failing_since = excluded.failing_since, error = excluded.error,
			created_at = excluded.created_at, updated_at = excluded.updated_at, owner = excluded.owner`,
		in.InfraID, in.NodeID, in.NodeName, in.State, in.Backend, in.Impl,
		rawValue(in.Resource), rawValue(in.Handle), in.Address, in.PrivAddress,
		timeValue(in.FailingSince), in.Error, timeValue(in.CreatedAt), timeValue(in.UpdatedAt), in.Owner)
	if isForeignKey(err) {
		return fmt.Errorf("sqlite: put instance %s/%s: infra: %w", in.InfraID, in.NodeID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("sqlite: put instance %s/%s: %w", in.InfraID, in.NodeID, err)
	}
	return nil
}

const instanceCols = `infra_id, node_id, node_name, state, backend, impl, resource, handle,
	address, priv_address, failing_since, error, created_at, updated_at, owner`

func scanInstance(sc interface{ Scan(...any) error }) (store.Instance, error) {
	var (
		in                            store.Instance
		resource, handle              sql.NullString
		failing, createdAt, updatedAt sql.NullString
		err                           error
	)
	if err := sc.Scan(&in.InfraID, &in.NodeID, &in.NodeName, &in.State, &in.Backend, &in.Impl,
		&resource, &handle, &in.Address, &in.PrivAddress, &failing, &in.Error, &createdAt, &updatedAt, &in.Owner); err != nil {
		return in, err
	}
	in.Resource = rawFrom(resource)
	in.Handle = rawFrom(handle)
	if in.FailingSince, err = parseTime(failing); err != nil {
		return in, err
	}
	if in.CreatedAt, err = parseTime(createdAt); err != nil {
		return in, err
	}
	if in.UpdatedAt, err = parseTime(updatedAt); err != nil {
		return in, err
	}
	return in, nil
}

// Instance implements store.Store.
func (s *Store) Instance(ctx context.Context, infraID, nodeID string) (store.Instance, error) {
	in, err := scanInstance(s.r.QueryRowContext(ctx,
		`SELECT `+instanceCols+` FROM instances WHERE infra_id = ? AND node_id = ?`, infraID, nodeID))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Instance{}, fmt.Errorf("sqlite: instance %s/%s: %w", infraID, nodeID, store.ErrNotFound)
	}
	if err != nil {
		return store.Instance{}, fmt.Errorf("sqlite: instance %s/%s: %w", infraID, nodeID, err)
	}
	return in, nil
}

// Instances implements store.Store.
func (s *Store) Instances(ctx context.Context, infraID string) ([]store.Instance, error) {
	rows, err := s.r.QueryContext(ctx,
		`SELECT `+instanceCols+` FROM instances WHERE infra_id = ? ORDER BY created_at, rowid`, infraID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: instances %s: %w", infraID, err)
	}
	out, err := collect(rows, func(rows *sql.Rows) (store.Instance, error) { return scanInstance(rows) })
	if err != nil {
		return nil, fmt.Errorf("sqlite: instances %s: %w", infraID, err)
	}
	return out, nil
}

// DeleteInstance implements store.Store.
func (s *Store) DeleteInstance(ctx context.Context, infraID, nodeID string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM instances WHERE infra_id = ? AND node_id = ?`, infraID, nodeID); err != nil {
		return fmt.Errorf("sqlite: delete instance %s/%s: %w", infraID, nodeID, err)
	}
	return nil
}

// AddScaleRequest implements store.Store. The infrastructure must exist
// (ErrNotFound otherwise), as the request would be orphaned.
func (s *Store) AddScaleRequest(ctx context.Context, r store.ScaleRequest) (store.ScaleRequest, error) {
	var set any
	if r.Set != nil {
		set = *r.Set
	}
	err := s.w.QueryRowContext(ctx, `INSERT INTO scale_requests(infra_id, node_name, delta, set_to, victim, created_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		r.InfraID, r.NodeName, r.Delta, set, r.Victim, timeValue(r.CreatedAt)).Scan(&r.ID)
	if isForeignKey(err) {
		return store.ScaleRequest{}, fmt.Errorf("sqlite: add scale request %s: infra: %w", r.InfraID, store.ErrNotFound)
	}
	if err != nil {
		return store.ScaleRequest{}, fmt.Errorf("sqlite: add scale request %s: %w", r.InfraID, err)
	}
	return r, nil
}

// ScaleRequests implements store.Store.
func (s *Store) ScaleRequests(ctx context.Context, infraID string) ([]store.ScaleRequest, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, infra_id, node_name, delta, set_to, victim, created_at
		FROM scale_requests WHERE infra_id = ? ORDER BY id`, infraID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: scale requests %s: %w", infraID, err)
	}
	out, err := collect(rows, func(rows *sql.Rows) (store.ScaleRequest, error) {
		var (
			r         store.ScaleRequest
			set       sql.NullInt64
			createdAt sql.NullString
		)
		if err := rows.Scan(&r.ID, &r.InfraID, &r.NodeName, &r.Delta, &set, &r.Victim, &createdAt); err != nil {
			return r, err
		}
		if set.Valid {
			v := int(set.Int64)
			r.Set = &v
		}
		var err error
		r.CreatedAt, err = parseTime(createdAt)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: scale requests %s: %w", infraID, err)
	}
	return out, nil
}

// DeleteScaleRequests implements store.Store. The ids go in as one JSON
// array so the delete is a single statement however many there are.
func (s *Store) DeleteScaleRequests(ctx context.Context, infraID string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return fmt.Errorf("sqlite: delete scale requests %s: %w", infraID, err)
	}
	if _, err := s.w.ExecContext(ctx, `DELETE FROM scale_requests
		WHERE infra_id = ? AND id IN (SELECT value FROM json_each(?))`, infraID, string(list)); err != nil {
		return fmt.Errorf("sqlite: delete scale requests %s: %w", infraID, err)
	}
	return nil
}

// AppendEvent implements store.Store.
func (s *Store) AppendEvent(ctx context.Context, e store.Event) error {
	if err := checkJSON("data", e.Data); err != nil {
		return fmt.Errorf("sqlite: append event %s: %w", e.Kind, err)
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO events(time, infra_id, node_name, node_id, kind,
			from_state, to_state, message, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		formatTime(e.Time), e.InfraID, e.NodeName, e.NodeID, e.Kind, e.From, e.To, e.Message, rawValue(e.Data)); err != nil {
		return fmt.Errorf("sqlite: append event %s: %w", e.Kind, err)
	}
	return nil
}

// Events implements store.Store.
func (s *Store) Events(ctx context.Context, infraID string, after int64, limit int) ([]store.Event, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	q := `SELECT seq, time, infra_id, node_name, node_id, kind, from_state, to_state, message, data
		FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2`
	args := []any{after, limit}
	if infraID != "" {
		q = `SELECT seq, time, infra_id, node_name, node_id, kind, from_state, to_state, message, data
			FROM events WHERE infra_id = ?3 AND seq > ?1 ORDER BY seq LIMIT ?2`
		args = append(args, infraID)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: events %s: %w", infraID, err)
	}
	out, err := collect(rows, func(rows *sql.Rows) (store.Event, error) {
		var (
			e    store.Event
			t    sql.NullString
			data sql.NullString
		)
		if err := rows.Scan(&e.Seq, &t, &e.InfraID, &e.NodeName, &e.NodeID, &e.Kind,
			&e.From, &e.To, &e.Message, &data); err != nil {
			return e, err
		}
		e.Data = rawFrom(data)
		var err error
		e.Time, err = parseTime(t)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: events %s: %w", infraID, err)
	}
	return out, nil
}

// collect scans all rows with scan and closes them.
func collect[T any](rows *sql.Rows, scan func(*sql.Rows) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// timeLayout is RFC 3339 with a fixed-width fraction, so stored times sort
// correctly as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// timeValue is the column value for t: NULL for the zero time.
func timeValue(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return formatTime(t)
}

func parseTime(s sql.NullString) (time.Time, error) {
	if !s.Valid {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s.String)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad time %q: %w", s.String, err)
	}
	return t, nil
}

// rawValue stores JSON as TEXT (a []byte would bind as BLOB, which SQLite's
// JSON functions reject); empty is NULL.
func rawValue(m json.RawMessage) any {
	if len(m) == 0 {
		return nil
	}
	return string(m)
}

func rawFrom(s sql.NullString) json.RawMessage {
	if !s.Valid {
		return nil
	}
	return json.RawMessage(s.String)
}

// checkJSON rejects malformed JSON before it reaches a JSON column.
func checkJSON(field string, m json.RawMessage) error {
	if len(m) != 0 && !json.Valid(m) {
		return fmt.Errorf("%s: invalid JSON", field)
	}
	return nil
}

func encodeTargets(t map[string]int) (any, error) {
	if len(t) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("targets: %w", err)
	}
	return string(b), nil
}

// isBusy reports whether err is SQLITE_BUSY or one of its extended codes.
func isBusy(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_BUSY
}

// isForeignKey reports whether err is a foreign key violation, which here
// always means the referenced infrastructure is missing.
func isForeignKey(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}
