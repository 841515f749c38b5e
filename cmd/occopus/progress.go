package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/occopus-go/occopus"
)

// liveTable shows build progress on a terminal as a table redrawn in
// place: one row per instance with its state and the time of its last
// change. Messages that are not state changes are printed above it.
type liveTable struct {
	w     io.Writer
	mu    sync.Mutex
	rows  map[string]*row // by node id
	order []string
	lines int // lines of the table drawn last
}

type row struct {
	node, id, state, msg string
	at                   time.Time
}

func newLiveTable(w io.Writer) *liveTable { return &liveTable{w: w, rows: map[string]*row{}} }

// isTerminal reports whether w is a terminal (progress is then a live
// table instead of one line per change).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (t *liveTable) event(ev occopus.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ev.Kind != "instance.state" {
		if line := progressLine(ev); line != "" {
			t.clear()
			fmt.Fprint(t.w, line)
			t.draw()
		}
		return
	}
	r, ok := t.rows[ev.NodeID]
	if !ok {
		r = &row{node: cleanLine(ev.NodeName), id: cleanLine(ev.NodeID)}
		t.rows[ev.NodeID] = r
		t.order = append(t.order, ev.NodeID)
	}
	r.state, r.msg, r.at = cleanLine(ev.To), cleanLine(ev.Message), ev.Time
	if r.state == occopus.StateReady {
		r.msg = ""
	}
	t.clear()
	t.draw()
}

// clear moves up over the last table and erases to the end of the screen.
func (t *liveTable) clear() {
	if t.lines > 0 {
		fmt.Fprintf(t.w, "\x1b[%dA\x1b[J", t.lines)
		t.lines = 0
	}
}

func (t *liveTable) draw() {
	if len(t.order) == 0 {
		return
	}
	ids := append([]string(nil), t.order...)
	sort.SliceStable(ids, func(i, j int) bool { return t.rows[ids[i]].node < t.rows[ids[j]].node })
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tINSTANCE\tSTATE\tSINCE\t")
	for _, id := range ids {
		r := t.rows[id]
		short := r.id
		if len(short) > 8 {
			short = short[:8]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.node, short, r.state, r.at.Format("15:04:05"), r.msg)
	}
	tw.Flush()
	fmt.Fprint(t.w, b.String())
	t.lines = strings.Count(b.String(), "\n")
}

// progressLine is the one-line form of an event, "" for events not shown.
func progressLine(ev occopus.Event) string {
	at := ev.Time.Format("15:04:05.000")
	switch ev.Kind {
	case "instance.state":
		id := ev.NodeID
		if len(id) > 8 {
			id = id[:8]
		}
		msg := ""
		if ev.Message != "" {
			msg = " (" + cleanLine(ev.Message) + ")"
		}
		return fmt.Sprintf("%s  %-16s %s  %s -> %s%s\n", at, cleanLine(ev.NodeName), cleanLine(id), cleanLine(orDash(ev.From)), cleanLine(ev.To), msg)
	case "infra.created":
		return fmt.Sprintf("%s  infrastructure %s: %s\n", at, cleanLine(ev.InfraID), cleanLine(ev.Message))
	case "scale.clamped", "orphan.removed", "instance.waiting", "configmgr.warning":
		return fmt.Sprintf("%s  %s\n", at, cleanLine(ev.Message))
	}
	return ""
}
