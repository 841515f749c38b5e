package azurevm

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/resource/azure"
	"github.com/occopus-go/occopus/resource/azure/armfake"
	"github.com/occopus-go/occopus/resource/resourcetest"
)

const (
	rg       = "occopus-rg"
	password = "Adm1n-p4ss-w0rd!x"
)

// env is one fake and a handler against it.
type env struct {
	f *armfake.Fake
	h *Handler

	mu     sync.Mutex
	sleeps []time.Duration // what the handler waited for
	onWait func()          // called at each wait (before it returns)
}

// section is the resource section of the tutorials' azure_vm nodes,
// placeholders filled in.
func section(f *armfake.Fake, extra map[string]any) map[string]any {
	s := map[string]any{
		"type": "azure_vm", "endpoint": f.URL(), "resource_group": rg, "location": "westeurope",
		"vm_size": "Standard_B1s", "publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest",
		"username": "occopus", "password": password,
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

func authData(f *armfake.Fake) map[string]any {
	return map[string]any{"tenant_id": f.Tenant(), "client_id": f.ClientID(), "client_secret": f.ClientSecret(), "subscription_id": f.Subscription()}
}

func newEnv(t *testing.T, o armfake.Options, extra map[string]any) *env {
	t.Helper()
	f := armfake.New(o)
	t.Cleanup(f.Close)
	e := &env{f: f}
	h, err := newHandler(resource.Config{Resource: section(f, extra), Auth: authData(f)}, azure.Options{
		Base: f.Transport(), Authority: f.URL(), PollEvery: time.Millisecond,
		Sleep: func(ctx context.Context, d time.Duration) error {
			e.mu.Lock()
			e.sleeps = append(e.sleeps, d)
			hook := e.onWait
			e.mu.Unlock()
			if hook != nil {
				hook()
			}
			return ctx.Err()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.h = h
	t.Cleanup(func() {
		for _, v := range f.Errors() {
			t.Errorf("fake: %s", v)
		}
	})
	return e
}

const cloudInit = "#cloud-config\nruncmd:\n- ping 127.0.0.9 -c 5 > /tmp/ping-result.txt 2>&1\nwrite_files:\n- content: |\n    Hello World! I am the sender node created by Occopus.\n  path: /tmp/message.txt\n"

func (e *env) spec(name string) resource.Spec {
	return resource.Spec{InfraID: uuid.NewString(), NodeID: uuid.NewString(), NodeName: name, StoreID: uuid.NewString(),
		Resource: e.h.defaults, Context: resource.Context{UserData: cloudInit}}
}

// puts returns the decoded bodies of the PUTs to a resource type.
func (e *env) puts(t *testing.T, typ string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, r := range e.f.Requests() {
		if r.Method == "PUT" && strings.Contains(strings.ToLower(r.Path), "/"+strings.ToLower(typ)+"/") {
			var m map[string]any
			if err := json.Unmarshal(r.Body, &m); err != nil {
				t.Fatalf("PUT %s: body is not JSON: %v", r.Path, err)
			}
			out = append(out, m)
		}
	}
	return out
}

func get(v any, path ...string) any {
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	return v
}

func (e *env) live(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, r := range e.f.Resources() {
		out = append(out, r.Type+"/"+r.Name)
	}
	return out
}

func TestCreateSendsWhatOccopusSends(t *testing.T) {
	e := newEnv(t, armfake.Options{}, nil)
	ctx := t.Context()
	spec := e.spec("ping-sender")
	hd, err := e.h.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	vmName := name(spec.InfraID, spec.NodeName, spec.NodeID)
	if want := "occopus-" + spec.InfraID[:8] + "-ping-sender-" + spec.NodeID[:8]; vmName != want {
		t.Errorf("VM name %q, want %q", vmName, want)
	}
	if want := e.h.s.ID(azure.TypeVM, vmName); hd.ID != want {
		t.Errorf("handle %q, want %q", hd.ID, want)
	}
	vms := e.puts(t, "virtualMachines")
	if len(vms) != 1 {
		t.Fatalf("%d VM PUTs, want 1", len(vms))
	}
	vm := vms[0]
	cd, err := base64.StdEncoding.DecodeString(fmt.Sprint(get(vm, "properties", "osProfile", "customData")))
	if err != nil || string(cd) != cloudInit {
		t.Errorf("customData decodes to %q (%v), want the rendered cloud-init %q", cd, err, cloudInit)
	}
	checks := []struct {
		path []string
		want any
	}{
		{[]string{"location"}, "westeurope"},
		{[]string{"properties", "hardwareProfile", "vmSize"}, "Standard_B1s"},
		{[]string{"properties", "storageProfile", "imageReference", "publisher"}, "Canonical"},
		{[]string{"properties", "storageProfile", "imageReference", "offer"}, "ubuntu-24_04-lts"},
		{[]string{"properties", "storageProfile", "imageReference", "sku"}, "server"},
		{[]string{"properties", "storageProfile", "imageReference", "version"}, "latest"},
		{[]string{"properties", "storageProfile", "osDisk", "name"}, vmName + "-osdisk"},
		{[]string{"properties", "storageProfile", "osDisk", "deleteOption"}, "Delete"},
		{[]string{"properties", "osProfile", "adminUsername"}, "occopus"},
		{[]string{"properties", "osProfile", "adminPassword"}, password},
		{[]string{"properties", "osProfile", "computerName"}, vmName},
		{[]string{"properties", "osProfile", "linuxConfiguration", "disablePasswordAuthentication"}, false},
	}
	for _, c := range checks {
		if got := get(vm, c.path...); got != c.want {
			t.Errorf("VM %s = %v, want %v", strings.Join(c.path, "."), got, c.want)
		}
	}
	nicRef := get(vm, "properties", "networkProfile", "networkInterfaces").([]any)[0]
	if got := get(nicRef, "id"); got != e.h.s.ID(azure.TypeNIC, vmName+"-nic") {
		t.Errorf("VM's NIC %v", got)
	}
	// Every tagged resource carries the four tags.
	for _, typ := range []string{"virtualMachines", "networkInterfaces", "virtualNetworks"} {
		for _, b := range e.puts(t, typ) {
			if strings.Contains(fmt.Sprint(get(b, "properties", "addressPrefix")), "/") {
				continue // a subnet: ARM takes no tags there
			}
			tags, _ := b["tags"].(map[string]any)
			if tags[azure.TagInfraID] != spec.InfraID || tags[azure.TagNodeID] != spec.NodeID || tags[azure.TagNodeName] != "ping-sender" ||
				tags[azure.TagStoreID] != spec.StoreID {
				t.Errorf("%s tags %v", typ, tags)
			}
		}
	}
	if got := get(e.puts(t, "virtualNetworks")[0], "properties", "addressSpace", "addressPrefixes"); fmt.Sprint(got) != "[10.0.0.0/16]" {
		t.Errorf("vnet address space %v", got)
	}
	if got := get(e.puts(t, "subnets")[0], "properties", "addressPrefix"); got != "10.0.0.0/24" {
		t.Errorf("subnet %v", got)
	}
	if n := len(e.puts(t, "publicIPAddresses")); n != 0 {
		t.Errorf("%d public IPs made without public_ip_needed", n)
	}
	for _, r := range e.f.Requests() {
		if !strings.HasPrefix(r.Path, "/subscriptions/") {
			continue
		}
		if r.Query.Get("api-version") == "" {
			t.Errorf("%s %s without api-version", r.Method, r.Path)
		}
		if body := string(r.Body); strings.Contains(body, e.f.ClientSecret()) {
			t.Errorf("%s %s carries the client secret", r.Method, r.Path)
		}
	}
	if sc := e.f.Scopes(); len(sc) != 1 || sc[0] != e.f.URL()+"/.default" {
		t.Errorf("token scopes %v, want one token for %s/.default", sc, e.f.URL())
	}

	st, err := e.h.State(ctx, hd)
	if err != nil || st != resource.StateRunning {
		t.Errorf("State = %s, %v", st, err)
	}
	a, err := e.h.Addresses(ctx, hd)
	if err != nil {
		t.Fatal(err)
	}
	if ip, err := netip.ParseAddr(a.Private); err != nil || !ip.IsLoopback() || a.Public != a.Private {
		t.Errorf("Addresses = %+v, want the NIC's loopback private IP for both", a)
	}

	before := len(e.f.Requests())
	if err := e.h.Destroy(ctx, hd); err != nil {
		t.Fatal(err)
	}
	if l := e.live(t); len(l) != 0 {
		t.Errorf("left at the fake after Destroy: %v", l)
	}
	if g := e.f.ResourceGroups(); !slices.Contains(g, rg) {
		t.Errorf("resource group gone: %v", g)
	}
	var order []string
	for _, r := range e.f.Requests()[before:] {
		if r.Method == "DELETE" && r.Status == 202 {
			seg := strings.Split(r.Path, "/")
			order = append(order, seg[len(seg)-2])
		}
	}
	if fmt.Sprint(order) != "[virtualMachines networkInterfaces subnets virtualNetworks]" {
		t.Errorf("deletes in order %v", order)
	}
	if err := e.h.Destroy(ctx, hd); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

func TestPublicIP(t *testing.T) {
	e := newEnv(t, armfake.Options{}, map[string]any{"public_ip_needed": true, "password": nil, "ssh_key_data": "ssh-ed25519 AAAAC3Nza test@host"})
	ctx := t.Context()
	spec := e.spec("web")
	hd, err := e.h.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	pip := e.puts(t, "publicIPAddresses")
	if len(pip) != 1 || get(pip[0], "sku", "name") != "Standard" || get(pip[0], "properties", "publicIPAllocationMethod") != "Static" {
		t.Fatalf("public IP PUTs %v, want one Standard static", pip)
	}
	nsg := e.puts(t, "networkSecurityGroups")
	if len(nsg) != 1 {
		t.Fatalf("%d NSGs, want 1", len(nsg))
	}
	var rules []string
	for _, r := range get(nsg[0], "properties", "securityRules").([]any) {
		rules = append(rules, fmt.Sprintf("%v/%v", get(r, "properties", "protocol"), get(r, "properties", "destinationPortRange")))
	}
	if fmt.Sprint(rules) != "[Icmp/* Tcp/22]" {
		t.Errorf("NSG rules %v", rules)
	}
	vm := e.puts(t, "virtualMachines")[0]
	if get(vm, "properties", "osProfile", "adminPassword") != nil || get(vm, "properties", "osProfile", "linuxConfiguration", "disablePasswordAuthentication") != true {
		t.Errorf("key login: %v", get(vm, "properties", "osProfile"))
	}
	keys := get(vm, "properties", "osProfile", "linuxConfiguration", "ssh", "publicKeys").([]any)
	if get(keys[0], "path") != "/home/occopus/.ssh/authorized_keys" || get(keys[0], "keyData") != "ssh-ed25519 AAAAC3Nza test@host" {
		t.Errorf("ssh keys %v", keys)
	}
	a, err := e.h.Addresses(ctx, hd)
	if err != nil {
		t.Fatal(err)
	}
	pipRes, _ := e.f.Get(e.h.s.ID(azure.TypePublicIP, name(spec.InfraID, "web", spec.NodeID)+"-pubip"))
	if a.Public == a.Private || a.Public != pipRes.Properties["ipAddress"] {
		t.Errorf("Addresses %+v, want the public IP %v apart from the private one", a, pipRes.Properties["ipAddress"])
	}
	if err := e.h.Destroy(ctx, hd); err != nil {
		t.Fatal(err)
	}
	if l := e.live(t); len(l) != 0 {
		t.Errorf("left at the fake: %v", l)
	}
}

// A lost answer to the VM's PUT: the Caller tries again, ARM updates
// the VM of that name, and there is one VM.
func TestLostAnswer(t *testing.T) {
	e := newEnv(t, armfake.Options{}, nil)
	e.f.LoseAnswer("PUT", "virtualMachines", 1)
	hd, err := e.h.Create(t.Context(), e.spec("node"))
	if err != nil {
		t.Fatal(err)
	}
	if n := e.f.Created("virtualMachines"); n != 1 {
		t.Errorf("%d VMs made, want 1", n)
	}
	lost, puts := 0, 0
	for _, r := range e.f.Requests() {
		if r.Method == "PUT" && strings.Contains(r.Path, "virtualMachines") {
			puts++
			if r.Lost {
				lost++
			}
		}
	}
	if lost != 1 || puts != 2 {
		t.Errorf("%d VM PUTs, %d lost; want 2 and 1", puts, lost)
	}
	if err := e.h.Destroy(t.Context(), hd); err != nil {
		t.Fatal(err)
	}
}

// Throttling and server trouble are retried by the Caller (after the
// Retry-After ARM asks for), not by the SDK.
func TestThrottling(t *testing.T) {
	for _, tc := range []struct {
		status, every int
	}{{429, 3}, {503, 4}, {500, 5}} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			e := newEnv(t, armfake.Options{}, nil)
			e.f.Throttle(tc.every, tc.status, 7)
			ctx := t.Context()
			hd, err := e.h.Create(ctx, e.spec("node"))
			if err != nil {
				t.Fatal(err)
			}
			if st, err := e.h.State(ctx, hd); err != nil || st != resource.StateRunning {
				t.Fatalf("State %s, %v", st, err)
			}
			if _, err := e.h.Addresses(ctx, hd); err != nil {
				t.Fatal(err)
			}
			if err := e.h.Destroy(ctx, hd); err != nil {
				t.Fatal(err)
			}
			throttled := 0
			for _, r := range e.f.Requests() {
				if r.Status == tc.status {
					throttled++
				}
			}
			if throttled == 0 {
				t.Fatal("no request was throttled")
			}
			e.mu.Lock()
			waitedRetryAfter := slices.Contains(e.sleeps, 7*time.Second)
			e.mu.Unlock()
			if tc.status != 500 && !waitedRetryAfter {
				t.Errorf("never waited the 7 s of Retry-After: %v", e.sleeps)
			}
			if n := e.f.Created("virtualMachines"); n != 1 {
				t.Errorf("%d VMs made", n)
			}
			if l := e.live(t); len(l) != 0 {
				t.Errorf("left at the fake: %v", l)
			}
		})
	}
}

// A permanent error fails Create cleanly: Azure's code and message,
// node, backend and endpoint in the error, nothing left, no secret.
func TestPermanentErrors(t *testing.T) {
	cases := []struct {
		name    string
		inject  func(f *armfake.Fake)
		want    []string
		secrets bool // the fake's answer carries the secrets: they must be scrubbed
	}{
		{"quota exceeded in the VM's operation", func(f *armfake.Fake) {
			f.FailNext("virtualMachines", 1, "QuotaExceeded", "Operation could not be completed as it results in exceeding approved standardBSFamily Cores quota.")
		}, []string{"QuotaExceeded", "exceeding approved standardBSFamily Cores quota", "create VM occopus-"}, false},
		{"invalid parameter on the NIC", func(f *armfake.Fake) {
			f.Reject("PUT", "networkInterfaces", 1, 400, "InvalidParameter", "The value of parameter ipConfigurations is invalid. Password "+password+" secret "+armfake.DefaultClientSecret)
		}, []string{"InvalidParameter", "(HTTP 400)", "PUT https://"}, true},
		{"image not found", func(f *armfake.Fake) {
			f.Reject("PUT", "virtualMachines", 1, 404, "PlatformImageNotFound", "The platform image 'Canonical:ubuntu:server:latest' is not available.")
		}, []string{"PlatformImageNotFound", "(HTTP 404)"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, armfake.Options{}, nil)
			tc.inject(e.f)
			spec := e.spec("node")
			_, err := e.h.Create(t.Context(), spec)
			if err == nil {
				t.Fatal("Create succeeded")
			}
			var ce *azure.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is no *cloudapi.Error: %v", err, err)
			}
			msg := err.Error()
			for _, w := range append(tc.want, "azure_vm: ", "for node "+spec.NodeID, e.f.URL()) {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
			if strings.Contains(msg, password) || strings.Contains(msg, e.f.ClientSecret()) {
				t.Errorf("error holds a secret:\n%s", msg)
			}
			if tc.secrets && !strings.Contains(msg, "[REDACTED]") {
				t.Errorf("error does not show the scrubbed secrets:\n%s", msg)
			}
			if l := e.live(t); len(l) != 0 {
				t.Errorf("left at the fake after a failed Create: %v", l)
			}
			if _, found, err := e.h.Find(t.Context(), spec.InfraID, spec.NodeID); found || err != nil {
				t.Errorf("Find after a failed Create: %v %v", found, err)
			}
		})
	}
}

func TestBadCredentials(t *testing.T) {
	f := armfake.New(armfake.Options{})
	t.Cleanup(f.Close)
	ad := authData(f)
	ad["client_secret"] = "wrong-secret-value-42"
	h, err := newHandler(resource.Config{Resource: section(f, nil), Auth: ad}, azure.Options{Base: f.Transport(), Authority: f.URL()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.Create(t.Context(), resource.Spec{InfraID: "i1", NodeID: "n1", NodeName: "x", Resource: h.defaults})
	if err == nil {
		t.Fatal("Create with a wrong secret succeeded")
	}
	msg := err.Error()
	for _, w := range []string{"invalid_client", "AADSTS7000215", "oauth2/v2.0/token", "(HTTP 401)"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error lacks %q: %s", w, msg)
		}
	}
	if strings.Contains(msg, "wrong-secret-value-42") {
		t.Errorf("error holds the secret: %s", msg)
	}
	for _, r := range f.Requests() {
		if r.Method == "PUT" {
			t.Errorf("a PUT went out without a token: %s", r.Path)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	f := armfake.New(armfake.Options{})
	t.Cleanup(f.Close)
	cases := []struct {
		name string
		res  map[string]any
		auth map[string]any
		want string
	}{
		{"no credentials", section(f, nil), nil, "no credentials for endpoint"},
		{"credentials lacking", section(f, nil), map[string]any{"tenant_id": "t", "client_id": "c"}, "lack client_secret, subscription_id"},
		{"plain http", section(f, map[string]any{"endpoint": "http://management.azure.com"}), authData(f), "is not the https URL"},
		{"placeholder endpoint", section(f, map[string]any{"endpoint": "replace_with_endpoint"}), authData(f), "is not the https URL"},
		{"no resource group", section(f, map[string]any{"resource_group": nil}), authData(f), "has no resource_group"},
		{"a tenant that is no id", section(f, nil), map[string]any{"tenant_id": "a/b", "client_id": "c", "client_secret": "s", "subscription_id": "x"}, "tenant_id \"a/b\" is not an id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(resource.Config{Resource: tc.res, Auth: tc.auth})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want %q", err, tc.want)
			}
		})
	}
	if n := len(f.Requests()); n != 0 {
		t.Errorf("New made %d requests", n)
	}
}

// Create refuses what it cannot do before any call.
func TestCreateChecksFirst(t *testing.T) {
	e := newEnv(t, armfake.Options{}, nil)
	cases := []struct {
		name  string
		extra map[string]any
		ud    int
		want  string
	}{
		{"no login", map[string]any{"password": nil}, 0, "needs password or ssh_key_data"},
		{"nic_name with a public IP", map[string]any{"nic_name": "mynic", "public_ip_needed": "yes"}, 0, "nic_name mynic is the user's"},
		{"public_ip_needed placeholder", map[string]any{"public_ip_needed": "replace_with_yes"}, 0, "is not yes/no"},
		{"custom data too big", nil, MaxCustomData + 1, "Azure takes at most 65535 bytes"},
		{"a required key", map[string]any{"vm_size": nil}, 0, `missing required key "vm_size"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := e.spec("n")
			spec.Resource = section(e.f, tc.extra)
			spec.Context.UserData = strings.Repeat("x", tc.ud)
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

// Cancelling ctx while ARM builds the VM stops the wait at once and
// removes what was made.
func TestCancelRollsBack(t *testing.T) {
	e := newEnv(t, armfake.Options{Polls: 5}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	e.onWait = func() {
		for _, r := range e.f.Requests() {
			if r.Method == "PUT" && strings.Contains(r.Path, "virtualMachines") {
				cancel()
			}
		}
	}
	start := time.Now()
	_, err := e.h.Create(ctx, e.spec("node"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Create: %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Create took %s after the cancel", d)
	}
	// The cancel came at the first wait after the VM's PUT: its
	// operation was never polled before the rollback's deletes.
	reqs := e.f.Requests()
	put := slices.IndexFunc(reqs, func(r armfake.Request) bool { return r.Method == "PUT" && strings.Contains(r.Path, "virtualMachines") })
	del := slices.IndexFunc(reqs, func(r armfake.Request) bool { return r.Method == "DELETE" })
	if put < 0 || del < put {
		t.Fatalf("VM PUT at %d, first DELETE at %d", put, del)
	}
	for _, r := range reqs[put+1 : del] {
		t.Errorf("after the cancel, before the rollback: %s %s", r.Method, r.Path)
	}
	if l := e.live(t); len(l) != 0 {
		t.Errorf("left at the fake after a cancelled Create: %v", l)
	}
}

// The user's network: vnet_name (and subnet_name) are used, never
// deleted; a subnet made in the user's network is.
func TestUserNetwork(t *testing.T) {
	cases := []struct {
		name       string
		extra      map[string]any
		wantSubnet string // prefix of the subnet the NIC is in
		wantErr    string
	}{
		{"vnet_name: a free /24 is made", map[string]any{"vnet_name": "corp"}, "10.1.1.0/24", ""},
		{"vnet_name and subnet_name: used as they are", map[string]any{"vnet_name": "corp", "subnet_name": "default"}, "10.1.0.0/24", ""},
		{"unknown vnet_name", map[string]any{"vnet_name": "nope"}, "", `vnet_name "nope": no virtual network of that name`},
		{"unknown subnet_name", map[string]any{"vnet_name": "corp", "subnet_name": "nope"}, "", `subnet_name "nope": virtual network corp has no subnet`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, armfake.Options{}, tc.extra)
			e.f.AddVNet(rg, "corp", "westeurope", []string{"10.1.0.0/16"}, map[string]string{"default": "10.1.0.0/24"})
			before := e.live(t)
			hd, err := e.h.Create(t.Context(), e.spec("n"))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Create: %v, want %q", err, tc.wantErr)
				}
				if l := e.live(t); !slices.Equal(l, before) {
					t.Errorf("resources %v, want %v", l, before)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			nic := e.puts(t, "networkInterfaces")[0]
			subnetID := fmt.Sprint(get(get(nic, "properties", "ipConfigurations").([]any)[0], "properties", "subnet", "id"))
			sn, ok := e.f.Get(subnetID)
			if !ok || sn.Properties["addressPrefix"] != tc.wantSubnet {
				t.Errorf("NIC in subnet %s (%v), want prefix %s", subnetID, sn.Properties["addressPrefix"], tc.wantSubnet)
			}
			for _, r := range e.f.Requests() {
				if r.Method == "PUT" && strings.HasSuffix(r.Path, "/virtualNetworks/corp") {
					t.Errorf("the user's vnet was written: %s", r.Path)
				}
			}
			if err := e.h.Destroy(t.Context(), hd); err != nil {
				t.Fatal(err)
			}
			if l := e.live(t); !slices.Equal(l, before) {
				t.Errorf("after Destroy %v, want the user's %v", l, before)
			}
		})
	}
}

// nic_name: the user's NIC is used and survives Destroy.
func TestNICName(t *testing.T) {
	e := newEnv(t, armfake.Options{}, map[string]any{"nic_name": "mynic-x-nic"})
	ctx := t.Context()
	e.f.AddVNet(rg, "corp", "westeurope", []string{"10.1.0.0/16"}, map[string]string{"default": "10.1.0.0/24"})
	// The user's NIC, made beforehand with the SDK.
	if _, err := e.h.ensureNIC(ctx, "", "mynic-x", "westeurope", e.h.s.SubnetID("corp", "default"), "", "", nil, new([]string)); err != nil {
		t.Fatal(err)
	}
	userNIC := e.h.s.ID(azure.TypeNIC, "mynic-x-nic")
	hd, err := e.h.Create(ctx, e.spec("n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := get(get(e.puts(t, "virtualMachines")[0], "properties", "networkProfile", "networkInterfaces").([]any)[0], "id"); got != userNIC {
		t.Errorf("VM's NIC %v, want %s", got, userNIC)
	}
	if err := e.h.Destroy(ctx, hd); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.f.Get(userNIC); !ok {
		t.Error("the user's NIC was deleted")
	}
}

// What a failed rollback leaves is found by tag (Find, List) and
// removed by Destroy of the handle found.
func TestLeftoversFoundByTag(t *testing.T) {
	e := newEnv(t, armfake.Options{}, nil)
	ctx := t.Context()
	spec := e.spec("worker")
	e.f.FailNext("virtualMachines", 1, "AllocationFailed", "Allocation failed. We do not have sufficient capacity.")
	e.f.Reject("DELETE", "networkInterfaces", 100, 500, "InternalServerError", "Try again later.")
	if _, err := e.h.Create(ctx, spec); err == nil || !strings.Contains(err.Error(), "rollback incomplete") {
		t.Fatalf("Create: %v, want a failure with an incomplete rollback", err)
	}
	left := e.live(t)
	if len(left) == 0 {
		t.Fatal("the rollback left nothing: the test needs leftovers")
	}
	hd, found, err := e.h.Find(ctx, spec.InfraID, spec.NodeID)
	if err != nil || !found {
		t.Fatalf("Find: %v %v", found, err)
	}
	owned, err := e.h.List(ctx, spec.InfraID)
	if err != nil || len(owned) != 1 || owned[0].NodeID != spec.NodeID || owned[0].NodeName != "worker" || owned[0].Handle.ID != hd.ID {
		t.Fatalf("List = %+v, %v", owned, err)
	}
	if st, err := e.h.State(ctx, hd); !errors.Is(err, resource.ErrNotFound) {
		t.Errorf("State of leftovers without a VM: %s, %v; want ErrNotFound", st, err)
	}
	// The sweep for orphans finds them too, with the store that made them.
	all, err := e.h.ListAll(ctx)
	if err != nil || len(all) != 1 || all[0].Handle.ID != hd.ID || all[0].InfraID != spec.InfraID || all[0].StoreID != spec.StoreID {
		t.Fatalf("ListAll = %+v, %v; want the leftovers of node %s, store %s", all, err, spec.NodeID, spec.StoreID)
	}
	e.f.ClearInjections()
	if err := e.h.Destroy(ctx, hd); err != nil {
		t.Fatal(err)
	}
	if l := e.live(t); len(l) != 0 {
		t.Errorf("left after Destroy: %v (was %v)", l, left)
	}
	if owned, _ := e.h.List(ctx, spec.InfraID); len(owned) != 0 {
		t.Errorf("List after Destroy: %+v", owned)
	}
}

func TestStateOf(t *testing.T) {
	cases := []struct {
		prov  string
		codes []string
		want  resource.State
	}{
		{"Creating", []string{"ProvisioningState/creating"}, resource.StatePending},
		{"Updating", nil, resource.StatePending},
		{"Succeeded", []string{"ProvisioningState/succeeded", "PowerState/running"}, resource.StateRunning},
		{"Succeeded", []string{"ProvisioningState/succeeded", "PowerState/starting"}, resource.StatePending},
		{"Succeeded", []string{"ProvisioningState/succeeded"}, resource.StatePending},
		{"Succeeded", []string{"PowerState/deallocating"}, resource.StateShutdown},
		{"Succeeded", []string{"PowerState/deallocated"}, resource.StateShutdown},
		{"Succeeded", []string{"PowerState/stopping"}, resource.StateShutdown},
		{"Succeeded", []string{"PowerState/stopped"}, resource.StateShutdown},
		{"Deleting", nil, resource.StateShutdown},
		{"Failed", []string{"ProvisioningState/failed/OSProvisioningTimedOut"}, resource.StateFailed},
		{"Canceled", nil, resource.StateFailed},
		{"Succeeded", []string{"PowerState/hibernated"}, resource.StateUnknown},
		{"Migrating", nil, resource.StatePending},
		{"SomethingNew", nil, resource.StateUnknown},
	}
	for _, tc := range cases {
		if got := StateOf(tc.prov, tc.codes); got != tc.want {
			t.Errorf("StateOf(%s, %v) = %s, want %s", tc.prov, tc.codes, got, tc.want)
		}
	}
}

func TestConformance(t *testing.T) {
	e := newEnv(t, armfake.Options{}, nil)
	resourcetest.Run(t, e.h, func(t *testing.T) resource.Spec { return e.spec("node") },
		resourcetest.WithTimeout(10*time.Second),
		resourcetest.WithKill(func(t *testing.T, hd resource.Handle) {
			if !e.f.Kill(hd.ID) {
				t.Fatalf("no VM %s at the fake", hd.ID)
			}
		}))
}

// New trusts the system store: with SSL_CERT_FILE naming the fake's CA
// and AZURE_AUTHORITY_HOST the fake, the registered constructor works
// with no test hook (operations end at once: no waits).
func TestSystemTrustAndAuthorityHost(t *testing.T) {
	f := armfake.New(armfake.Options{Polls: -1})
	t.Cleanup(f.Close)
	ca, err := armfake.WriteCAFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", ca)
	t.Setenv(azure.EnvAuthorityHost, f.URL())
	h, err := resource.New(resource.Config{Resource: section(f, nil), Auth: authData(f)})
	if err != nil {
		t.Fatal(err)
	}
	spec := resource.Spec{InfraID: uuid.NewString(), NodeID: uuid.NewString(), NodeName: "n", Resource: section(f, nil)}
	hd, err := h.Create(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Destroy(t.Context(), hd); err != nil {
		t.Fatal(err)
	}
	for _, v := range f.Errors() {
		t.Error(v)
	}
}

// An OS disk the VM did not take along (deleteOption not honoured, an
// older VM) is deleted by Destroy after the VM.
func TestDestroyDeletesDisks(t *testing.T) {
	e := newEnv(t, armfake.Options{KeepDisks: true}, nil)
	spec := e.spec("n")
	hd, err := e.h.Create(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	disk := e.h.s.ID(azure.TypeDisk, name(spec.InfraID, "n", spec.NodeID)+"-osdisk")
	if _, ok := e.f.Get(disk); !ok {
		t.Fatalf("no OS disk %s at the fake", disk)
	}
	if err := e.h.Destroy(t.Context(), hd); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.f.Get(disk); ok {
		t.Error("the OS disk was left")
	}
	if l := e.live(t); len(l) != 0 {
		t.Errorf("left: %v", l)
	}
}
