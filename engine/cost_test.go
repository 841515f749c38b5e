package engine

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource"
)

// costHandler is the fake backend with a Coster, registered as type
// "costfake": its zone says what Cost answers.
type costHandler struct{ fakeHandler }

func init() {
	resource.Register(resource.Plugin{Type: "costfake", Schema: descr.SchemaOf[fakeSettings](), New: func(cfg resource.Config) (resource.Handler, error) {
		var s fakeSettings
		if err := descr.Decode("resource", cfg.Resource, &s); err != nil {
			return nil, err
		}
		return &costHandler{fakeHandler{zone: s.Zone}}, nil
	}})
}

func (h *costHandler) Cost(ctx context.Context, hd resource.Handle) (resource.Cost, bool, error) {
	switch h.zone {
	case "eur":
		return resource.Cost{Total: 0.25, Currency: "EUR"}, true, nil
	case "usd":
		return resource.Cost{Total: 2, Currency: "USD"}, true, nil
	case "none":
		return resource.Cost{}, false, nil
	case "gone":
		return resource.Cost{}, false, resource.ErrNotFound
	}
	return resource.Cost{}, false, errors.New("costs.xml: HTTP 500")
}

var _ resource.Coster = (*costHandler)(nil)

func TestCost(t *testing.T) {
	defs := func(dbType, dbZone, webZone string) string {
		return `
'node_def:db':
  - resource: {type: ` + dbType + `, zone: ` + dbZone + `}
    health_check: {ping: false}
'node_def:web':
  - resource: {type: costfake, zone: ` + webZone + `}
    health_check: {ping: false}
`
	}
	f := func(v float64) *float64 { return &v }
	cases := []struct {
		name             string
		defs             string
		wantTotal        *float64
		wantCurrency     string
		wantDB, wantWeb  *float64
		wantWebInstances InstanceCost
		wantDBInstance   InstanceCost
	}{
		{"a backend with no cost beside one with", defs("fake", "a", "eur"), f(0.5), "EUR", nil, f(0.5),
			InstanceCost{Backend: "costfake", TotalCost: f(0.25), Currency: "EUR"}, InstanceCost{Backend: "fake"}},
		{"different currencies: no total", defs("costfake", "usd", "eur"), nil, "", f(2), f(0.5),
			InstanceCost{Backend: "costfake", TotalCost: f(0.25), Currency: "EUR"}, InstanceCost{Backend: "costfake", TotalCost: f(2), Currency: "USD"}},
		{"a backend that fails: its error, the others' total", defs("costfake", "broken", "eur"), f(0.5), "EUR", nil, f(0.5),
			InstanceCost{Backend: "costfake", TotalCost: f(0.25), Currency: "EUR"}, InstanceCost{Backend: "costfake", Error: "costs.xml: HTTP 500"}},
		{"no figure, gone", defs("costfake", "gone", "none"), nil, "", nil, nil,
			InstanceCost{Backend: "costfake"}, InstanceCost{Backend: "costfake", Error: "gone at the backend"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			ops := map[string]int{}
			w := newWorld(t, Options{OnBackendCall: func(backend, op string, d time.Duration, err error) {
				mu.Lock()
				defer mu.Unlock()
				ops[backend+" "+op]++
			}})
			w.importDefs(tc.defs)
			id := w.submit(twoLevelInfra)
			if _, err := w.eng.Build(t.Context(), id, BuildOptions{}); err != nil {
				t.Fatal(err)
			}
			rep, err := w.eng.Cost(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if rep.InfraID != id || !eqCost(rep.TotalCost, tc.wantTotal) || rep.Currency != tc.wantCurrency {
				t.Errorf("total %v %q, want %v %q", show(rep.TotalCost), rep.Currency, show(tc.wantTotal), tc.wantCurrency)
			}
			db, web := rep.Nodes["db"], rep.Nodes["web"]
			if !eqCost(db.TotalCost, tc.wantDB) || !eqCost(web.TotalCost, tc.wantWeb) {
				t.Errorf("node totals db %v web %v, want %v %v", show(db.TotalCost), show(web.TotalCost), show(tc.wantDB), show(tc.wantWeb))
			}
			if len(db.Instances) != 1 || len(web.Instances) != 2 {
				t.Fatalf("instances db %d web %d, want 1 and 2", len(db.Instances), len(web.Instances))
			}
			for nid, ic := range web.Instances {
				if !eqInstance(ic, tc.wantWebInstances) {
					t.Errorf("web %s: %+v, want %+v", nid, ic, tc.wantWebInstances)
				}
			}
			for nid, ic := range db.Instances {
				if !eqInstance(ic, tc.wantDBInstance) {
					t.Errorf("db %s: %+v, want %+v", nid, ic, tc.wantDBInstance)
				}
			}
			mu.Lock()
			if n := ops["costfake cost"]; n < 2 {
				t.Errorf("%d metered cost calls, want one per costfake instance: %v", n, ops)
			}
			if n := ops["fake cost"]; n != 0 {
				t.Errorf("a backend without Coster was asked for a cost: %v", ops)
			}
			mu.Unlock()
		})
	}
}

// No cost is null in JSON, not 0; an unknown infrastructure is an error.
func TestCostShapeAndUnknownInfra(t *testing.T) {
	w := newWorld(t, Options{})
	if _, err := w.eng.Cost(t.Context(), "no-such-infra"); !errors.Is(err, ErrUnknownInfra) {
		t.Errorf("Cost of an unknown infrastructure: %v, want ErrUnknownInfra", err)
	}
	w.importDefs(`
'node_def:db':
  - resource: {type: fake, zone: a}
    health_check: {ping: false}
'node_def:web':
  - resource: {type: fake, zone: a}
    health_check: {ping: false}
`)
	id := w.submit(twoLevelInfra)
	// Before any pass: the nodes, no instances.
	rep, err := w.eng.Cost(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rep)
	want := `{"infraid":"` + id + `","total_cost":null,"nodes":{"db":{"total_cost":null,"instances":{}},"web":{"total_cost":null,"instances":{}}}}`
	var g, wv any
	_ = json.Unmarshal(b, &g)
	_ = json.Unmarshal([]byte(want), &wv)
	if gb, _ := json.Marshal(g); string(gb) != mustJSON(wv) {
		t.Errorf("JSON %s\nwant %s", b, want)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func eqCost(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func eqInstance(a, b InstanceCost) bool {
	return a.Backend == b.Backend && eqCost(a.TotalCost, b.TotalCost) && a.Currency == b.Currency && a.Error == b.Error
}

func show(p *float64) any {
	if p == nil {
		return "null"
	}
	return *p
}
