package azure

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v7"

	"github.com/occopus-go/occopus/internal/cloudapi"
	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/resource/azure/armfake"
)

func TestUniqueName(t *testing.T) {
	const infra, node = "3f2a9c1e-0000-4000-8000-000000000001", "b7d4e2aa-1111-4111-8111-111111111111"
	cases := []struct {
		infraName, nodeName string
		max                 int
		lower               bool
		want                string
	}{
		{"", "ping-sender", 59, false, "occopus-3f2a9c1e-ping-sender-b7d4e2aa"},
		// Occopus's full form: infra name and node name cut to 18.
		{"azure-ping-infra-with-a-long-name", "ping-receiver-with-long-name", 64, false, "occopus-azure-ping-infra-w-3f2a9c1e-ping-receiver-with-b7d4e2aa"},
		// Cut to fit: the infra name goes first, the ids stay whole.
		{"azure-ping-infra-with-a-long-name", "ping-receiver-with-long-name", 59, false, "occopus-azure-ping-inf-3f2a9c1e-ping-receiver-with-b7d4e2aa"},
		{"", "a-very-long-node-name-indeed", 40, false, "occopus-3f2a9c1e-a-very-long-no-b7d4e2aa"},
		// Characters ARM refuses become single hyphens; lowercase for ACI.
		{"My_Infra!!", "Nginx Server", 59, true, "occopus-my-infra-3f2a9c1e-nginx-server-b7d4e2aa"},
		{"", "web.1", 59, false, "occopus-3f2a9c1e-web-1-b7d4e2aa"},
	}
	for _, tc := range cases {
		got := UniqueName(tc.infraName, infra, tc.nodeName, node, tc.max, tc.lower)
		if got != tc.want {
			t.Errorf("UniqueName(%q, %q, %d) = %q, want %q", tc.infraName, tc.nodeName, tc.max, got, tc.want)
		}
		if len(got) > tc.max || strings.Contains(got, "--") || strings.HasSuffix(got, "-") {
			t.Errorf("%q breaks ARM's name rules (max %d)", got, tc.max)
		}
	}
	// Two nodes never share a name, however long their names.
	a := UniqueName("x", infra, strings.Repeat("n", 80), node, 30, false)
	b := UniqueName("x", infra, strings.Repeat("n", 80), "c8"+node[2:], 30, false)
	if a == b {
		t.Errorf("two node ids, one name %q", a)
	}
}

func TestCloudsFor(t *testing.T) {
	cases := []struct {
		name, endpoint, authority, env string
		wantAudience, wantAuthority    string
		wantNoDiscovery                bool
		wantErr                        string
	}{
		{name: "public cloud", endpoint: "https://management.azure.com", wantAudience: "https://management.core.windows.net/",
			wantAuthority: "https://login.microsoftonline.com/"},
		{name: "public cloud, trailing slash", endpoint: "https://management.azure.com/", wantAudience: "https://management.core.windows.net/",
			wantAuthority: "https://login.microsoftonline.com/"},
		{name: "US Government", endpoint: "https://management.usgovcloudapi.net", env: "https://login.microsoftonline.us",
			wantAudience: "https://management.core.usgovcloudapi.net/", wantAuthority: "https://login.microsoftonline.us/"},
		{name: "China", endpoint: "https://management.chinacloudapi.cn", authority: "https://login.chinacloudapi.cn/",
			wantAudience: "https://management.core.chinacloudapi.cn/", wantAuthority: "https://login.chinacloudapi.cn/"},
		{name: "a private cloud: its own audience, no instance discovery", endpoint: "https://arm.stack.example:30024",
			env: "https://adfs.stack.example", wantAudience: "https://arm.stack.example:30024", wantAuthority: "https://adfs.stack.example/", wantNoDiscovery: true},
		{name: "the given authority wins over the variable", endpoint: "https://management.azure.com", authority: "https://login.microsoftonline.com",
			env: "https://elsewhere.example", wantAudience: "https://management.core.windows.net/", wantAuthority: "https://login.microsoftonline.com/"},
		{name: "http endpoint", endpoint: "http://management.azure.com", wantErr: "is not the https URL"},
		{name: "placeholder endpoint", endpoint: "replace_with_endpoint", wantErr: "is not the https URL"},
		{name: "http authority", endpoint: "https://management.azure.com", env: "http://login.example", wantErr: "AZURE_AUTHORITY_HOST"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvAuthorityHost, tc.env)
			c, err := CloudsFor(tc.endpoint, tc.authority)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rm := c.ARM.Services["resourceManager"]
			if rm.Audience != tc.wantAudience || rm.Endpoint != strings.TrimRight(tc.endpoint, "/") {
				t.Errorf("ARM %+v, want audience %s", rm, tc.wantAudience)
			}
			if c.Entra.ActiveDirectoryAuthorityHost != tc.wantAuthority || len(c.Entra.Services) != 0 {
				t.Errorf("Entra %+v, want authority %s and nothing else", c.Entra, tc.wantAuthority)
			}
			if c.DisableInstanceDiscovery != tc.wantNoDiscovery {
				t.Errorf("DisableInstanceDiscovery %v", c.DisableInstanceDiscovery)
			}
		})
	}
}

func TestFreePrefix(t *testing.T) {
	cases := []struct {
		space, used []string
		want, err   string
	}{
		{[]string{"10.1.0.0/16"}, []string{"10.1.0.0/24"}, "10.1.1.0/24", ""},
		{[]string{"10.1.0.0/16"}, []string{"10.1.0.0/23", "10.1.2.0/25"}, "10.1.3.0/24", ""},
		{[]string{"10.1.0.0/26"}, nil, "10.1.0.0/26", ""},
		{[]string{"10.1.0.0/24"}, []string{"10.1.0.128/25"}, "", "no free /24"},
		{[]string{"192.168.0.0/24", "10.9.0.0/16"}, []string{"192.168.0.0/24"}, "10.9.0.0/24", ""},
	}
	for _, tc := range cases {
		got, err := FreePrefix(tc.space, tc.used)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("FreePrefix(%v, %v) = %q, %v; want %q", tc.space, tc.used, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("FreePrefix(%v, %v) = %q, %v; want %q", tc.space, tc.used, got, err, tc.want)
		}
	}
}

func TestYesNoAndNumber(t *testing.T) {
	for in, want := range map[any]bool{true: true, "yes": true, "True": true, "no": false, false: false, "": false, 1: true} {
		var y YesNo
		if err := y.DecodeSetting("p", in); err != nil || bool(y) != want {
			t.Errorf("YesNo(%v) = %v, %v", in, y, err)
		}
	}
	var y YesNo
	if err := y.DecodeSetting("p", "replace_with_true"); err == nil {
		t.Error("a placeholder decoded as a flag")
	}
	for in, want := range map[any]float64{1: 1, 1.5: 1.5, "2": 2, "0.5": 0.5} {
		var n Number
		if err := n.DecodeSetting("p", in); err != nil || float64(n) != want {
			t.Errorf("Number(%v) = %v, %v", in, n, err)
		}
	}
	for _, in := range []any{"replace_with_memory", 0, -1, "lots"} {
		var n Number
		if err := n.DecodeSetting("resource.memory", in); err == nil || !strings.Contains(err.Error(), "is not a positive number") {
			t.Errorf("Number(%v): %v", in, err)
		}
	}
}

// session against a fake, with waits recorded.
func session(t *testing.T, o armfake.Options) (*Session, *armfake.Fake, *[]time.Duration) {
	t.Helper()
	f := armfake.New(o)
	t.Cleanup(f.Close)
	var waits []time.Duration
	s, err := NewSession("azure_vm", resource.Config{
		Resource: map[string]any{"endpoint": f.URL(), "resource_group": "rg1"},
		Auth:     map[string]any{"tenant_id": f.Tenant(), "client_id": f.ClientID(), "client_secret": f.ClientSecret(), "subscription_id": f.Subscription()},
	}, Options{Base: f.Transport(), Authority: f.URL(), PollEvery: 3 * time.Millisecond,
		Sleep: func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return ctx.Err() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, v := range f.Errors() {
			t.Errorf("fake: %s", v)
		}
	})
	return s, f, &waits
}

func TestAwaitPollsAndHonoursRetryAfter(t *testing.T) {
	s, f, waits := session(t, armfake.Options{Polls: 3, PollRetryAfter: 4 * time.Second})
	ctx := t.Context()
	if err := s.EnsureGroup(ctx, "westeurope", "n"); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureGroup(ctx, "westeurope", "n"); err != nil {
		t.Fatal(err)
	}
	_, err := Await(ctx, s, "create nsg", "n", func(ctx context.Context) (*runtime.Poller[armnetwork.SecurityGroupsClientCreateOrUpdateResponse], error) {
		return s.NSGs.BeginCreateOrUpdate(ctx, "rg1", "nsg1", armnetwork.SecurityGroup{Location: to.Ptr("westeurope")}, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	// The operation stays in progress for 3 polls and asks for 4 s each
	// time, in its first answer too: four waits of 4 s, not the 3 ms of
	// PollEvery.
	if want := []time.Duration{4 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}; !slices.Equal(*waits, want) {
		t.Errorf("waits %v, want %v", *waits, want)
	}
	gets := 0
	for _, r := range f.Requests() {
		if strings.HasSuffix(r.Path, "/resourcegroups/rg1") && r.Method == "GET" {
			gets++
		}
	}
	if gets != 1 {
		t.Errorf("the resource group was asked about %d times, want once", gets)
	}
	if g := f.ResourceGroups(); !slices.Equal(g, []string{"rg1"}) {
		t.Errorf("groups %v", g)
	}
}

func TestTaggedPagesAndFilters(t *testing.T) {
	s, f, _ := session(t, armfake.Options{PageSize: 2, Polls: -1})
	ctx := t.Context()
	if err := s.EnsureGroup(ctx, "westeurope", ""); err != nil {
		t.Fatal(err)
	}
	// A missing group holds nothing (no error).
	s.ResourceGroup = "nope"
	if got, err := s.Tagged(ctx, "list", "", TagInfraID, "i1"); err != nil || len(got) != 0 {
		t.Fatalf("Tagged in a missing group: %v %v", got, err)
	}
	s.ResourceGroup = "rg1"
	for i := range 5 {
		infra := "i1"
		if i == 4 {
			infra = "i2"
		}
		_, err := Await(ctx, s, "create", "", func(ctx context.Context) (*runtime.Poller[armnetwork.SecurityGroupsClientCreateOrUpdateResponse], error) {
			return s.NSGs.BeginCreateOrUpdate(ctx, "rg1", fmt.Sprintf("nsg%d", i), armnetwork.SecurityGroup{Location: to.Ptr("westeurope"),
				Tags: Tags(infra, fmt.Sprintf("node-%d", i%2), "web", "")}, nil)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Tagged(ctx, "list", "", TagInfraID, "i1")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range got {
		names = append(names, g.Name)
	}
	if !slices.Equal(names, []string{"nsg0", "nsg1", "nsg2", "nsg3"}) {
		t.Errorf("tagged %v", names)
	}
	pages := 0
	for _, r := range f.Requests() {
		if strings.HasSuffix(r.Path, "/resources") {
			pages++
		}
	}
	if pages < 3 {
		t.Errorf("%d listing requests, want the pages of 2", pages)
	}
	byNode := ByNode(got, "i1")
	if len(byNode["node-0"]) != 2 || len(byNode["node-1"]) != 2 {
		t.Errorf("by node %v", byNode)
	}
}

// TaggedAny reads every page of the group unfiltered and keeps what
// carries the tag; ByInfraNode groups it by node (without the resources
// naming no node), StoreOf reads the store id a node's resources carry.
func TestTaggedAnyByInfraNode(t *testing.T) {
	s, f, _ := session(t, armfake.Options{PageSize: 2, Polls: -1})
	ctx := t.Context()
	if err := s.EnsureGroup(ctx, "westeurope", ""); err != nil {
		t.Fatal(err)
	}
	tag := func(kv ...string) map[string]*string {
		m := map[string]*string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = to.Ptr(kv[i+1])
		}
		return m
	}
	for name, tags := range map[string]map[string]*string{
		"a-nsg": Tags("i1", "n1", "web", "store-1"),
		"a-pip": Tags("i1", "n1", "web", ""), // made by an earlier version
		"b-nsg": Tags("i2", "n2", "db", ""),
		"c-nsg": tag(TagInfraID, "i3"), // no node id: by hand
		"d-nsg": tag("team", "blue"),   // not occopus's
	} {
		_, err := Await(ctx, s, "create", "", func(ctx context.Context) (*runtime.Poller[armnetwork.SecurityGroupsClientCreateOrUpdateResponse], error) {
			return s.NSGs.BeginCreateOrUpdate(ctx, "rg1", name, armnetwork.SecurityGroup{Location: to.Ptr("westeurope"), Tags: tags}, nil)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.TaggedAny(ctx, "list", TagInfraID)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range got {
		names = append(names, g.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"a-nsg", "a-pip", "b-nsg", "c-nsg"}) {
		t.Errorf("TaggedAny %v, want the four with an infra id", names)
	}
	for _, r := range f.Requests() {
		if strings.HasSuffix(r.Path, "/resources") && r.Query.Has("$filter") {
			t.Errorf("TaggedAny sent a $filter (ARM takes a tag name only with a value): %s", r.Query.Get("$filter"))
		}
	}
	keys, byNode := ByInfraNode(got)
	if !slices.Equal(keys, []NodeKey{{"i1", "n1"}, {"i2", "n2"}}) {
		t.Fatalf("nodes %v", keys)
	}
	for _, tc := range []struct {
		key   NodeKey
		n     int
		store string
	}{{NodeKey{"i1", "n1"}, 2, "store-1"}, {NodeKey{"i2", "n2"}, 1, ""}} {
		if items := byNode[tc.key]; len(items) != tc.n || StoreOf(items) != tc.store {
			t.Errorf("node %v: %d resources, store %q; want %d, %q", tc.key, len(items), StoreOf(items), tc.n, tc.store)
		}
	}
}

// Delete goes in the order ARM accepts, whatever order it is given, and
// what is gone is done.
func TestDeleteOrder(t *testing.T) {
	s, f, _ := session(t, armfake.Options{Polls: -1})
	ctx := t.Context()
	if err := s.EnsureGroup(ctx, "westeurope", "n"); err != nil {
		t.Fatal(err)
	}
	subnet, ours, err := s.EnsureSubnet(ctx, "n", Network{Base: "vm1", Location: "westeurope", Tags: Tags("i", "n", "x", "")})
	if err != nil {
		t.Fatal(err)
	}
	pip := s.ID(TypePublicIP, "vm1-pubip")
	if _, err := Await(ctx, s, "pip", "n", func(ctx context.Context) (*runtime.Poller[armnetwork.PublicIPAddressesClientCreateOrUpdateResponse], error) {
		return s.PublicIPs.BeginCreateOrUpdate(ctx, "rg1", "vm1-pubip", armnetwork.PublicIPAddress{Location: to.Ptr("westeurope")}, nil)
	}); err != nil {
		t.Fatal(err)
	}
	nic := s.ID(TypeNIC, "vm1-nic")
	if _, err := Await(ctx, s, "nic", "n", func(ctx context.Context) (*runtime.Poller[armnetwork.InterfacesClientCreateOrUpdateResponse], error) {
		return s.NICs.BeginCreateOrUpdate(ctx, "rg1", "vm1-nic", armnetwork.Interface{Location: to.Ptr("westeurope"), Properties: &armnetwork.InterfacePropertiesFormat{
			IPConfigurations: []*armnetwork.InterfaceIPConfiguration{{Name: to.Ptr("c"), Properties: &armnetwork.InterfaceIPConfigurationPropertiesFormat{
				Subnet: &armnetwork.Subnet{ID: to.Ptr(subnet)}, PublicIPAddress: &armnetwork.PublicIPAddress{ID: to.Ptr(pip)}}}}}}, nil)
	}); err != nil {
		t.Fatal(err)
	}
	// ARM itself refuses the other order.
	err = s.Delete(ctx, "n", []string{pip})
	if err == nil || !strings.Contains(err.Error(), "PublicIPAddressCannotBeDeleted") {
		t.Fatalf("deleting an attached public IP: %v", err)
	}
	before := len(f.Requests())
	ids := []string{ours[0], pip, ours[1], nic, s.ID(TypeVM, "never-made"), s.ID(TypeDisk, "never-made-osdisk")}
	if err := s.Delete(ctx, "n", ids); err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, r := range f.Requests()[before:] {
		if r.Method == "DELETE" {
			seg := strings.Split(r.Path, "/")
			order = append(order, seg[len(seg)-2])
		}
	}
	want := []string{"virtualMachines", "disks", "networkInterfaces", "publicIPAddresses", "subnets", "virtualNetworks"}
	if !slices.Equal(order, want) {
		t.Errorf("delete order %v, want %v", order, want)
	}
	if l := f.Resources(); len(l) != 0 {
		t.Errorf("left: %v", l)
	}
	if err := s.Delete(ctx, "n", []string{"/not/an/id"}); err == nil {
		t.Error("an id that is none was accepted")
	}
}

// classify reads ARM's and Entra's answers; the Error names them.
func TestErrorsNameTheAnswer(t *testing.T) {
	s, f, _ := session(t, armfake.Options{Polls: -1})
	ctx := t.Context()
	f.Reject("PUT", "", 1, 409, "InvalidResourceGroupLocation", "Invalid resource group location 'eastus'. The Resource group already exists in location 'westeurope'.")
	err := s.EnsureGroup(ctx, "eastus", "node-7")
	var e *cloudapi.Error
	if !errors.As(err, &e) {
		t.Fatalf("%T %v", err, err)
	}
	if e.Code != 409 || e.ProviderCode != "InvalidResourceGroupLocation" || e.Retryable || e.Attempts != 1 {
		t.Errorf("error %+v", e)
	}
	want := "azure_vm: create resource group rg1 for node node-7 (PUT " + f.URL() + "/subscriptions/" + f.Subscription() +
		"/resourcegroups/rg1): InvalidResourceGroupLocation: Invalid resource group location 'eastus'. The Resource group already exists in location 'westeurope'. (HTTP 409)"
	if err.Error() != want {
		t.Errorf("got  %s\nwant %s", err, want)
	}
	// Throttling on every request runs the attempts out, counted once.
	f.Throttle(1, http.StatusTooManyRequests, 1)
	err = s.EnsureGroup(ctx, "westeurope", "n")
	if !errors.As(err, &e) || e.Attempts != defaultAttempts || !e.Retryable || e.Code != 429 || !strings.Contains(err.Error(), "gave up after 10 attempts") {
		t.Errorf("throttled: %v (%+v)", err, e)
	}
	throttled := 0
	for _, r := range f.Requests() {
		if r.Status == 429 {
			throttled++
		}
	}
	if throttled != defaultAttempts {
		t.Errorf("%d throttled requests, want %d (the SDK must not retry)", throttled, defaultAttempts)
	}
}
