package armfake

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Canonical spellings of the resource types, by lowercase type.
var canonical = map[string]string{
	"microsoft.network/virtualnetworks":           "Microsoft.Network/virtualNetworks",
	"microsoft.network/virtualnetworks/subnets":   "Microsoft.Network/virtualNetworks/subnets",
	"microsoft.network/publicipaddresses":         "Microsoft.Network/publicIPAddresses",
	"microsoft.network/networksecuritygroups":     "Microsoft.Network/networkSecurityGroups",
	"microsoft.network/networkinterfaces":         "Microsoft.Network/networkInterfaces",
	"microsoft.compute/virtualmachines":           "Microsoft.Compute/virtualMachines",
	"microsoft.compute/disks":                     "Microsoft.Compute/disks",
	"microsoft.containerinstance/containergroups": "Microsoft.ContainerInstance/containerGroups",
}

const (
	tVNet   = "microsoft.network/virtualnetworks"
	tSubnet = "microsoft.network/virtualnetworks/subnets"
	tPIP    = "microsoft.network/publicipaddresses"
	tNSG    = "microsoft.network/networksecuritygroups"
	tNIC    = "microsoft.network/networkinterfaces"
	tVM     = "microsoft.compute/virtualmachines"
	tDisk   = "microsoft.compute/disks"
	tCG     = "microsoft.containerinstance/containergroups"
)

// maxCustomData is Azure's limit on a VM's custom data, decoded.
const maxCustomData = 65535

// res is one resource.
type res struct {
	id, typ, name, group, parent string // typ lowercase; parent: the vnet of a subnet
	location                     string
	tags                         map[string]string
	sku                          any
	props                        map[string]any // as PUT gave them, plus what the service fills in
	state                        string         // provisioningState
	power                        string         // VMs: PowerState/…; container groups: Running/Stopped
	op                           *op
	failure                      *rule // the error the resource failed with
}

// op is a long-running operation.
type op struct {
	id, resID, kind, ns, location string // kind: put or delete
	left                          int
	fail                          *rule
	status                        string // InProgress, Succeeded, Failed
}

func (r *res) view() Resource {
	props := cloneMap(r.props)
	props["provisioningState"] = r.state
	return Resource{ID: r.id, Type: canonical[r.typ], Name: r.name, ResourceGroup: r.group, Location: r.location,
		Tags: maps(r.tags), State: r.state, Properties: props}
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func cloneMap(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	if out == nil {
		out = map[string]any{}
	}
	return out
}

// at reads a nested value: keys are map keys or list indexes.
func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any, path ...any) string {
	s, _ := at(v, path...).(string)
	return s
}

func list(v any, path ...any) []any {
	l, _ := at(v, path...).([]any)
	return l
}

func (f *Fake) groupID(rg string) string {
	return "/subscriptions/" + f.o.Subscription + "/resourceGroups/" + rg
}

func (f *Fake) resID(rg, typ, name, parent string) string {
	ct := canonical[typ]
	if typ == tSubnet {
		return f.groupID(rg) + "/providers/Microsoft.Network/virtualNetworks/" + parent + "/subnets/" + name
	}
	return f.groupID(rg) + "/providers/" + ct + "/" + name
}

func (f *Fake) allocIP() string {
	for {
		f.nextIP++
		if b := f.nextIP & 0xff; b != 0 && b != 255 {
			break
		}
	}
	ip := f.nextIP
	return fmt.Sprintf("%d.%d.%d.%d", ip>>24, ip>>16&0xff, ip>>8&0xff, ip&0xff)
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// ---- routing ----

func (f *Fake) route(w http.ResponseWriter, r *http.Request, segs, low []string, body []byte) {
	n := len(low)
	switch {
	case n == 8 && low[2] == "providers" && low[4] == "locations" && (low[6] == "operations" || low[6] == "operationresults"):
		f.poll(w, segs[7], low[6] == "operationresults")
	case n == 4 && low[2] == "resourcegroups":
		f.resourceGroup(w, r, segs[3], body)
	case n == 5 && low[2] == "resourcegroups" && low[4] == "resources":
		f.list(w, r, segs[3])
	case n == 3 && low[2] == "resources":
		f.list(w, r, "")
	case n >= 8 && low[2] == "resourcegroups" && low[4] == "providers":
		typ := typeOf(low)
		if _, ok := canonical[typ]; !ok {
			armError(w, http.StatusBadRequest, "NoRegisteredProviderFound", "No registered resource provider found for type '"+typ+"'.")
			return
		}
		rg := segs[3]
		if f.groups[strings.ToLower(rg)] == nil {
			armError(w, http.StatusNotFound, "ResourceGroupNotFound", "Resource group '"+rg+"' could not be found.")
			return
		}
		switch {
		case n == 8:
			f.resource(w, r, rg, typ, segs[7], "", body)
		case n == 9 && typ == tVM && low[8] == "instanceview" && r.Method == http.MethodGet:
			v := f.res[strings.ToLower(f.resID(rg, tVM, segs[7], ""))]
			if v == nil {
				armError(w, http.StatusNotFound, "ResourceNotFound", "The Resource 'Microsoft.Compute/virtualMachines/"+segs[7]+"' under resource group '"+rg+"' was not found.")
				return
			}
			f.advance(v)
			writeJSON(w, http.StatusOK, f.instanceView(v))
		case n == 10 && typ == tSubnet:
			f.resource(w, r, rg, typ, segs[9], segs[7], body)
		default:
			armError(w, http.StatusNotFound, "InvalidRequestUri", "The request URI "+r.URL.Path+" is not one the fake serves.")
		}
	default:
		armError(w, http.StatusNotFound, "InvalidRequestUri", "The request URI "+r.URL.Path+" is not one the fake serves.")
	}
}

func (f *Fake) resourceGroup(w http.ResponseWriter, r *http.Request, name string, body []byte) {
	g := f.groups[strings.ToLower(name)]
	view := func(g *group, status int) {
		writeJSON(w, status, map[string]any{"id": f.groupID(g.name), "name": g.name, "type": "Microsoft.Resources/resourceGroups",
			"location": g.location, "tags": g.tags, "properties": map[string]any{"provisioningState": "Succeeded"}})
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if g == nil {
			armError(w, http.StatusNotFound, "ResourceGroupNotFound", "Resource group '"+name+"' could not be found.")
			return
		}
		view(g, http.StatusOK)
	case http.MethodPut:
		var in struct {
			Location string            `json:"location"`
			Tags     map[string]string `json:"tags"`
		}
		if json.Unmarshal(body, &in) != nil || in.Location == "" {
			armError(w, http.StatusBadRequest, "LocationRequired", "The location property is required for this definition.")
			return
		}
		status := http.StatusOK
		if g == nil {
			g = &group{name: name}
			f.groups[strings.ToLower(name)] = g
			status = http.StatusCreated
		} else if !strings.EqualFold(g.location, in.Location) {
			armError(w, http.StatusConflict, "InvalidResourceGroupLocation", fmt.Sprintf("Invalid resource group location '%s'. The Resource group already exists in location '%s'.", in.Location, g.location))
			return
		}
		g.location, g.tags = in.Location, in.Tags
		view(g, status)
	case http.MethodDelete:
		f.violation("DELETE of resource group %s: the backends never delete a resource group", name)
		armError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The fake does not delete resource groups.")
	default:
		armError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "Method "+r.Method+" is not allowed.")
	}
}

var filterRe = regexp.MustCompile(`(?i)^\s*tagName\s+eq\s+'((?:[^']|'')*)'\s+and\s+tagValue\s+eq\s+'((?:[^']|'')*)'\s*$`)

// list is the generic listing of a group's (or the subscription's)
// top-level resources, filtered by one tag, paged.
func (f *Fake) list(w http.ResponseWriter, r *http.Request, rg string) {
	if rg != "" && f.groups[strings.ToLower(rg)] == nil {
		armError(w, http.StatusNotFound, "ResourceGroupNotFound", "Resource group '"+rg+"' could not be found.")
		return
	}
	q := r.URL.Query()
	var tagName, tagValue string
	filtered := false
	if fl := q.Get("$filter"); fl != "" {
		m := filterRe.FindStringSubmatch(fl)
		if m == nil {
			armError(w, http.StatusBadRequest, "InvalidFilterInQueryString", "Invalid $filter '"+fl+"' specified in the query string.")
			return
		}
		tagName, tagValue, filtered = strings.ReplaceAll(m[1], "''", "'"), strings.ReplaceAll(m[2], "''", "'"), true
	}
	var all []*res
	for _, x := range f.res {
		if x.typ == tSubnet || (rg != "" && !strings.EqualFold(x.group, rg)) {
			continue
		}
		if filtered {
			v, ok := lookupTag(x.tags, tagName)
			if !ok || v != tagValue {
				continue
			}
		}
		all = append(all, x)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].id < all[j].id })
	skip, _ := strconv.Atoi(q.Get("$skiptoken"))
	if skip < 0 || skip > len(all) {
		skip = len(all)
	}
	end := min(skip+f.o.PageSize, len(all))
	value := []any{}
	for _, x := range all[skip:end] {
		value = append(value, map[string]any{"id": x.id, "name": x.name, "type": canonical[x.typ], "location": x.location, "tags": x.tags})
	}
	out := map[string]any{"value": value}
	if end < len(all) {
		q.Set("$skiptoken", strconv.Itoa(end))
		out["nextLink"] = f.srv.URL + r.URL.Path + "?" + q.Encode()
	}
	writeJSON(w, http.StatusOK, out)
}

// lookupTag: ARM tag names are case-insensitive.
func lookupTag(tags map[string]string, name string) (string, bool) {
	for k, v := range tags {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

// ---- resources ----

func (f *Fake) resource(w http.ResponseWriter, r *http.Request, rg, typ, name, parent string, body []byte) {
	id := f.resID(rg, typ, name, parent)
	key := strings.ToLower(id)
	x := f.res[key]
	switch r.Method {
	case http.MethodGet:
		if x == nil {
			armError(w, http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("The Resource '%s/%s' under resource group '%s' was not found.", canonical[typ], name, rg))
			return
		}
		f.advance(x)
		v := f.render(x)
		if typ == tVM && strings.EqualFold(r.URL.Query().Get("$expand"), "instanceView") {
			v["properties"].(map[string]any)["instanceView"] = f.instanceView(x)
		}
		writeJSON(w, http.StatusOK, v)
	case http.MethodPut:
		f.put(w, r, rg, typ, name, parent, id, x, body)
	case http.MethodDelete:
		f.delete(w, r, rg, typ, x)
	default:
		armError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "Method "+r.Method+" is not allowed.")
	}
}

var (
	cgNameRe   = regexp.MustCompile(`^[a-z0-9]([a-z0-9]|-[a-z0-9])*$`)
	dnsLabelRe = regexp.MustCompile(`^[a-z][a-z0-9-]{1,61}[a-z0-9]$`)
	tagBadRe   = regexp.MustCompile(`[<>%&\\?/]`)
)

func (f *Fake) put(w http.ResponseWriter, r *http.Request, rg, typ, name, parent, id string, x *res, body []byte) {
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil {
		armError(w, http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: "+err.Error())
		return
	}
	props, _ := in["properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
	}
	loc, _ := in["location"].(string)
	if typ == tSubnet {
		vnet := f.res[strings.ToLower(f.resID(rg, tVNet, parent, ""))]
		if vnet == nil {
			armError(w, http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("The Resource 'Microsoft.Network/virtualNetworks/%s' under resource group '%s' was not found.", parent, rg))
			return
		}
		loc = vnet.location
	} else if loc == "" {
		armError(w, http.StatusBadRequest, "LocationRequired", "The location property is required for this definition.")
		return
	}
	tags := map[string]string{}
	if raw, ok := in["tags"].(map[string]any); ok {
		if len(raw) > 50 {
			armError(w, http.StatusBadRequest, "InvalidTagCount", "A resource may have at most 50 tags.")
			return
		}
		for k, v := range raw {
			s, _ := v.(string)
			if k == "" || len(k) > 512 || tagBadRe.MatchString(k) {
				armError(w, http.StatusBadRequest, "InvalidTagNameCharacters", fmt.Sprintf("The tag names '%s' have reserved characters '<,>,%%,&,\\,?,/' or control characters.", k))
				return
			}
			if len(s) > 256 {
				armError(w, http.StatusBadRequest, "InvalidTagValueLength", fmt.Sprintf("The tag value of '%s' exceeds 256 characters.", k))
				return
			}
			tags[k] = s
		}
	}
	if x != nil && x.state == "Deleting" {
		armError(w, http.StatusConflict, "AnotherOperationInProgress", "Another operation on this or a dependent resource is in progress.")
		return
	}
	if code, msg := f.check(rg, typ, name, parent, id, x, in, props); code != "" {
		status := http.StatusBadRequest
		if code == "PropertyChangeNotAllowed" || code == "NicInUse" {
			status = http.StatusConflict
		}
		armError(w, status, code, msg)
		return
	}
	create := x == nil
	if create {
		x = &res{id: id, typ: typ, name: name, group: f.groups[strings.ToLower(rg)].name, parent: parent}
		f.res[strings.ToLower(id)] = x
		f.created[typ]++
	}
	old := x.props
	x.location, x.tags, x.sku = loc, tags, in["sku"]
	x.props = props
	f.keepServerFields(x, old)
	if typ == tVM {
		// ARM never shows the password again.
		if op, ok := x.props["osProfile"].(map[string]any); ok {
			delete(op, "adminPassword")
		}
	}
	status := http.StatusOK
	if create {
		status = http.StatusCreated
		x.state = "Creating"
		if typ == tCG {
			x.state = "Pending"
		}
	} else {
		x.state = "Updating"
	}
	o := &op{id: newID(), resID: x.id, kind: "put", ns: strings.SplitN(canonical[typ], "/", 2)[0], location: strings.ReplaceAll(strings.ToLower(loc), " ", ""), left: f.o.Polls, status: "InProgress"}
	if fr, ok := take(f.failNext, http.MethodPut, typ); ok && create {
		o.fail = &fr
	}
	x.op = o
	f.ops[o.id] = o
	if o.left < 0 {
		f.finish(o)
	}
	w.Header().Set("Azure-AsyncOperation", f.opURL(o, false))
	f.retryAfter(w, o)
	writeJSON(w, status, f.render(x))
}

// keepServerFields carries what the service assigned across an update.
func (f *Fake) keepServerFields(x *res, old map[string]any) {
	if old == nil {
		return
	}
	switch x.typ {
	case tPIP:
		if ip := str(old, "ipAddress"); ip != "" {
			x.props["ipAddress"] = ip
		}
	case tNIC:
		for i, c := range list(x.props, "ipConfigurations") {
			if ip := str(old, "ipConfigurations", i, "properties", "privateIPAddress"); ip != "" {
				if p, ok := at(c, "properties").(map[string]any); ok {
					p["privateIPAddress"] = ip
				}
			}
		}
	case tVM:
		if d := str(old, "storageProfile", "osDisk", "managedDisk", "id"); d != "" {
			if od, ok := at(x.props, "storageProfile", "osDisk").(map[string]any); ok {
				md, _ := od["managedDisk"].(map[string]any)
				if md == nil {
					md = map[string]any{}
					od["managedDisk"] = md
				}
				md["id"] = d
				od["name"] = str(old, "storageProfile", "osDisk", "name")
			}
		}
		x.props["vmId"] = at(old, "vmId")
	case tCG:
		for _, k := range []string{"ip", "fqdn"} {
			if v := str(old, "ipAddress", k); v != "" {
				if ipa, ok := x.props["ipAddress"].(map[string]any); ok {
					ipa[k] = v
				}
			}
		}
	}
}

// check validates a PUT body against what ARM would refuse; code "" is
// accepted.
func (f *Fake) check(rg, typ, name, parent, id string, x *res, in, props map[string]any) (code, msg string) {
	switch typ {
	case tVNet:
		if len(list(props, "addressSpace", "addressPrefixes")) == 0 {
			return "InvalidAddressSpace", "The virtual network needs properties.addressSpace.addressPrefixes."
		}
		if x != nil && len(list(props, "subnets")) == 0 {
			for _, s := range f.subnetsOf(x) {
				if len(f.subnetUsers(s.id)) > 0 {
					return "InUseSubnetCannotBeDeleted", fmt.Sprintf("Subnet %s is in use by %s and cannot be deleted. In order to delete the subnet, delete all the resources within the subnet.", s.name, f.subnetUsers(s.id)[0])
				}
			}
		}
	case tSubnet:
		p := str(props, "addressPrefix")
		pre, err := netip.ParsePrefix(p)
		if err != nil {
			return "InvalidAddressPrefixFormat", fmt.Sprintf("Address prefix %q of subnet %s is not formatted correctly.", p, name)
		}
		vnet := f.res[strings.ToLower(f.resID(rg, tVNet, parent, ""))]
		inside := false
		for _, sp := range list(vnet.props, "addressSpace", "addressPrefixes") {
			if s, err := netip.ParsePrefix(fmt.Sprint(sp)); err == nil && s.Bits() <= pre.Bits() && s.Contains(pre.Addr()) {
				inside = true
			}
		}
		if !inside {
			return "NetcfgSubnetRangeOutsideVnet", fmt.Sprintf("Subnet '%s' is not valid because its IP address range is outside the IP address range of virtual network '%s'.", name, parent)
		}
		for _, s := range f.subnetsOf(vnet) {
			if strings.EqualFold(s.name, name) {
				continue
			}
			if o, err := netip.ParsePrefix(str(s.props, "addressPrefix")); err == nil && o.Overlaps(pre) {
				return "NetcfgSubnetRangesOverlap", fmt.Sprintf("Subnet '%s' is not valid because its IP address range overlaps with that of an existing subnet '%s' in virtual network '%s'.", name, s.name, parent)
			}
		}
	case tPIP:
		if m := str(props, "publicIPAllocationMethod"); m != "" && m != "Static" && m != "Dynamic" {
			return "InvalidRequestFormat", "publicIPAllocationMethod must be Static or Dynamic."
		}
	case tNIC:
		cfgs := list(props, "ipConfigurations")
		if len(cfgs) == 0 {
			return "InvalidRequestFormat", "A network interface needs at least one IP configuration."
		}
		for _, c := range cfgs {
			sub := str(c, "properties", "subnet", "id")
			if sub == "" || f.res[strings.ToLower(sub)] == nil {
				return "InvalidResourceReference", fmt.Sprintf("Resource %s referenced by resource %s was not found.", sub, id)
			}
			if pip := str(c, "properties", "publicIPAddress", "id"); pip != "" {
				if f.res[strings.ToLower(pip)] == nil {
					return "InvalidResourceReference", fmt.Sprintf("Resource %s referenced by resource %s was not found.", pip, id)
				}
				if user := f.pipUser(pip); user != "" && !strings.EqualFold(user, id) {
					return "PublicIPAddressInUse", fmt.Sprintf("Resource %s is already in use by %s.", pip, user)
				}
			}
		}
		if nsg := str(props, "networkSecurityGroup", "id"); nsg != "" && f.res[strings.ToLower(nsg)] == nil {
			return "InvalidResourceReference", fmt.Sprintf("Resource %s referenced by resource %s was not found.", nsg, id)
		}
	case tVM:
		var missing []string
		for _, p := range [][]any{{"hardwareProfile", "vmSize"}, {"storageProfile", "imageReference", "publisher"},
			{"storageProfile", "imageReference", "offer"}, {"storageProfile", "imageReference", "sku"},
			{"storageProfile", "imageReference", "version"}, {"osProfile", "adminUsername"}} {
			if str(props, p...) == "" {
				missing = append(missing, fmt.Sprint(p...))
			}
		}
		if len(missing) > 0 {
			return "InvalidParameter", fmt.Sprintf("Required parameter '%s' is missing (null).", strings.Join(missing, ", "))
		}
		if str(props, "osProfile", "adminPassword") == "" && len(list(props, "osProfile", "linuxConfiguration", "ssh", "publicKeys")) == 0 {
			return "InvalidParameter", "Required parameter 'adminPassword' is missing (null)."
		}
		cd := str(props, "osProfile", "customData")
		if cd != "" {
			raw, err := base64.StdEncoding.DecodeString(cd)
			if err != nil {
				return "InvalidParameter", "The value of parameter customData is invalid: not base64."
			}
			if len(raw) > maxCustomData {
				return "InvalidParameter", fmt.Sprintf("Custom data in OSProfile must be in Base64 encoding and with a maximum length of %d characters.", 4*((maxCustomData+2)/3))
			}
		}
		if x != nil && str(x.props, "osProfile", "customData") != cd {
			return "PropertyChangeNotAllowed", "Changing property 'customData' is not allowed."
		}
		nics := list(props, "networkProfile", "networkInterfaces")
		if len(nics) == 0 {
			return "InvalidParameter", "Required parameter 'networkProfile' is missing (null)."
		}
		for _, n := range nics {
			nid := str(n, "id")
			if f.res[strings.ToLower(nid)] == nil {
				return "NotFound", fmt.Sprintf("Resource %s not found.", nid)
			}
			if vm := f.nicUser(nid); vm != "" && !strings.EqualFold(vm, id) {
				return "NicInUse", fmt.Sprintf("Network Interface %s is used by existing resource %s. In order to use this Network Interface, dissociate it from the resource.", nid, vm)
			}
		}
	case tCG:
		if !cgNameRe.MatchString(name) || len(name) > 63 {
			return "InvalidContainerGroupName", fmt.Sprintf("The container group name '%s' is invalid: 1-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit.", name)
		}
		if str(props, "osType") != "Linux" && str(props, "osType") != "Windows" {
			return "InvalidOsType", "The 'osType' of the container group must be 'Linux' or 'Windows'."
		}
		cs := list(props, "containers")
		if len(cs) == 0 {
			return "ContainerGroupContainersEmpty", "The container group must have at least one container."
		}
		for _, c := range cs {
			if str(c, "name") == "" || str(c, "properties", "image") == "" {
				return "InvalidContainerDefinition", "Each container needs a name and an image."
			}
			if _, ok := at(c, "properties", "resources", "requests", "cpu").(float64); !ok {
				return "InvalidContainerResourceRequests", "The container '" + str(c, "name") + "' needs resources.requests.cpu."
			}
			if _, ok := at(c, "properties", "resources", "requests", "memoryInGB").(float64); !ok {
				return "InvalidContainerResourceRequests", "The container '" + str(c, "name") + "' needs resources.requests.memoryInGB."
			}
		}
		switch str(props, "ipAddress", "type") {
		case "Public":
			if l := str(props, "ipAddress", "dnsNameLabel"); l != "" && !dnsLabelRe.MatchString(l) {
				return "InvalidDnsNameLabel", fmt.Sprintf("The DNS name label '%s' is invalid: 3-63 lowercase letters, digits and hyphens, starting with a letter.", l)
			}
			if len(list(props, "ipAddress", "ports")) == 0 {
				return "InvalidIpAddressPorts", "A public IP address of a container group needs ports."
			}
		case "Private":
			subs := list(props, "subnetIds")
			if len(subs) == 0 {
				return "PrivateIPAddressNotSupportedWithoutSubnet", "A private IP address needs subnetIds."
			}
			for _, s := range subs {
				sn := f.res[strings.ToLower(str(s, "id"))]
				if sn == nil {
					return "InvalidSubnetResourceId", fmt.Sprintf("The subnet '%s' was not found.", str(s, "id"))
				}
				if !slices.ContainsFunc(list(sn.props, "delegations"), func(d any) bool {
					return strings.EqualFold(str(d, "properties", "serviceName"), "Microsoft.ContainerInstance/containerGroups")
				}) {
					return "SubnetNotDelegated", fmt.Sprintf("The subnet '%s' is not delegated to Microsoft.ContainerInstance/containerGroups.", sn.id)
				}
			}
		case "":
		default:
			return "InvalidIpAddressType", "ipAddress.type must be Public or Private."
		}
	}
	return "", ""
}

func (f *Fake) delete(w http.ResponseWriter, r *http.Request, rg, typ string, x *res) {
	if x == nil {
		w.WriteHeader(http.StatusNoContent) // ARM: deleting what is not there succeeds
		return
	}
	if x.state == "Deleting" && x.op != nil {
		f.accepted(w, x.op)
		return
	}
	if code, msg := f.inUse(x); code != "" {
		status := http.StatusBadRequest
		if typ == tDisk {
			status = http.StatusConflict
		}
		armError(w, status, code, msg)
		return
	}
	x.state = "Deleting"
	o := &op{id: newID(), resID: x.id, kind: "delete", ns: strings.SplitN(canonical[typ], "/", 2)[0], location: strings.ReplaceAll(strings.ToLower(x.location), " ", ""), left: f.o.Polls, status: "InProgress"}
	x.op = o
	f.ops[o.id] = o
	if o.left < 0 {
		// Done at once: ARM answers such a delete synchronously.
		f.finish(o)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	f.accepted(w, o)
}

func (f *Fake) accepted(w http.ResponseWriter, o *op) {
	w.Header().Set("Location", f.opURL(o, true))
	if !strings.Contains(strings.ToLower(o.resID), "/microsoft.compute/disks/") { // disks answer with Location only
		w.Header().Set("Azure-AsyncOperation", f.opURL(o, false))
	}
	f.retryAfter(w, o)
	w.WriteHeader(http.StatusAccepted)
}

// inUse says why ARM would refuse to delete x now.
func (f *Fake) inUse(x *res) (code, msg string) {
	switch x.typ {
	case tNIC:
		if vm := f.nicUser(x.id); vm != "" {
			return "NicInUse", fmt.Sprintf("Network Interface %s is used by existing resource %s. In order to delete the network interface, it must be dissociated from the resource.", x.id, vm)
		}
	case tPIP:
		if nic := f.pipUser(x.id); nic != "" {
			return "PublicIPAddressCannotBeDeleted", fmt.Sprintf("Public IP address %s can not be deleted since it is still allocated to resource %s. In order to delete the public IP, disassociate/detach the Public IP address from the resource.", x.id, nic)
		}
	case tNSG:
		for _, n := range f.res {
			if n.typ == tNIC && strings.EqualFold(str(n.props, "networkSecurityGroup", "id"), x.id) {
				return "InUseNetworkSecurityGroupCannotBeDeleted", fmt.Sprintf("Network security group %s cannot be deleted because it is in use by the following resources: %s.", x.id, n.id)
			}
		}
	case tSubnet:
		if u := f.subnetUsers(x.id); len(u) > 0 {
			return "InUseSubnetCannotBeDeleted", fmt.Sprintf("Subnet %s is in use by %s and cannot be deleted. In order to delete the subnet, delete all the resources within the subnet.", x.name, u[0])
		}
		if f.holds[strings.ToLower(x.id)] > 0 {
			f.holds[strings.ToLower(x.id)]--
			return "InUseSubnetCannotBeDeleted", fmt.Sprintf("Subnet %s is in use by %s/serviceAssociationLinks/acisal and cannot be deleted.", x.name, x.id)
		}
	case tVNet:
		for _, s := range f.subnetsOf(x) {
			if c, m := f.inUse(s); c != "" {
				return c, m
			}
		}
	case tDisk:
		for _, v := range f.res {
			if v.typ == tVM && strings.EqualFold(str(v.props, "storageProfile", "osDisk", "managedDisk", "id"), x.id) {
				return "OperationNotAllowed", fmt.Sprintf("Disk %s is attached to VM %s.", x.name, v.id)
			}
		}
	}
	return "", ""
}

func (f *Fake) subnetsOf(vnet *res) []*res {
	if vnet == nil {
		return nil
	}
	var out []*res
	prefix := strings.ToLower(vnet.id) + "/subnets/"
	for k, s := range f.res {
		if strings.HasPrefix(k, prefix) {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// subnetUsers are the NICs and container groups in a subnet.
func (f *Fake) subnetUsers(subnetID string) []string {
	var out []string
	for _, x := range f.res {
		switch x.typ {
		case tNIC:
			for _, c := range list(x.props, "ipConfigurations") {
				if strings.EqualFold(str(c, "properties", "subnet", "id"), subnetID) {
					out = append(out, x.id+"/ipConfigurations/"+str(c, "name"))
				}
			}
		case tCG:
			for _, s := range list(x.props, "subnetIds") {
				if strings.EqualFold(str(s, "id"), subnetID) {
					out = append(out, x.id)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func (f *Fake) nicUser(nicID string) string {
	for _, v := range f.res {
		if v.typ != tVM {
			continue
		}
		for _, n := range list(v.props, "networkProfile", "networkInterfaces") {
			if strings.EqualFold(str(n, "id"), nicID) {
				return v.id
			}
		}
	}
	return ""
}

func (f *Fake) pipUser(pipID string) string {
	for _, n := range f.res {
		if n.typ != tNIC {
			continue
		}
		for _, c := range list(n.props, "ipConfigurations") {
			if strings.EqualFold(str(c, "properties", "publicIPAddress", "id"), pipID) {
				return n.id + "/ipConfigurations/" + str(c, "name")
			}
		}
	}
	return ""
}

// ---- operations ----

func (f *Fake) opURL(o *op, result bool) string {
	kind := "operations"
	if result {
		kind = "operationResults"
	}
	return fmt.Sprintf("%s/subscriptions/%s/providers/%s/locations/%s/%s/%s?api-version=2024-01-01", f.srv.URL, f.o.Subscription, o.ns, o.location, kind, o.id)
}

// advance counts a look at a resource as a poll of its operation.
func (f *Fake) advance(x *res) {
	if x.op != nil && x.op.status == "InProgress" {
		f.step(x.op)
	}
}

func (f *Fake) step(o *op) {
	if o.status != "InProgress" {
		return
	}
	if o.left > 0 {
		o.left--
		return
	}
	f.finish(o)
}

func (f *Fake) poll(w http.ResponseWriter, id string, result bool) {
	o := f.ops[id]
	if o == nil {
		armError(w, http.StatusNotFound, "OperationNotFound", "The operation '"+id+"' was not found.")
		return
	}
	f.step(o)
	if o.status == "InProgress" {
		f.retryAfter(w, o)
		if result {
			w.Header().Set("Location", f.opURL(o, true))
			w.WriteHeader(http.StatusAccepted)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "name": id, "status": "InProgress", "startTime": time.Now().UTC().Format(time.RFC3339)})
		return
	}
	if result {
		if o.status == "Failed" {
			armError(w, http.StatusBadRequest, o.fail.code, o.fail.msg)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	out := map[string]any{"id": id, "name": id, "status": o.status}
	if o.fail != nil {
		out["error"] = map[string]any{"code": o.fail.code, "message": o.fail.msg}
	}
	writeJSON(w, http.StatusOK, out)
}

// finish ends an operation: the resource's side effects, its state.
func (f *Fake) finish(o *op) {
	x := f.res[strings.ToLower(o.resID)]
	if o.kind == "delete" {
		o.status = "Succeeded"
		if x != nil {
			f.remove(x)
		}
		return
	}
	if x == nil {
		o.status = "Succeeded"
		return
	}
	x.op = nil
	if o.fail != nil {
		o.status, x.state, x.failure = "Failed", "Failed", o.fail
		return
	}
	if code, msg := f.start(x); code != "" {
		o.fail = &rule{code: code, msg: msg}
		o.status, x.state, x.failure = "Failed", "Failed", o.fail
		return
	}
	o.status, x.state = "Succeeded", "Succeeded"
}

// start gives a resource what the service assigns once it is made.
func (f *Fake) start(x *res) (code, msg string) {
	switch x.typ {
	case tPIP:
		if str(x.props, "ipAddress") == "" {
			x.props["ipAddress"] = f.allocIP()
		}
	case tNIC:
		for _, c := range list(x.props, "ipConfigurations") {
			p, _ := at(c, "properties").(map[string]any)
			if p != nil && str(p, "privateIPAddress") == "" {
				p["privateIPAddress"] = f.allocIP()
			}
		}
	case tVM:
		if x.props["vmId"] == nil {
			x.props["vmId"] = newID()
		}
		od, _ := at(x.props, "storageProfile", "osDisk").(map[string]any)
		if od != nil && str(od, "managedDisk", "id") == "" {
			name := str(od, "name")
			if name == "" {
				name = x.name + "_OsDisk_1_" + strings.ReplaceAll(newID(), "-", "")
				od["name"] = name
			}
			id := f.resID(x.group, tDisk, name, "")
			f.res[strings.ToLower(id)] = &res{id: id, typ: tDisk, name: name, group: x.group, location: x.location, tags: map[string]string{},
				props: map[string]any{"diskState": "Attached", "osType": "Linux", "creationData": map[string]any{"createOption": "FromImage"}}, state: "Succeeded"}
			f.created[tDisk]++
			md, _ := od["managedDisk"].(map[string]any)
			if md == nil {
				md = map[string]any{}
				od["managedDisk"] = md
			}
			md["id"] = id
		}
		x.power = "running"
	case tCG:
		return f.startGroup(x)
	}
	return "", ""
}

// startGroup gives a container group its address and opens its TCP ports
// there.
func (f *Fake) startGroup(x *res) (code, msg string) {
	ipa, _ := x.props["ipAddress"].(map[string]any)
	if ipa == nil {
		x.power = "Running"
		return "", ""
	}
	if l := str(ipa, "dnsNameLabel"); l != "" && str(ipa, "type") == "Public" {
		ipa["fqdn"] = l + "." + strings.ReplaceAll(strings.ToLower(x.location), " ", "") + ".azurecontainer.io"
	}
	var ports []int
	for _, p := range list(ipa, "ports") {
		if !strings.EqualFold(str(p, "protocol"), "UDP") {
			if n, ok := at(p, "port").(float64); ok {
				ports = append(ports, int(n))
			}
		}
	}
	var lastErr error
	for try := 0; try < 8; try++ {
		ip := str(ipa, "ip")
		if ip == "" || try > 0 {
			ip = f.allocIP()
		}
		ls, err := listenAll(ip, ports, x.name)
		if err == nil {
			ipa["ip"] = ip
			f.listeners[strings.ToLower(x.id)] = ls
			x.power = "Running"
			return "", ""
		}
		lastErr = err
	}
	return "ContainerGroupDeploymentFailed", fmt.Sprintf("The fake could not listen on the group's ports: %v.", lastErr)
}

func listenAll(ip string, ports []int, name string) ([]net.Listener, error) {
	var ls []net.Listener
	for _, p := range ports {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(p)))
		if err != nil {
			for _, o := range ls {
				o.Close()
			}
			return nil, err
		}
		page := fmt.Sprintf("<!DOCTYPE html>\n<html><body><h1>container group %s (armfake)</h1></body></html>\n", name)
		go func() {
			_ = (&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				_, _ = w.Write([]byte(page))
			}), ReadHeaderTimeout: 5 * time.Second}).Serve(l)
		}()
		ls = append(ls, l)
	}
	return ls, nil
}

// remove deletes a resource and what goes with it.
func (f *Fake) remove(x *res) {
	delete(f.res, strings.ToLower(x.id))
	switch x.typ {
	case tVM:
		if str(x.props, "storageProfile", "osDisk", "deleteOption") == "Delete" && !f.o.KeepDisks {
			if d := str(x.props, "storageProfile", "osDisk", "managedDisk", "id"); d != "" {
				delete(f.res, strings.ToLower(d))
			}
		} else if d := f.res[strings.ToLower(str(x.props, "storageProfile", "osDisk", "managedDisk", "id"))]; d != nil {
			d.props["diskState"] = "Unattached"
		}
	case tVNet:
		for _, s := range f.subnetsOf(x) {
			delete(f.res, strings.ToLower(s.id))
		}
	case tCG:
		f.closeListeners(x.id)
		for _, s := range list(x.props, "subnetIds") {
			if f.o.SubnetHold > 0 {
				f.holds[strings.ToLower(str(s, "id"))] = f.o.SubnetHold
			}
		}
	}
}

func (f *Fake) closeListeners(id string) {
	for _, l := range f.listeners[strings.ToLower(id)] {
		l.Close()
	}
	delete(f.listeners, strings.ToLower(id))
}

// ---- views ----

// render is a resource as GET returns it.
func (f *Fake) render(x *res) map[string]any {
	props := cloneMap(x.props)
	props["provisioningState"] = x.state
	switch x.typ {
	case tVNet:
		subs := []any{}
		for _, s := range f.subnetsOf(x) {
			subs = append(subs, f.render(s))
		}
		props["subnets"] = subs
	case tSubnet:
		var cfgs []any
		for _, u := range f.subnetUsers(x.id) {
			cfgs = append(cfgs, map[string]any{"id": u})
		}
		if cfgs != nil {
			props["ipConfigurations"] = cfgs
		}
	case tNIC:
		for i, c := range list(props, "ipConfigurations") {
			m, _ := c.(map[string]any)
			if m == nil {
				continue
			}
			m["id"] = x.id + "/ipConfigurations/" + str(m, "name")
			if p, ok := m["properties"].(map[string]any); ok {
				p["provisioningState"] = x.state
				if _, ok := p["primary"]; !ok {
					p["primary"] = i == 0
				}
			}
		}
		if vm := f.nicUser(x.id); vm != "" {
			props["virtualMachine"] = map[string]any{"id": vm}
		}
	case tPIP:
		if nic := f.pipUser(x.id); nic != "" {
			props["ipConfiguration"] = map[string]any{"id": nic}
		}
	case tCG:
		state := x.power
		if state == "" {
			state = "Pending"
		}
		props["instanceView"] = map[string]any{"state": state}
		for _, c := range list(props, "containers") {
			p, _ := at(c, "properties").(map[string]any)
			if p == nil {
				continue
			}
			cs := map[string]any{"Running": "Running", "Stopped": "Terminated"}[state]
			if cs == nil {
				cs = "Waiting"
			}
			p["instanceView"] = map[string]any{"restartCount": 0, "currentState": map[string]any{"state": cs}}
		}
	}
	out := map[string]any{"id": x.id, "name": x.name, "type": canonical[x.typ], "properties": props}
	if x.typ != tSubnet {
		out["location"], out["tags"] = x.location, x.tags
	}
	if x.sku != nil {
		out["sku"] = x.sku
	}
	return out
}

// instanceView of a VM: its provisioning and power states.
func (f *Fake) instanceView(x *res) map[string]any {
	prov := "ProvisioningState/" + strings.ToLower(x.state)
	if x.state == "Failed" && x.failure != nil {
		prov += "/" + x.failure.code
	}
	statuses := []any{map[string]any{"code": prov, "level": "Info", "displayStatus": "Provisioning " + strings.ToLower(x.state)}}
	power := x.power
	if power == "" && (x.state == "Creating" || x.state == "Updating") {
		power = "starting"
	}
	if power != "" {
		statuses = append(statuses, map[string]any{"code": "PowerState/" + power, "level": "Info", "displayStatus": "VM " + power})
	}
	return map[string]any{"computerName": str(x.props, "osProfile", "computerName"), "statuses": statuses}
}

// ---- test controls ----

// Kill stops a VM (deallocated) or a container group (stopped, its
// containers terminated) behind the handler's back.
func (f *Fake) Kill(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	x := f.res[strings.ToLower(id)]
	if x == nil {
		return false
	}
	switch x.typ {
	case tVM:
		x.power = "deallocated"
	case tCG:
		x.power = "Stopped"
		f.closeListeners(x.id)
	default:
		return false
	}
	return true
}

// AddResourceGroup makes a resource group, as a user would beforehand.
func (f *Fake) AddResourceGroup(name, location string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.groups[strings.ToLower(name)] == nil {
		f.groups[strings.ToLower(name)] = &group{name: name, location: location}
	}
}

// AddVNet makes a virtual network with subnets (name → prefix; a
// delegated one when its name ends in "-aci"), as a user would
// beforehand; it is not counted by Created. Its resource group is made
// when missing.
func (f *Fake) AddVNet(rg, name, location string, space []string, subnets map[string]string) string {
	f.AddResourceGroup(rg, location)
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.resID(rg, tVNet, name, "")
	prefixes := []any{}
	for _, p := range space {
		prefixes = append(prefixes, p)
	}
	f.res[strings.ToLower(id)] = &res{id: id, typ: tVNet, name: name, group: rg, location: location, tags: map[string]string{},
		props: map[string]any{"addressSpace": map[string]any{"addressPrefixes": prefixes}}, state: "Succeeded"}
	for sn, p := range subnets {
		sid := f.resID(rg, tSubnet, sn, name)
		props := map[string]any{"addressPrefix": p}
		if strings.HasSuffix(sn, "-aci") {
			props["delegations"] = []any{map[string]any{"name": "aci", "properties": map[string]any{"serviceName": "Microsoft.ContainerInstance/containerGroups"}}}
		}
		f.res[strings.ToLower(sid)] = &res{id: sid, typ: tSubnet, name: sn, group: rg, parent: name, location: location, props: props, state: "Succeeded"}
	}
	return id
}
