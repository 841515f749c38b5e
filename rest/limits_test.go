package rest_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/occopus-go/occopus"
)

// TestCreateBounded: descriptions that expand past the size bound, or ask
// for more instances than the limits allow, are refused with 400 and
// nothing is stored.
func TestCreateBounded(t *testing.T) {
	f := newFixture(t)
	_, hs := f.server(t, func(c *serverConfig) {
		c.MaxDescriptionBytes = 1 << 20
		c.Manager.Limits = occopus.Limits{PerNode: 5, PerInfra: 8, Total: 10}
	})
	big := strings.Repeat("x", 100<<10)
	bomb := "infra_name: bomb\nvariables:\n  a: &a \"" + big + "\"\n  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n" +
		"nodes:\n  - {name: w, type: rest_worker}\n"
	cases := []struct {
		name, body, msg string
	}{
		{"alias bomb", bomb, "document expands to more than 1048576 bytes"},
		{"min over the node limit", "infra_name: x\nnodes:\n  - {name: w, type: rest_worker, scaling: {min: 100000}}\n", "min 100000 is more than the 5 instances a node may have"},
		{"integer out of range", "infra_name: x\nnodes:\n  - {name: w, type: rest_worker, scaling: {min: 99999999999999999999}}\n", "out of range"},
		{"too many in the infrastructure", "infra_name: x\nnodes:\n  - {name: a, type: rest_worker, scaling: {min: 5}}\n  - {name: b, type: rest_worker, scaling: {min: 5}}\n", "add up to 10 instances, more than the 8"},
		{"bad name", "infra_name: x\nnodes:\n  - {name: \"w\\u0000\", type: rest_worker}\n", `node name "w\x00" may hold only`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := expect(t, call(t, "POST", hs.URL+"/infrastructures/", tc.body, "Content-Type", "application/yaml"), 400)
			if !strings.Contains(v["message"].(string), tc.msg) {
				t.Fatalf("message %.300q, want %q", v["message"], tc.msg)
			}
		})
	}
	if l := expect(t, call(t, "GET", hs.URL+"/infrastructures/", ""), 200); len(l["infrastructures"].([]any)) != 0 {
		t.Fatalf("something was stored: %v", l)
	}

	// Scale requests: the node's max clamps; the infrastructure's and the
	// service's limits refuse.
	one := create(t, hs.URL, "infra_name: one\nnodes:\n  - {name: a, type: rest_worker, scaling: {min: 1, max: 5}}\n  - {name: b, type: rest_worker, scaling: {min: 1, max: 5}}\n")
	v := expect(t, call(t, "POST", hs.URL+"/infrastructures/"+one+"/scaleto/a/5", ""), 200)
	if v["count"] != float64(5) {
		t.Fatalf("scaleto within the limits: %v", v)
	}
	v = expect(t, call(t, "POST", hs.URL+"/infrastructures/"+one+"/scaleto/b/5", ""), 400)
	if !strings.Contains(v["message"].(string), "would have 10 instances, more than the 8 an infrastructure may have") {
		t.Fatalf("per-infrastructure limit: %v", v["message"])
	}
	// A huge scaleup saturates and is clamped by the node's max.
	v = expect(t, call(t, "POST", hs.URL+"/infrastructures/"+one+"/scaleup/a/9223372036854775807", ""), 200)
	if v["target"] != float64(5) || !strings.Contains(fmt.Sprint(v["clamped"]), "max") {
		t.Fatalf("scaleup by the largest int64: %v", v)
	}
	two := "infra_name: two\nnodes:\n  - {name: a, type: rest_worker, scaling: {min: 5, max: 5}}\n"
	v = expect(t, call(t, "POST", hs.URL+"/infrastructures/", two, "Content-Type", "application/yaml"), 400)
	if !strings.Contains(v["message"].(string), fmt.Sprintf("its 5 instances with the %d of the other infrastructures would be more than the 10", 6)) {
		t.Fatalf("service-wide limit: %v", v["message"])
	}
}
