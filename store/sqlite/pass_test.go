package sqlite

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/occopus-go/occopus/store"
	"github.com/occopus-go/occopus/store/storetest"
)

func BenchmarkSetPassStatus(b *testing.B) { storetest.BenchSetPassStatus(b, openTemp(b)) }

// Migration 9 writes out store.MaxNotify and store.LegacyNotifyKind, as a
// released step must not change with them; they must agree.
func TestMigration9Constants(t *testing.T) {
	q := migrations[8].sql
	if !strings.Contains(q, "<= "+strconv.Itoa(store.MaxNotify)+" ") ||
		!strings.Contains(q, "e.kind = '"+store.LegacyNotifyKind+"'") {
		t.Fatalf("migration 9 does not use MaxNotify %d and kind %q:\n%s", store.MaxNotify, store.LegacyNotifyKind, q)
	}
}

// A database at version 8, whose REST service kept notify properties in
// events: migration 9 gives each infrastructure the newest one's data,
// unless that is over MaxNotify or null; the events stay.
func TestMigrateNotifyFromEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "occopus.db")
	db := rawDB(t, path)
	ctx := t.Context()
	if err := migrate(ctx, db, 8); err != nil {
		t.Fatal(err)
	}
	big := `{"p":"` + strings.Repeat("a", store.MaxNotify) + `"}`
	exact := `{"p":"` + strings.Repeat("a", store.MaxNotify-len(`{"p":""}`)) + `"}`
	for _, id := range []string{"two", "big", "exact", "null", "none", "other-kind"} {
		if _, err := db.Exec(`INSERT INTO infras(id, name, created_at, updated_at) VALUES (?, 'n', ?, ?)`,
			id, formatTime(time.Now()), formatTime(time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	events := []struct{ infra, kind, data string }{
		{"two", store.LegacyNotifyKind, `{"webhook":"http://127.0.0.1:9/old"}`},
		{"big", store.LegacyNotifyKind, `{"webhook":"http://127.0.0.1:9/small"}`},
		{"two", store.LegacyNotifyKind, `{"webhook":"http://127.0.0.1:9/new"}`},
		{"two", "instance.state", `{"addr":"10.0.0.1"}`}, // later, of another kind
		{"big", store.LegacyNotifyKind, big},
		{"exact", store.LegacyNotifyKind, exact},
		{"null", store.LegacyNotifyKind, `{"webhook":"http://127.0.0.1:9/before"}`},
		{"null", store.LegacyNotifyKind, `null`},
		{"other-kind", "infra.created", `{"webhook":"http://127.0.0.1:9/no"}`},
		{"deleted", store.LegacyNotifyKind, `{"webhook":"http://127.0.0.1:9/gone"}`},
	}
	for _, e := range events {
		if _, err := db.Exec(`INSERT INTO events(time, infra_id, node_name, node_id, kind, from_state, to_state, message, data)
			VALUES (?, ?, '', '', ?, '', '', 'notify properties set', ?)`, formatTime(time.Now()), e.infra, e.kind, e.data); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := map[string]string{
		"two": `{"webhook":"http://127.0.0.1:9/new"}`, "exact": exact,
		"big": "", "null": "", "none": "", "other-kind": "",
	}
	infras, err := s.Infras(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(infras) != len(want) {
		t.Fatalf("%d infras, want %d", len(infras), len(want))
	}
	for _, in := range infras {
		if string(in.Notify) != want[in.ID] {
			t.Errorf("%s: Notify %.60s, want %.60s", in.ID, in.Notify, want[in.ID])
		}
		if in.LastPass != (store.PassStatus{}) {
			t.Errorf("%s: LastPass %+v, want none", in.ID, in.LastPass)
		}
	}
	if evs, err := s.Events(ctx, "", 0, 0); err != nil || len(evs) != len(events) {
		t.Fatalf("events after migration: %d %v, want %d", len(evs), err, len(events))
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// The pass columns hold what SetPassStatus was given (Error cut), and
// reading a row never written by it gives the zero PassStatus.
func TestPassColumns(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	if err := s.CreateInfra(ctx, store.Infra{ID: "x"}); err != nil {
		t.Fatal(err)
	}
	var (
		result, perr string
		at           *string
		failures     int
		notify       *string
	)
	row := `SELECT pass_result, pass_error, pass_at, pass_failures, notify FROM infras WHERE id = 'x'`
	if err := s.r.QueryRowContext(ctx, row).Scan(&result, &perr, &at, &failures, &notify); err != nil {
		t.Fatal(err)
	}
	if result != "" || perr != "" || at != nil || failures != 0 || notify != nil {
		t.Fatalf("new row: %q %q %v %d %v", result, perr, at, failures, notify)
	}
	when := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	if err := s.SetPassStatus(ctx, "x", store.PassStatus{Result: store.PassPanic, Error: strings.Repeat("p", 5000),
		At: when, Failures: 7}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetNotify(ctx, "x", json.RawMessage(`{"webhook":"http://127.0.0.1:9/"}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.r.QueryRowContext(ctx, row).Scan(&result, &perr, &at, &failures, &notify); err != nil {
		t.Fatal(err)
	}
	if result != "panic" || len(perr) != store.MaxPassError || at == nil || *at != "2026-01-02T02:04:05.000000006Z" ||
		failures != 7 || notify == nil || *notify != `{"webhook":"http://127.0.0.1:9/"}` {
		t.Fatalf("after set: %q, %d bytes, %v, %d, %v", result, len(perr), at, failures, notify)
	}
	if err := s.SetNotify(ctx, "x", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.r.QueryRowContext(ctx, row).Scan(&result, &perr, &at, &failures, &notify); err != nil {
		t.Fatal(err)
	}
	if notify != nil {
		t.Fatalf("cleared notify is %q, want NULL", *notify)
	}
}
