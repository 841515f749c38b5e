package cloudtest

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource/azure"
	"github.com/occopus-go/occopus/resource/azure/armfake"
	"github.com/occopus-go/occopus/resource/azureaci"
	"github.com/occopus-go/occopus/store"
)

// The Azure tutorials are built with their own files against armfake,
// through the backends as the registry builds them: the fake's CA is
// trusted through the system store (SSL_CERT_FILE) and the fake is the
// Entra ID authority through AZURE_AUTHORITY_HOST, the SDK's own
// conventions. In memory only, in the resource sections:
//
//	both:            endpoint (https://management.azure.com) → the fake's URL
//	azure-aci-nginx: memory    → 1.5 (ACI wants a number of GB)
//	                 cpu_cores → 1
//
// Left as the tutorials have them (the fake takes any name): the
// resource group, location, VM size, image, user name and password, sent
// as written. The fake's operations stay in progress for one poll and ask
// for 20 ms between polls (Retry-After), so the production poll schedule
// is what runs. azure-ping takes about 6 s: the Manager's default rate
// limit (10 calls/s per endpoint after a burst of 20) paces its ~60 ARM
// calls, as it would against Azure.

const tutorialEndpoint = "https://management.azure.com"

// trustFake makes the fake's CA the system trust store and the fake the
// Entra ID authority, for the rest of the test.
func trustFake(t *testing.T, f *armfake.Fake) {
	t.Helper()
	ca, err := armfake.WriteCAFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", ca)
	t.Setenv("SSL_CERT_DIR", "")
	t.Setenv(azure.EnvAuthorityHost, f.URL())
	// Go reads the system store once per process: if something read it
	// before, the handshake below fails and says why.
	c, err := tls.Dial("tcp", strings.TrimPrefix(f.URL(), "https://"), &tls.Config{MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("the system trust store does not trust the fake (it was read before SSL_CERT_FILE was set?): %v", err)
	}
	c.Close()
}

// setEndpoint points every implementation's resource section at the
// fake; each must have the tutorial's endpoint.
func setEndpoint(t *testing.T, defs *descr.NodeDefs, url string) {
	t.Helper()
	for _, typ := range defs.Types {
		for _, im := range defs.Impls[typ] {
			res := im.Section("resource")
			if res["endpoint"] != tutorialEndpoint {
				t.Fatalf("%s: resource.endpoint is %v in the tutorial, not %s", im.Path(), res["endpoint"], tutorialEndpoint)
			}
			res["endpoint"] = url
		}
	}
}

func azureAuthData(f *armfake.Fake, typ string) string {
	return fmt.Sprintf(`resource:
  - type: %s
    endpoint: %s
    auth_data:
      tenant_id: %s
      client_id: %s
      client_secret: %s
      subscription_id: %s
`, typ, f.URL(), f.Tenant(), f.ClientID(), f.ClientSecret(), f.Subscription())
}

// events collects the event log, to check it for secrets.
type events struct {
	mu  sync.Mutex
	all []store.Event
}

func (e *events) add(ev store.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

func (e *events) check(t *testing.T, secrets ...string) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.all {
		text := fmt.Sprintf("%+v", ev)
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("event holds a secret: %s", text)
			}
		}
	}
}

func TestTutorialAzurePing(t *testing.T) {
	dir := tutorial(t, "azure-ping")
	fake := armfake.New(armfake.Options{Polls: 1, PollRetryAfter: 20 * time.Millisecond})
	t.Cleanup(fake.Close)
	trustFake(t, fake)
	defs, err := descr.LoadNodeDefs(filepath.Join(dir, "nodes", "node_definitions.yaml"), descr.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	setEndpoint(t, defs, fake.URL())
	received := func() map[string]sent {
		out := map[string]sent{}
		for _, r := range fake.Resources() {
			if r.Type != azure.TypeVM {
				continue
			}
			op, _ := r.Properties["osProfile"].(map[string]any)
			ud, err := base64.StdEncoding.DecodeString(fmt.Sprint(op["customData"]))
			if err != nil {
				t.Errorf("VM %s: customData is not base64: %v", r.Name, err)
			}
			out[r.Tags[azure.TagNodeID]] = sent{userData: string(ud), infraID: r.Tags[azure.TagInfraID],
				nodeID: r.Tags[azure.TagNodeID], nodeName: r.Tags[azure.TagNodeName]}
			if hw, _ := r.Properties["hardwareProfile"].(map[string]any); hw["vmSize"] != "replace_with_vm_size" {
				t.Errorf("VM %s: size %v, want the tutorial's", r.Name, hw["vmSize"])
			}
			if op["adminUsername"] != "replace_with_admin_username" {
				t.Errorf("VM %s: user %v, want the tutorial's", r.Name, op["adminUsername"])
			}
			if r.ResourceGroup != "replace_with_resource_group_name" {
				t.Errorf("VM %s in resource group %s", r.Name, r.ResourceGroup)
			}
		}
		return out
	}
	m, id := buildTutorial(t, dir, defs, azureAuthData(fake, "azure_vm"), received)
	if n := fake.Created("virtualMachines"); n != 2 {
		t.Errorf("the fake made %d VMs, want 2", n)
	}
	// The password went to ARM in the VM's PUT (ARM never shows it again).
	puts := 0
	for _, r := range fake.Requests() {
		if r.Method == "PUT" && strings.Contains(r.Path, "/virtualMachines/") {
			puts++
			if !strings.Contains(string(r.Body), `"adminPassword":"replace_with_admin_password"`) {
				t.Errorf("VM PUT without the tutorial's password: %s", r.Body)
			}
		}
	}
	if puts != 2 {
		t.Errorf("%d VM PUTs, want 2", puts)
	}
	rep, err := m.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	for name, nr := range rep {
		for _, ir := range nr.Instances {
			if strings.Contains(fmt.Sprint(ir), "replace_with_admin_password") || strings.Contains(fmt.Sprint(ir), fake.ClientSecret()) {
				t.Errorf("%s: the report holds a secret: %+v", name, ir)
			}
		}
	}
	tearDown(t, m, id)
	if l := fake.Resources(); len(l) != 0 {
		t.Errorf("left at the fake after teardown: %v", names(l))
	}
	if g := fake.ResourceGroups(); len(g) != 1 || g[0] != "replace_with_resource_group_name" {
		t.Errorf("resource groups %v: the tutorial's must stay", g)
	}
	for _, e := range fake.Errors() {
		t.Error(e)
	}
}

func names(rs []armfake.Resource) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Type+"/"+r.Name)
	}
	return out
}

// canListen80 reports whether this process may listen on port 80 of a
// loopback address (the nginx group's port): root, or a low
// ip_unprivileged_port_start.
func canListen80() error {
	l, err := net.Listen("tcp", "127.3.2.1:80")
	if err != nil {
		return err
	}
	return l.Close()
}

func TestTutorialAzureACINginx(t *testing.T) {
	dir := tutorial(t, "azure-aci-nginx")
	if err := canListen80(); errors.Is(err, syscall.EACCES) {
		t.Skipf("the fake cannot open the nginx group's port 80 here (%v): run as root or lower net.ipv4.ip_unprivileged_port_start", err)
	}
	fake := armfake.New(armfake.Options{Polls: 1, PollRetryAfter: 20 * time.Millisecond})
	t.Cleanup(fake.Close)
	trustFake(t, fake)
	defs, err := descr.LoadNodeDefs(filepath.Join(dir, "nodes", "node_definitions.yaml"), descr.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	setEndpoint(t, defs, fake.URL())
	replacePlaceholders(t, defs, map[string]any{"memory": 1.5, "cpu_cores": 1})
	var ev events
	m := newManager(t, azureAuthData(fake, "azure_aci"), managerOptions{onEvent: ev.add})
	ctx := t.Context()
	if err := m.ImportNodeDefs(ctx, defs); err != nil {
		t.Fatal(err)
	}
	in, err := descr.LoadInfra(filepath.Join(dir, "infra-azure-aci-nginx.yaml"), descr.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Build(ctx, in, "")
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	rep, err := m.Get(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	addr := map[string]string{}
	nodeIDs := map[string]string{}
	for _, name := range []string{"nginx-server", "nginx-client"} {
		if len(rep[name].Instances) != 1 {
			t.Fatalf("%s has %d instances: %+v", name, len(rep[name].Instances), rep)
		}
		for nodeID, ir := range rep[name].Instances {
			if ir.State != "ready" {
				t.Errorf("%s: %s, want ready", name, ir.State)
			}
			if a, err := netip.ParseAddr(ir.ResourceAddress); err != nil || !a.IsLoopback() {
				t.Errorf("%s: address %q is no loopback address", name, ir.ResourceAddress)
			}
			addr[name], nodeIDs[name] = ir.ResourceAddress, nodeID
		}
	}
	// The server's port answers on its address (what its ports health
	// check saw).
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + net.JoinHostPort(addr["nginx-server"], "80") + "/")
	if err != nil {
		t.Fatalf("the nginx group's port 80 does not answer: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	groups := 0
	for _, r := range fake.Resources() {
		if r.Type != azure.TypeContainerGroup {
			continue
		}
		groups++
		node := r.Tags[azure.TagNodeName]
		if r.Tags[azure.TagInfraID] != res.ID || r.Tags[azure.TagNodeID] != nodeIDs[node] {
			t.Errorf("group %s: tags %v", r.Name, r.Tags)
		}
		ipa, _ := r.Properties["ipAddress"].(map[string]any)
		if ipa["type"] != "Public" || ipa["dnsNameLabel"] != r.Name || r.Name != strings.ToLower(r.Name) {
			t.Errorf("group %s: ipAddress %v, want public with its lowercase name as DNS label", r.Name, ipa)
		}
		c := r.Properties["containers"].([]any)[0].(map[string]any)["properties"].(map[string]any)
		env := map[string]string{}
		for _, v := range c["environmentVariables"].([]any) {
			m := v.(map[string]any)
			env[fmt.Sprint(m["name"])] = fmt.Sprint(m["value"])
		}
		if want := azureaci.FQDN(r.Name, "replace_with_location"); env[azureaci.EnvFQDN] != want {
			t.Errorf("group %s: %s=%q, want %q", r.Name, azureaci.EnvFQDN, env[azureaci.EnvFQDN], want)
		}
		switch node {
		case "nginx-server":
			if c["image"] != "nginx:alpine" {
				t.Errorf("server image %v", c["image"])
			}
		case "nginx-client":
			cmd := fmt.Sprint(c["command"])
			if want := "wget -O /tmp/nginx_content.html " + addr["nginx-server"] + ";"; !strings.Contains(cmd, want) {
				t.Errorf("client command %s does not fetch from the server's address (want %q)", cmd, want)
			}
			if env["message"] != "Hello World! I am the client node created by Occopus." {
				t.Errorf("client env %v", env)
			}
		default:
			t.Errorf("group %s for node %q", r.Name, node)
		}
	}
	if groups != 2 || fake.Created("containerGroups") != 2 {
		t.Errorf("%d groups at the fake, %d made; want 2", groups, fake.Created("containerGroups"))
	}
	tearDown(t, m, res.ID)
	if l := fake.Resources(); len(l) != 0 {
		t.Errorf("left at the fake after teardown: %v", names(l))
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(addr["nginx-server"], "80"), time.Second); err == nil {
		c.Close()
		t.Error("the nginx group's port still answers after teardown")
	}
	ev.check(t, fake.ClientSecret())
	for _, e := range fake.Errors() {
		t.Error(e)
	}
}
