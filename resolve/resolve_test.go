package resolve_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/occopus-go/occopus/compile"
	"github.com/occopus-go/occopus/descr"
	_ "github.com/occopus-go/occopus/plugins/standard"
	"github.com/occopus-go/occopus/resolve"
	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/tmpl"
)

// infraSrc is the description every test resolves a node of: web depends
// on db, with one attribute mapping.
const infraSrc = `infra_name: demo
user_id: alice@example.com
variables:
  greeting: hello
  nested: {k: v}
nodes:
  - name: db
    type: db_t
  - name: web
    type: web_t
    scaling: {min: 2, max: 3}
    filter: {type: docker}
    variables: {greeting: hi, port: 8080}
    attributes: {role: frontend}
dependencies:
  - connection: [web, db]
    mappings:
      - attributes: [db_host, host]
        synch: true
`

func compiled(t *testing.T, src string) *compile.Static {
	t.Helper()
	in, err := descr.ParseInfra("infra.yaml", []byte(src), descr.LoadOptions{})
	if err != nil {
		t.Fatalf("ParseInfra: %v", err)
	}
	st, err := compile.Compile(in)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return st
}

// defs reads a node definition file; it is named testdata/nodes.yaml so
// imports are read from testdata.
func defs(t *testing.T, src string) *descr.NodeDefs {
	t.Helper()
	root, err := descr.Parse("testdata/nodes.yaml", []byte(src), descr.LoadOptions{})
	if err != nil {
		t.Fatalf("Parse:\n%v\nsource:\n%s", err, src)
	}
	d, err := descr.DecodeNodeDefs("testdata/nodes.yaml", root)
	if err != nil {
		t.Fatalf("DecodeNodeDefs:\n%v\nsource:\n%s", err, src)
	}
	return d
}

// webImpl is the first implementation of web_t in src.
func webImpl(t *testing.T, src string) *descr.Impl {
	t.Helper()
	im := defs(t, src).Impls["web_t"]
	if len(im) == 0 {
		t.Fatalf("no implementation of web_t in\n%s", src)
	}
	return im[0]
}

func input(t *testing.T, node string) resolve.Input {
	t.Helper()
	st := compiled(t, infraSrc)
	n := st.ByName[node]
	if n == nil {
		t.Fatalf("no node %q", node)
	}
	return resolve.Input{InfraID: "inf-1", InfraName: st.Name, UserID: st.UserID, NodeID: "node-7", Node: n}
}

func TestCandidates(t *testing.T) {
	d := defs(t, `'node_def:web_t':
  - resource: {type: docker, image: a, tag: 20.04}
  - resource: {type: docker, image: b, tag: "20.04"}
  - resource: {type: local, shell: /bin/sh}
  - resource: {type: docker, image: c, tag: 8}
`)
	impls := d.Impls["web_t"]
	if len(impls) != 4 {
		t.Fatalf("%d implementations", len(impls))
	}
	cases := []struct {
		name   string
		filter string // the node's filter line, "" for none
		want   []int  // indexes of the candidates
	}{
		{name: "no filter passes all", want: []int{0, 1, 2, 3}},
		{name: "empty filter passes all", filter: "filter: {}", want: []int{0, 1, 2, 3}},
		{name: "type is a resource key", filter: "filter: {type: docker}", want: []int{0, 1, 3}},
		{name: "other type", filter: "filter: {type: local}", want: []int{2}},
		{name: "every pair must match", filter: "filter: {type: docker, image: b}", want: []int{1}},
		{name: "pairs that do not meet", filter: "filter: {type: local, image: a}", want: nil},
		{name: "no implementation of the type", filter: "filter: {type: nova}", want: nil},
		{name: "key the resources lack", filter: "filter: {flavor: small}", want: nil},
		{name: "value case matters", filter: "filter: {type: Docker}", want: nil},
		{name: "number filter matches number and string", filter: "filter: {tag: 20.04}", want: []int{0, 1}},
		{name: "string filter matches number and string", filter: `filter: {tag: "20.04"}`, want: []int{0, 1}},
		{name: "integer and its text", filter: `filter: {tag: "8"}`, want: []int{3}},
		{name: "integer", filter: "filter: {tag: 8}", want: []int{3}},
		{name: "filter with a template is not rendered", filter: `filter: {image: "{{ name }}"}`, want: nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := "infra_name: demo\nnodes:\n  - name: web\n    type: web_t\n"
			if tc.filter != "" {
				src += "    " + tc.filter + "\n"
			}
			n := compiled(t, src).ByName["web"]
			got := resolve.Candidates(n, impls)
			var idx []int
			for _, im := range got {
				if im != impls[im.Index] {
					t.Errorf("candidate %d is not the implementation given", im.Index)
				}
				idx = append(idx, im.Index)
			}
			if !reflect.DeepEqual(idx, tc.want) {
				t.Errorf("candidates %v, want %v", idx, tc.want)
			}
		})
	}
	t.Run("no implementations", func(t *testing.T) {
		n := compiled(t, "infra_name: demo\nnodes:\n  - name: web\n    type: web_t\n").ByName["web"]
		if got := resolve.Candidates(n, nil); got != nil {
			t.Errorf("Candidates(nil) = %v", got)
		}
	})
}

// A filter value is compared as the files and templates show it: `tag:
// 3.0` in a resource is selected by the filter `tag: "3.0"` (and 3.0), not
// by `tag: "3"`.
func TestCandidatesFloatText(t *testing.T) {
	impls := defs(t, "'node_def:web_t':\n  - resource: {type: docker, image: a, tag: 3.0}\n").Impls["web_t"]
	for _, tc := range []struct {
		filter string
		want   int
	}{
		{`filter: {tag: "3.0"}`, 1},
		{`filter: {tag: "3"}`, 0},
		{`filter: {tag: 3.0}`, 1},
		{`filter: {tag: 3}`, 0},
	} {
		n := compiled(t, "infra_name: demo\nnodes:\n  - name: web\n    type: web_t\n    "+tc.filter+"\n").ByName["web"]
		if got := len(resolve.Candidates(n, impls)); got != tc.want {
			t.Errorf("%s: %d candidates, want %d", tc.filter, got, tc.want)
		}
	}
}

const dataDef = `'node_def:web_t':
  - resource: {type: docker, image: img, tag: latest}
    contextualisation: {type: docker, env: ["A={{ name }}"]}
    health_check: {ping: false}
    create_timeout: 30
'node_def:db_t':
  - resource: {type: local}
    config_management: {type: chef, endpoint: "https://chef", run_list: ["recipe[db]"]}
`

func TestData(t *testing.T) {
	d := defs(t, dataDef)
	mapping := map[string]any{"attributes": []any{"db_host", "host"}, "synch": true}
	cases := []struct {
		node string
		impl *descr.Impl
		want tmpl.Data
	}{
		{node: "web", impl: d.Impls["web_t"][0], want: tmpl.Data{
			"infra_id":   "inf-1",
			"infra_name": "demo",
			"user_id":    "alice@example.com",
			"node_id":    "node-7",
			"name":       "web",
			"type":       "web_t",
			"variables":  map[string]any{"greeting": "hi", "nested": map[string]any{"k": "v"}, "port": 8080},
			"attributes": map[string]any{"role": "frontend"},
			"scaling":    map[string]any{"min": 2, "max": 3},
			"mappings": map[string]any{
				"inbound":  map[string]any{"db": []any{mapping}},
				"outbound": map[string]any{},
			},
			"filter":            map[string]any{"type": "docker"},
			"resource":          map[string]any{"type": "docker", "image": "img", "tag": "latest"},
			"contextualisation": map[string]any{"type": "docker", "env": []any{"A={{ name }}"}},
			"health_check":      map[string]any{"ping": false},
			"create_timeout":    30,
		}},
		{node: "db", impl: d.Impls["db_t"][0], want: tmpl.Data{
			"infra_id":   "inf-1",
			"infra_name": "demo",
			"user_id":    "alice@example.com",
			"node_id":    "node-7",
			"name":       "db",
			"type":       "db_t",
			"variables":  map[string]any{"greeting": "hello", "nested": map[string]any{"k": "v"}},
			"attributes": map[string]any{},
			"scaling":    map[string]any{"min": 1, "max": 1},
			"mappings": map[string]any{
				"inbound":  map[string]any{},
				"outbound": map[string]any{"web": []any{mapping}},
			},
			// no filter key: the node has none
			"resource":          map[string]any{"type": "local"},
			"config_management": map[string]any{"type": "chef", "endpoint": "https://chef", "run_list": []any{"recipe[db]"}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.node, func(t *testing.T) {
			got := resolve.Data(input(t, tc.node), tc.impl)
			if !reflect.DeepEqual(got, tc.want) {
				for k := range merge(got, tc.want) {
					if !reflect.DeepEqual(got[k], tc.want[k]) {
						t.Errorf("%s = %#v, want %#v", k, got[k], tc.want[k])
					}
				}
			}
		})
	}
}

func merge(a, b tmpl.Data) map[string]bool {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return keys
}

// want is the whole result of a successful Resolve.
type want struct {
	resource, contextualisation, configManagement map[string]any
	context                                       resource.Context
}

func checkResolved(t *testing.T, r *resolve.Resolved, w want) {
	t.Helper()
	if !reflect.DeepEqual(r.Resource, w.resource) {
		t.Errorf("resource\n%#v\nwant\n%#v", r.Resource, w.resource)
	}
	if !reflect.DeepEqual(r.Contextualisation, w.contextualisation) {
		t.Errorf("contextualisation\n%#v\nwant\n%#v", r.Contextualisation, w.contextualisation)
	}
	if !reflect.DeepEqual(r.ConfigManagement, w.configManagement) {
		t.Errorf("config_management\n%#v\nwant\n%#v", r.ConfigManagement, w.configManagement)
	}
	if !reflect.DeepEqual(r.Context, w.context) {
		t.Errorf("context\n%#v\nwant\n%#v", r.Context, w.context)
	}
}

type resolveCase struct {
	name string
	def  string // a node definition file with an implementation of web_t
	want want
	// check, when set, looks further at the result.
	check func(t *testing.T, r *resolve.Resolved)
}

func runResolve(t *testing.T, cases []resolveCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			im := webImpl(t, tc.def)
			before := webImpl(t, tc.def).Data
			r, err := resolve.Resolve(input(t, "web"), im)
			if err != nil {
				t.Fatal(err)
			}
			if r.Impl != im {
				t.Error("Resolved.Impl is not the implementation given")
			}
			checkResolved(t, r, tc.want)
			if tc.check != nil {
				tc.check(t, r)
			}
			if !reflect.DeepEqual(im.Data, before) {
				t.Errorf("Resolve modified the implementation:\n%#v\nwas\n%#v", im.Data, before)
			}
		})
	}
}

func TestResolveResource(t *testing.T) {
	runResolve(t, []resolveCase{
		{name: "the namespace in templates",
			def: `'node_def:web_t':
  - resource:
      type: docker
      image: "img-{{infra_id}}"
      tag: "{{ variables.greeting }}-{{ variables.port }}"
      name: "{{ infra_name }}/{{ name }}/{{ node_id }}/{{ type }}"
      endpoint: "tcp://{{ variables.nested.k }}:2375"
      network: "{{ scaling.min }}..{{ scaling.max }}"
      origin: "{{ mappings.inbound.db[0].attributes[0] }}={{ mappings.inbound.db[0].synch }}"
      network_mode: "{{ user_id }} {{ attributes.role }} {{ filter.type }}"
`,
			want: want{resource: map[string]any{
				"type":         "docker",
				"image":        "img-inf-1",
				"tag":          "hi-8080",
				"name":         "demo/web/node-7/web_t",
				"endpoint":     "tcp://v:2375",
				"network":      "2..3",
				"origin":       "db_host=True",
				"network_mode": "alice@example.com frontend docker",
			}}},
		{name: "sections in the namespace are not rendered",
			def: `'node_def:web_t':
  - resource:
      type: docker
      image: "{{ name }}"
      tag: "{{ resource.image }}"
`,
			want: want{resource: map[string]any{"type": "docker", "image": "web", "tag": "{{ name }}"}}},
		{name: "values that are not strings are kept",
			def: `'node_def:web_t':
  - resource:
      type: docker
      image: img
      tag: 20.04
      name: 42
      network: true
`,
			want: want{resource: map[string]any{"type": "docker", "image": "img", "tag": 20.04, "name": 42, "network": true}}},
		{name: "plain text loses one trailing newline and CRs",
			def: `'node_def:web_t':
  - resource:
      type: docker
      image: "a\r\nb\r\n"
      tag: "x\n\n"
      name: "c\rd"
      endpoint: |
        line1
        line2
      network: "{{ 'e' }}\r\nf\n"
      origin: "no newline "
      network_mode: "\n"
`,
			want: want{resource: map[string]any{
				"type":         "docker",
				"image":        "a\nb",
				"tag":          "x\n",
				"name":         "c\nd",
				"endpoint":     "line1\nline2",
				"network":      "e\nf",
				"origin":       "no newline ",
				"network_mode": "",
			}}},
	})
}

func TestResolveContextualisation(t *testing.T) {
	runResolve(t, []resolveCase{
		{name: "docker env and command lists",
			def: `'node_def:web_t':
  - resource: {type: docker, image: img}
    contextualisation:
      type: docker
      env: ["GREETING={{ variables.greeting }}", "NODE={{ node_id }}", PLAIN=1]
      command: [sh, -c, "echo {{ name }}"]
      context_variables: {raw: "{{ not_rendered }}"}
`,
			want: want{
				resource: map[string]any{"type": "docker", "image": "img"},
				contextualisation: map[string]any{
					"type":              "docker",
					"env":               []any{"GREETING=hi", "NODE=node-7", "PLAIN=1"},
					"command":           []any{"sh", "-c", "echo web"},
					"context_variables": map[string]any{"raw": "{{ not_rendered }}"},
				},
				context: resource.Context{Env: []string{"GREETING=hi", "NODE=node-7", "PLAIN=1"}, Command: []string{"sh", "-c", "echo web"}},
			}},
		{name: "docker env mapping and command string",
			def: `'node_def:web_t':
  - resource: {type: docker, image: img}
    contextualisation:
      type: docker
      env: {PORT: "{{ variables.port }}", A: x, N: 3}
      command: "run {{ name }} --fast"
      attributes: {who: "{{ name }}"}
`,
			want: want{
				resource: map[string]any{"type": "docker", "image": "img"},
				contextualisation: map[string]any{
					"type":       "docker",
					"env":        map[string]any{"PORT": "8080", "A": "x", "N": 3},
					"command":    "run web --fast",
					"attributes": map[string]any{"who": "web"},
				},
				context: resource.Context{Env: []string{"A=x", "N=3", "PORT=8080"}, Command: []string{"run web --fast"}},
			}},
		{name: "cloudinit string",
			def: `'node_def:web_t':
  - resource: {type: docker, image: img}
    contextualisation:
      type: cloudinit
      context_template: |
        #cloud-config
        write_files:
          - path: /etc/greeting
            content: "{{ variables.greeting }} from {{ name }}"
        runcmd:
          - echo {{ infra_id }}
      attributes: {who: "{{ name }}"}
`,
			want: want{
				resource: map[string]any{"type": "docker", "image": "img"},
				contextualisation: map[string]any{
					"type":       "cloudinit",
					"context":    cloudString,
					"attributes": map[string]any{"who": "web"},
				},
				context: resource.Context{UserData: cloudString},
			}},
		{name: "cloudinit string that is not cloud-config",
			def: `'node_def:web_t':
  - resource: {type: docker, image: img}
    contextualisation:
      type: cloudinit
      context_template: "#!/bin/sh\necho {{ name }}: {{ node_id }}: x\n"
`,
			want: want{
				resource:          map[string]any{"type": "docker", "image": "img"},
				contextualisation: map[string]any{"type": "cloudinit", "context": "#!/bin/sh\necho web: node-7: x"},
				context:           resource.Context{UserData: "#!/bin/sh\necho web: node-7: x"},
			}},
		{name: "cloudinit mapping",
			def: `'node_def:web_t':
  - resource: {type: docker, image: img}
    contextualisation:
      type: cloudinit
      context_template:
        runcmd:
          - "echo {{ name }}"
        write_files:
          - {path: /x, content: "{{ variables.nested.k }}"}
`,
			want: want{
				resource:          map[string]any{"type": "docker", "image": "img"},
				contextualisation: map[string]any{"type": "cloudinit", "context": cloudMapping},
				context:           resource.Context{UserData: cloudMapping},
			}},
		{name: "cloudinit yaml_import",
			def: `'node_def:web_t':
  - resource: {type: docker, image: img}
    contextualisation:
      type: cloudinit
      context_template: !yaml_import
        url: file://cloud-config.yaml
`,
			want: want{
				resource:          map[string]any{"type": "docker", "image": "img"},
				contextualisation: map[string]any{"type": "cloudinit", "context": cloudImport},
				context:           resource.Context{UserData: cloudImport},
			},
			check: func(t *testing.T, r *resolve.Resolved) {
				// The quotes inside the templates survive: the mapping is
				// rendered value by value, then written.
				var got any
				if err := yaml.Unmarshal([]byte(r.Context.UserData), &got); err != nil {
					t.Fatal(err)
				}
				w := map[string]any{
					"runcmd":      []any{"echo demo", `echo 'hi' "web"`},
					"write_files": []any{map[string]any{"path": "/etc/motd", "content": "node node-7", "permissions": "0644"}},
				}
				if !reflect.DeepEqual(got, w) {
					t.Errorf("user data means\n%#v\nwant\n%#v", got, w)
				}
			}},
		{name: "puppet_solo names in the contextualisation",
			def: `'node_def:web_t':
  - resource: {type: docker, image: img}
    config_management:
      type: puppet_solo
      manifests: ["https://example.com/{{ name }}.pp"]
      modules: [puppetlabs-mysql, hunner-wordpress]
      attributes:
        - {dbuser: "{{ variables.greeting }}"}
        - {port: 3306}
    contextualisation:
      type: cloudinit
      context_template: |
        #!/bin/sh
        puppet module install {{ puppet.modules }}
        fetch {{ puppet.manifests }}
        echo "{{ puppet.attributes }}"
`,
			want: want{
				resource: map[string]any{"type": "docker", "image": "img"},
				configManagement: map[string]any{
					"type":       "puppet_solo",
					"manifests":  []any{"https://example.com/web.pp"},
					"modules":    []any{"puppetlabs-mysql", "hunner-wordpress"},
					"attributes": []any{map[string]any{"dbuser": "hi"}, map[string]any{"port": 3306}},
				},
				contextualisation: map[string]any{"type": "cloudinit", "context": puppetScript},
				context:           resource.Context{UserData: puppetScript},
			},
			check: func(t *testing.T, r *resolve.Resolved) {
				w := map[string]any{
					"modules":    "puppetlabs-mysql hunner-wordpress",
					"manifests":  "https://example.com/web.pp",
					"attributes": "{'dbuser': 'hi'} {'port': 3306}",
				}
				if !reflect.DeepEqual(r.Data["puppet"], w) {
					t.Errorf("Data[puppet] = %#v, want %#v", r.Data["puppet"], w)
				}
			}},
		{name: "puppet names reach the resource too",
			def: `'node_def:web_t':
  - resource: {type: docker, image: "{{ puppet.manifests }}", tag: "[{{ puppet.modules }}]"}
    config_management: {type: puppet_solo, manifests: [site.pp]}
`,
			want: want{
				resource:         map[string]any{"type": "docker", "image": "site.pp", "tag": "[]"},
				configManagement: map[string]any{"type": "puppet_solo", "manifests": []any{"site.pp"}},
			}},
		{name: "chef is rendered and adds no names",
			def: `'node_def:web_t':
  - resource: {type: docker, image: img}
    config_management:
      type: chef
      endpoint: "https://chef.{{ variables.nested.k }}"
      run_list: ["recipe[{{ name }}]", "role[base]"]
      environment: prod
`,
			want: want{
				resource: map[string]any{"type": "docker", "image": "img"},
				configManagement: map[string]any{
					"type":        "chef",
					"endpoint":    "https://chef.v",
					"run_list":    []any{"recipe[web]", "role[base]"},
					"environment": "prod",
				},
			},
			check: func(t *testing.T, r *resolve.Resolved) {
				want := resolve.Data(input(t, "web"), r.Impl)
				if !reflect.DeepEqual(r.Data, want) {
					t.Errorf("Data gained names:\n%#v\nwant\n%#v", r.Data, want)
				}
			}},
	})
}

const (
	cloudString = "#cloud-config\n" +
		"write_files:\n" +
		"  - path: /etc/greeting\n" +
		"    content: \"hi from web\"\n" +
		"runcmd:\n" +
		"  - echo inf-1"
	cloudMapping = "#cloud-config\n" +
		"runcmd:\n" +
		"  - echo web\n" +
		"write_files:\n" +
		"  - content: v\n" +
		"    path: /x\n"
	cloudImport = "#cloud-config\n" +
		"runcmd:\n" +
		"  - echo demo\n" +
		"  - echo 'hi' \"web\"\n" +
		"write_files:\n" +
		"  - content: node node-7\n" +
		"    path: /etc/motd\n" +
		"    permissions: \"0644\"\n"
	puppetScript = "#!/bin/sh\n" +
		"puppet module install puppetlabs-mysql hunner-wordpress\n" +
		"fetch https://example.com/web.pp\n" +
		"echo \"{'dbuser': 'hi'} {'port': 3306}\""
)

// addrs is a fake tmpl.Addresses: public and private address by node.
type addrs map[string][2]string

func (a addrs) IP(node string) (string, error) {
	if ip, ok := a[node]; ok {
		return ip[0], nil
	}
	return "", fmt.Errorf("node %s has no address yet", node)
}

func (a addrs) PrivIP(node string) (string, error) {
	if ip, ok := a[node]; ok {
		return ip[1], nil
	}
	return "", fmt.Errorf("node %s has no address yet", node)
}

func (a addrs) AllIPs(node string) ([]string, error) {
	if ip, ok := a[node]; ok {
		return []string{ip[0], ip[0] + "1"}, nil
	}
	return nil, fmt.Errorf("node %s has no address yet", node)
}

const addrDef = `'node_def:web_t':
  - resource:
      type: docker
      image: img
      endpoint: "tcp://{{ getip('db') }}:2375"
    contextualisation:
      type: docker
      env: ["DB={{ getprivip('db') }}", "ALL={{ getipall('db') | join(',') }}"]
`

func TestResolveAddresses(t *testing.T) {
	cases := []struct {
		name    string
		def     string
		addrs   tmpl.Addresses
		want    want
		wantErr string
	}{
		{name: "getip, getprivip and getipall", def: addrDef,
			addrs: addrs{"db": {"192.0.2.10", "10.0.0.10"}},
			want: want{
				resource: map[string]any{"type": "docker", "image": "img", "endpoint": "tcp://192.0.2.10:2375"},
				contextualisation: map[string]any{"type": "docker",
					"env": []any{"DB=10.0.0.10", "ALL=192.0.2.10,192.0.2.101"}},
				context: resource.Context{Env: []string{"DB=10.0.0.10", "ALL=192.0.2.10,192.0.2.101"}},
			}},
		{name: "node without an address", def: addrDef,
			addrs: addrs{"cache": {"192.0.2.20", "10.0.0.20"}},
			// the config manager and resource go before the contextualisation
			wantErr: `testdata/nodes.yaml:5:27: node_def:web_t[0].resource.endpoint: line 1, column 10: getip('db'): node db has no address yet`},
		{name: "no addresses at all", def: addrDef,
			wantErr: `testdata/nodes.yaml:5:27: node_def:web_t[0].resource.endpoint: line 1, column 10: getip('db'): no addresses are available for node "db"`},
		{name: "private address of a node without one",
			def: `'node_def:web_t':
  - resource: {type: docker, image: img}
    contextualisation:
      type: docker
      env: [X=1, "DB={{ getprivip('cache') }}"]
`,
			addrs:   addrs{"db": {"192.0.2.10", "10.0.0.10"}},
			wantErr: `testdata/nodes.yaml:5:25: node_def:web_t[0].contextualisation.env[1]: line 1, column 7: getprivip('cache'): node cache has no address yet`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := input(t, "web")
			in.Addresses = tc.addrs
			r, err := resolve.Resolve(in, webImpl(t, tc.def))
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("no error, want %s", tc.wantErr)
				}
				if err.Error() != tc.wantErr {
					t.Fatalf("error\n%v\nwant\n%s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkResolved(t, r, tc.want)
		})
	}
}

func TestResolveCmd(t *testing.T) {
	cases := []struct {
		name     string
		image    string
		allowCmd bool
		want     string
		wantErr  string
	}{
		{name: "refused by default", image: `"{{ cmd('echo hi') }}"`,
			wantErr: "testdata/nodes.yaml:4:18: node_def:web_t[0].resource.image: line 1, column 4: " + tmpl.ErrCmdDisabled.Error()},
		{name: "refused in a longer template", image: `"x-{{ name }}-{{ cmd('echo hi') }}"`,
			wantErr: "testdata/nodes.yaml:4:31: node_def:web_t[0].resource.image: line 1, column 17: " + tmpl.ErrCmdDisabled.Error()},
		{name: "allowed: shell", image: `"{{ cmd('echo hi') }}"`, allowCmd: true, want: "hi"},
		{name: "allowed: argv with names", image: `"{{ cmd('printf', '%s-%s', name, node_id) }}"`, allowCmd: true, want: "web-node-7"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			def := "'node_def:web_t':\n  - resource:\n      type: docker\n      image: " + tc.image + "\n"
			in := input(t, "web")
			in.AllowCmd = tc.allowCmd
			r, err := resolve.Resolve(in, webImpl(t, def))
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("no error (resource %v), want %s", r.Resource, tc.wantErr)
				}
				if err.Error() != tc.wantErr {
					t.Fatalf("error\n%v\nwant\n%s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Resource["image"]; got != tc.want {
				t.Errorf("image = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	cases := []struct {
		name string
		def  string
		pos  descr.Pos
		path string
		// msg is the wrapped error's text.
		msg string
		// render reports whether the wrapped error is a *tmpl.RenderError.
		render bool
	}{
		{name: "plain scalar",
			def: `'node_def:web_t':
  - resource:
      type: docker
      image: img-{{ nope }}
`,
			pos: descr.Pos{File: "testdata/nodes.yaml", Line: 4, Col: 21}, path: "node_def:web_t[0].resource.image",
			msg: `line 1, column 8: "nope" is undefined`, render: true},
		{name: "quoted scalar",
			def: `'node_def:web_t':
  - resource:
      type: docker
      image: "img-{{ nope }}"
`,
			pos: descr.Pos{File: "testdata/nodes.yaml", Line: 4, Col: 22}, path: "node_def:web_t[0].resource.image",
			msg: `line 1, column 8: "nope" is undefined`, render: true},
		{name: "undefined member",
			def: `'node_def:web_t':
  - resource:
      type: docker
      image: img
      tag: "{{ variables.nested.missing }}"
`,
			pos: descr.Pos{File: "testdata/nodes.yaml", Line: 5, Col: 16}, path: "node_def:web_t[0].resource.tag",
			msg: `line 1, column 4: "variables.nested.missing" is undefined`, render: true},
		{name: "block scalar: the failing line",
			def: `'node_def:web_t':
  - resource: {type: docker, image: img}
    contextualisation:
      type: cloudinit
      context_template: |
        #cloud-config
        runcmd:
          - echo {{ nope }}
`,
			pos: descr.Pos{File: "testdata/nodes.yaml", Line: 8, Col: 21}, path: "node_def:web_t[0].contextualisation.context_template",
			msg: `line 3, column 13: "nope" is undefined`, render: true},
		{name: "list item",
			def: `'node_def:web_t':
  - resource: {type: docker, image: img}
    contextualisation:
      type: docker
      env: ["A=1", "B={{ variables.missing }}"]
`,
			pos: descr.Pos{File: "testdata/nodes.yaml", Line: 5, Col: 26}, path: "node_def:web_t[0].contextualisation.env[1]",
			msg: `line 1, column 6: "variables.missing" is undefined`, render: true},
		{name: "text_import: the imported file's line",
			def: `'node_def:web_t':
  - resource: {type: docker, image: img}
    contextualisation:
      type: cloudinit
      context_template: !text_import {url: file://broken.sh}
`,
			pos: descr.Pos{File: "testdata/broken.sh", Line: 3, Col: 9}, path: "node_def:web_t[0].contextualisation.context_template",
			msg: `line 3, column 9: "nope" is undefined`, render: true},
		{name: "yaml_import: the imported file's item",
			def: `'node_def:web_t':
  - resource: {type: docker, image: img}
    contextualisation:
      type: cloudinit
      context_template: !yaml_import {url: file://cloud-broken.yaml}
`,
			pos: descr.Pos{File: "testdata/cloud-broken.yaml", Line: 3, Col: 13}, path: "node_def:web_t[0].contextualisation.context_template.runcmd[1]",
			msg: `line 1, column 9: "variables.missing" is undefined`, render: true},
		{name: "config_management template",
			def: `'node_def:web_t':
  - resource: {type: docker, image: img}
    config_management:
      type: chef
      endpoint: "{{ chef_server }}"
      run_list: [a]
`,
			pos: descr.Pos{File: "testdata/nodes.yaml", Line: 5, Col: 21}, path: "node_def:web_t[0].config_management.endpoint",
			msg: `line 1, column 4: "chef_server" is undefined`, render: true},
		{name: "rendered cloud-config is not YAML",
			def: `'node_def:web_t':
  - resource: {type: docker, image: img}
    contextualisation:
      type: cloudinit
      context_template: "#cloud-config\nkey: {{ variables.greeting }}: x\n"
`,
			pos: descr.Pos{File: "testdata/nodes.yaml", Line: 5, Col: 25}, path: "node_def:web_t[0]",
			msg: "contextualisation.context_template: rendered cloud-config is not valid YAML: line 2: mapping values are not allowed in this context"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := resolve.Resolve(input(t, "web"), webImpl(t, tc.def))
			if err == nil {
				t.Fatal("no error")
			}
			var re *resolve.Error
			if !errors.As(err, &re) {
				t.Fatalf("error %T (%v), want *resolve.Error", err, err)
			}
			if re.Pos != tc.pos || re.Path != tc.path || re.Err.Error() != tc.msg {
				t.Errorf("error at %v, path %q, message %q\nwant at %v, path %q, message %q", re.Pos, re.Path, re.Err, tc.pos, tc.path, tc.msg)
			}
			if w := tc.pos.String() + ": " + tc.path + ": " + tc.msg; err.Error() != w {
				t.Errorf("Error() = %q, want %q", err.Error(), w)
			}
			var tre *tmpl.RenderError
			if got := errors.As(err, &tre); got != tc.render {
				t.Errorf("wraps a *tmpl.RenderError: %v, want %v", got, tc.render)
			}
		})
	}
}

// Implementations read back from the store have no source tree: errors
// name the key only.
func TestResolveErrorsWithoutSource(t *testing.T) {
	cases := []struct {
		name string
		data map[string]any
		want string
	}{
		{name: "template",
			data: map[string]any{"resource": map[string]any{"type": "docker", "image": "{{ nope }}"}},
			want: `node_def:web_t[0].resource.image: line 1, column 4: "nope" is undefined`},
		{name: "template in a list",
			data: map[string]any{"resource": map[string]any{"type": "docker", "l": []any{"a", "{{ nope }}"}}},
			want: `node_def:web_t[0].resource.l[1]: line 1, column 4: "nope" is undefined`},
		{name: "unknown contextualisation type",
			data: map[string]any{"resource": map[string]any{"type": "docker"}, "contextualisation": map[string]any{"type": "nope"}},
			want: `node_def:web_t[0].contextualisation: unknown contextualisation type "nope" (supported: cloudinit, docker)`},
		{name: "unknown config_management type",
			data: map[string]any{"resource": map[string]any{"type": "docker"}, "config_management": map[string]any{"type": "salt"}},
			want: `node_def:web_t[0].config_management: unknown config_management type "salt" (supported: chef, puppet_solo)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			im := &descr.Impl{Type: "web_t", Data: tc.data}
			_, err := resolve.Resolve(input(t, "web"), im)
			if err == nil {
				t.Fatal("no error")
			}
			var re *resolve.Error
			if !errors.As(err, &re) {
				t.Fatalf("error %T (%v), want *resolve.Error", err, err)
			}
			if re.Pos != (descr.Pos{}) {
				t.Errorf("Pos = %v, want none", re.Pos)
			}
			if err.Error() != tc.want {
				t.Errorf("error\n%v\nwant\n%s", err, tc.want)
			}
		})
	}
}

func TestResolveHealthCheck(t *testing.T) {
	cases := []struct {
		name string
		def  string
		want map[string]any
	}{
		{name: "left unrendered",
			def: `'node_def:web_t':
  - resource: {type: docker, image: img}
    health_check:
      ping: false
      urls: ["http://{{ ip }}:8080/{{ name }}"]
      timeout: 60
`,
			want: map[string]any{"ping": false, "urls": []any{"http://{{ ip }}:8080/{{ name }}"}, "timeout": 60}},
		{name: "absent",
			def: `'node_def:web_t':
  - resource: {type: docker, image: img}
`,
			want: nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			im := webImpl(t, tc.def)
			r, err := resolve.Resolve(input(t, "web"), im)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r.HealthCheck, tc.want) {
				t.Errorf("HealthCheck = %#v, want %#v", r.HealthCheck, tc.want)
			}
			// The data kept for the health checks has the section as written.
			if !reflect.DeepEqual(r.Data["health_check"], im.Data["health_check"]) {
				t.Errorf("Data[health_check] = %#v", r.Data["health_check"])
			}
			if tc.want != nil && !strings.Contains(fmt.Sprint(r.HealthCheck["urls"]), "{{ ip }}") {
				t.Errorf("health check rendered: %v", r.HealthCheck)
			}
		})
	}
}

// A template error's line is counted in the scalar's value; where the
// value's lines are not the file's lines (folded and plain multi-line
// scalars, "\n" escapes in a quoted one) the reported line should still be
// the source line of the failing template.
func TestResolveErrorLineOfFoldedScalars(t *testing.T) {
	cases := []struct {
		name  string
		image string // the image line and any continuation, from line 4
		line  int    // source line of {{ nope }}
	}{
		{name: "folded", image: "image: >\n        a\n        {{ nope }}\n", line: 6},
		{name: "plain on two lines", image: "image: a\n        b {{ nope }}\n", line: 5},
		{name: "quoted with an escaped newline", image: `image: "a\n{{ nope }}"` + "\n", line: 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			def := "'node_def:web_t':\n  - resource:\n      type: docker\n      " + tc.image
			_, err := resolve.Resolve(input(t, "web"), webImpl(t, def))
			var re *resolve.Error
			if !errors.As(err, &re) {
				t.Fatalf("error %v, want *resolve.Error", err)
			}
			if re.Pos.Line != tc.line {
				t.Errorf("reported at %v, want line %d", re.Pos, tc.line)
			}
		})
	}
}
