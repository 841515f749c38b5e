package store

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestCutString(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		limit int
		want  string
	}{
		{"empty", "", 10, ""},
		{"shorter", "abc", 10, "abc"},
		{"exactly", "abcdefghij", 10, "abcdefghij"},
		{"one over", "abcdefghijk", 10, "abcdefg…"},
		// é is 2 bytes: a cut inside it backs off to before it.
		{"inside a 2-byte rune", "abcdeféxyz", 10, "abcdef…"},
		{"after a 2-byte rune", "abcdéfghijk", 10, "abcdéf…"},
		// 😀 is 4 bytes, cut at each of its inner bytes.
		{"4-byte rune, cut after its 1st byte", "abcd😀xyz", 8, "abcd…"},
		{"4-byte rune, cut after its 2nd byte", "abc😀xyzw", 8, "abc…"},
		{"4-byte rune, cut after its 3rd byte", "ab😀xyzwv", 8, "ab…"},
		{"4-byte rune, cut after it", "a😀xyzwvu", 8, "a😀…"},
		// Bytes that are not UTF-8 are runes of one byte.
		{"stray continuation bytes", "abcd\x80\x80\x80\x80\x80\x80", 8, "abcd\x80…"},
		{"a rune and a stray continuation", "a😀\x80\x80\x80\x80", 8, "a😀…"},
		{"a rune then strays", "ab😀\x80\x80\x80\x80\x80", 10, "ab😀\x80…"},
		{"a rune then a stray at the cut", "ab😀\x80\x80\x80\x80", 9, "ab😀…"},
		// A lead byte without all its continuation bytes is a rune of one.
		{"truncated rune", "abcd\xf0\x9f\x98xyzw", 8, "abcd\xf0…"},
		{"limit 3", "abcdef", 3, "…"},
		{"limit below 3", "abcdef", 1, "…"},
		{"limit 0, empty", "", 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := CutString(tc.in, tc.limit)
			if got != tc.want {
				t.Fatalf("CutString(%q, %d) = %q, want %q", tc.in, tc.limit, got, tc.want)
			}
			if len(got) > max(tc.limit, 3) {
				t.Fatalf("CutString(%q, %d) = %q: %d bytes", tc.in, tc.limit, got, len(got))
			}
			if utf8.ValidString(tc.in) && !utf8.ValidString(got) {
				t.Fatalf("CutString(%q, %d) = %q: not UTF-8", tc.in, tc.limit, got)
			}
		})
	}
	// The size the stores use, on a long error of multi-byte runes.
	long := strings.Repeat("ü", MaxPassError) // 2 bytes each
	got := CutString(long, MaxPassError)
	if len(got) > MaxPassError || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") ||
		len(got) < MaxPassError-utf8.UTFMax {
		t.Fatalf("CutString of %d bytes to %d: %d bytes, valid %v", len(long), MaxPassError, len(got), utf8.ValidString(got))
	}
}

func TestPassStatusCheck(t *testing.T) {
	tests := []struct {
		name string
		in   PassStatus
		ok   bool
	}{
		{"ok", PassStatus{Result: PassOK}, true},
		{"requeue", PassStatus{Result: PassRequeue}, true},
		{"requeue counted", PassStatus{Result: PassRequeue, Failures: 2}, true},
		{"error", PassStatus{Result: PassError, Error: "boom", Failures: 3}, true},
		{"terminal", PassStatus{Result: PassTerminal, Error: "no backend", Failures: 1}, true},
		{"panic", PassStatus{Result: PassPanic, Error: "runtime error", Failures: 1}, true},
		{"no result", PassStatus{}, false},
		{"unknown result", PassStatus{Result: "done"}, false},
		{"case matters", PassStatus{Result: "OK"}, false},
		{"negative failures", PassStatus{Result: PassError, Failures: -1}, false},
		{"ok with failures", PassStatus{Result: PassOK, Failures: 1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.in.Check()
			if (err == nil) != tc.ok {
				t.Fatalf("Check(%+v) = %v, want ok %v", tc.in, err, tc.ok)
			}
		})
	}
}

func TestCheckNotify(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  string // "" with ok: none
		ok    bool
		large bool
	}{
		{"empty", "", "", true, false},
		{"null", "null", "", true, false},
		{"null in spaces", " \tnull\n", "", true, false},
		{"object kept byte for byte", `{ "webhook" : "http://127.0.0.1:9/" }`, `{ "webhook" : "http://127.0.0.1:9/" }`, true, false},
		{"empty object", `{}`, `{}`, true, false},
		{"array", `[1]`, `[1]`, true, false},
		{"invalid", `{"webhook":`, "", false, false},
		{"two documents", `{}{}`, "", false, false},
		{"at the bound", `"` + strings.Repeat("a", MaxNotify-2) + `"`, `"` + strings.Repeat("a", MaxNotify-2) + `"`, true, false},
		{"over the bound", `"` + strings.Repeat("a", MaxNotify-1) + `"`, "", false, true},
		{"over the bound, invalid", strings.Repeat("[", MaxNotify+1), "", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var in json.RawMessage
			if tc.in != "" {
				in = json.RawMessage(tc.in)
			}
			got, err := CheckNotify(in)
			if (err == nil) != tc.ok || errors.Is(err, ErrTooLarge) != tc.large {
				t.Fatalf("CheckNotify(%.20q): %v, want ok %v, ErrTooLarge %v", tc.in, err, tc.ok, tc.large)
			}
			if string(got) != tc.want || (tc.want == "" && got != nil) {
				t.Fatalf("CheckNotify(%.20q) = %.20q, want %.20q", tc.in, got, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "127.0.0.1") {
				t.Fatalf("error quotes the properties: %v", err)
			}
		})
	}
}

// LastPass and Notify are left out of an Infra's JSON while unset.
func TestInfraJSON(t *testing.T) {
	b, err := json.Marshal(Infra{ID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); strings.Contains(s, "last_pass") || strings.Contains(s, "notify") {
		t.Fatalf("unset: %s", s)
	}
	in := Infra{ID: "x", LastPass: PassStatus{Result: PassError, Error: "boom", At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Failures: 2},
		Notify: json.RawMessage(`{"webhook":"http://127.0.0.1:9/"}`)}
	b, err = json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"last_pass":{"result":"error","error":"boom","at":"2026-01-02T03:04:05Z","failures":2}`,
		`"notify":{"webhook":"http://127.0.0.1:9/"}`} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("%s lacks %s", b, want)
		}
	}
	b, err = json.Marshal(PassStatus{Result: PassOK, At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
	if err != nil || string(b) != `{"result":"ok","at":"2026-01-02T03:04:05Z"}` {
		t.Fatalf("ok status: %s %v", b, err)
	}
}
