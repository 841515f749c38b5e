package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/occopus-go/occopus/internal/etcdtest"
	"github.com/occopus-go/occopus/store"
	"github.com/occopus-go/occopus/store/etcd"
)

// TestHABench measures, for 1, 2 and 3 replicas sharing 300 local
// infrastructures over a three-member etcd: the time for one full
// maintenance round (from a moment t0 until every infrastructure has had a
// pass that ended after t0) and the failover time after kill -9 of the
// replica owning the most (until every infrastructure is owned again and
// has had an ok pass after the kill; with one replica, until a restarted
// one has). Medians of 5. Opt-in: OCCOPUS_HA_BENCH=1 (make bench-ha); it
// takes minutes and prints its figures with t.Log.
func TestHABench(t *testing.T) {
	if os.Getenv("OCCOPUS_HA_BENCH") == "" {
		t.Skip("opt-in: OCCOPUS_HA_BENCH=1 (make bench-ha)")
	}
	n := 300
	if v := os.Getenv("OCCOPUS_HA_BENCH_INFRAS"); v != "" {
		fmt.Sscan(v, &n)
	}
	const reps = 5
	cluster := etcdtest.Start(t, 3)
	bin := occBinary(t, t.TempDir())
	for _, replicas := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("replicas=%d", replicas), func(t *testing.T) {
			home := t.TempDir()
			prefix := "habench/" + uuid.NewString() + "/"
			cfg := filepath.Join(home, "occopus_config.yaml")
			if err := os.WriteFile(cfg, []byte(fmt.Sprintf("components:\n  uds: {protocol: etcd, prefix: %q, endpoints: [%s]}\nha: {lease_ttl: %s}\nlimits: {instances: 5000}\n",
				prefix, strings.Join(cluster.Endpoints(), ", "), haTTL)), 0o600); err != nil {
				t.Fatal(err)
			}
			nodes := filepath.Join(home, "nodes.yaml")
			if err := os.WriteFile(nodes, []byte(haNodeDefs), 0o600); err != nil {
				t.Fatal(err)
			}
			occSub(t, bin, home, "--cfg", cfg, "import", nodes)
			st, err := etcd.Open(t.Context(), etcd.Options{Endpoints: cluster.Endpoints(), Prefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			re := regexp.MustCompile(`occopus REST service on (http://127\.0\.0\.1:\d+)`)
			start := func(name string) *replica {
				r := &replica{name: name}
				r.proc = startOcc(t, bin, home, "--cfg", cfg, "rest-service", "--port", "0", "--interval", "1")
				r.proc.waitFor(t, re, 60*time.Second)
				r.url = re.FindStringSubmatch(r.proc.errText())[1]
				return r
			}
			var rs []*replica
			for i := range replicas {
				rs = append(rs, start(fmt.Sprint("r", i)))
			}
			var (
				mu  sync.Mutex
				ids []string
			)
			t.Cleanup(func() { killInfraProcesses(ids) })
			var wg sync.WaitGroup
			sem := make(chan struct{}, 8)
			// A new connection per POST: a kept-alive one the server is
			// closing as idle would fail the request (EOF), and a POST is
			// not safe to repeat.
			post := http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			for i := range n {
				wg.Go(func() {
					sem <- struct{}{}
					defer func() { <-sem }()
					desc := fmt.Sprintf("infra_name: b%d\nnodes:\n  - {name: s, type: ha_sleeper}\n", i)
					resp, err := post.Post(rs[i%len(rs)].url+"/infrastructures/", "application/yaml", strings.NewReader(desc))
					if err != nil {
						t.Error(err)
						return
					}
					defer resp.Body.Close()
					var out struct {
						InfraID string `json:"infraid"`
					}
					if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.InfraID == "" {
						t.Errorf("POST: %d %v", resp.StatusCode, err)
						return
					}
					mu.Lock()
					ids = append(ids, out.InfraID)
					mu.Unlock()
				})
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			passedAfter := func(t0 time.Time) bool {
				infras, err := st.Infras(t.Context())
				if err != nil {
					return false
				}
				k := 0
				for _, in := range infras {
					if in.LastPass.At.After(t0) && in.LastPass.Result == store.PassOK {
						k++
					}
				}
				return k == n
			}
			within(t, 10*time.Minute, "all ready", func() bool { return passedAfter(time.Time{}) })
			median := func(ds []time.Duration) time.Duration {
				slices.Sort(ds)
				return ds[len(ds)/2]
			}
			var rounds []time.Duration
			for range reps {
				t0 := time.Now()
				within(t, 5*time.Minute, "a full round", func() bool { return passedAfter(t0) })
				rounds = append(rounds, time.Since(t0))
			}
			owned := func(live []*replica) int {
				k := 0
				for _, r := range live {
					if o, err := r.health(t); err == nil {
						k += len(o.Owned)
					}
				}
				return k
			}
			var fails []time.Duration
			for rep := range reps {
				within(t, 5*time.Minute, "all owned", func() bool { return owned(rs) == n })
				victim := 0
				most := -1
				for i, r := range rs {
					if o, err := r.health(t); err == nil && len(o.Owned) > most {
						victim, most = i, len(o.Owned)
					}
				}
				v := rs[victim]
				t0 := time.Now()
				v.proc.cmd.Process.Kill() //nolint:errcheck // measured below
				v.proc.wait()             //nolint:errcheck // killed
				live := slices.Delete(slices.Clone(rs), victim, victim+1)
				if len(live) == 0 {
					live = []*replica{start(fmt.Sprint("restart", rep))}
				}
				within(t, 5*time.Minute, "failover", func() bool { return owned(live) == n && passedAfter(t0) })
				fails = append(fails, time.Since(t0))
				if len(rs) > 1 {
					live = append(live, start(fmt.Sprint("back", rep)))
				}
				rs = live
			}
			t.Logf("HA bench: %d replicas, %d infrastructures: full round median %v %v; failover after kill -9 median %v %v",
				replicas, n, median(rounds).Round(time.Millisecond), rounds, median(fails).Round(time.Millisecond), fails)
		})
	}
}
