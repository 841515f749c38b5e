package storetest

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/occopus-go/occopus/store"
)

// BenchInfra measures reading one infrastructure by id among 1,000.
func BenchInfra(b *testing.B, s store.Store) {
	ctx := b.Context()
	const n = 1000
	now := time.Now()
	for i := range n {
		in := store.Infra{
			ID: fmt.Sprintf("infra-%04d", i), Name: "bench",
			Description: json.RawMessage(`{"nodes":[{"name":"web","type":"web"},{"name":"db","type":"db"}]}`),
			Targets:     map[string]int{"web": 3, "db": 1}, CreatedAt: now, UpdatedAt: now,
		}
		if err := s.CreateInfra(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	i := 0
	for b.Loop() {
		if _, err := s.Infra(ctx, fmt.Sprintf("infra-%04d", i%n)); err != nil {
			b.Fatal(err)
		}
		i += 7
	}
}

// BenchPutInstance measures writing instance records: half inserts, half
// replaces, as in real use.
func BenchPutInstance(b *testing.B, s store.Store) {
	ctx := b.Context()
	if err := s.CreateInfra(ctx, store.Infra{ID: "x"}); err != nil {
		b.Fatal(err)
	}
	in := store.Instance{
		InfraID: "x", NodeName: "web", State: store.StateReady, Backend: "docker",
		Resource: json.RawMessage(`{"type":"docker","image":"nginx","network":"bridge"}`),
		Handle:   json.RawMessage(`{"id":"0123456789abcdef"}`), Address: "172.17.0.2",
		CreatedAt: time.Now(), UpdatedAt: time.Now(),
	}
	i := 0
	for b.Loop() {
		in.NodeID = strconv.Itoa(i / 2)
		if err := s.PutInstance(ctx, in); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchSetPassStatus measures storing the result of a pass, which the
// maintenance loop does after every pass of every infrastructure: among
// 100 infrastructures, alternating ok and error results.
func BenchSetPassStatus(b *testing.B, s store.Store) {
	ctx := b.Context()
	const n = 100
	for i := range n {
		if err := s.CreateInfra(ctx, store.Infra{ID: fmt.Sprintf("infra-%03d", i), CreatedAt: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
	ok := store.PassStatus{Result: store.PassOK}
	failed := store.PassStatus{Result: store.PassError, Error: "node web: ec2 RunInstances: RequestLimitExceeded", Failures: 1}
	i := 0
	for b.Loop() {
		ps := ok
		if i%2 == 1 {
			ps = failed
		}
		ps.At = time.Now()
		if err := s.SetPassStatus(ctx, fmt.Sprintf("infra-%03d", i%n), ps); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
