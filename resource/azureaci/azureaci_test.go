package azureaci

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/resource/azure"
	"github.com/occopus-go/occopus/resource/azure/armfake"
	"github.com/occopus-go/occopus/resource/resourcetest"
)

const rg = "aci-rg"

type env struct {
	f *armfake.Fake
	h *Handler
}

// section is the tutorials' azure_aci section, placeholders filled in.
func section(f *armfake.Fake, extra map[string]any) map[string]any {
	s := map[string]any{
		"type": "azure_aci", "endpoint": f.URL(), "resource_group": rg, "location": "westeurope",
		"memory": 1.5, "cpu_cores": 1, "os_type": "linux", "image": "nginx:alpine", "network_type": "Public", "ports": []any{18080},
	}
	for k, v := range extra {
		if v == nil {
			delete(s, k)
			continue
		}
		s[k] = v
	}
	return s
}

func newEnv(t *testing.T, o armfake.Options, extra map[string]any) *env {
	t.Helper()
	f := armfake.New(o)
	t.Cleanup(f.Close)
	auth := map[string]any{"tenant_id": f.Tenant(), "client_id": f.ClientID(), "client_secret": f.ClientSecret(), "subscription_id": f.Subscription()}
	h, err := newHandler(resource.Config{Resource: section(f, extra), Auth: auth}, azure.Options{
		Base: f.Transport(), Authority: f.URL(), PollEvery: time.Millisecond,
		Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, v := range f.Errors() {
			t.Errorf("fake: %s", v)
		}
	})
	return &env{f: f, h: h}
}

func (e *env) spec(name string) resource.Spec {
	return resource.Spec{InfraID: uuid.NewString(), NodeID: uuid.NewString(), NodeName: name, StoreID: uuid.NewString(), Resource: e.h.defaults,
		Context: resource.Context{
			Env:     []string{"message=Hello World! I am the client node created by Occopus."},
			Command: []string{"sh", "-c", "echo \"$message\" > /tmp/message.txt; wget -O /tmp/nginx_content.html 127.0.0.5; while true; do sleep 1000; done"},
		}}
}

func (e *env) puts(t *testing.T, typ string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, r := range e.f.Requests() {
		if r.Method == "PUT" && strings.Contains(strings.ToLower(r.Path), "/"+strings.ToLower(typ)+"/") {
			var m map[string]any
			if err := json.Unmarshal(r.Body, &m); err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
	}
	return out
}

func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func (e *env) live() []string {
	var out []string
	for _, r := range e.f.Resources() {
		out = append(out, r.Type+"/"+r.Name)
	}
	return out
}

func TestPublicGroup(t *testing.T) {
	e := newEnv(t, armfake.Options{}, map[string]any{"ports": []any{18080, "5353/UDP"}})
	ctx := t.Context()
	spec := e.spec("Nginx-Client")
	hd, err := e.h.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	group := "occopus-" + spec.InfraID[:8] + "-nginx-client-" + spec.NodeID[:8]
	if hd.ID != e.h.s.ID(azure.TypeContainerGroup, group) {
		t.Errorf("handle %s, want the group %s", hd.ID, group)
	}
	puts := e.puts(t, "containerGroups")
	if len(puts) != 1 {
		t.Fatalf("%d group PUTs", len(puts))
	}
	b := puts[0]
	fqdn := group + ".westeurope.azurecontainer.io"
	c := get(b, "properties", "containers", 0, "properties")
	var env []string
	for _, v := range get(c, "environmentVariables").([]any) {
		env = append(env, fmt.Sprintf("%v=%v", get(v, "name"), get(v, "value")))
	}
	want := []string{"message=Hello World! I am the client node created by Occopus.", EnvFQDN + "=" + fqdn}
	if !slices.Equal(env, want) {
		t.Errorf("env %q, want %q", env, want)
	}
	checks := []struct {
		path []any
		want any
	}{
		{[]any{"location"}, "westeurope"},
		{[]any{"properties", "osType"}, "Linux"},
		{[]any{"properties", "ipAddress", "type"}, "Public"},
		{[]any{"properties", "ipAddress", "dnsNameLabel"}, group},
		{[]any{"properties", "ipAddress", "ports", 0, "port"}, 18080.0},
		{[]any{"properties", "ipAddress", "ports", 1, "protocol"}, "UDP"},
		{[]any{"properties", "containers", 0, "name"}, group},
		{[]any{"properties", "containers", 0, "properties", "image"}, "nginx:alpine"},
		{[]any{"properties", "containers", 0, "properties", "resources", "requests", "cpu"}, 1.0},
		{[]any{"properties", "containers", 0, "properties", "resources", "requests", "memoryInGB"}, 1.5},
		{[]any{"properties", "containers", 0, "properties", "command", 0}, "sh"},
		{[]any{"properties", "containers", 0, "properties", "command", 2}, spec.Context.Command[2]},
		{[]any{"tags", azure.TagInfraID}, spec.InfraID},
		{[]any{"tags", azure.TagNodeID}, spec.NodeID},
		{[]any{"tags", azure.TagNodeName}, "Nginx-Client"},
		{[]any{"tags", azure.TagStoreID}, spec.StoreID},
	}
	for _, ch := range checks {
		if got := get(b, ch.path...); got != ch.want {
			t.Errorf("group %v = %v, want %v", ch.path, got, ch.want)
		}
	}
	if st, err := e.h.State(ctx, hd); err != nil || st != resource.StateRunning {
		t.Errorf("State %s, %v", st, err)
	}
	a, err := e.h.Addresses(ctx, hd)
	if err != nil {
		t.Fatal(err)
	}
	if ip, err := netip.ParseAddr(a.Public); err != nil || !ip.IsLoopback() || a.Private != a.Public {
		t.Fatalf("Addresses %+v, want the group's loopback IP for both", a)
	}
	res, _ := e.f.Get(hd.ID)
	if got := get(res.Properties, "ipAddress", "fqdn"); got != fqdn {
		t.Errorf("the fake's FQDN %v, want %s", got, fqdn)
	}
	// The group's TCP port answers on its address.
	resp, err := http.Get("http://" + net.JoinHostPort(a.Public, "18080") + "/")
	if err != nil {
		t.Fatalf("the group's port does not answer: %v", err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), group) {
		t.Errorf("page %q", page)
	}
	if err := e.h.Destroy(ctx, hd); err != nil {
		t.Fatal(err)
	}
	if l := e.live(); len(l) != 0 {
		t.Errorf("left at the fake: %v", l)
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(a.Public, "18080"), time.Second); err == nil {
		c.Close()
		t.Error("the group's port still answers after Destroy")
	}
	if st, err := e.h.State(ctx, hd); err == nil {
		t.Errorf("State after Destroy %s, want ErrNotFound", st)
	}
}

func TestPrivateGroup(t *testing.T) {
	cases := []struct {
		name        string
		extra       map[string]any
		madeNetwork bool
	}{
		{"a network made for it", map[string]any{"network_type": "private"}, true},
		{"the user's delegated subnet", map[string]any{"network_type": "PRIVATE", "vnet_name": "corp", "subnet_name": "apps-aci"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, armfake.Options{SubnetHold: 2}, tc.extra)
			e.f.AddVNet(rg, "corp", "westeurope", []string{"10.5.0.0/16"}, map[string]string{"apps-aci": "10.5.0.0/24"})
			before := e.live()
			ctx := t.Context()
			spec := e.spec("helloworld")
			hd, err := e.h.Create(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			b := e.puts(t, "containerGroups")[0]
			if get(b, "properties", "ipAddress", "type") != "Private" || get(b, "properties", "ipAddress", "dnsNameLabel") != nil {
				t.Errorf("ipAddress %v", get(b, "properties", "ipAddress"))
			}
			for _, v := range get(b, "properties", "containers", 0, "properties", "environmentVariables").([]any) {
				if get(v, "name") == EnvFQDN {
					t.Error("a private group got the FQDN variable")
				}
			}
			subnet := fmt.Sprint(get(b, "properties", "subnetIds", 0, "id"))
			sn, ok := e.f.Get(subnet)
			if !ok {
				t.Fatalf("subnet %s not at the fake", subnet)
			}
			if d := fmt.Sprint(sn.Properties["delegations"]); !strings.Contains(d, Delegation) {
				t.Errorf("subnet delegations %s", d)
			}
			if made := len(e.puts(t, "virtualNetworks")) > 0; made != tc.madeNetwork {
				t.Errorf("network made: %v, want %v", made, tc.madeNetwork)
			}
			if a, err := e.h.Addresses(ctx, hd); err != nil || a.Private == "" {
				t.Errorf("Addresses %+v, %v", a, err)
			}
			if err := e.h.Destroy(ctx, hd); err != nil {
				t.Fatal(err)
			}
			if l := e.live(); !slices.Equal(l, before) {
				t.Errorf("after Destroy %v, want %v", l, before)
			}
			if tc.madeNetwork {
				// ARM held the subnet after the group went; the delete
				// was tried again.
				refused := 0
				for _, r := range e.f.Requests() {
					if r.Method == "DELETE" && strings.Contains(r.Path, "/subnets/") && r.Status == 400 {
						refused++
					}
				}
				if refused != 2 {
					t.Errorf("%d refused subnet deletes, want the fake's 2", refused)
				}
			}
		})
	}
}

func TestCreateChecksFirst(t *testing.T) {
	e := newEnv(t, armfake.Options{}, nil)
	cases := []struct {
		name  string
		extra map[string]any
		env   []string
		want  string
	}{
		{"placeholder memory", map[string]any{"memory": "replace_with_memory"}, nil, "resource.memory: replace_with_memory is not a positive number"},
		{"placeholder cpu", map[string]any{"cpu_cores": "replace_with_cpu_cores"}, nil, "resource.cpu_cores"},
		{"os type", map[string]any{"os_type": "plan9"}, nil, `os_type "plan9" is not linux or windows`},
		{"network type", map[string]any{"network_type": "hybrid"}, nil, `network_type "hybrid" is not public or private`},
		{"public without ports", map[string]any{"ports": nil}, nil, "network_type public needs ports"},
		{"a bad port", map[string]any{"ports": []any{"80/SCTP"}}, nil, "the protocol is TCP or UDP"},
		{"a port out of range", map[string]any{"ports": []any{70000}}, nil, "is not a port"},
		{"gpu type", map[string]any{"gpu_type": "H100"}, nil, `gpu_type "H100" is not one of`},
		{"env without =", nil, []string{"JUSTANAME"}, `env[0] "JUSTANAME" is not NAME=VALUE`},
		{"vnet for a public group", map[string]any{"vnet_name": "corp"}, nil, "vnet_name and subnet_name are for network_type private"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := e.spec("n")
			spec.Resource = section(e.f, tc.extra)
			if tc.env != nil {
				spec.Context.Env = tc.env
			}
			_, err := e.h.Create(t.Context(), spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Create: %v, want %q", err, tc.want)
			}
		})
	}
	if n := len(e.f.Requests()); n != 0 {
		t.Errorf("%d requests for Creates that could not be made", n)
	}
}

func TestGPU(t *testing.T) {
	e := newEnv(t, armfake.Options{}, map[string]any{"gpu_type": "v100"})
	hd, err := e.h.Create(t.Context(), e.spec("gpu"))
	if err != nil {
		t.Fatal(err)
	}
	gpu := get(e.puts(t, "containerGroups")[0], "properties", "containers", 0, "properties", "resources", "requests", "gpu")
	if get(gpu, "sku") != "V100" || get(gpu, "count") != 1.0 {
		t.Errorf("gpu %v, want one V100", gpu)
	}
	if err := e.h.Destroy(t.Context(), hd); err != nil {
		t.Fatal(err)
	}
}

// A failed group (a private one: its network goes too), a lost answer,
// throttling.
func TestFailuresAndRetries(t *testing.T) {
	t.Run("image not accessible", func(t *testing.T) {
		e := newEnv(t, armfake.Options{}, map[string]any{"network_type": "private"})
		e.f.FailNext("containerGroups", 1, "InaccessibleImage", "The image 'nginx:alpine' in container group is not accessible.")
		spec := e.spec("n")
		_, err := e.h.Create(t.Context(), spec)
		if err == nil {
			t.Fatal("Create succeeded")
		}
		for _, w := range []string{"azure_aci: create container group occopus-", "for node " + spec.NodeID, "InaccessibleImage", "is not accessible", e.f.URL()} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error lacks %q: %v", w, err)
			}
		}
		if l := e.live(); len(l) != 0 {
			t.Errorf("left after a failed Create: %v", l)
		}
	})
	t.Run("lost answer", func(t *testing.T) {
		e := newEnv(t, armfake.Options{}, nil)
		e.f.LoseAnswer("PUT", "containerGroups", 1)
		hd, err := e.h.Create(t.Context(), e.spec("n"))
		if err != nil {
			t.Fatal(err)
		}
		if n := e.f.Created("containerGroups"); n != 1 {
			t.Errorf("%d groups made", n)
		}
		if err := e.h.Destroy(t.Context(), hd); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("throttled", func(t *testing.T) {
		e := newEnv(t, armfake.Options{}, map[string]any{"network_type": "private"})
		e.f.Throttle(2, 429, 1)
		hd, err := e.h.Create(t.Context(), e.spec("n"))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.h.Destroy(t.Context(), hd); err != nil {
			t.Fatal(err)
		}
		if l := e.live(); len(l) != 0 {
			t.Errorf("left: %v", l)
		}
	})
}

func TestStateOf(t *testing.T) {
	cases := []struct {
		prov, group string
		containers  []string
		want        resource.State
	}{
		{"Pending", "", nil, resource.StatePending},
		{"Creating", "Pending", []string{"Waiting"}, resource.StatePending},
		{"Succeeded", "Running", []string{"Running"}, resource.StateRunning},
		{"Succeeded", "Running", []string{"Running", "Waiting"}, resource.StatePending},
		{"Succeeded", "Running", []string{"Terminated"}, resource.StatePending},
		{"Succeeded", "Stopped", []string{"Terminated"}, resource.StateShutdown},
		{"Deleting", "Running", nil, resource.StateShutdown},
		{"Failed", "", nil, resource.StateFailed},
		{"Succeeded", "Failed", nil, resource.StateFailed},
		{"Succeeded", "Hibernating", nil, resource.StateUnknown},
		{"Mysterious", "", nil, resource.StateUnknown},
		{"Succeeded", "Running", []string{"Zombie"}, resource.StateUnknown},
	}
	for _, tc := range cases {
		if got := StateOf(tc.prov, tc.group, tc.containers); got != tc.want {
			t.Errorf("StateOf(%s, %s, %v) = %s, want %s", tc.prov, tc.group, tc.containers, got, tc.want)
		}
	}
}

func TestPorts(t *testing.T) {
	cases := []struct {
		in   any
		want Ports
		err  string
	}{
		{[]any{80}, Ports{{Number: 80}}, ""},
		{[]any{"80/udp", "443/TCP", 8080}, Ports{{80, true}, {443, false}, {8080, false}}, ""},
		{8080, Ports{{Number: 8080}}, ""},
		{[]any{"http"}, nil, "is not a port"},
		{[]any{0}, nil, "is not a port"},
	}
	for _, tc := range cases {
		var p Ports
		err := p.DecodeSetting("resource.ports", tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(p, tc.want) {
			t.Errorf("%v: %v %v, want %v", tc.in, p, err, tc.want)
		}
	}
}

func TestConformance(t *testing.T) {
	e := newEnv(t, armfake.Options{}, map[string]any{"network_type": "private", "ports": []any{8080}})
	resourcetest.Run(t, e.h, func(t *testing.T) resource.Spec { return e.spec("node") },
		resourcetest.WithTimeout(10*time.Second),
		resourcetest.WithKill(func(t *testing.T, hd resource.Handle) {
			if !e.f.Kill(hd.ID) {
				t.Fatalf("no group %s at the fake", hd.ID)
			}
		}))
}
