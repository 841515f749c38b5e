package rest_test

import (
	"os"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/occopus-go/occopus/rest"
)

// TestOpenAPICoversRoutes: every route the mux registers is in
// openapi.yaml, and every operation there is a route.
func TestOpenAPICoversRoutes(t *testing.T) {
	src, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(src) != string(rest.OpenAPI()) {
		t.Fatal("the embedded document differs from openapi.yaml")
	}
	var doc struct {
		OpenAPI    string                    `yaml:"openapi"`
		Paths      map[string]map[string]any `yaml:"paths"`
		Components struct {
			Parameters map[string]map[string]any `yaml:"parameters"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(src, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	methods := map[string]bool{"get": true, "put": true, "post": true, "delete": true, "patch": true, "head": true, "options": true}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		if ref, ok := item["$ref"].(string); ok {
			target := strings.NewReplacer("~1", "/", "~0", "~").Replace(strings.TrimPrefix(ref, "#/paths/"))
			if item = doc.Paths[target]; item == nil {
				t.Fatalf("%s: $ref %s resolves to nothing", path, ref)
			}
		}
		declared := map[string]bool{}
		addParams := func(v any) {
			list, _ := v.([]any)
			for _, p := range list {
				pm, _ := p.(map[string]any)
				if ref, ok := pm["$ref"].(string); ok {
					pm = doc.Components.Parameters[strings.TrimPrefix(ref, "#/components/parameters/")]
				}
				if pm["in"] == "path" {
					declared[pm["name"].(string)] = true
				}
			}
		}
		addParams(item["parameters"])
		for m, op := range item {
			if !methods[m] {
				continue
			}
			documented[strings.ToUpper(m)+" "+path] = true
			om, _ := op.(map[string]any)
			addParams(om["parameters"])
			if _, ok := om["responses"]; !ok {
				t.Errorf("%s %s: no responses", m, path)
			}
		}
		for _, seg := range strings.Split(path, "/") {
			if name, ok := strings.CutPrefix(seg, "{"); ok && !declared[strings.TrimSuffix(name, "}")] {
				t.Errorf("%s: path parameter %s not declared", path, seg)
			}
		}
	}
	registered := map[string]bool{}
	for _, p := range rest.Routes() {
		registered[strings.TrimSuffix(p, "{$}")] = true
	}
	var missing, extra []string
	for r := range registered {
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	for d := range documented {
		if !registered[d] {
			extra = append(extra, d)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("routes missing from openapi.yaml: %v", missing)
	}
	if len(extra) > 0 {
		t.Errorf("operations in openapi.yaml without a route: %v", extra)
	}
}
