package main

import (
	"strings"
	"testing"
	"time"

	"github.com/occopus-go/occopus"
)

func TestClean(t *testing.T) {
	cases := []struct{ in, line, text string }{
		{"plain ünïcode", "plain ünïcode", "plain ünïcode"},
		{"red \x1b[31mtext", `red \x1b[31mtext`, `red \x1b[31mtext`},
		{"nul\x00 cr\r", `nul\x00 cr\x0d`, `nul\x00 cr\x0d`},
		{"two\nlines\ttab", `two\x0alines\ttab`, "two\nlines\\ttab"},
		{"c1 \u009b2J bad \xff", `c1 \u009b2J bad \ufffd`, `c1 \u009b2J bad \ufffd`},
	}
	for _, tc := range cases {
		if got := cleanLine(tc.in); got != tc.line {
			t.Errorf("cleanLine(%q) = %q, want %q", tc.in, got, tc.line)
		}
		if got := cleanText(tc.in); got != tc.text {
			t.Errorf("cleanText(%q) = %q, want %q", tc.in, got, tc.text)
		}
	}
}

// TestProgressEscapes: what a backend or a foreign store says cannot move
// the cursor or clear the screen of the user's terminal.
func TestProgressEscapes(t *testing.T) {
	ev := occopus.Event{Kind: "instance.state", NodeName: "web\x1b[2J", NodeID: "1234567890", To: "failed",
		Message: "boom\x1b]0;title\x07\nsecond line", Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	line := progressLine(ev)
	if strings.ContainsAny(line[:len(line)-1], "\x1b\x07\n") {
		t.Fatalf("control characters reach the terminal: %q", line)
	}
	if !strings.Contains(line, `web\x1b[2J`) || !strings.Contains(line, `boom\x1b]0;title\x07\x0asecond line`) {
		t.Fatalf("line %q", line)
	}
}

func TestListHelpers(t *testing.T) {
	if got := stateCounts(map[string]int{"pending": 1, "ready": 2, "failed": 1}); got != "2 ready, 1 pending, 1 failed" {
		t.Errorf("stateCounts = %q", got)
	}
	if got := stateCounts(nil); got != "0" {
		t.Errorf("stateCounts(nil) = %q", got)
	}
	for d, want := range map[time.Duration]string{5 * time.Second: "5s", 12 * time.Minute: "12m", 3 * time.Hour: "3h", 72 * time.Hour: "3d"} {
		if got := age(d); got != want {
			t.Errorf("age(%v) = %q, want %q", d, got, want)
		}
	}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	lp := &occopus.PassStatus{Result: "error", Error: "node a: zone\x1b[2J full", At: now.Add(-90 * time.Second), Failures: 3}
	if got := lastPass(lp, now, 10); got != `error 1m ago (3 in a row): node a: zo…` {
		t.Errorf("lastPass = %q", got)
	}
	if got := lastPass(nil, now, 10); got != "-" {
		t.Errorf("lastPass(nil) = %q", got)
	}
}
