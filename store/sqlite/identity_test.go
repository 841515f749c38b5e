package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/occopus-go/occopus/store"
)

// dirNames lists the names in dir, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// A database file that is there but is not a store is refused, named,
// with what to do, and left exactly as it was.
func TestRefusesLostSchema(t *testing.T) {
	tests := []struct {
		name string
		// make prepares the file at path (and perhaps beside it).
		make func(t *testing.T, path string)
		why  string // part of the message
	}{
		{"empty file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "the file is empty (0 bytes)"},
		{"empty file beside a write-ahead log", func(t *testing.T, path string) {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			// SQLite would delete this: the evidence must stay.
			if err := os.WriteFile(path+"-wal", []byte("frames"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "the file is empty (0 bytes)"},
		{"database without tables", func(t *testing.T, path string) {
			db := rawDB(t, path)
			if _, err := db.Exec("VACUUM"); err != nil { // writes the header only
				t.Fatal(err)
			}
			db.Close()
		}, "its schema version is 0: it holds no store schema"},
		{"not a database", func(t *testing.T, path string) {
			if err := os.WriteFile(path, bytes.Repeat([]byte("not sqlite\n"), 200), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "it is not a SQLite database (no SQLite header)"},
		{"cut short", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(sqliteMagic+"\x10\x00"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "it is cut short (18 bytes, not even a database header)"},
		{"a few bytes", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "it is not a SQLite database (1 bytes)"},
		{"tables without version", func(t *testing.T, path string) {
			db := rawDB(t, path)
			if _, err := db.Exec("CREATE TABLE other (a)"); err != nil {
				t.Fatal(err)
			}
			db.Close()
		}, "its schema version is 0: it holds no store schema"},
		// With a write-ahead log the header in the file may be old, so
		// SQLite is asked.
		{"empty database in WAL mode, with its log", func(t *testing.T, path string) {
			db := rawDB(t, path)
			db.SetMaxOpenConns(1)
			for _, q := range []string{"PRAGMA journal_mode=WAL", "CREATE TABLE x (a)", "DROP TABLE x"} {
				if _, err := db.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			keepOpen(t, db) // the log stays while a connection is open
		}, "it holds no schema (no tables, version 0)"},
		{"tables without version in WAL mode, with its log", func(t *testing.T, path string) {
			db := rawDB(t, path)
			db.SetMaxOpenConns(1)
			for _, q := range []string{"PRAGMA journal_mode=WAL", "CREATE TABLE other (a)"} {
				if _, err := db.Exec(q); err != nil {
					t.Fatal(err)
				}
			}
			keepOpen(t, db)
		}, "it has 1 schema objects but no schema version, so it is not an occopus store"},
		{"marker table dropped", func(t *testing.T, path string) {
			s, err := Open(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			db := rawDB(t, path)
			if _, err := db.Exec("DROP TABLE meta"); err != nil {
				t.Fatal(err)
			}
			db.Close()
		}, fmt.Sprintf("its identity marker (table meta) is missing although its schema version is %d", schemaVersion())},
		{"marker row deleted", func(t *testing.T, path string) {
			s, err := Open(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			db := rawDB(t, path)
			if _, err := db.Exec("DELETE FROM meta"); err != nil {
				t.Fatal(err)
			}
			db.Close()
		}, "its identity marker (table meta) is missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "occopus.db")
			tc.make(t, path)
			before := map[string][]byte{}
			for _, name := range dirNames(t, dir) {
				b, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				before[name] = b
			}

			s, err := Open(t.Context(), path)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			t.Log(err)
			if !errors.Is(err, store.ErrNoIdentity) {
				t.Errorf("error does not wrap store.ErrNoIdentity")
			}
			for _, part := range []string{"sqlite: open " + path + ": ", tc.why, "may still be running",
				"Restore " + path + " from a backup", "move it away", "to start with an empty store"} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error lacks %q", part)
				}
			}
			// Untouched: no file more, none less, none changed.
			if names := dirNames(t, dir); !slices.Equal(names, slices.Sorted(mapKeys(before))) {
				t.Errorf("files after refusal: %v, before: %v", names, slices.Sorted(mapKeys(before)))
			}
			for name, b := range before {
				if strings.HasSuffix(name, "-shm") {
					continue // an index of the log, which every reader updates
				}
				if after, err := os.ReadFile(filepath.Join(dir, name)); err != nil || !bytes.Equal(after, b) {
					t.Errorf("%s changed by the refused Open (%v)", name, err)
				}
			}
		})
	}
}

// keepOpen holds a connection of db until the test ends (rawDB closes db
// at cleanup), so that its -wal and -shm files stay.
func keepOpen(t *testing.T, db *sql.DB) {
	c, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// A database in WAL mode killed before its first checkpoint has schema
// version 0 and no tables in the file itself, and everything in its log:
// it is a store, and opens.
func TestOpensStoreInLogOnly(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	db, err := sql.Open("sqlite", dsn(src, true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec("PRAGMA wal_autocheckpoint = 0"); err != nil {
		t.Fatal(err)
	}
	if err := migrate(t.Context(), db, 4); err != nil { // as version 4 made databases
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO infras(id, name) VALUES ('x', 'in the log')`); err != nil {
		t.Fatal(err)
	}
	// Copy the files as a kill -9 would leave them, connection still open.
	path := filepath.Join(dir, "occopus.db")
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(src + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if suffix == "" && (len(b) < 100 || binary.BigEndian.Uint32(b[60:64]) != 0) {
			t.Fatalf("the file's own header should say version 0 (%d bytes)", len(b))
		}
		if err := os.WriteFile(path+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in, err := s.Infra(t.Context(), "x")
	if err != nil || in.Name != "in the log" {
		t.Fatalf("infra from the log: %+v %v", in, err)
	}
	checkUpgraded(t, s)
}

// Side files of a database that is no longer there are not applied to a
// new one: Open refuses and creates nothing.
func TestRefusesOrphanSideFiles(t *testing.T) {
	for _, side := range []string{"-wal", "-journal", "-shm"} {
		t.Run(side, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "occopus.db")
			if err := os.WriteFile(path+side, []byte("left over"), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(t.Context(), path)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			t.Log(err)
			if !errors.Is(err, store.ErrNoIdentity) || !strings.Contains(err.Error(), path+side+" is there without its database") {
				t.Errorf("error %q", err)
			}
			if names := dirNames(t, dir); !slices.Equal(names, []string{"occopus.db" + side}) {
				t.Errorf("files: %v", names)
			}
		})
	}
}

// A new database is built aside and linked into place complete: right
// after create, the file at the path alone (no -wal holding part of it,
// no temporary) has the whole schema and the marker.
func TestCreateComplete(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "occopus.db")
	var seen []string
	beforeLink = func(tmp string) { seen = dirNames(t, dir) }
	t.Cleanup(func() { beforeLink = nil })
	if err := create(t.Context(), path); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || !strings.HasPrefix(seen[0], "occopus.db"+tempInfix) {
		t.Errorf("just before the link the directory held %v, want the temporary only", seen)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"occopus.db"}) {
		t.Fatalf("after create: %v", names)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	db := rawDB(t, path)
	if v := queryInt(t, db, "PRAGMA user_version"); v != schemaVersion() {
		t.Errorf("version %d", v)
	}
	if v := queryInt(t, db, "PRAGMA auto_vacuum"); v != autoVacuumIncremental {
		t.Errorf("auto_vacuum %d", v)
	}
	if id, found, err := readMarker(t.Context(), db); err != nil || !found || id == "" {
		t.Errorf("marker %q %v %v", id, found, err)
	}
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode %q %v", mode, err)
	}
}

// Of many opening a new database at once, one creates it and all open
// that one.
func TestConcurrentCreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "occopus.db")
	const n = 8
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s, err := Open(t.Context(), path)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = s.id
			if err := s.Check(t.Context()); err != nil {
				t.Error(err)
			}
			s.Close()
		})
	}
	wg.Wait()
	for _, id := range ids[1:] {
		if id != ids[0] {
			t.Fatalf("stores opened: %v, want one", ids)
		}
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"occopus.db"}) {
		t.Errorf("left: %v", names)
	}
}

// kill -9 between building the new database and linking it leaves a
// temporary file, never a database without schema at the path; the next
// Open creates the database, and removes the temporary once it is stale.
func TestKillDuringCreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "occopus.db")
	cmd := helper(t, "create-killed", path)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper ended with %v, want killed\n%s", err, out)
	}
	names := dirNames(t, dir)
	if len(names) != 1 || !strings.HasPrefix(names[0], "occopus.db"+tempInfix) {
		t.Fatalf("after the kill: %v, want one temporary file", names)
	}
	stray := filepath.Join(dir, names[0])

	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if names := dirNames(t, dir); !slices.Equal(names, []string{"occopus.db", filepath.Base(stray)}) {
		t.Fatalf("after Open: %v, want the database and the young temporary", names)
	}

	// Once stale, the next creation (of a database removed since, with its
	// side files) takes it away.
	old := time.Now().Add(-2 * staleTemp)
	if err := os.Chtimes(stray, old, old); err != nil {
		t.Fatal(err)
	}
	removeDB(path)
	s, err = Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if names := dirNames(t, dir); !slices.Equal(names, []string{"occopus.db"}) {
		t.Fatalf("after a later create: %v, want the database alone", names)
	}
}

// kill -9 at random moments of a first Open: afterwards the path holds a
// working store or nothing, never a database that Open refuses.
func TestKillDuringFirstOpen(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	const rounds = 12
	// How long creating a database takes here (the second time: the
	// first one in a process sets up more), so that the kills spread
	// over it and a little beyond.
	var spread time.Duration
	for range 2 {
		start := time.Now()
		s, err := Open(t.Context(), filepath.Join(t.TempDir(), "occopus.db"))
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		spread = 3 * time.Since(start) / 2
	}
	absent := 0
	for round := range rounds {
		dir := t.TempDir()
		path := filepath.Join(dir, "occopus.db")
		cmd := helper(t, "open", path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "opening\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: child said %q: %v", round, line, err)
		}
		// Creating takes 5-20 ms (more under -race): kill it somewhere
		// in there, or just after.
		time.Sleep(time.Duration(rand.IntN(int(spread))))
		cmd.Process.Signal(syscall.SIGKILL)
		go io.Copy(io.Discard, stdout)
		cmd.Wait()
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			absent++
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		s, err := Open(ctx, path)
		cancel()
		if err != nil {
			t.Fatalf("round %d: open after kill: %v (files %v)", round, err, dirNames(t, dir))
		}
		if err := s.Check(t.Context()); err != nil {
			t.Errorf("round %d: %v", round, err)
		}
		s.Close()
	}
	t.Logf("%d of %d kills came before the database was in place (kills within %v of the start of Open)", absent, rounds, spread)
}

func TestCheck(t *testing.T) {
	t.Run("marker removed while open", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "occopus.db")
		s, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Check(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := rawDB(t, path).Exec("DELETE FROM meta"); err != nil {
			t.Fatal(err)
		}
		err = s.Check(t.Context())
		if !errors.Is(err, store.ErrNoIdentity) || !strings.Contains(err.Error(), "identity marker (table meta) is missing") {
			t.Fatalf("Check: %v", err)
		}
		t.Log(err)
	})
	t.Run("file replaced while open", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "occopus.db")
		s, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		other, err := Open(t.Context(), filepath.Join(dir, "other.db"))
		if err != nil {
			t.Fatal(err)
		}
		other.Close()
		if err := os.Rename(filepath.Join(dir, "other.db"), path); err != nil {
			t.Fatal(err)
		}
		// New connections see the file now at the path.
		s.r.SetMaxIdleConns(0)
		s.r.SetMaxIdleConns(4)
		err = s.Check(t.Context())
		if !errors.Is(err, store.ErrNoIdentity) || !strings.Contains(err.Error(), "the file was replaced while in use") {
			t.Fatalf("Check: %v", err)
		}
		t.Log(err)
	})
	t.Run("corrupt index", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "occopus.db")
		s, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 300 {
			if err := s.AppendEvent(t.Context(), store.Event{InfraID: fmt.Sprint("infra-", i%7), Kind: "k"}); err != nil {
				t.Fatal(err)
			}
		}
		root := queryInt(t, s.r, `SELECT rootpage FROM sqlite_schema WHERE name = 'events_infra_seq'`)
		pageSize := queryInt(t, s.r, "PRAGMA page_size")
		s.Close() // checkpoints: everything is in the main file
		// Scribble over the index's root page.
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(bytes.Repeat([]byte{0xa5}, pageSize), int64((root-1)*pageSize)); err != nil {
			t.Fatal(err)
		}
		f.Close()
		s, err = Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		err = s.Check(t.Context())
		if err == nil || !strings.Contains(err.Error(), "sqlite: check "+path+": quick_check: ") {
			t.Fatalf("Check of a corrupt index: %v", err)
		}
		t.Log(err)
	})
}

// Something else at the path (a directory) is an error, not a store.
func TestNotARegularFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "occopus.db")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), path)
	if err == nil {
		s.Close()
		t.Fatal("Open of a directory succeeded")
	}
	if want := "sqlite: open " + path + ": not a regular file (d---------)"; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}

// ID is the identity marker: a UUID, the same for every process opening
// the file (and after a reopen), different for another database.
func TestID(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "occopus.db")
	ids := map[string]string{}
	for _, name := range []string{"first open", "second process", "reopen"} {
		s, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		id, err := s.ID(t.Context())
		s.Close()
		if err != nil {
			t.Fatalf("%s: ID: %v", name, err)
		}
		ids[name] = id
	}
	if len(ids["first open"]) != 36 || ids["second process"] != ids["first open"] || ids["reopen"] != ids["first open"] {
		t.Fatalf("ids of one database: %v, want one UUID", ids)
	}
	marker := ""
	if err := rawDB(t, path).QueryRow(`SELECT id FROM meta WHERE one = 1`).Scan(&marker); err != nil || marker != ids["first open"] {
		t.Fatalf("meta id %q (%v), ID %q", marker, err, ids["first open"])
	}
	other, err := Open(t.Context(), filepath.Join(dir, "other.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if id, err := other.ID(t.Context()); err != nil || id == ids["first open"] || len(id) != 36 {
		t.Fatalf("another database: ID %q, %v; want another UUID than %s", id, err, ids["first open"])
	}
}
