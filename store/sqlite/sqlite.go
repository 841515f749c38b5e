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
	crand "crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
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
	// writes counts this process's writes for Revision (wexec, tx).
	writes atomic.Uint64
	// r serves reads concurrently (WAL readers do not block the writer).
	r *sql.DB
	// rev is one connection of its own for PRAGMA data_version (Revision),
	// which changes when another connection commits.
	rev *sql.DB
	// revAt is when data_version was last read (UnixNano), dv what it
	// was, dvMoves how often it was seen to change.
	revAt, dv, dvMoves atomic.Int64
	// group commits concurrent instance and event writes together (group.go).
	group grouper
	// path is the database file (absolute), for messages.
	path string
	// id is the identity marker read at Open; Check compares it with the
	// one in the file.
	id string
	// now is the clock that judges leases (time.Now when nil); tests of
	// this package freeze it.
	now func() time.Time
}

var (
	_ store.Store      = (*Store)(nil)
	_ store.Checker    = (*Store)(nil)
	_ store.Identified = (*Store)(nil)
	_ store.Revisioned = (*Store)(nil)
)

// Open opens the database at path, creating it if there is no file there,
// and migrates its schema to the current version. The parent directory is
// created with mode 0700 and a new database file with 0600 (SQLite gives
// the -wal and -shm files the same mode).
//
// A new database appears at path complete or not at all (see create), so a
// file that is there but holds no schema (say, truncated to 0 bytes) or
// has lost its identity marker is not a half-made store: it is refused
// with an error wrapping store.ErrNoIdentity that names the file and what
// to do, rather than silently used as an empty store while the
// infrastructures recorded in what was lost keep running.
func Open(ctx context.Context, path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// Three rounds at most: creating takes one, and what another process
	// created first vanishing at once another (as does a dangling
	// symbolic link at abs, which Link sees as taken and Stat as missing).
	for range 3 {
		fi, err := os.Stat(abs)
		if err == nil {
			s, err := openExisting(ctx, abs, fi)
			if err != nil {
				return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
			}
			return s, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
		}
		if err := create(ctx, abs); err != nil {
			return nil, fmt.Errorf("sqlite: create %s: %w", abs, err)
		}
	}
	return nil, fmt.Errorf("sqlite: open %s: not there right after it was created (a dangling symbolic link?)", abs)
}

// openExisting opens the database file abs, refuses it unless it is a
// store (or an older store to migrate), migrates it and reads its marker.
func openExisting(ctx context.Context, abs string, fi fs.FileInfo) (*Store, error) {
	// Not even opened: SQLite would write a header into an empty file,
	// and delete a -wal file beside it, and the file is evidence.
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%v)", fi.Mode().Type())
	}
	if fi.Size() == 0 {
		return nil, refuse(abs, "the file is empty (0 bytes)")
	}
	if err := checkHeader(abs); err != nil {
		return nil, err
	}
	w, err := sql.Open("sqlite", dsn(abs, true))
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn(abs, false))
	if err != nil {
		w.Close()
		return nil, err
	}
	// Keep readers open: each new connection re-runs the pragmas.
	nr := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(nr)
	r.SetMaxIdleConns(nr)
	rev, err := sql.Open("sqlite", dsn(abs, false))
	if err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	rev.SetMaxOpenConns(1)
	rev.SetMaxIdleConns(1)
	rev.SetConnMaxIdleTime(0)
	s := &Store{w: w, r: r, rev: rev, path: abs}
	if err := s.init(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// init checks that the database is a store, migrates it and reads its
// marker, retrying while the database is busy. While a file is still in
// rollback-journal mode (one written by an old version), processes opening
// it at once can deadlock on lock upgrades; SQLite then fails one of them
// at once with SQLITE_BUSY instead of waiting, so the wait is ours. Once
// the file is in WAL mode (persistent) this does not happen.
func (s *Store) init(ctx context.Context) error {
	deadline := time.Now().Add(busyTimeout)
	wait := time.Millisecond
	for {
		err := s.initOnce(ctx)
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

func (s *Store) initOnce(ctx context.Context) error {
	if err := checkIdentity(ctx, s.w, s.path); err != nil {
		return err
	}
	if err := migrate(ctx, s.w, schemaVersion()); err != nil {
		return err
	}
	id, found, err := readMarker(ctx, s.w)
	if err != nil {
		return err
	}
	if !found { // migrate made it; only a concurrent deletion gets here
		return refuse(s.path, "its identity marker (table meta) is missing")
	}
	s.id = id
	return nil
}

// sqliteMagic starts every SQLite database file.
const sqliteMagic = "SQLite format 3\x00"

// checkHeader refuses, before SQLite touches the file (it would switch a
// rollback-journal file to WAL, writing its header), a file that is not a
// SQLite database, and one whose header says schema version 0 while no
// write-ahead log is beside it: without a log the header is the whole
// truth, and version 0 means no store schema. With a log, the newest
// header may be in the log (a database in WAL mode killed before its first
// checkpoint has version 0 in the file and everything in the log), so
// checkIdentity asks SQLite.
func checkHeader(abs string) error {
	f, err := os.Open(abs)
	if err != nil {
		return err
	}
	defer f.Close()
	var h [100]byte
	if n, err := io.ReadFull(f, h[:]); err != nil {
		if n >= len(sqliteMagic) && string(h[:len(sqliteMagic)]) == sqliteMagic {
			return refuse(abs, fmt.Sprintf("it is cut short (%d bytes, not even a database header)", n))
		}
		return refuse(abs, fmt.Sprintf("it is not a SQLite database (%d bytes)", n))
	}
	if string(h[:len(sqliteMagic)]) != sqliteMagic {
		return refuse(abs, "it is not a SQLite database (no SQLite header)")
	}
	if fi, err := os.Stat(abs + "-wal"); err == nil && fi.Size() > 0 {
		return nil
	}
	if binary.BigEndian.Uint32(h[60:64]) == 0 { // PRAGMA user_version
		return refuse(abs, "its schema version is 0: it holds no store schema")
	}
	return nil
}

// checkIdentity refuses a database that is not a store: one without schema
// version and tables (an empty database: never made by create, so what it
// held is lost), one with tables but no version (not ours), and one of a
// version that has the identity marker but lacks it.
func checkIdentity(ctx context.Context, db *sql.DB, abs string) error {
	v, err := userVersion(ctx, db)
	if isNotADB(err) {
		return refuse(abs, fmt.Sprintf("it is not a SQLite database (%v)", err))
	}
	if err != nil {
		return err
	}
	switch {
	case v > schemaVersion():
		return fmt.Errorf("schema version %d > %d: %w", v, schemaVersion(), ErrSchemaTooNew)
	case v == 0:
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&n); err != nil {
			return fmt.Errorf("read schema: %w", err)
		}
		if n == 0 {
			return refuse(abs, "it holds no schema (no tables, version 0)")
		}
		return refuse(abs, fmt.Sprintf("it has %d schema objects but no schema version, so it is not an occopus store", n))
	case v >= metaVersion:
		if _, found, err := readMarker(ctx, db); err != nil {
			return err
		} else if !found {
			return refuse(abs, fmt.Sprintf("its identity marker (table meta) is missing although its schema version is %d", v))
		}
	}
	return nil
}

// readMarker reads the store id from the meta table; found is false when
// the table or its row is missing.
func readMarker(ctx context.Context, db *sql.DB) (id string, found bool, err error) {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'meta'`).Scan(&n); err != nil {
		return "", false, fmt.Errorf("read identity marker: %w", err)
	}
	if n == 0 {
		return "", false, nil
	}
	err = db.QueryRowContext(ctx, `SELECT id FROM meta WHERE one = 1`).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read identity marker: %w", err)
	}
	return id, true, nil
}

// refuse is the error for a database file that is not (any more) a store.
func refuse(abs, why string) error {
	return fmt.Errorf("%w: %s. The infrastructures recorded in it are unknown now and may still be running. "+
		"Restore %s from a backup, or move it away (with any -wal and -shm file beside it) to start with an empty store",
		store.ErrNoIdentity, why, abs)
}

// tempInfix marks the temporary files create builds new databases in:
// <name>.new-<random>, next to the target.
const tempInfix = ".new-"

// staleTemp is how old a temporary file of create must be before another
// Open removes it as left by a process killed while creating: far longer
// than a creation takes.
const staleTemp = time.Hour

// beforeLink, when set (by tests), is called with the finished temporary
// database just before it is linked into place.
var beforeLink func(tmp string)

// create makes a new database at abs without a moment in which another
// process could see it half made: the database is built and migrated
// under a temporary name in the same directory, closed (which checkpoints
// and removes its -wal file, checked), and hard-linked to abs, which fails
// if abs exists, so that of processes creating at once the first one wins
// and the others open its database. A process killed half-way leaves at
// worst its temporary file, removed by a later create once stale, never a
// database without schema at abs. create returns nil also when another
// process won.
func create(ctx context.Context, abs string) error {
	// Side files without their database: the database was removed (or
	// moved) and they may hold its last transactions, or still be in use
	// by a process that has it open; SQLite would apply them to a new
	// file at the same name.
	for _, side := range []string{abs + "-wal", abs + "-journal", abs + "-shm"} {
		if _, err := os.Lstat(side); err != nil {
			continue
		}
		if _, err := os.Lstat(abs); err == nil {
			return nil // created by another process meanwhile
		}
		return fmt.Errorf("%w: %s is there without its database. Restore %s from a backup, "+
			"or, if no process uses the database any more, move the side files away to start with an empty store",
			store.ErrNoIdentity, side, abs)
	}
	removeStaleTemps(abs, time.Now().Add(-staleTemp))
	tmp := abs + tempInfix + crand.Text()
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	// After the link tmp is a second name of the database: removing it
	// then is right too.
	defer removeDB(tmp)
	if err := build(ctx, tmp); err != nil {
		return fmt.Errorf("build %s: %w", tmp, err)
	}
	for _, side := range []string{tmp + "-wal", tmp + "-journal"} {
		if fi, err := os.Stat(side); err == nil && fi.Size() > 0 {
			return fmt.Errorf("build %s: %s left with %d bytes after close", tmp, side, fi.Size())
		}
	}
	if beforeLink != nil {
		beforeLink(tmp)
	}
	if err := os.Link(tmp, abs); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // another process's database won
		}
		return err
	}
	// Make the new name durable before anything is written through it.
	if d, err := os.Open(filepath.Dir(abs)); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("sync %s: %w", filepath.Dir(abs), err)
		}
	}
	return nil
}

// build makes a complete database at tmp: incremental auto-vacuum, set
// before the first page is written (later it would take a VACUUM), every
// migration, and WAL mode. Nobody else knows tmp and a crash makes it
// garbage anyway, so it is built without a journal on disk and without
// syncs (several times faster), then synced once as a whole.
func build(ctx context.Context, tmp string) error {
	q := url.Values{}
	q.Add("_pragma", "auto_vacuum(INCREMENTAL)")
	q.Add("_pragma", "journal_mode(MEMORY)")
	q.Add("_pragma", "synchronous(OFF)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", OmitHost: true, Path: tmp, RawQuery: q.Encode()}).String())
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	err = migrate(ctx, db, schemaVersion())
	if err == nil {
		// Persistent: written into the header (the log itself is empty
		// and goes at Close).
		_, err = db.ExecContext(ctx, "PRAGMA journal_mode = WAL")
	}
	if err := errors.Join(err, db.Close()); err != nil {
		return err
	}
	f, err := os.OpenFile(tmp, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

// removeDB removes a database file and its side files, ignoring errors
// (the files may not exist).
func removeDB(path string) {
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		os.Remove(p)
	}
}

// removeStaleTemps removes temporary files of create for abs (with their
// side files) last modified before cutoff.
func removeStaleTemps(abs string, cutoff time.Time) {
	dir, base := filepath.Split(abs)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), base+tempInfix) || !e.Type().IsRegular() {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.ModTime().Before(cutoff) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// dsn builds the connection string. The pragmas go in the DSN because the
// driver then runs them on every new connection of the pool, not just the
// first. Writers begin IMMEDIATE so a transaction never has to upgrade a
// read lock to a write lock, which can fail with SQLITE_BUSY regardless of
// busy_timeout. The pragmas in first run before all others.
func dsn(abs string, writer bool, first ...string) string {
	q := url.Values{}
	for _, p := range first {
		q.Add("_pragma", p)
	}
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
	return errors.Join(s.r.Close(), s.w.Close(), s.rev.Close())
}

// Revision implements store.Revisioned: the count of this process's
// writes (read-your-writes, no query) plus the changes seen of PRAGMA
// data_version, read at most every revPoll on a connection that never
// writes, so that the commits of other processes are seen within that.
func (s *Store) Revision(ctx context.Context) (uint64, error) {
	now := time.Now().UnixNano()
	if last := s.revAt.Load(); now-last >= int64(revPoll) && s.revAt.CompareAndSwap(last, now) {
		var v int64
		if err := s.rev.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
			s.revAt.Store(0) // the next call tries again
			return 0, fmt.Errorf("sqlite: revision: %w", err)
		}
		if s.dv.Swap(v) != v {
			s.dvMoves.Add(1)
		}
	}
	return s.writes.Load() + uint64(s.dvMoves.Load()), nil
}

// revPoll is how often Revision looks for other processes' commits.
const revPoll = time.Millisecond

// wrote counts a write for Revision, once it is done. A count that moves
// without a change (a failed write) only costs a re-read.
func (s *Store) wrote() { s.writes.Add(1) }

// wexec is the writer's ExecContext, counted.
func (s *Store) wexec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	defer s.wrote()
	return s.w.ExecContext(ctx, query, args...)
}

// counted is the writer as an execer whose writes are counted.
type counted struct{ s *Store }

func (c counted) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return c.s.wexec(ctx, query, args...)
}

// tx runs fn in one write transaction, after checking the fence ctx
// carries (store.WithFence), if any.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := checkFence(ctx, tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	defer s.wrote()
	return tx.Commit()
}

// exec runs one write statement; under a fence, in a transaction that
// checks it first.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if _, ok := store.FenceFrom(ctx); !ok {
		return s.wexec(ctx, query, args...)
	}
	var res sql.Result
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		res, err = tx.ExecContext(ctx, query, args...)
		return err
	})
	return res, err
}

// checkFence fails with store.ErrFenced unless the fence's owner holds
// its lease now, read in the transaction that writes: another process
// that takes the lease over meanwhile makes the transaction fail
// (SQLite serialises writers), so a stale owner's write never lands.
func checkFence(ctx context.Context, tx *sql.Tx) error {
	f, ok := store.FenceFrom(ctx)
	if !ok {
		return nil
	}
	var n int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM leases WHERE key = ? AND owner = ? AND expires_at > ?`,
		f.Key, f.Owner, time.Now().UnixNano()).Scan(&n)
	if err != nil {
		return fmt.Errorf("fence: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: lease %s of %s", store.ErrFenced, f.Key, f.Owner)
	}
	return nil
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
	if err := store.CheckOrigin(in.Origin); err != nil {
		return fmt.Errorf("sqlite: create infra %s: %w", in.ID, err)
	}
	res, err := s.exec(ctx, `INSERT INTO infras(id, name, description, targets, attached, created_at, updated_at, origin)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING`,
		in.ID, in.Name, rawValue(in.Description), targets, in.Attached, timeValue(in.CreatedAt), timeValue(in.UpdatedAt), in.Origin)
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
	if err := store.CheckOrigin(in.Origin); err != nil {
		return fmt.Errorf("sqlite: update infra %s: %w", in.ID, err)
	}
	updated := in.UpdatedAt
	if updated.IsZero() {
		updated = time.Now()
	}
	res, err := s.exec(ctx, `UPDATE infras SET name = ?, description = ?, targets = ?, attached = ?, updated_at = ?,
		origin = ? WHERE id = ?`,
		in.Name, rawValue(in.Description), targets, in.Attached, timeValue(updated), in.Origin, in.ID)
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

const infraCols = `id, name, description, targets, attached, created_at, updated_at, origin,
	pass_result, pass_error, pass_at, pass_failures, notify`

func scanInfra(sc interface{ Scan(...any) error }) (store.Infra, error) {
	var (
		in                           store.Infra
		desc, targets, notify        sql.NullString
		createdAt, updatedAt, passAt sql.NullString
		err                          error
	)
	if err := sc.Scan(&in.ID, &in.Name, &desc, &targets, &in.Attached, &createdAt, &updatedAt, &in.Origin,
		&in.LastPass.Result, &in.LastPass.Error, &passAt, &in.LastPass.Failures, &notify); err != nil {
		return in, err
	}
	in.Description = rawFrom(desc)
	in.Notify = rawFrom(notify)
	if in.LastPass.At, err = parseTime(passAt); err != nil {
		return in, err
	}
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
// the record through ON DELETE CASCADE, the events (which have no foreign
// key, so that events need no stored infrastructure) by their own
// statement, all in one transaction. The pages freed are reused by later
// writes and given back to the file system by the next PruneEvents.
func (s *Store) DeleteInfra(ctx context.Context, id string) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM infras WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return store.ErrNotFound
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM events WHERE infra_id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete infra %s: %w", id, err)
	}
	return nil
}

// SetPassStatus implements store.Store: one UPDATE of the record's pass
// columns.
func (s *Store) SetPassStatus(ctx context.Context, id string, ps store.PassStatus) error {
	if err := ps.Check(); err != nil {
		return fmt.Errorf("sqlite: set pass status %s: %w", id, err)
	}
	if ps.At.IsZero() {
		ps.At = time.Now()
	}
	res, err := s.exec(ctx, `UPDATE infras SET pass_result = ?, pass_error = ?, pass_at = ?, pass_failures = ?
		WHERE id = ?`, ps.Result, store.CutString(ps.Error, store.MaxPassError), formatTime(ps.At), ps.Failures, id)
	if err != nil {
		return fmt.Errorf("sqlite: set pass status %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: set pass status %s: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: set pass status %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// SetNotify implements store.Store: one UPDATE of the record's notify
// column.
func (s *Store) SetNotify(ctx context.Context, id string, props json.RawMessage) error {
	props, err := store.CheckNotify(props)
	if err != nil {
		return fmt.Errorf("sqlite: set notify %s: %w", id, err)
	}
	res, err := s.exec(ctx, `UPDATE infras SET notify = ? WHERE id = ?`, rawValue(props), id)
	if err != nil {
		return fmt.Errorf("sqlite: set notify %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: set notify %s: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: set notify %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// PutInstance implements store.Store. An upsert rather than REPLACE keeps
// the row's rowid, which breaks ties in creation order.
func (s *Store) PutInstance(ctx context.Context, in store.Instance) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlite: put instance %s/%s: %w", in.InfraID, in.NodeID, err)
	}
	return s.grouped(ctx, func(x execer) error { return putInstance(ctx, x, in) })
}

// grouped runs one write in the next group commit, or, when ctx carries a
// fence (store.WithFence), in a transaction of its own that checks it: a
// group's transaction is shared by writers of several leases.
func (s *Store) grouped(ctx context.Context, fn func(x execer) error) error {
	if _, ok := store.FenceFrom(ctx); ok {
		return s.tx(ctx, func(tx *sql.Tx) error { return fn(tx) })
	}
	return s.write(fn)
}

// execer is a *sql.DB or a *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func putInstance(ctx context.Context, x execer, in store.Instance) error {
	if err := checkJSON("resource", in.Resource); err != nil {
		return fmt.Errorf("sqlite: put instance %s/%s: %w", in.InfraID, in.NodeID, err)
	}
	if err := checkJSON("handle", in.Handle); err != nil {
		return fmt.Errorf("sqlite: put instance %s/%s: %w", in.InfraID, in.NodeID, err)
	}
	_, err := x.ExecContext(ctx, `INSERT INTO instances(infra_id, node_id, node_name, state, backend, impl,
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

// PutInstances implements store.Store: one transaction for all.
func (s *Store) PutInstances(ctx context.Context, ins []store.Instance, evs []store.Event) error {
	if len(ins) == 0 && len(evs) == 0 {
		return nil
	}
	for _, e := range evs {
		if err := checkJSON("data", e.Data); err != nil {
			return fmt.Errorf("sqlite: put instances: event %s: %w", e.Kind, err)
		}
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, in := range ins {
			if err := putInstance(ctx, tx, in); err != nil {
				return err
			}
		}
		for _, e := range evs {
			if err := appendEvent(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
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
	if _, err := s.exec(ctx, `DELETE FROM instances WHERE infra_id = ? AND node_id = ?`, infraID, nodeID); err != nil {
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
	s.wrote()
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
	if _, err := s.exec(ctx, `DELETE FROM scale_requests
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
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlite: append event %s: %w", e.Kind, err)
	}
	return s.grouped(ctx, func(x execer) error { return appendEvent(ctx, x, e) })
}

func appendEvent(ctx context.Context, x execer, e store.Event) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if _, err := x.ExecContext(ctx, `INSERT INTO events(time, infra_id, node_name, node_id, kind,
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
	out, err := collect(rows, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("sqlite: events %s: %w", infraID, err)
	}
	return out, nil
}

// scanEvent reads one row of `SELECT seq, time, infra_id, node_name,
// node_id, kind, from_state, to_state, message, data FROM events`.
func scanEvent(rows *sql.Rows) (store.Event, error) {
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
}

// pruneBatch bounds the events one statement of PruneEvents deletes, so
// that the write lock is never held long; vacuumBatch likewise the pages
// one PRAGMA incremental_vacuum gives back. Variables for tests.
var (
	pruneBatch  = 1000
	vacuumBatch = 1024
)

// PruneEvents implements store.Store. Each batch is one DELETE of at most
// pruneBatch events of one infrastructure, oldest first; times compare as
// their fixed-width text. The loop ends when a batch comes back short, and
// the space freed (by this call, DeleteInfra or anything else) is then
// given back to the file system with PRAGMA incremental_vacuum, itself in
// batches of vacuumBatch pages.
func (s *Store) PruneEvents(ctx context.Context, olderThan time.Time, keepPerInfra int) (int, error) {
	if keepPerInfra < 0 {
		return 0, fmt.Errorf("sqlite: prune events: keepPerInfra %d < 0", keepPerInfra)
	}
	removed := 0
	if !olderThan.IsZero() || keepPerInfra > 0 {
		var cutoff any // NULL: no age bound
		if !olderThan.IsZero() {
			cutoff = formatTime(clampYear(olderThan))
		}
		// OFFSET of the oldest event to keep; -1: no count bound.
		offset := keepPerInfra - 1
		rows, err := s.r.QueryContext(ctx, `SELECT DISTINCT infra_id FROM events`)
		if err != nil {
			return 0, fmt.Errorf("sqlite: prune events: %w", err)
		}
		ids, err := collect(rows, func(rows *sql.Rows) (string, error) {
			var id string
			return id, rows.Scan(&id)
		})
		if err != nil {
			return 0, fmt.Errorf("sqlite: prune events: %w", err)
		}
		for _, id := range ids {
			for {
				res, err := s.exec(ctx, `DELETE FROM events WHERE seq IN (
					SELECT seq FROM events WHERE infra_id = ?1 AND (time < ?2 OR (?3 >= 0 AND seq < (
						SELECT seq FROM events WHERE infra_id = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?3)))
					ORDER BY seq LIMIT ?4)`, id, cutoff, offset, pruneBatch)
				if err != nil {
					return removed, fmt.Errorf("sqlite: prune events %s: %w", id, err)
				}
				n, err := res.RowsAffected()
				if err != nil {
					return removed, fmt.Errorf("sqlite: prune events %s: %w", id, err)
				}
				removed += int(n)
				if n < int64(pruneBatch) {
					break
				}
			}
		}
	}
	if err := s.vacuum(ctx); err != nil {
		return removed, fmt.Errorf("sqlite: prune events: %w", err)
	}
	return removed, nil
}

// vacuum gives the free pages back to the file system, vacuumBatch at a
// time (each PRAGMA is a write transaction of its own).
func (s *Store) vacuum(ctx context.Context) error {
	for {
		var free int
		if err := s.w.QueryRowContext(ctx, "PRAGMA freelist_count").Scan(&free); err != nil {
			return fmt.Errorf("freelist_count: %w", err)
		}
		if free == 0 {
			return nil
		}
		// PRAGMA takes no bound parameters; vacuumBatch is ours.
		if _, err := s.wexec(ctx, fmt.Sprintf("PRAGMA incremental_vacuum(%d)", vacuumBatch)); err != nil {
			return fmt.Errorf("incremental_vacuum: %w", err)
		}
		if free <= vacuumBatch {
			return nil
		}
	}
}

// clampYear brings t into the years 0000-9999, where the text form of
// times sorts like the instants.
func clampYear(t time.Time) time.Time {
	switch {
	case t.Year() < 0:
		return time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	case t.Year() > 9999:
		return time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	}
	return t
}

// Check implements store.Checker: PRAGMA quick_check (the first ten
// problems it finds are reported), the schema version, and the identity
// marker, which must be the one read at Open: a different one means the
// file at the path was replaced under this process.
func (s *Store) Check(ctx context.Context) error {
	rows, err := s.r.QueryContext(ctx, "PRAGMA quick_check(10)")
	if err != nil {
		return fmt.Errorf("sqlite: check %s: %w", s.path, err)
	}
	msgs, err := collect(rows, func(rows *sql.Rows) (string, error) {
		var m string
		return m, rows.Scan(&m)
	})
	if err != nil {
		return fmt.Errorf("sqlite: check %s: %w", s.path, err)
	}
	if len(msgs) != 1 || msgs[0] != "ok" {
		return fmt.Errorf("sqlite: check %s: quick_check: %s", s.path, strings.Join(msgs, "; "))
	}
	if v, err := userVersion(ctx, s.r); err != nil {
		return fmt.Errorf("sqlite: check %s: %w", s.path, err)
	} else if v != schemaVersion() {
		return fmt.Errorf("sqlite: check %s: schema version %d, want %d", s.path, v, schemaVersion())
	}
	id, found, err := readMarker(ctx, s.r)
	if err != nil {
		return fmt.Errorf("sqlite: check %s: %w", s.path, err)
	}
	if !found {
		return fmt.Errorf("sqlite: check %s: %w", s.path, refuse(s.path, "its identity marker (table meta) is missing"))
	}
	if id != s.id {
		return fmt.Errorf("sqlite: check %s: %w: it is store %s, not store %s that this process opened: "+
			"the file was replaced while in use; put the original back, or restart to use this one",
			s.path, store.ErrNoIdentity, id, s.id)
	}
	return nil
}

// ID implements store.Identified: the identity marker read at Open (Check
// tells whether the file still holds it).
func (s *Store) ID(context.Context) (string, error) { return s.id, nil }

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

// isNotADB reports whether err is SQLITE_NOTADB: the file is not a
// database.
func isNotADB(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_NOTADB
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
