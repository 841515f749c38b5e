// Package cloudbroker runs nodes as CloudBroker platform instances
// (`type: cloudbroker`) over CloudBroker's REST API (XML with Rails-style
// dashed element names, HTTP Basic with the account's e-mail and
// password). CloudBroker has no Go SDK; this is a small net/http and
// encoding/xml client over cloudapi.
//
// Resource section keys (as in Occopus):
//
//	endpoint:     the platform's API URL
//	description:  CloudBroker's instance, passed through as the elements of
//	              the request: deployment_id and instance_type_id are
//	              required; key_pair_id, opened_port (comma-separated, or a
//	              list), disable_autostop, isolated, ... are sent as written
//	start_in_vpc: sent as start-in-vpc when given
//	name:         names the resource (selects the auth_data entry)
//
// auth_data: email and password.
//
// Create posts <instance> to {endpoint}/instances.xml with the
// description's elements, disable_autostop and isolated (true unless the
// description says otherwise), the rendered cloud-init base64-encoded in
// cloud-init with cloud-init-b64 true, and a name made of the node name,
// the infra id, the node id and (when the store has one) the store id: a
// CloudBroker instance carries no tags or metadata, so its name is where
// the store id goes. Before posting, and between the attempts of a retried
// post whose answer may have been lost, it looks for a live instance of
// that name, or of the name without the store id that earlier versions
// gave (idempotence per node id; Find, List and ListAll use the name too). State reads {endpoint}/instances/{id}.xml: starting,
// initializing, preparing → pending; running → running; stopping,
// halted → shutdown; failed → failed; anything else unknown. Addresses:
// the internal IP is what getip answers (as Occopus's IP), the external
// one when there is no internal one. Destroy is
// PUT {endpoint}/instances/{id}/stop; a stopping or halted instance is
// gone. Cost reads {endpoint}/instances/{id}/costs.xml, the fee named
// Total.
//
// Every HTTP request waits for the client-side rate limit of its host
// (resource.Config.Limiter); every call goes through a cloudapi.Caller
// (retries of 429/5xx and lost connections, a timeout per attempt,
// cloudapi.Error with the password scrubbed).
package cloudbroker

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/internal/cloudapi"
	"github.com/occopus-go/occopus/internal/keylock"
	"github.com/occopus-go/occopus/resource"
)

// TotalFee is the name of the fee Cost reports.
const TotalFee = "Total"

// Handler runs node instances on one CloudBroker platform account.
type Handler struct {
	endpoint string
	c        *client
	cloud    *cloudapi.Caller
	defaults map[string]any // the section New got: Create's when a spec has none
	log      *slog.Logger

	locks keylock.Locks // per node id
}

var (
	_ resource.Handler = (*Handler)(nil)
	_ resource.Lister  = (*Handler)(nil)
	_ resource.Finder  = (*Handler)(nil)
	_ resource.Sweeper = (*Handler)(nil)
	_ resource.Coster  = (*Handler)(nil)
	_ resource.Closer  = (*Handler)(nil)
)

// New builds a Handler from a resource section and its auth_data entry.
// It does not contact the platform.
func New(cfg resource.Config) (resource.Handler, error) {
	return newHandler(cfg)
}

func newHandler(cfg resource.Config) (*Handler, error) {
	var conn Connection
	if err := descr.Decode("resource", cfg.Resource, &conn); err != nil {
		if conn.Endpoint == "" {
			return nil, errors.New("cloudbroker: the resource section has no endpoint (the platform's API URL)")
		}
		return nil, fmt.Errorf("cloudbroker: %w", err)
	}
	ep, err := apiEndpoint(conn.Endpoint)
	if err != nil {
		return nil, err
	}
	creds, err := credentialsFrom(cfg.Auth, ep)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{endpoint: ep, defaults: cfg.Resource, log: log.With("backend", "cloudbroker", "endpoint", ep)}
	h.c = &client{base: ep, email: creds.Email, password: string(creds.Password),
		hc: &http.Client{Transport: &cloudapi.Transport{Limiter: cfg.Limiter}}}
	h.cloud = &cloudapi.Caller{Provider: "cloudbroker", Endpoint: ep, Classify: classify, Log: h.log,
		Secrets: []string{string(creds.Password), base64.StdEncoding.EncodeToString([]byte(creds.Email + ":" + string(creds.Password)))}}
	return h, nil
}

func apiEndpoint(ep string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(ep))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("cloudbroker: endpoint %q is not an http(s) URL of a CloudBroker platform", ep)
	}
	u.RawQuery, u.Fragment = "", ""
	u.Path = strings.TrimRight(u.Path, "/")
	return u.String(), nil
}

func credentialsFrom(authData map[string]any, ep string) (Credentials, error) {
	hint := "auth_data.yaml needs an entry with `type: cloudbroker` whose auth_data has email and password"
	if authData == nil {
		return Credentials{}, fmt.Errorf("cloudbroker: no credentials for endpoint %s: %s", ep, hint)
	}
	var c Credentials
	if err := descr.Decode("auth_data", authData, &c); err != nil {
		return Credentials{}, fmt.Errorf("cloudbroker: credentials for endpoint %s: %w", ep, err)
	}
	var missing []string
	if c.Email == "" {
		missing = append(missing, "email")
	}
	if c.Password == "" {
		missing = append(missing, "password")
	}
	if len(missing) > 0 {
		return Credentials{}, fmt.Errorf("cloudbroker: credentials for endpoint %s lack %s (%s)", ep, strings.Join(missing, " and "), hint)
	}
	return c, nil
}

// Close drops the client's idle connections.
func (h *Handler) Close() error {
	h.c.hc.CloseIdleConnections()
	return nil
}

// handleData is the backend-private part of a Handle.
type handleData struct {
	InfraID string `json:"infra_id,omitempty"`
	NodeID  string `json:"node_id,omitempty"`
}

func parseData(h resource.Handle) handleData {
	var d handleData
	if len(h.Data) > 0 {
		_ = json.Unmarshal(h.Data, &d)
	}
	return d
}

func makeHandle(id string, d handleData) resource.Handle {
	b, _ := json.Marshal(d)
	return resource.Handle{ID: id, Data: b}
}

// instanceName names the instance made for a node: how a retried create,
// Find, List and ListAll recognise it. The store id ends it when there is
// one: occopus-<node name>-<infra id>-<node id>[-<store id>].
func instanceName(infraID, nodeID, nodeName, storeID string) string {
	name := "occopus-" + nodeName + "-" + infraID + "-" + nodeID
	if storeID != "" {
		name += "-" + storeID
	}
	return name
}

// uuidLen is the length of a UUID in its usual form: the engine's infra
// and node ids and the stores' ids are UUIDs.
const uuidLen = 36

// cutUUID cuts "-<uuid>" off the end of s.
func cutUUID(s string) (rest, id string, ok bool) {
	if len(s) < uuidLen+1 || s[len(s)-uuidLen-1] != '-' {
		return s, "", false
	}
	if _, err := uuid.Parse(s[len(s)-uuidLen:]); err != nil {
		return s, "", false
	}
	return s[:len(s)-uuidLen-1], s[len(s)-uuidLen:], true
}

// owner reads back what instanceName wrote, for one infrastructure.
func owner(name, infraID string) (nodeName, nodeID, storeID string, ok bool) {
	rest, ok := strings.CutPrefix(name, "occopus-")
	if !ok {
		return "", "", "", false
	}
	i := strings.LastIndex(rest, "-"+infraID+"-")
	if i < 0 {
		return "", "", "", false
	}
	nodeName, nodeID = rest[:i], rest[i+len(infraID)+2:]
	if node, store, ok := cutUUID(nodeID); ok && node != "" {
		nodeID, storeID = node, store
	}
	if nodeID == "" {
		return "", "", "", false
	}
	return nodeName, nodeID, storeID, true
}

// parseName reads back what instanceName wrote for any infrastructure
// whose infra id and node id are UUIDs (as the engine makes them): the
// ids are cut off the end, three with a store id, else two.
func parseName(name string) (nodeName, infraID, nodeID, storeID string, ok bool) {
	rest, ok := strings.CutPrefix(name, "occopus-")
	if !ok {
		return "", "", "", "", false
	}
	var ids []string
	for len(ids) < 3 {
		r, id, ok := cutUUID(rest)
		if !ok {
			break
		}
		rest, ids = r, append([]string{id}, ids...)
	}
	switch {
	case len(ids) == 3 && rest != "":
		return rest, ids[0], ids[1], ids[2], true
	case len(ids) == 3: // a node name that is a UUID, and no store id
		return ids[0], ids[1], ids[2], "", true
	case len(ids) == 2 && rest != "":
		return rest, ids[0], ids[1], "", true
	}
	return "", "", "", "", false
}

// live: an instance that has not been stopped.
func live(in instance) bool { return in.Status != "stopping" && in.Status != "halted" }

// xmlName matches what may be an element name of the request.
var xmlName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

// request builds the <instance> of a creation.
func (h *Handler) request(spec resource.Spec) (*createRequest, error) {
	res := spec.Resource
	if res == nil {
		res = h.defaults
	}
	var in Instance
	if err := descr.Decode("resource", res, &in); err != nil {
		return nil, fmt.Errorf("cloudbroker: node %s: %w", spec.NodeID, err)
	}
	d := in.Description
	if len(spec.Context.UserData) > maxUserData {
		return nil, fmt.Errorf("cloudbroker: node %s: the cloud-init is %d bytes, more than the %d this backend sends", spec.NodeID, len(spec.Context.UserData), maxUserData)
	}
	fields := map[string]string{"deployment_id": d.DeploymentID, "instance_type_id": d.InstanceTypeID}
	if d.KeyPairID != "" {
		fields["key_pair_id"] = d.KeyPairID
	}
	if d.OpenedPort != "" {
		fields["opened_port"] = string(d.OpenedPort)
	}
	for k, v := range d.Rest {
		switch {
		case v == nil:
			continue // a key written without a value: nothing to send
		case k == "name":
			return nil, fmt.Errorf("cloudbroker: node %s: description.name: the backend names instances after the node (%s) so that a retried creation finds its instance; remove the key", spec.NodeID, instanceName(spec.InfraID, spec.NodeID, spec.NodeName, spec.StoreID))
		case !xmlName.MatchString(k):
			return nil, fmt.Errorf("cloudbroker: node %s: description.%s is no element name CloudBroker's XML can carry", spec.NodeID, k)
		}
		s, err := text("resource.description."+k, v)
		if err != nil {
			return nil, fmt.Errorf("cloudbroker: node %s: %w", spec.NodeID, err)
		}
		fields[k] = s
	}
	// Occopus's defaults; the description may say otherwise.
	for _, k := range []string{"disable_autostop", "isolated"} {
		if _, ok := fields[k]; !ok {
			fields[k] = "true"
		}
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	req := &createRequest{}
	add := func(k, v string) { req.Fields = append(req.Fields, element{XMLName: xml.Name{Local: k}, Value: v}) }
	for _, k := range keys {
		add(k, fields[k])
	}
	add("name", instanceName(spec.InfraID, spec.NodeID, spec.NodeName, spec.StoreID))
	if ud := spec.Context.UserData; ud != "" {
		add("cloud-init", base64.StdEncoding.EncodeToString([]byte(ud)))
		add("cloud-init-b64", "true")
	}
	if in.StartInVPC != nil {
		add("start-in-vpc", strconv.FormatBool(*in.StartInVPC))
	}
	return req, nil
}

// Create starts an instance for spec.NodeID, or returns the live one
// already named after it.
func (h *Handler) Create(ctx context.Context, spec resource.Spec) (resource.Handle, error) {
	if spec.NodeID == "" || spec.InfraID == "" {
		return resource.Handle{}, errors.New("cloudbroker: Create needs an infra id and a node id")
	}
	req, err := h.request(spec)
	if err != nil {
		return resource.Handle{}, err
	}
	defer h.locks.Lock(spec.NodeID)()
	name := instanceName(spec.InfraID, spec.NodeID, spec.NodeName, spec.StoreID)
	// What an earlier version, which put no store id in names, made.
	legacy := instanceName(spec.InfraID, spec.NodeID, spec.NodeName, "")
	d := handleData{InfraID: spec.InfraID, NodeID: spec.NodeID}
	var out instance
	attempt := 0
	err = h.cloud.Do(ctx, "create instance", spec.NodeID, func(ctx context.Context) error {
		attempt++
		// Also on the first attempt: an earlier Create of this node may
		// have made it (a retried build, a lost answer).
		in, found, err := h.findOnce(ctx, name, legacy)
		if err != nil {
			return err
		}
		if found {
			out = in
			if attempt == 1 {
				h.log.Info("instance already exists", "node", spec.NodeID, "instance", in.ID)
			}
			return nil
		}
		if err := h.c.do(ctx, http.MethodPost, "/instances.xml", req, &out); err != nil {
			return err
		}
		if out.ID == "" {
			return errors.New("the create answer names no instance id")
		}
		h.log.Info("instance created", "node", spec.NodeID, "instance", out.ID, "name", name)
		return nil
	})
	if err != nil {
		return resource.Handle{}, err
	}
	return makeHandle(out.ID, d), nil
}

// findOnce looks for the live instance of one of the names (one listing,
// inside a retried call). Should two exist, every caller gets the same one.
func (h *Handler) findOnce(ctx context.Context, names ...string) (instance, bool, error) {
	var all instances
	if err := h.c.do(ctx, http.MethodGet, "/instances.xml", nil, &all); err != nil {
		return instance{}, false, err
	}
	var match []instance
	for _, in := range all.Instances {
		if slices.Contains(names, in.Name) && live(in) {
			match = append(match, in)
		}
	}
	if len(match) == 0 {
		return instance{}, false, nil
	}
	sort.Slice(match, func(i, j int) bool { return match[i].ID < match[j].ID })
	return match[0], true, nil
}

// get fetches an instance; a 404 is resource.ErrNotFound.
func (h *Handler) get(ctx context.Context, node, id string) (instance, error) {
	var in instance
	err := h.cloud.Do(ctx, "get instance "+id, node, func(ctx context.Context) error {
		return h.c.do(ctx, http.MethodGet, "/instances/"+url.PathEscape(id)+".xml", nil, &in)
	})
	if cloudapi.IsNotFound(err) {
		return in, fmt.Errorf("%w: instance %s at %s", resource.ErrNotFound, id, h.endpoint)
	}
	return in, err
}

// State maps CloudBroker's status (see the package documentation).
func (h *Handler) State(ctx context.Context, hd resource.Handle) (resource.State, error) {
	in, err := h.get(ctx, parseData(hd).NodeID, hd.ID)
	if err != nil {
		return resource.StateUnknown, err
	}
	return stateOf(in.Status), nil
}

func stateOf(status string) resource.State {
	switch status {
	case "starting", "initializing", "preparing":
		return resource.StatePending
	case "running":
		return resource.StateRunning
	case "stopping", "halted":
		return resource.StateShutdown
	case "failed":
		return resource.StateFailed
	}
	return resource.StateUnknown
}

// Addresses: the internal IP is Public (what getip gives, as Occopus's IP)
// and Private; the external IP stands in when there is no internal one.
// A stopped instance has none: it is gone.
func (h *Handler) Addresses(ctx context.Context, hd resource.Handle) (resource.Addresses, error) {
	in, err := h.get(ctx, parseData(hd).NodeID, hd.ID)
	if err != nil {
		return resource.Addresses{}, err
	}
	if !live(in) {
		return resource.Addresses{}, fmt.Errorf("%w: instance %s at %s is %s", resource.ErrNotFound, hd.ID, h.endpoint, in.Status)
	}
	ip := strings.TrimSpace(in.InternalIP)
	if ip == "" {
		ip = strings.TrimSpace(in.ExternalIP)
	}
	if ip == "" {
		return resource.Addresses{}, fmt.Errorf("cloudbroker: instance %s at %s (status %s) has no IP address yet", hd.ID, h.endpoint, in.Status)
	}
	return resource.Addresses{Public: ip, Private: ip}, nil
}

// Destroy stops the instance (PUT instances/{id}/stop). One already
// stopping, halted or gone is success.
func (h *Handler) Destroy(ctx context.Context, hd resource.Handle) error {
	if hd.ID == "" {
		return nil
	}
	node := parseData(hd).NodeID
	in, err := h.get(ctx, node, hd.ID)
	if errors.Is(err, resource.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !live(in) {
		return nil
	}
	attempt := 0
	err = h.cloud.Do(ctx, "stop instance "+hd.ID, node, func(ctx context.Context) error {
		attempt++
		if attempt > 1 {
			// The previous stop may have been carried out.
			var now instance
			if err := h.c.do(ctx, http.MethodGet, "/instances/"+url.PathEscape(hd.ID)+".xml", nil, &now); err != nil {
				return err
			}
			if !live(now) {
				return nil
			}
		}
		return h.c.do(ctx, http.MethodPut, "/instances/"+url.PathEscape(hd.ID)+"/stop", nil, nil)
	})
	if err != nil && !cloudapi.IsNotFound(err) {
		return err
	}
	h.log.Info("instance stopped", "node", node, "instance", hd.ID)
	return nil
}

// Find returns the live instance named after a node id.
func (h *Handler) Find(ctx context.Context, infraID, nodeID string) (resource.Handle, bool, error) {
	all, err := h.list(ctx, nodeID)
	if err != nil {
		return resource.Handle{}, false, err
	}
	var match []instance
	for _, in := range all {
		if _, id, _, ok := owner(in.Name, infraID); ok && id == nodeID && live(in) {
			match = append(match, in)
		}
	}
	if len(match) == 0 {
		return resource.Handle{}, false, nil
	}
	sort.Slice(match, func(i, j int) bool { return match[i].ID < match[j].ID })
	return makeHandle(match[0].ID, handleData{InfraID: infraID, NodeID: nodeID}), true, nil
}

// List returns every live instance named for the infrastructure.
func (h *Handler) List(ctx context.Context, infraID string) ([]resource.Owned, error) {
	all, err := h.list(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []resource.Owned
	for _, in := range all {
		name, id, store, ok := owner(in.Name, infraID)
		if !ok || !live(in) {
			continue
		}
		out = append(out, resource.Owned{Handle: makeHandle(in.ID, handleData{InfraID: infraID, NodeID: id}),
			InfraID: infraID, NodeID: id, NodeName: name, StoreID: store})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out, nil
}

// ListAll returns every live instance of the account named for a node
// (parseName: the infra and node ids must be UUIDs, as the engine's are),
// whoever made it.
func (h *Handler) ListAll(ctx context.Context) ([]resource.Owned, error) {
	all, err := h.list(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []resource.Owned
	for _, in := range all {
		name, infra, node, store, ok := parseName(in.Name)
		if !ok || !live(in) {
			continue
		}
		if len(out) == resource.MaxSweep {
			h.log.Warn("more instances than one sweep looks at; the rest wait for a later one", "max", resource.MaxSweep)
			break
		}
		out = append(out, resource.Owned{Handle: makeHandle(in.ID, handleData{InfraID: infra, NodeID: node}),
			InfraID: infra, NodeID: node, NodeName: name, StoreID: store})
	}
	sort.Slice(out, func(i, j int) bool {
		return cmp.Or(strings.Compare(out[i].InfraID, out[j].InfraID), strings.Compare(out[i].NodeID, out[j].NodeID)) < 0
	})
	return out, nil
}

func (h *Handler) list(ctx context.Context, node string) ([]instance, error) {
	var all instances
	err := h.cloud.Do(ctx, "list instances", node, func(ctx context.Context) error {
		return h.c.do(ctx, http.MethodGet, "/instances.xml", nil, &all)
	})
	return all.Instances, err
}

// Cost reads the instance's fees; the one named Total is its cost.
func (h *Handler) Cost(ctx context.Context, hd resource.Handle) (resource.Cost, bool, error) {
	node := parseData(hd).NodeID
	var doc costs
	err := h.cloud.Do(ctx, "get costs of instance "+hd.ID, node, func(ctx context.Context) error {
		return h.c.do(ctx, http.MethodGet, "/instances/"+url.PathEscape(hd.ID)+"/costs.xml", nil, &doc)
	})
	if cloudapi.IsNotFound(err) {
		return resource.Cost{}, false, fmt.Errorf("%w: instance %s at %s", resource.ErrNotFound, hd.ID, h.endpoint)
	}
	if err != nil {
		return resource.Cost{}, false, err
	}
	for _, f := range append(doc.Fees, doc.TopFees...) {
		if strings.TrimSpace(f.Name) != TotalFee {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(f.Value), 64)
		if err != nil {
			return resource.Cost{}, false, h.cloud.NewError("get costs of instance "+hd.ID, node,
				cloudapi.Class{Message: fmt.Sprintf("the %s fee %q is not a number", TotalFee, f.Value)}, nil)
		}
		return resource.Cost{Total: v, Currency: strings.TrimSpace(f.Currency)}, true, nil
	}
	return resource.Cost{}, false, nil
}
