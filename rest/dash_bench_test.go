package rest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/store"
)

// BenchmarkOverview100: GET /overview, what the dashboard reads first,
// over 100 infrastructures of 3 instances each.
func BenchmarkOverview100(b *testing.B) {
	f := newFixture(b)
	importDefs(b, f.st, dashDefs)
	srv, hs := f.server(b, nil)
	ctx := context.Background()
	for i := range 100 {
		in, err := descr.ParseInfra("t.yaml", []byte(strings.Replace(dashInfra, "dash-graph", fmt.Sprintf("infra-%03d", i), 1)), descr.LoadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		id, err := srv.m.Submit(ctx, in, "")
		if err != nil {
			b.Fatal(err)
		}
		for j := range 3 {
			if err := f.st.PutInstance(ctx, store.Instance{InfraID: id, NodeID: fmt.Sprintf("%s-%d", id[:8], j), NodeName: "web",
				State: store.StateReady, Backend: "local", CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, path := range []string{"/overview", "/"} {
		b.Run(strings.Trim(path, "/")+"page", func(b *testing.B) {
			for b.Loop() {
				resp, err := http.Get(hs.URL + path)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || n == 0 {
					b.Fatalf("%s: %d", path, resp.StatusCode)
				}
			}
		})
	}
}
