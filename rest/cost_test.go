package rest_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/occopus-go/occopus/auth"
	"github.com/occopus-go/occopus/resource/cloudbroker/cbfake"
)

// costReport is the JSON of GET .../cost.
type costReport struct {
	InfraID   string   `json:"infraid"`
	TotalCost *float64 `json:"total_cost"`
	Currency  string   `json:"currency"`
	Nodes     map[string]struct {
		TotalCost *float64 `json:"total_cost"`
		Currency  string   `json:"currency"`
		Instances map[string]struct {
			Backend   string   `json:"backend"`
			TotalCost *float64 `json:"total_cost"`
			Currency  string   `json:"currency"`
			Error     string   `json:"error"`
		} `json:"instances"`
	} `json:"nodes"`
}

// GET /infrastructures/{id}/cost: CloudBroker's instances have a cost, a
// local one has none (null, not 0); an unknown id is 404; a backend's
// failure is its instance's error, without the credentials.
func TestCost(t *testing.T) {
	cb := cbfake.New(cbfake.Options{})
	t.Cleanup(cb.Close)
	f := newFixture(t)
	importDefs(t, f.st, fmt.Sprintf(`
'node_def:broker_node':
  - resource:
      type: cloudbroker
      endpoint: %s
      description: {deployment_id: dep-1, instance_type_id: it-1}
    contextualisation:
      type: cloudinit
      context_template: {write_files: [{path: /tmp/x, content: "{{ node_id }}"}]}
    health_check: {ping: false}
`, cb.URL()))
	ad, err := auth.Parse("auth_data.yaml", []byte(fmt.Sprintf("resource:\n  - type: cloudbroker\n    auth_data: {email: %s, password: %s}\n", cb.Email(), cb.Password())))
	if err != nil {
		t.Fatal(err)
	}
	_, hs := f.server(t, func(c *serverConfig) {
		c.Manager.Auth = ad
		c.Secrets = ad.Secrets()
	})
	base := hs.URL

	r := call(t, "GET", base+"/infrastructures/no-such-infra/cost", "")
	expect(t, r, 404)

	id := create(t, base, `infra_name: cost-test
nodes:
  - name: broker
    type: broker_node
    scaling: {min: 2}
  - name: helper
    type: rest_worker
`)
	waitFor(t, base, id, "every node ready", func(rep report) bool { return rep.ready("broker") == 2 && rep.ready("helper") == 1 })

	get := func() costReport {
		t.Helper()
		r := call(t, "GET", base+"/infrastructures/"+id+"/cost", "")
		expect(t, r, 200)
		var c costReport
		if err := json.Unmarshal(r.body, &c); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(r.body), cb.Password()) {
			t.Errorf("the answer shows the password: %s", r.body)
		}
		return c
	}
	c := get()
	if c.InfraID != id || c.TotalCost == nil || *c.TotalCost != 0.24 || c.Currency != "EUR" {
		t.Errorf("total %v %q, want 0.24 EUR: %+v", c.TotalCost, c.Currency, c)
	}
	broker, helper := c.Nodes["broker"], c.Nodes["helper"]
	if broker.TotalCost == nil || *broker.TotalCost != 0.24 || len(broker.Instances) != 2 {
		t.Errorf("broker: %+v", broker)
	}
	for nid, ic := range broker.Instances {
		if ic.Backend != "cloudbroker" || ic.TotalCost == nil || *ic.TotalCost != 0.12 || ic.Currency != "EUR" || ic.Error != "" {
			t.Errorf("broker %s: %+v", nid, ic)
		}
	}
	if helper.TotalCost != nil || len(helper.Instances) != 1 {
		t.Errorf("helper: %+v, want no cost", helper)
	}
	for nid, ic := range helper.Instances {
		if ic.Backend != "local" || ic.TotalCost != nil || ic.Error != "" {
			t.Errorf("helper %s: %+v, want null", nid, ic)
		}
	}
	if n := cb.Count("GET", "/costs.xml"); n != 2 {
		t.Errorf("%d costs.xml requests, want one per CloudBroker instance", n)
	}

	// A failing backend: its instance's error, scrubbed; the others count.
	one := cb.Live()[0].ID
	cb.Inject(&cbfake.Fault{Method: "GET", Path: "/instances/" + one + "/costs.xml", Status: 403,
		Body: "<errors><error>no access for " + cb.Email() + " with " + cb.Password() + "</error></errors>"})
	c = get()
	if c.TotalCost == nil || *c.TotalCost != 0.12 {
		t.Errorf("total with one failing instance: %v, want 0.12", c.TotalCost)
	}
	var errs []string
	for _, ic := range c.Nodes["broker"].Instances {
		if ic.Error != "" {
			errs = append(errs, ic.Error)
		}
	}
	if len(errs) != 1 || !strings.Contains(errs[0], "HTTP 403") || !strings.Contains(errs[0], "[REDACTED]") {
		t.Errorf("instance errors %q, want one naming the 403 with the password redacted", errs)
	}

	expect(t, call(t, "DELETE", base+"/infrastructures/"+id, ""), 200)
	if live := cb.Live(); len(live) != 0 {
		t.Errorf("instances left running at the platform: %+v", live)
	}
	expect(t, call(t, "GET", base+"/infrastructures/"+id+"/cost", ""), 404)
}
