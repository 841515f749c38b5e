package rest_test

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/store"
)

// plantProcess starts a process labelled as the local backend labels its
// instances, for an infrastructure the store never heard of.
func plantProcess(t *testing.T, storeID string) int {
	t.Helper()
	cmd := exec.Command("sleep", "3600")
	env := append(os.Environ(), "OCCOPUS_INFRA_ID="+uuid.NewString(), "OCCOPUS_NODE_ID="+uuid.NewString(), "OCCOPUS_NODE_NAME=planted", "OCCOPUS_IP=127.0.0.1")
	if storeID != "" {
		env = append(env, "OCCOPUS_STORE_ID="+storeID)
	}
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	go func() { _ = cmd.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-pid, syscall.SIGKILL) })
	return pid
}

func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !regexp.MustCompile(`\) [ZX] `).Match(b)
}

var orphanGauge = regexp.MustCompile(`(?m)^occopus_orphans\{state="(found|removed|foreign)"\} (\d+)$`)

func orphanMetrics(t *testing.T, base string) map[string]int {
	t.Helper()
	r := call(t, "GET", base+"/metrics", "")
	out := map[string]int{}
	for _, m := range orphanGauge.FindAllStringSubmatch(string(r.body), -1) {
		out[m[1]], _ = strconv.Atoi(m[2])
	}
	return out
}

// The service sweeps for orphans by its configuration: remove takes this
// store's orphan (here with no grace), report only counts it, off does
// nothing; another store's process is never touched; the metrics say
// what the last sweep saw.
func TestOrphanSweep(t *testing.T) {
	tests := []struct {
		sweep       string
		wantRemoved bool
		gauges      bool
	}{
		{occopus.SweepRemove, true, true},
		{occopus.SweepReport, false, true},
		{occopus.SweepOff, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.sweep, func(t *testing.T) {
			f := newFixture(t)
			id, err := f.st.(store.Identified).ID(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			ours, foreign := plantProcess(t, id), plantProcess(t, uuid.NewString())
			u, err := serve(t, f, func(c *serverConfig) {
				c.Manager.Orphans = occopus.OrphanOptions{Sweep: tc.sweep, Grace: -1, Interval: 50 * time.Millisecond}
			})
			if err != nil {
				t.Fatal(err)
			}
			// What the metrics should come to; off: nothing, after what
			// would have been twenty sweeps.
			settled := func(got map[string]int) bool {
				switch {
				case tc.wantRemoved:
					return got["removed"] == 1 && !running(ours)
				case tc.gauges:
					return got["found"] == 1
				}
				return false
			}
			if !tc.gauges {
				time.Sleep(time.Second)
			}
			deadline := time.Now().Add(20 * time.Second)
			got := orphanMetrics(t, u)
			for tc.gauges && !settled(got) {
				if time.Now().After(deadline) {
					t.Fatalf("metrics %v, our process running %v", got, running(ours))
				}
				time.Sleep(20 * time.Millisecond)
				got = orphanMetrics(t, u)
			}
			if tc.gauges && got["foreign"] < 1 {
				t.Errorf("metrics %v: want the other store's process counted as foreign", got)
			}
			if !tc.gauges && len(got) != 0 {
				t.Errorf("metrics %v with the sweep off", got)
			}
			if running(ours) == tc.wantRemoved {
				t.Errorf("our orphan running %v, want %v", running(ours), !tc.wantRemoved)
			}
			if !running(foreign) {
				t.Error("the other store's process was killed")
			}
		})
	}
}
