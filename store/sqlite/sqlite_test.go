package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/occopus-go/occopus/store"
	"github.com/occopus-go/occopus/store/storetest"
)

var updateTestdata = flag.Bool("update-testdata", false, "rewrite testdata/v1.db and testdata/v4.db")

func openTemp(t testing.TB) *Store {
	t.Helper()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "state", "occopus.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

// rawDB opens path without any of Open's settings, for inspection.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func queryInt(t *testing.T, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, query string) int {
	t.Helper()
	var v int
	if err := q.QueryRowContext(t.Context(), query).Scan(&v); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "occopus.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.AppendEvent(t.Context(), store.Event{Kind: "k"}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{
		dir:           0o700 | os.ModeDir,
		path:          0o600,
		path + "-wal": 0o600,
		path + "-shm": 0o600,
	} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
}

// Paths reach SQLite as a file: URI; characters special in URIs must
// survive the round trip.
func TestOddPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dir with space", "a?b#c%20d&_txlock=x.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.AppendEvent(t.Context(), store.Event{Kind: "k"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the given path: %v", err)
	}
}

// A call waiting for another connection's write lock gives up when its
// context ends, not only after busy_timeout.
func TestContextEndsLockWait(t *testing.T) {
	path := filepath.Join(t.TempDir(), "occopus.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other, err := Open(t.Context(), path) // stands in for another process
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.w.BeginTx(t.Context(), nil) // BEGIN IMMEDIATE: holds the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = s.PutNodeDefs(ctx, map[string]json.RawMessage{"a": json.RawMessage(`[]`)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("write while another connection held the lock: %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > busyTimeout/2 {
		t.Fatalf("gave up after %v: context not honoured", d)
	}
	t.Log(err)
	// Reads are not blocked by the writer (WAL).
	if _, err := s.NodeDefTypes(t.Context()); err != nil {
		t.Fatalf("read while locked: %v", err)
	}
}

// Every pooled connection, not just the first, must carry the settings.
func TestPragmasOnEveryConnection(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	for name, db := range map[string]*sql.DB{"reader": s.r, "writer": s.w} {
		n := 3
		if name == "writer" {
			n = 1 // limited to one
		}
		var conns []*sql.Conn
		for range n {
			c, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		for i, c := range conns {
			var mode string
			if err := c.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
				t.Fatal(err)
			}
			if mode != "wal" {
				t.Errorf("%s conn %d: journal_mode %s", name, i, mode)
			}
			for pragma, want := range map[string]int{
				"busy_timeout": int(busyTimeout.Milliseconds()),
				"synchronous":  1, // NORMAL
				"foreign_keys": 1,
			} {
				if got := queryInt(t, c, "PRAGMA "+pragma); got != want {
					t.Errorf("%s conn %d: %s = %d, want %d", name, i, pragma, got, want)
				}
			}
		}
		for _, c := range conns {
			c.Close()
		}
	}
}

func TestRejectsInvalidJSON(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	bad := json.RawMessage(`{"a":`)
	if err := s.PutNodeDefs(ctx, map[string]json.RawMessage{"ok": json.RawMessage(`[]`), "bad": bad}); err == nil {
		t.Error("PutNodeDefs accepted invalid JSON")
	}
	if types, _ := s.NodeDefTypes(ctx); len(types) != 0 {
		t.Errorf("partial import: %v", types)
	}
	if err := s.CreateInfra(ctx, store.Infra{ID: "x", Description: bad}); err == nil {
		t.Error("CreateInfra accepted invalid JSON")
	}
	if err := s.AppendEvent(ctx, store.Event{Kind: "k", Data: bad}); err == nil {
		t.Error("AppendEvent accepted invalid JSON")
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "occopus.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db := rawDB(t, path)
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", schemaVersion()+1)); err != nil {
		t.Fatal(err)
	}
	_, err = Open(t.Context(), path)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of newer schema: %v, want ErrSchemaTooNew", err)
	}
	t.Log(err)
	if v := queryInt(t, db, "PRAGMA user_version"); v != schemaVersion()+1 {
		t.Fatalf("refused open changed user_version to %d", v)
	}
}

// schema returns the schema objects' SQL by name.
func schema(t *testing.T, db *sql.DB) map[string]string {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), `SELECT name, sql FROM sqlite_schema WHERE sql IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, q string
		if err := rows.Scan(&name, &q); err != nil {
			t.Fatal(err)
		}
		out[name] = q
	}
	return out
}

// writeV1 makes the old-format database kept in testdata: schema version 1
// in rollback-journal mode, with a little of everything in it.
func writeV1(t *testing.T, path string) {
	os.Remove(path)
	db := rawDB(t, path)
	if err := migrate(t.Context(), db, 1); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO node_defs VALUES ('web', '[{"type":"docker","image":"nginx"}]'), ('db', '[{"type":"ec2"}]')`,
		`INSERT INTO infras VALUES ('legacy', 'Legacy infra', '{"nodes":[{"name":"web","type":"web"}]}',
			'{"web":2}', 1, '2023-01-02T03:04:05.123456789Z', '2023-01-02T03:04:06.000000000Z')`,
		`INSERT INTO instances VALUES ('legacy', 'w1', 'web', 'ready', 'docker', 0, '{"type":"docker"}',
			'{"id":"c1"}', '172.17.0.2', '172.17.0.2', NULL, '', '2023-01-02T03:05:00.000000001Z',
			'2023-01-02T03:06:00.000000000Z')`,
		`INSERT INTO scale_requests(infra_id, node_name, delta, set_to, victim, created_at)
			VALUES ('legacy', 'web', 1, NULL, '', '2023-01-02T03:07:00.000000000Z')`,
		`INSERT INTO events(time, infra_id, node_name, node_id, kind, from_state, to_state, message, data)
			VALUES ('2023-01-02T03:04:05.123456789Z', 'legacy', '', '', 'infra.created', '', '', '', NULL),
			('2023-01-02T03:06:00.000000000Z', 'legacy', 'web', 'w1', 'instance.state', 'pending', 'ready', '', '{"addr":"172.17.0.2"}')`,
		`VACUUM`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
}

func TestMigrateFromV1(t *testing.T) {
	if *updateTestdata {
		writeV1(t, filepath.Join("testdata", "v1.db"))
	}
	orig, err := os.ReadFile(filepath.Join("testdata", "v1.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "occopus.db")
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	if v := queryInt(t, rawDB(t, path), "PRAGMA user_version"); v != 1 {
		t.Fatalf("testdata/v1.db has version %d", v)
	}

	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	if v := queryInt(t, s.r, "PRAGMA user_version"); v != schemaVersion() {
		t.Fatalf("after Open: version %d, want %d", v, schemaVersion())
	}
	// The migrated schema is exactly what a fresh database gets.
	fresh := openTemp(t)
	got, want := schema(t, s.r), schema(t, fresh.r)
	if len(got) != len(want) {
		t.Errorf("schema objects: %d, want %d", len(got), len(want))
	}
	for name, q := range want {
		if got[name] != q {
			t.Errorf("schema %s:\n got %s\nwant %s", name, got[name], q)
		}
	}

	// Old data reads through the current code.
	in, err := s.Infra(ctx, "legacy")
	if err != nil {
		t.Fatal(err)
	}
	if in.Name != "Legacy infra" || in.Targets["web"] != 2 || !in.Attached ||
		!in.CreatedAt.Equal(time.Date(2023, 1, 2, 3, 4, 5, 123456789, time.UTC)) {
		t.Errorf("legacy infra: %+v", in)
	}
	inst, err := s.Instance(ctx, "legacy", "w1")
	if err != nil {
		t.Fatal(err)
	}
	if inst.State != store.StateReady || string(inst.Handle) != `{"id":"c1"}` || !inst.FailingSince.IsZero() ||
		inst.CreatedAt.Nanosecond() != 1 {
		t.Errorf("legacy instance: %+v", inst)
	}
	def, err := s.NodeDef(ctx, "web")
	if err != nil || string(def) != `[{"type":"docker","image":"nginx"}]` {
		t.Errorf("legacy node def: %s %v", def, err)
	}
	evs, err := s.Events(ctx, "legacy", 0, 0)
	if err != nil || len(evs) != 2 || evs[1].To != store.StateReady {
		t.Errorf("legacy events: %+v %v", evs, err)
	}
	reqs, err := s.ScaleRequests(ctx, "legacy")
	if err != nil || len(reqs) != 1 {
		t.Fatalf("legacy scale requests: %+v %v", reqs, err)
	}
	// Sequences continue after the old rows.
	r, err := s.AddScaleRequest(ctx, store.ScaleRequest{InfraID: "legacy", NodeName: "web", Delta: 1})
	if err != nil || r.ID <= reqs[0].ID {
		t.Errorf("new scale request id %d after %d: %v", r.ID, reqs[0].ID, err)
	}
	// The cascade still works on migrated data.
	if err := s.DeleteInfra(ctx, "legacy"); err != nil {
		t.Fatal(err)
	}
	if reqs, _ := s.ScaleRequests(ctx, "legacy"); len(reqs) != 0 {
		t.Errorf("requests survive DeleteInfra: %+v", reqs)
	}
	var mode string
	if err := s.r.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode %q %v, want wal", mode, err)
	}
	checkUpgraded(t, s)
}

// checkUpgraded checks what the steps after version 4 give an old
// database: the marker (the store's id), incremental auto-vacuum, a
// passing Check.
func checkUpgraded(t *testing.T, s *Store) {
	t.Helper()
	if _, err := uuid.Parse(s.id); err != nil {
		t.Errorf("store id %q: %v", s.id, err)
	}
	var created string
	if err := s.r.QueryRow(`SELECT created_at FROM meta`).Scan(&created); err != nil {
		t.Errorf("marker: %v", err)
	} else if at, err := time.Parse(time.RFC3339Nano, created); err != nil || time.Since(at) > time.Minute {
		t.Errorf("marker created_at %q (%v), want about now", created, err)
	}
	if v := queryInt(t, s.r, "PRAGMA auto_vacuum"); v != autoVacuumIncremental {
		t.Errorf("auto_vacuum %d, want %d (incremental)", v, autoVacuumIncremental)
	}
	if err := s.Check(t.Context()); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// TestMigrateFromV4 opens testdata/v4.db, written by the code of schema
// version 4 (WAL, auto_vacuum none), and checks that the migrations to
// the origin column, the identity marker and incremental auto-vacuum keep
// every record, and that the space of pruned events goes back to the file
// system.
func TestMigrateFromV4(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join("testdata", "v4.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "occopus.db")
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	raw := rawDB(t, path)
	if v := queryInt(t, raw, "PRAGMA user_version"); v != 4 {
		t.Fatalf("testdata/v4.db has version %d", v)
	}
	if v := queryInt(t, raw, "PRAGMA auto_vacuum"); v != 0 {
		t.Fatalf("testdata/v4.db has auto_vacuum %d, want 0", v)
	}
	raw.Close()

	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	if v := queryInt(t, s.r, "PRAGMA user_version"); v != schemaVersion() {
		t.Fatalf("after Open: version %d, want %d", v, schemaVersion())
	}
	got, want := schema(t, s.r), schema(t, openTemp(t).r)
	if len(got) != len(want) {
		t.Errorf("schema objects: %d, want %d", len(got), len(want))
	}
	for name, q := range want {
		if got[name] != q {
			t.Errorf("schema %s:\n got %s\nwant %s", name, got[name], q)
		}
	}
	checkUpgraded(t, s)

	// Every record is there, and reads through the current code.
	infras, err := s.Infras(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(infras) != 2 || infras[0].ID != "v4-kept" || infras[1].ID != "v4-other" {
		t.Fatalf("infras: %+v", infras)
	}
	kept := infras[0]
	if kept.Origin != "" || kept.Name != "Kept infra" || !kept.Attached || kept.Targets["web"] != 2 ||
		!kept.CreatedAt.Equal(time.Date(2025, 6, 1, 10, 0, 0, 1, time.UTC)) {
		t.Errorf("kept infra: %+v", kept)
	}
	insts, err := s.Instances(ctx, "v4-kept")
	if err != nil || len(insts) != 2 || insts[1].Owner != "host/42/1700000000" || string(insts[0].Handle) != `{"id":"c1"}` {
		t.Errorf("instances: %+v %v", insts, err)
	}
	if types, err := s.NodeDefTypes(ctx); err != nil || !slices.Equal(types, []string{"db", "web"}) {
		t.Errorf("node defs: %v %v", types, err)
	}
	reqs, err := s.ScaleRequests(ctx, "v4-other")
	if err != nil || len(reqs) != 1 || reqs[0].Set == nil || *reqs[0].Set != 3 {
		t.Errorf("scale requests: %+v %v", reqs, err)
	}
	var leases int
	if err := s.r.QueryRow(`SELECT count(*) FROM leases`).Scan(&leases); err != nil || leases != 1 {
		t.Errorf("leases: %d %v", leases, err)
	}
	evs, err := s.Events(ctx, "", 0, 0)
	if err != nil || len(evs) != 60 {
		t.Fatalf("events: %d %v, want 60", len(evs), err)
	}
	// Origin of an old record can be set now.
	kept.Origin = store.OriginNetwork
	if err := s.UpdateInfra(ctx, kept); err != nil {
		t.Fatal(err)
	}

	// The same store on the next open.
	id := s.id
	again, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if again.id != id {
		t.Errorf("reopened: store id %s, was %s", again.id, id)
	}
	again.Close()

	// Pruning gives the pages back.
	pages := queryInt(t, s.w, "PRAGMA page_count")
	removed, err := s.PruneEvents(ctx, time.Time{}, 5)
	if err != nil || removed != 50 {
		t.Fatalf("PruneEvents: %d %v, want 50", removed, err)
	}
	after := queryInt(t, s.w, "PRAGMA page_count")
	if free := queryInt(t, s.w, "PRAGMA freelist_count"); free != 0 || after >= pages-10 {
		t.Errorf("after pruning 50 events of 1 KiB: %d pages (was %d), %d free", after, pages, free)
	}
	t.Logf("pages: %d before pruning, %d after", pages, after)
}

// Two processes opening one old database at once both migrate it (the
// VACUUM step among them), and neither loses the other's writes.
func TestTwoProcessesMigrateV4(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join("testdata", "v4.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "occopus.db")
	if err := os.WriteFile(path, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, prefix := range []string{"alpha", "beta"} {
		cmd := helper(t, "import", path, prefix)
		wg.Go(func() {
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("helper %s: %v\n%s", prefix, err, out)
			}
		})
	}
	wg.Wait()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkUpgraded(t, s)
	for _, prefix := range []string{"alpha", "beta"} {
		evs, err := s.Events(t.Context(), prefix, 0, 0)
		if err != nil || len(evs) != importRounds {
			t.Errorf("%s: %d events %v, want %d", prefix, len(evs), err, importRounds)
		}
	}
	if evs, err := s.Events(t.Context(), "v4-kept", 0, 0); err != nil || len(evs) != 30 {
		t.Errorf("old events: %d %v, want 30", len(evs), err)
	}
}

// writeV4 makes testdata/v4.db: schema version 4 (the last before the
// origin column, the identity marker and incremental auto-vacuum), in WAL
// mode with auto_vacuum NONE as the code of that version left it, closed
// cleanly so that everything is in the main file.
func writeV4(t *testing.T, path string) {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		os.Remove(p)
	}
	db, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if err := migrate(t.Context(), db, 4); err != nil {
		t.Fatal(err)
	}
	qs := []string{
		`INSERT INTO node_defs VALUES ('web', '[{"type":"docker","image":"nginx"}]'), ('db', '[{"type":"ec2"}]')`,
		`INSERT INTO infras VALUES ('v4-kept', 'Kept infra', '{"nodes":[{"name":"web","type":"web"}]}',
			'{"web":2}', 1, '2025-06-01T10:00:00.000000001Z', '2025-06-01T10:00:01.000000000Z')`,
		`INSERT INTO infras VALUES ('v4-other', 'Other infra', '{"nodes":[{"name":"db","type":"db"}]}',
			NULL, 0, '2025-06-02T10:00:00.000000000Z', '2025-06-02T10:00:00.000000000Z')`,
		`INSERT INTO instances VALUES ('v4-kept', 'w1', 'web', 'ready', 'docker', 0, '{"type":"docker"}',
			'{"id":"c1"}', '172.17.0.2', '172.17.0.2', NULL, '', '2025-06-01T10:01:00.000000000Z',
			'2025-06-01T10:02:00.000000000Z', '')`,
		`INSERT INTO instances VALUES ('v4-kept', 'w2', 'web', 'creating', 'docker', 0, '{"type":"docker"}',
			NULL, '', '', NULL, '', '2025-06-01T10:03:00.000000000Z',
			'2025-06-01T10:03:00.000000000Z', 'host/42/1700000000')`,
		`INSERT INTO scale_requests(infra_id, node_name, delta, set_to, victim, created_at)
			VALUES ('v4-kept', 'web', 1, NULL, '', '2025-06-01T10:04:00.000000000Z'),
			('v4-other', 'db', 0, 3, '', '2025-06-02T10:04:00.000000000Z')`,
		`INSERT INTO leases VALUES ('infra:v4-kept', 'host/42/1700000000/x', 1)`,
	}
	// 30 events of each infrastructure, a minute apart, each with 1 KiB of
	// data, so that pruning them frees whole pages.
	pad := strings.Repeat("x", 1024)
	for i := range 30 {
		for _, id := range []string{"v4-kept", "v4-other"} {
			qs = append(qs, fmt.Sprintf(`INSERT INTO events(time, infra_id, node_name, node_id, kind, from_state, to_state, message, data)
				VALUES ('2025-06-01T11:%02d:00.000000000Z', '%s', 'web', 'w1', 'instance.state', 'pending', 'ready', '%d', '{"pad":"%s"}')`,
				i, id, i, pad))
		}
	}
	for _, q := range qs {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s-wal left after close: %v", path, err)
	}
}

func TestWriteV4(t *testing.T) {
	if !*updateTestdata {
		t.Skip("only with -update-testdata")
	}
	writeV4(t, filepath.Join("testdata", "v4.db"))
}

// Helper processes. The parent re-executes its own test binary with
// helperEnv set; TestHelperProcess then does the job named there.
const helperEnv = "OCCOPUS_STORE_SQLITE_HELPER"

func helper(t *testing.T, job, db string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+job, "HELPER_DB="+db)
	for i, a := range args {
		cmd.Env = append(cmd.Env, fmt.Sprintf("HELPER_ARG%d=%s", i, a))
	}
	return cmd
}

func TestHelperProcess(t *testing.T) {
	job := os.Getenv(helperEnv)
	if job == "" {
		t.Skip("only run as a helper process")
	}
	ctx := context.Background()
	if job == "create-killed" {
		// kill -9 at the worst moment: the new database is complete
		// but not in place yet.
		beforeLink = func(string) { syscall.Kill(os.Getpid(), syscall.SIGKILL) }
	}
	if job == "open" {
		fmt.Println("opening") // the parent's kill timer starts now
	}
	s, err := Open(ctx, os.Getenv("HELPER_DB"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var jobErr error
	switch job {
	case "open":
	case "import":
		jobErr = helperImport(ctx, s, os.Getenv("HELPER_ARG0"))
	case "churn":
		jobErr = helperChurn(ctx, s)
	default:
		jobErr = fmt.Errorf("unknown job %q", job)
	}
	if jobErr != nil {
		fmt.Fprintln(os.Stderr, jobErr)
		os.Exit(1)
	}
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

const (
	importRounds = 100
	importTypes  = 20
)

// helperImport imports its own types (prefix-N) and a shared one repeatedly,
// logging an event each time.
func helperImport(ctx context.Context, s *Store, prefix string) error {
	for round := range importRounds {
		defs := map[string]json.RawMessage{
			"shared": json.RawMessage(fmt.Sprintf(`[{"by":%q,"round":%d}]`, prefix, round)),
		}
		for i := range importTypes {
			defs[fmt.Sprintf("%s-%d", prefix, i)] = json.RawMessage(fmt.Sprintf(`[{"round":%d}]`, round))
		}
		if err := s.PutNodeDefs(ctx, defs); err != nil {
			return err
		}
		if err := s.AppendEvent(ctx, store.Event{InfraID: prefix, Kind: "import", Message: strconv.Itoa(round)}); err != nil {
			return err
		}
	}
	return nil
}

const churnTypes = 200

type churnDef struct {
	Version int    `json:"version"`
	Pad     string `json:"pad"`
}

// helperChurn replaces all churnTypes definitions with the next version
// marker, one transaction per version, until killed.
func helperChurn(ctx context.Context, s *Store) error {
	v, err := churnVersion(ctx, s)
	if err != nil {
		return err
	}
	ready := false
	// Cheap to build, so the child spends nearly all its time inside
	// PutNodeDefs' transaction.
	def := `[{"version":%d,"pad":"` + strings.Repeat("x", 256) + `"}]`
	deadline := time.Now().Add(time.Minute) // in case the parent died
	for time.Now().Before(deadline) {
		v++
		defs := make(map[string]json.RawMessage, churnTypes)
		for i := range churnTypes {
			defs[fmt.Sprintf("type-%03d", i)] = json.RawMessage(fmt.Sprintf(def, v))
		}
		if err := s.PutNodeDefs(ctx, defs); err != nil {
			return err
		}
		if !ready {
			// Once something is committed every round has something
			// to lose; the parent starts its kill timer now.
			fmt.Println("ready")
			ready = true
		}
	}
	return nil
}

// churnVersion returns the single version marker all stored churn types
// carry (0 when none are stored), or an error if they disagree.
func churnVersion(ctx context.Context, s *Store) (int, error) {
	types, err := s.NodeDefTypes(ctx)
	if err != nil {
		return 0, err
	}
	if len(types) != 0 && len(types) != churnTypes {
		return 0, fmt.Errorf("%d types stored, want 0 or %d", len(types), churnTypes)
	}
	version := -1
	for _, typ := range types {
		raw, err := s.NodeDef(ctx, typ)
		if err != nil {
			return 0, err
		}
		var d []churnDef
		if err := json.Unmarshal(raw, &d); err != nil || len(d) != 1 {
			return 0, fmt.Errorf("%s: bad definition: %v", typ, err)
		}
		if version >= 0 && d[0].Version != version {
			return 0, fmt.Errorf("mixed versions: %s has %d, others %d", typ, d[0].Version, version)
		}
		version = d[0].Version
	}
	return max(version, 0), nil
}

func TestTwoProcessesImport(t *testing.T) {
	// The database does not exist yet: both children race to create and
	// migrate it, then to write.
	path := filepath.Join(t.TempDir(), "state", "occopus.db")
	var wg sync.WaitGroup
	for _, prefix := range []string{"alpha", "beta"} {
		cmd := helper(t, "import", path, prefix)
		wg.Go(func() {
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("helper %s: %v\n%s", prefix, err, out)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	types, err := s.NodeDefTypes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(types) != 2*importTypes+1 {
		t.Fatalf("%d types, want %d: %v", len(types), 2*importTypes+1, types)
	}
	for _, prefix := range []string{"alpha", "beta"} {
		for i := range importTypes {
			def, err := s.NodeDef(ctx, fmt.Sprintf("%s-%d", prefix, i))
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf(`[{"round":%d}]`, importRounds-1); string(def) != want {
				t.Errorf("%s-%d = %s, want %s", prefix, i, def, want)
			}
		}
		evs, err := s.Events(ctx, prefix, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != importRounds {
			t.Errorf("%s: %d events, want %d", prefix, len(evs), importRounds)
		}
	}
}

func TestKillDuringImport(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), "occopus.db")
	const rounds = 6
	last := 0
	for round := range rounds {
		cmd := helper(t, "churn", path)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || line != "ready\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: child said %q: %v\n%s", round, line, err, &stderr)
		}
		ready := time.Since(start).Round(time.Millisecond)
		// Kill at a random moment; a transaction is in flight nearly
		// all of the time.
		time.Sleep(time.Duration(rand.IntN(150)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		go io.Copy(io.Discard, stdout)
		err = cmd.Wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended with %v, want killed (it must not fail on its own)\n%s", round, err, &stderr)
		}

		s, err := Open(t.Context(), path)
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		var check string
		if err := s.r.QueryRowContext(t.Context(), "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
			t.Fatalf("round %d: integrity_check %q %v", round, check, err)
		}
		v, err := churnVersion(t.Context(), s)
		s.Close()
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if v <= last {
			t.Fatalf("round %d: version %d, want above %d (the child committed before its kill)", round, v, last)
		}
		t.Logf("round %d: killed at version %d (child ready after %v)", round, v, ready)
		last = v
	}
}

func BenchmarkInfra(b *testing.B) { storetest.BenchInfra(b, openTemp(b)) }

func BenchmarkPutInstance(b *testing.B) { storetest.BenchPutInstance(b, openTemp(b)) }
