package rest_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/occopus-go/occopus/descr"
)

// BenchmarkGetInfra: GET /infrastructures/{id} over real HTTP with 1,000
// infrastructures in a SQLite store; reports requests/s and the p50 and
// p99 latencies.
func BenchmarkGetInfra(b *testing.B) { benchGetInfra(b, newFixture(b)) }

// benchGetInfra stores 1,000 infrastructures through f's server and
// measures GET /infrastructures/{id}.
func benchGetInfra(b *testing.B, f *fixture) {
	srv, hs := f.server(b, nil)
	in, err := descr.ParseInfra("infra.yaml", []byte(infraYAML), descr.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, 1000)
	for i := range ids {
		if ids[i], err = srv.Manager().Submit(context.Background(), in, ""); err != nil {
			b.Fatal(err)
		}
	}
	// A sub-benchmark, so the set-up above runs once, not once per b.N.
	b.Run("1000-infras", func(b *testing.B) { benchGet(b, hs.URL, ids) })
}

func benchGet(b *testing.B, base string, ids []string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(4)
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		i := 0
		for pb.Next() {
			i++
			t0 := time.Now()
			resp, err := client.Get(base + "/infrastructures/" + ids[(i*7919)%len(ids)])
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	// The process's CPU per request (server and client together): what
	// the load of other jobs on the machine does not change.
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(lat)), "cpu-us/req")
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
