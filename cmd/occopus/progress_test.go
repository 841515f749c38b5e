package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/occopus-go/occopus"
)

func TestLiveTable(t *testing.T) {
	var b bytes.Buffer
	lt := newLiveTable(&b)
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	lt.event(occopus.Event{Kind: "infra.created", InfraID: "i", Message: "submitted", Time: at})
	lt.event(occopus.Event{Kind: "instance.state", NodeName: "db", NodeID: "1111111111", To: "creating", Message: "creating on docker", Time: at})
	lt.event(occopus.Event{Kind: "instance.state", NodeName: "db", NodeID: "1111111111", From: "creating", To: "ready", Time: at})
	out := b.String()
	if !strings.Contains(out, "infrastructure i: submitted\n") {
		t.Fatalf("message line missing:\n%q", out)
	}
	// The second draw first moves up over the 2-line table and erases it.
	if strings.Count(out, "\x1b[2A\x1b[J") != 1 {
		t.Fatalf("want one redraw over the two-line table:\n%q", out)
	}
	last := out[strings.LastIndex(out, "\x1b[J")+len("\x1b[J"):]
	if !strings.Contains(last, "db    11111111  ready") {
		t.Fatalf("final table %q lacks the ready row", last)
	}
}
