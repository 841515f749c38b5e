package redis

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/occopus-go/occopus/store"
	"github.com/occopus-go/occopus/store/storetest"
)

func BenchmarkSetPassStatus(b *testing.B) { storetest.BenchSetPassStatus(b, openTest(b)) }

// The last pass is the hash fields pass_*, the notify properties the
// field notify; a record without them (written before they existed)
// reads as none.
func TestPassNotifyFields(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	if err := s.CreateInfra(ctx, store.Infra{ID: "x"}); err != nil {
		t.Fatal(err)
	}
	key := s.kInfra("x")
	for _, f := range []string{"pass_result", "pass_error", "pass_at", "pass_failures", "notify"} {
		if s.c.HExists(ctx, key, f).Val() {
			t.Errorf("new record has field %s", f)
		}
	}
	when := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	if err := s.SetPassStatus(ctx, "x", store.PassStatus{Result: store.PassTerminal, Error: strings.Repeat("t", 5000),
		At: when, Failures: 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetNotify(ctx, "x", json.RawMessage(`{"webhook":"http://127.0.0.1:9/"}`)); err != nil {
		t.Fatal(err)
	}
	m := s.c.HGetAll(ctx, key).Val()
	if m["pass_result"] != "terminal" || len(m["pass_error"]) != store.MaxPassError || m["pass_at"] != "2026-01-02T02:04:05.000000006Z" ||
		m["pass_failures"] != "3" || m["notify"] != `{"webhook":"http://127.0.0.1:9/"}` {
		t.Fatalf("fields: result %q, error of %d bytes, at %q, failures %q, notify %q",
			m["pass_result"], len(m["pass_error"]), m["pass_at"], m["pass_failures"], m["notify"])
	}
	if err := s.SetNotify(ctx, "x", nil); err != nil {
		t.Fatal(err)
	}
	if s.c.HExists(ctx, key, "notify").Val() {
		t.Fatal("notify field kept after clearing")
	}
	// An ok pass stores an empty pass_error, which reads as none.
	if err := s.SetPassStatus(ctx, "x", store.PassStatus{Result: store.PassOK, At: when}); err != nil {
		t.Fatal(err)
	}
	if v, err := s.c.HGet(ctx, key, "pass_error").Result(); err != nil || v != "" {
		t.Fatalf("pass_error after ok: %q %v", v, err)
	}
	// A bad field is reported, not read as zero.
	if err := s.c.HSet(ctx, key, "pass_failures", "many").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Infra(ctx, "x"); err == nil || !strings.Contains(err.Error(), "pass status") {
		t.Fatalf("Infra with a bad pass_failures: %v", err)
	}
}

// A store written before the notify field (layout version 1), whose REST
// service kept notify properties in events: Open gives each
// infrastructure the newest one's data (reading its stream from the end,
// across pages), unless that is over MaxNotify or null, and keeps a
// notify field already set.
func TestImportNotify(t *testing.T) {
	opts := testOptions(t)
	s := openWith(t, opts)
	ctx := t.Context()
	// More infrastructures than a page of the import.
	const many = 130
	for i := range many {
		if err := s.CreateInfra(ctx, store.Infra{ID: fmt.Sprintf("i%03d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	legacy := func(id, data string) {
		t.Helper()
		if err := s.AppendEvent(ctx, store.Event{InfraID: id, Kind: store.LegacyNotifyKind, Data: json.RawMessage(data)}); err != nil {
			t.Fatal(err)
		}
	}
	other := func(id string, n int) {
		t.Helper()
		for j := range n {
			if err := s.AppendEvent(ctx, store.Event{InfraID: id, Kind: "instance.state", Message: fmt.Sprint(j)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	big := `{"p":"` + strings.Repeat("a", store.MaxNotify) + `"}`
	want := map[string]string{}
	for i := range many {
		id := fmt.Sprintf("i%03d", i)
		legacy(id, fmt.Sprintf(`{"webhook":"http://127.0.0.1:9/%d"}`, i))
		want[id] = fmt.Sprintf(`{"webhook":"http://127.0.0.1:9/%d"}`, i)
	}
	// i000: a newer one, then more than a page of other events.
	legacy("i000", `{"webhook":"http://127.0.0.1:9/newest"}`)
	other("i000", 250)
	want["i000"] = `{"webhook":"http://127.0.0.1:9/newest"}`
	// i001: the newest is too large; i002: null; both: none.
	legacy("i001", big)
	legacy("i002", `null`)
	want["i001"], want["i002"] = "", ""
	// i003: set by SetNotify of a process that upgraded first.
	if err := s.SetNotify(ctx, "i003", json.RawMessage(`{"webhook":"http://127.0.0.1:9/set"}`)); err != nil {
		t.Fatal(err)
	}
	want["i003"] = `{"webhook":"http://127.0.0.1:9/set"}`
	// i999: events of other kinds only; "gone": events without a record.
	if err := s.CreateInfra(ctx, store.Infra{ID: "i999"}); err != nil {
		t.Fatal(err)
	}
	other("i999", 3)
	want["i999"] = ""
	legacy("gone", `{"webhook":"http://127.0.0.1:9/gone"}`)

	// What the older code had: version 1, no notify fields.
	if err := s.c.HSet(ctx, s.kMeta(), "version", "1").Err(); err != nil {
		t.Fatal(err)
	}
	for id := range want {
		if id != "i003" {
			if err := s.c.HDel(ctx, s.kInfra(id), "notify").Err(); err != nil {
				t.Fatal(err)
			}
		}
	}

	up := openWith(t, opts)
	if v := up.c.HGet(ctx, up.kMeta(), "version").Val(); v != "2" {
		t.Errorf("layout version %q, want 2", v)
	}
	infras, err := up.Infras(ctx)
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
	}
	if up.c.Exists(ctx, up.kInfra("gone")).Val() != 0 {
		t.Error("import made a record for a deleted infrastructure")
	}
	// Done once: a cleared field stays clear on the next Open.
	if err := up.SetNotify(ctx, "i000", nil); err != nil {
		t.Fatal(err)
	}
	again := openWith(t, opts)
	if in, err := again.Infra(ctx, "i000"); err != nil || in.Notify != nil {
		t.Fatalf("after reopening: %s %v", in.Notify, err)
	}
}

func TestPrevID(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"5-3", "5-2", true},
		{"5-0", "4-18446744073709551615", true},
		{"1-0", "0-18446744073709551615", true},
		{"0-1", "0-0", true},
		{"0-0", "", false},
		{"x-0", "", false},
		{"5", "", false},
	}
	for _, tc := range tests {
		got, ok := prevID(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("prevID(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
