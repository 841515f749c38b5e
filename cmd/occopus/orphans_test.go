package main

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/uuid"
)

// plantLabelled starts, behind the orchestrator's back, an instance of an
// infrastructure labelled as the backend labels its own, with a store id;
// it returns the backend's id of it (container id, pid).
func plantLabelled(t *testing.T, backend, infraID, storeID string) string {
	t.Helper()
	switch backend {
	case "docker":
		out := docker(t, "run", "-d", "--init", "--label", "occopus.infra_id="+infraID, "--label", "occopus.node_id=planted",
			"--label", "occopus.node_name=slow", "--label", "occopus.store_id="+storeID, "occopus/busybox:latest", "sleep", "3600")
		return strings.TrimSpace(out)
	case "local":
		cmd := exec.Command("sleep", "3600")
		cmd.Env = append(os.Environ(), "OCCOPUS_INFRA_ID="+infraID, "OCCOPUS_NODE_ID=planted",
			"OCCOPUS_NODE_NAME=slow", "OCCOPUS_IP=127.0.0.1", "OCCOPUS_STORE_ID="+storeID)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // as the backend starts its own
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = cmd.Wait() }()
		return strconv.Itoa(cmd.Process.Pid)
	}
	t.Fatalf("no way to plant on %s", backend)
	return ""
}

var storeLine = regexp.MustCompile(`(?m)^store ([0-9a-f-]{36}): (\d+) orphan\(s\): (\d+) found, (\d+) removed, (\d+) foreign`)

// orphanRows runs `occopus orphans` with args and returns the state column
// of each row by backend id, and the store id it names.
func orphanRows(t *testing.T, args ...string) (rows map[string]string, storeID string) {
	t.Helper()
	stdout, stderr := occOK(t, append([]string{"orphans"}, args...)...)
	m := storeLine.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("occopus orphans %v: no store line on stderr:\n%s", args, stderr)
	}
	rows = map[string]string{}
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	if stdout != "" {
		if h := strings.Fields(lines[0]); strings.Join(h, " ") != "BACKEND ID INFRA NODE FIRST SEEN STATE" {
			t.Fatalf("table header %q", lines[0])
		}
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			// BACKEND ID INFRA [(unknown)] NODE-NAME NODE-ID DATE TIME STATE [...]
			i := 3
			if len(f) > 3 && f[3] == "(unknown)" {
				i = 4
			}
			if len(f) > i+4 { // others' rows may lack a node name: ours have one
				rows[f[1]] = strings.Join(f[i+4:], " ")
			}
		}
	}
	return rows, m[1]
}

// The orphan command against the real backends: a resource labelled with
// this store's id and an infrastructure the store does not know is
// reported, then removed with --remove; one labelled with another store's
// id is reported as foreign and left alone.
func TestIntegrationOrphans(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			b.require(t)
			itHome(t)
			occOK(t, "import", b.nodes())
			before, storeID := orphanRows(t)
			oursInfra, theirInfra, theirStore := uuid.NewString(), uuid.NewString(), uuid.NewString()
			t.Cleanup(func() {
				b.sweep(oursInfra)
				b.sweep(theirInfra)
			})
			ours := plantLabelled(t, b.name, oursInfra, storeID)
			theirs := plantLabelled(t, b.name, theirInfra, theirStore)
			if _, ok := before[ours]; ok {
				t.Fatalf("planted %s was listed before it was planted", ours)
			}

			rows, _ := orphanRows(t)
			if rows[ours] != "found" || rows[theirs] != "foreign (store "+theirStore+")" {
				t.Fatalf("report: ours %q, theirs %q; want found and foreign (rows %v)", rows[ours], rows[theirs], rows)
			}
			if n := b.alive(t, oursInfra); n != 1 {
				t.Fatalf("%d of our orphans alive after a report, want 1 (nothing removed)", n)
			}

			rows, _ = orphanRows(t, "--remove")
			if rows[ours] != "removed" || rows[theirs] != "foreign (store "+theirStore+")" {
				t.Fatalf("--remove: ours %q, theirs %q; want removed and foreign", rows[ours], rows[theirs])
			}
			wantAlive(t, b, oursInfra, 0)
			if n := b.alive(t, theirInfra); n != 1 {
				t.Fatalf("%d of the other store's resources alive after --remove, want 1 (left alone)", n)
			}

			rows, _ = orphanRows(t, "--remove")
			if _, ok := rows[ours]; ok || rows[theirs] != "foreign (store "+theirStore+")" {
				t.Errorf("after the removal: ours %q, theirs %q; want ours gone, theirs still foreign", rows[ours], rows[theirs])
			}
		})
	}
}
