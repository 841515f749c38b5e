package occopus_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/descr"
	_ "github.com/occopus-go/occopus/plugins/standard"
	"github.com/occopus-go/occopus/store/sqlite"
)

// Build the local-ping example (two processes on this host), look at it,
// scale it and tear it down.
func Example() {
	ctx := context.Background()
	home, _ := os.MkdirTemp("", "occopus-example")
	defer os.RemoveAll(home)
	st, err := sqlite.Open(ctx, filepath.Join(home, "occopus.db"))
	if err != nil {
		panic(err)
	}
	defer st.Close()
	m, err := occopus.New(occopus.Options{Store: st, Home: home})
	if err != nil {
		panic(err)
	}
	defer m.Close()

	defs, err := descr.LoadNodeDefs("examples/local-ping/nodes.yaml", descr.LoadOptions{})
	if err != nil {
		panic(err)
	}
	if err := m.ImportNodeDefs(ctx, defs); err != nil {
		panic(err)
	}
	in, err := descr.LoadInfra("examples/local-ping/infra.yaml", descr.LoadOptions{})
	if err != nil {
		panic(err)
	}
	res, err := m.Build(ctx, in, "")
	if err != nil {
		panic(err)
	}
	defer m.TearDown(ctx, res.ID)

	rep, _ := m.Get(ctx, res.ID)
	fmt.Println("receiver ready:", rep["receiver"].Scaling.Actual)

	after, _ := m.Scale(ctx, occopus.ScaleRequest{InfraID: res.ID, Node: "sender", Change: 5})
	fmt.Println("sender target:", after.Target, "-", after.Clamped)
	if _, err := m.Maintain(ctx, res.ID); err != nil {
		panic(err)
	}
	rep, _ = m.Get(ctx, res.ID)
	fmt.Println("senders:", rep["sender"].Scaling.Actual)
	// Output:
	// receiver ready: 1
	// sender target: 3 - target 6 of node sender lowered to its maximum 3
	// senders: 3
}
