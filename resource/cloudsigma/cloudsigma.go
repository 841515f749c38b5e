// Package cloudsigma runs nodes as CloudSigma servers (`type: cloudsigma`)
// over CloudSigma's REST API 2.0 (JSON, HTTP Basic with the account's
// e-mail and password).
//
// Resource section keys (as in Occopus):
//
//	endpoint:    the API base URL (https://zrh.cloudsigma.com/api/2.0)
//	libdrive_id: the library drive cloned for the boot drive
//	description: CloudSigma's server object, passed through: cpu (MHz),
//	             mem (bytes) and vnc_password are required; pubkeys, nics
//	             (ip_v4_conf, vlan, firewall_policy), smp, name, tags,
//	             meta, drives, ... are sent as written
//	name:        names the resource (selects the auth_data entry)
//
// auth_data: email and password.
//
// Create does what Occopus does: clone the library drive
// (POST /libdrives/{id}/action/?do=clone), wait until the clone is
// unmounted, create the server (POST /servers/) booting the clone, with
// the rendered cloud-init in meta (cloudinit-user-data, listed in
// base64_fields), and start it (POST /servers/{id}/action/?do=start).
// Unlike Occopus it merges description.meta and description.drives with
// its own entries instead of overwriting them, bounds every wait by
// Handler limits and the caller's context (Occopus waits forever), and
// removes what a failed creation made (the clone, or the server with its
// drives).
//
// Idempotence and adoption: every server carries occopus_infra_id,
// occopus_node_id, occopus_node_name and (when the store has an id)
// occopus_store_id in its meta, and Create looks for them before creating
// anything (also between the attempts of a retried call, whose answer may
// have been lost). The clone is named occopus-<infra id>-<node id>, so a
// retried clone finds it, and a clone whose server was never made is found
// (Find, List, ListAll) and removed. A clone carries no store id (the
// clone action takes a name, not meta): a sweep for orphans cannot tell
// whose store made a clone without a server, so it never removes one;
// destroying its infrastructure does.
//
// Destroy stops the server (POST ?do=stop, until stopped) and deletes it
// with its drives (DELETE /servers/{id}/?recurse=all_drives). Drives the
// description attached besides the clone are the user's: then the server
// is deleted without recurse, and the clone after it.
//
// Every HTTP request waits for the client-side rate limit of its host
// (resource.Config.Limiter); every call goes through a cloudapi.Caller
// (retries of 429/5xx and lost connections, a timeout per attempt,
// cloudapi.Error with the password scrubbed).
//
// Why not github.com/cloudsigma/cloudsigma-sdk-go (v0.13.0): its typed
// Server drops the description keys it does not model (a pass-through is
// what Occopus's files need) and cannot carry pubkeys given as uuid
// strings, as the tutorials do; its Delete has no recurse=all_drives; an
// error answer that is not CloudSigma's JSON (a proxy's 503 page) comes
// back as a JSON decoding error without the status, so it could not be
// retried; and it forces https endpoints. The API needed here is six
// calls; a small net/http client over cloudapi serves better.
package cloudsigma

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/internal/cloudapi"
	"github.com/occopus-go/occopus/internal/keylock"
	"github.com/occopus-go/occopus/resource"
)

// Keys put into every server's meta.
const (
	MetaInfraID  = "occopus_infra_id"
	MetaNodeID   = "occopus_node_id"
	MetaNodeName = "occopus_node_name"
	MetaStoreID  = "occopus_store_id"
	// MetaUserData holds the base64 of the rendered cloud-init, named in
	// MetaBase64Fields as CloudSigma's cloud-init datasource expects.
	MetaUserData     = "cloudinit-user-data"
	MetaBase64Fields = "base64_fields"
)

// Defaults of the waits (clone, start, stop).
const (
	defaultPollFirst = time.Second
	defaultPollMax   = 15 * time.Second
	// defaultWaitLimit bounds each wait: the engine's default create
	// timeout, which the handler is not told.
	defaultWaitLimit = 10 * time.Minute
	// cleanupTimeout bounds removing what a failed creation made, also
	// when the caller's context has ended.
	cleanupTimeout = 2 * time.Minute
	// maxStarts is how often Create asks a server that stays stopped to
	// start.
	maxStarts = 3
)

// Handler runs node instances as CloudSigma servers of one account at one
// API endpoint.
type Handler struct {
	endpoint string
	c        *client
	cloud    *cloudapi.Caller
	defaults map[string]any // the section New got: Create's when a spec has none
	log      *slog.Logger

	pollFirst, pollMax time.Duration
	waitLimit          time.Duration
	sleep              func(ctx context.Context, d time.Duration) error

	locks keylock.Locks // per node id
}

var (
	_ resource.Handler = (*Handler)(nil)
	_ resource.Lister  = (*Handler)(nil)
	_ resource.Finder  = (*Handler)(nil)
	_ resource.Sweeper = (*Handler)(nil)
	_ resource.Closer  = (*Handler)(nil)
)

// New builds a Handler from a resource section and its auth_data entry.
// It does not contact the API.
func New(cfg resource.Config) (resource.Handler, error) {
	return newHandler(cfg)
}

func newHandler(cfg resource.Config) (*Handler, error) {
	var conn Connection
	if err := descr.Decode("resource", cfg.Resource, &conn); err != nil {
		if conn.Endpoint == "" {
			return nil, errors.New("cloudsigma: the resource section has no endpoint (the API URL, such as https://zrh.cloudsigma.com/api/2.0)")
		}
		return nil, fmt.Errorf("cloudsigma: %w", err)
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
	h := &Handler{
		endpoint:  ep,
		defaults:  cfg.Resource,
		log:       log.With("backend", "cloudsigma", "endpoint", ep),
		pollFirst: defaultPollFirst,
		pollMax:   defaultPollMax,
		waitLimit: defaultWaitLimit,
		sleep:     sleep,
	}
	h.c = &client{base: ep, email: creds.Email, password: string(creds.Password),
		hc: &http.Client{Transport: &cloudapi.Transport{Limiter: cfg.Limiter}}}
	secrets := []string{string(creds.Password), base64.StdEncoding.EncodeToString([]byte(creds.Email + ":" + string(creds.Password)))}
	// The VNC password travels in the create request; an error answer
	// may quote it.
	var inst Instance
	_ = descr.Decode("resource", cfg.Resource, &inst)
	if vnc := string(inst.Description.VNCPassword); len(vnc) >= 4 {
		secrets = append(secrets, vnc)
	}
	h.cloud = &cloudapi.Caller{Provider: "cloudsigma", Endpoint: ep, Classify: classify, Secrets: secrets, Log: h.log}
	return h, nil
}

// apiEndpoint checks the endpoint (an http(s) URL) and drops a trailing
// slash, query and fragment.
func apiEndpoint(ep string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(ep))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("cloudsigma: endpoint %q is not an http(s) URL of the CloudSigma API (such as https://zrh.cloudsigma.com/api/2.0)", ep)
	}
	u.RawQuery, u.Fragment = "", ""
	u.Path = strings.TrimRight(u.Path, "/")
	return u.String(), nil
}

func credentialsFrom(authData map[string]any, ep string) (Credentials, error) {
	hint := "auth_data.yaml needs an entry with `type: cloudsigma` whose auth_data has email and password"
	if authData == nil {
		return Credentials{}, fmt.Errorf("cloudsigma: no credentials for endpoint %s: %s", ep, hint)
	}
	var c Credentials
	if err := descr.Decode("auth_data", authData, &c); err != nil {
		return Credentials{}, fmt.Errorf("cloudsigma: credentials for endpoint %s: %w", ep, err)
	}
	var missing []string
	if c.Email == "" {
		missing = append(missing, "email")
	}
	if c.Password == "" {
		missing = append(missing, "password")
	}
	if len(missing) > 0 {
		return Credentials{}, fmt.Errorf("cloudsigma: credentials for endpoint %s lack %s (%s)", ep, strings.Join(missing, " and "), hint)
	}
	return c, nil
}

// Close drops the client's idle connections.
func (h *Handler) Close() error {
	h.c.hc.CloseIdleConnections()
	return nil
}

// Handle data kinds.
const kindDrive = "drive" // a clone whose server was never made

// handleData is the backend-private part of a Handle.
type handleData struct {
	Kind    string `json:"kind,omitempty"`
	InfraID string `json:"infra_id,omitempty"`
	NodeID  string `json:"node_id,omitempty"`
	// Drive is the server's boot drive (the clone).
	Drive string `json:"drive,omitempty"`
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

// cloneName names the clone made for a node: how a retried clone, Find
// and List recognise it.
func cloneName(infraID, nodeID string) string { return "occopus-" + infraID + "-" + nodeID }

// settings decodes the spec's resource section (the handler's when the
// spec has none) and builds the server object to create, without the
// boot drive.
func (h *Handler) settings(spec resource.Spec) (Instance, map[string]any, error) {
	res := spec.Resource
	if res == nil {
		res = h.defaults
	}
	var in Instance
	if err := descr.Decode("resource", res, &in); err != nil {
		return in, nil, fmt.Errorf("cloudsigma: node %s: %w", spec.NodeID, err)
	}
	if in.LibDriveID == "" {
		return in, nil, fmt.Errorf("cloudsigma: node %s: the resource section has no libdrive_id", spec.NodeID)
	}
	if len(spec.Context.UserData) > maxUserData {
		return in, nil, fmt.Errorf("cloudsigma: node %s: the cloud-init is %d bytes, more than the %d this backend sends", spec.NodeID, len(spec.Context.UserData), maxUserData)
	}
	obj, err := deepCopy(in.Description.Rest)
	if err != nil {
		return in, nil, fmt.Errorf("cloudsigma: node %s: description: %w", spec.NodeID, err)
	}
	obj["cpu"] = in.Description.CPU
	obj["mem"] = in.Description.Mem
	obj["vnc_password"] = string(in.Description.VNCPassword)
	if name, _ := obj["name"].(string); strings.TrimSpace(name) == "" {
		obj["name"] = defaultName(spec)
	}
	meta := map[string]any{}
	if m, ok := obj["meta"]; ok && m != nil {
		mm, ok := m.(map[string]any)
		if !ok {
			return in, nil, fmt.Errorf("cloudsigma: node %s: description.meta must be a mapping, not %T", spec.NodeID, m)
		}
		meta = mm
	}
	meta[MetaInfraID], meta[MetaNodeID], meta[MetaNodeName] = spec.InfraID, spec.NodeID, spec.NodeName
	// Only the store's own id: a description must not claim another's.
	delete(meta, MetaStoreID)
	if spec.StoreID != "" {
		meta[MetaStoreID] = spec.StoreID
	}
	if ud := spec.Context.UserData; ud != "" {
		meta[MetaUserData] = base64.StdEncoding.EncodeToString([]byte(ud))
		fields := []string{}
		if f, ok := meta[MetaBase64Fields].(string); ok && strings.TrimSpace(f) != "" {
			fields = strings.Split(f, ",")
		}
		if !slices.Contains(fields, MetaUserData) {
			fields = append(fields, MetaUserData)
		}
		meta[MetaBase64Fields] = strings.Join(fields, ",")
	}
	obj["meta"] = meta
	if d, ok := obj["drives"]; ok && d != nil {
		list, ok := d.([]any)
		if !ok {
			return in, nil, fmt.Errorf("cloudsigma: node %s: description.drives must be a list, not %T", spec.NodeID, d)
		}
		for i, x := range list {
			m, _ := x.(map[string]any)
			if fmt.Sprint(m["dev_channel"]) == "0:0" || fmt.Sprint(m["boot_order"]) == "1" {
				return in, nil, fmt.Errorf("cloudsigma: node %s: description.drives[%d] takes dev_channel 0:0 or boot_order 1, which the clone of libdrive_id boots from", spec.NodeID, i)
			}
		}
	}
	return in, obj, nil
}

// deepCopy copies a decoded YAML value, so the merges of Create never
// touch the spec's section.
func deepCopy(m map[string]any) (map[string]any, error) {
	if m == nil {
		return map[string]any{}, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber() // integers (mem in bytes) stay exact
	return out, d.Decode(&out)
}

// defaultName is <node name>-<node id> (Occopus's includes the infra name,
// which a handler is not told).
func defaultName(spec resource.Spec) string {
	name := spec.NodeID
	if spec.NodeName != "" && !strings.HasPrefix(spec.NodeID, spec.NodeName) {
		name = spec.NodeName + "-" + spec.NodeID
	}
	return name
}

// bootDrive attaches the clone as the first disk, as Occopus does.
func bootDrive(uuid string) map[string]any {
	return map[string]any{"boot_order": 1, "dev_channel": "0:0", "device": "virtio", "drive": uuid}
}

// Create makes a server for spec.NodeID, or returns (and starts) the one
// that already carries its meta. What a failed creation made is removed.
func (h *Handler) Create(ctx context.Context, spec resource.Spec) (resource.Handle, error) {
	if spec.NodeID == "" || spec.InfraID == "" {
		return resource.Handle{}, errors.New("cloudsigma: Create needs an infra id and a node id")
	}
	in, obj, err := h.settings(spec)
	if err != nil {
		return resource.Handle{}, err
	}
	defer h.locks.Lock(spec.NodeID)()
	node := spec.NodeID
	d := handleData{InfraID: spec.InfraID, NodeID: node}

	srv, found, err := h.findServer(ctx, spec.InfraID, node)
	if err != nil {
		return resource.Handle{}, err
	}
	if found {
		h.log.Info("server already exists", "node", node, "server", srv.UUID)
		d.Drive = bootDriveOf(srv)
		if err := h.start(ctx, node, srv.UUID); err != nil {
			return resource.Handle{}, err
		}
		return makeHandle(srv.UUID, d), nil
	}

	clone, err := h.cloneDrive(ctx, spec, in.LibDriveID)
	if err != nil {
		return resource.Handle{}, err
	}
	d.Drive = clone.UUID
	if err := h.waitUnmounted(ctx, node, clone.UUID); err != nil {
		h.cleanup(ctx, node, "drive", clone.UUID, func(ctx context.Context) error { return h.deleteDrive(ctx, node, clone.UUID) })
		return resource.Handle{}, err
	}
	userDrives, _ := obj["drives"].([]any)
	obj["drives"] = append([]any{bootDrive(clone.UUID)}, userDrives...)
	srv, err = h.createServer(ctx, spec, obj)
	if err != nil {
		h.cleanup(ctx, node, "drive", clone.UUID, func(ctx context.Context) error { return h.deleteDrive(ctx, node, clone.UUID) })
		return resource.Handle{}, err
	}
	if err := h.start(ctx, node, srv.UUID); err != nil {
		h.cleanup(ctx, node, "server", srv.UUID, func(ctx context.Context) error { return h.destroyServer(ctx, node, srv.UUID, clone.UUID) })
		return resource.Handle{}, err
	}
	h.log.Info("server created", "node", node, "server", srv.UUID, "drive", clone.UUID)
	return makeHandle(srv.UUID, d), nil
}

// cleanup removes what a failed creation made, also when the caller's
// context has ended (its record is dropped, nothing else would find it
// soon); a failure is logged, List finds the rest at teardown.
func (h *Handler) cleanup(ctx context.Context, node, what, id string, fn func(ctx context.Context) error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := fn(ctx); err != nil {
		h.log.Warn("could not remove what a failed creation made", "node", node, what, id, "error", err)
		return
	}
	h.log.Info("removed what a failed creation made", "node", node, what, id)
}

func bootDriveOf(s server) string {
	for _, d := range s.Drives {
		if id := d.uuid(); id != "" {
			return id
		}
	}
	return ""
}

// cloneDrive clones the library drive under the node's clone name. A
// retried attempt first looks for the clone an earlier one made.
func (h *Handler) cloneDrive(ctx context.Context, spec resource.Spec, lib string) (drive, error) {
	name := cloneName(spec.InfraID, spec.NodeID)
	var out drive
	attempt := 0
	err := h.cloud.Do(ctx, "clone library drive "+lib, spec.NodeID, func(ctx context.Context) error {
		attempt++
		if attempt > 1 {
			d, found, err := h.findDriveOnce(ctx, name)
			if err != nil {
				return err
			}
			if found {
				out = d
				return nil
			}
		}
		var env envelope[drive]
		if err := h.c.do(ctx, http.MethodPost, "/libdrives/"+url.PathEscape(lib)+"/action/", url.Values{"do": {"clone"}}, map[string]any{"name": name}, &env); err != nil {
			return err
		}
		if len(env.Objects) == 0 || env.Objects[0].UUID == "" {
			return errors.New("the clone answer names no drive")
		}
		out = env.Objects[0]
		return nil
	})
	return out, err
}

// findDriveOnce looks for a drive by name (one listing, inside a retried
// call).
func (h *Handler) findDriveOnce(ctx context.Context, name string) (drive, bool, error) {
	all, err := list[drive](ctx, h.c, "/drives/detail/")
	if err != nil {
		return drive{}, false, err
	}
	for _, d := range all {
		if d.Name == name {
			return d, true, nil
		}
	}
	return drive{}, false, nil
}

// waitUnmounted polls the clone until it is unmounted (ready to attach).
func (h *Handler) waitUnmounted(ctx context.Context, node, id string) error {
	return h.poll(ctx, "clone "+id+" to be unmounted", node, func(ctx context.Context) (bool, string, error) {
		var d drive
		err := h.cloud.Do(ctx, "get drive "+id, node, func(ctx context.Context) error {
			return h.c.do(ctx, http.MethodGet, "/drives/"+url.PathEscape(id)+"/", nil, nil, &d)
		})
		if err != nil {
			return false, "", err
		}
		switch d.Status {
		case "unmounted":
			return true, d.Status, nil
		case "unavailable", "mounted":
			return false, d.Status, h.cloud.NewError("clone library drive", node, cloudapi.Class{Message: "the clone " + id + " is " + d.Status + " instead of unmounted"}, nil)
		}
		return false, d.Status, nil
	})
}

// poll calls check with a growing delay until it is done or fails, for
// at most the handler's wait limit. A call cut by the limit is reported
// as the wait that ran out.
func (h *Handler) poll(ctx context.Context, what, node string, check func(ctx context.Context) (done bool, status string, err error)) error {
	wctx, cancel := context.WithTimeout(ctx, h.waitLimit)
	defer cancel()
	delay := h.pollFirst
	last := ""
	for {
		done, status, err := check(wctx)
		if status != "" {
			last = status
		}
		if err == nil && !done {
			err = h.sleep(wctx, delay)
		}
		switch {
		case done:
			return nil
		case err != nil && wctx.Err() != nil && ctx.Err() == nil:
			return fmt.Errorf("cloudsigma: node %s: waiting for %s at %s: not done within %s (last status %q): %w", node, what, h.endpoint, h.waitLimit, last, err)
		case err != nil:
			return err
		}
		delay = min(delay*3/2+1, h.pollMax)
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// createServer posts the server object. A retried attempt first looks
// for the server an earlier one made (its answer may have been lost).
func (h *Handler) createServer(ctx context.Context, spec resource.Spec, obj map[string]any) (server, error) {
	var out server
	attempt := 0
	err := h.cloud.Do(ctx, "create server", spec.NodeID, func(ctx context.Context) error {
		attempt++
		if attempt > 1 {
			s, found, err := h.findServerOnce(ctx, spec.InfraID, spec.NodeID)
			if err != nil {
				return err
			}
			if found {
				out = s
				return nil
			}
		}
		var env envelope[server]
		if err := h.c.do(ctx, http.MethodPost, "/servers/", nil, envelope[map[string]any]{Objects: []map[string]any{obj}}, &env); err != nil {
			return err
		}
		if len(env.Objects) == 0 || env.Objects[0].UUID == "" {
			return errors.New("the create answer names no server")
		}
		out = env.Objects[0]
		return nil
	})
	return out, err
}

// getServer fetches a server; a 404 is resource.ErrNotFound.
func (h *Handler) getServer(ctx context.Context, node, id string) (server, error) {
	var s server
	err := h.cloud.Do(ctx, "get server "+id, node, func(ctx context.Context) error {
		return h.c.do(ctx, http.MethodGet, "/servers/"+url.PathEscape(id)+"/", nil, nil, &s)
	})
	if cloudapi.IsNotFound(err) {
		return s, fmt.Errorf("%w: server %s at %s", resource.ErrNotFound, id, h.endpoint)
	}
	return s, err
}

// action posts ?do=NAME to a server. A retried attempt first reads the
// status: an earlier attempt may have been carried out.
func (h *Handler) action(ctx context.Context, node, id, do string, doneIn ...string) error {
	attempt := 0
	return h.cloud.Do(ctx, do+" server "+id, node, func(ctx context.Context) error {
		attempt++
		if attempt > 1 {
			var s server
			if err := h.c.do(ctx, http.MethodGet, "/servers/"+url.PathEscape(id)+"/", nil, nil, &s); err != nil {
				return err
			}
			if slices.Contains(doneIn, s.Status) {
				return nil
			}
		}
		return h.c.do(ctx, http.MethodPost, "/servers/"+url.PathEscape(id)+"/action/", url.Values{"do": {do}}, nil, nil)
	})
}

// start starts a server until it is starting or running, asking again
// (up to maxStarts times) while it stays stopped.
func (h *Handler) start(ctx context.Context, node, id string) error {
	starts := 0
	return h.poll(ctx, "server "+id+" to start", node, func(ctx context.Context) (bool, string, error) {
		s, err := h.getServer(ctx, node, id)
		if err != nil {
			return false, "", err
		}
		switch s.Status {
		case "starting", "running":
			return true, s.Status, nil
		case "stopped":
			if starts >= maxStarts {
				return false, s.Status, h.cloud.NewError("start server "+id, node, cloudapi.Class{Message: fmt.Sprintf("the server stays stopped after %d start actions", starts)}, nil)
			}
			starts++
			aerr := h.action(ctx, node, id, "start", "starting", "running")
			// Look at once: the action usually takes effect before it is
			// answered; and if it was refused because the server is
			// starting already, it is done too.
			s2, gerr := h.getServer(ctx, node, id)
			if gerr == nil && (s2.Status == "starting" || s2.Status == "running") {
				return true, s2.Status, nil
			}
			if aerr != nil {
				return false, s.Status, aerr
			}
			return false, s.Status, gerr
		case "unavailable":
			return false, s.Status, h.cloud.NewError("start server "+id, node, cloudapi.Class{Message: "the server is unavailable"}, nil)
		}
		return false, s.Status, nil // stopping, paused: wait
	})
}

// stop stops a server until it is stopped, and returns it as last seen.
func (h *Handler) stop(ctx context.Context, node, id string) (server, error) {
	stops := 0
	var last server
	err := h.poll(ctx, "server "+id+" to stop", node, func(ctx context.Context) (bool, string, error) {
		s, err := h.getServer(ctx, node, id)
		if err != nil {
			return false, "", err
		}
		last = s
		switch s.Status {
		case "stopped":
			return true, s.Status, nil
		case "stopping":
			return false, s.Status, nil
		}
		if stops >= maxStarts {
			return false, s.Status, h.cloud.NewError("stop server "+id, node, cloudapi.Class{Message: fmt.Sprintf("the server is %s after %d stop actions", s.Status, stops)}, nil)
		}
		stops++
		aerr := h.action(ctx, node, id, "stop", "stopping", "stopped")
		// Look at once (see start).
		s2, gerr := h.getServer(ctx, node, id)
		if gerr == nil && (s2.Status == "stopping" || s2.Status == "stopped") {
			last = s2
			return s2.Status == "stopped", s2.Status, nil
		}
		if aerr != nil {
			return false, s.Status, aerr
		}
		return false, s.Status, gerr
	})
	return last, err
}

// destroyServer stops a server and deletes it with its clone. With only
// the clone attached (what Occopus makes) the server goes with
// recurse=all_drives; drives the description attached besides are the
// user's and stay: the server is deleted alone, then the clone. The clone
// is deleted on its own when the server was already gone.
func (h *Handler) destroyServer(ctx context.Context, node, id, boot string) error {
	s, err := h.stop(ctx, node, id)
	if errors.Is(err, resource.ErrNotFound) {
		if boot != "" {
			return h.deleteDrive(ctx, node, boot)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if boot == "" {
		boot = bootDriveOf(s)
	}
	others := false
	for _, d := range s.Drives {
		if u := d.uuid(); u != "" && u != boot {
			others = true
		}
	}
	q := url.Values{"recurse": {"all_drives"}}
	if others {
		q = nil
	}
	err = h.cloud.Do(ctx, "delete server "+id, node, func(ctx context.Context) error {
		return h.c.do(ctx, http.MethodDelete, "/servers/"+url.PathEscape(id)+"/", q, nil, nil)
	})
	if err != nil && !cloudapi.IsNotFound(err) {
		return err
	}
	if others && boot != "" {
		if err := h.deleteDrive(ctx, node, boot); err != nil {
			return err
		}
	}
	h.log.Info("server deleted", "node", node, "server", id)
	return nil
}

// deleteDrive deletes a drive; one already gone is success.
func (h *Handler) deleteDrive(ctx context.Context, node, id string) error {
	err := h.cloud.Do(ctx, "delete drive "+id, node, func(ctx context.Context) error {
		return h.c.do(ctx, http.MethodDelete, "/drives/"+url.PathEscape(id)+"/", nil, nil, nil)
	})
	if err != nil && !cloudapi.IsNotFound(err) {
		return err
	}
	return nil
}

// Destroy stops and deletes the server with its drives (or deletes a
// clone whose server was never made). Gone is success.
func (h *Handler) Destroy(ctx context.Context, hd resource.Handle) error {
	if hd.ID == "" {
		return nil
	}
	d := parseData(hd)
	if d.Kind == kindDrive {
		return h.deleteDrive(ctx, d.NodeID, hd.ID)
	}
	return h.destroyServer(ctx, d.NodeID, hd.ID, d.Drive)
}

// State maps CloudSigma's status: running → running; starting, paused →
// pending; stopping, stopped → shutdown; unavailable → failed; anything
// else → unknown. A clone whose server was never made is shut down.
func (h *Handler) State(ctx context.Context, hd resource.Handle) (resource.State, error) {
	d := parseData(hd)
	if d.Kind == kindDrive {
		if err := h.getDrive(ctx, d.NodeID, hd.ID); err != nil {
			return resource.StateUnknown, err
		}
		return resource.StateShutdown, nil
	}
	s, err := h.getServer(ctx, d.NodeID, hd.ID)
	if err != nil {
		return resource.StateUnknown, err
	}
	return stateOf(s.Status), nil
}

func stateOf(status string) resource.State {
	switch status {
	case "running":
		return resource.StateRunning
	case "starting", "paused":
		return resource.StatePending
	case "stopping", "stopped":
		return resource.StateShutdown
	case "unavailable":
		return resource.StateFailed
	}
	return resource.StateUnknown
}

func (h *Handler) getDrive(ctx context.Context, node, id string) error {
	err := h.cloud.Do(ctx, "get drive "+id, node, func(ctx context.Context) error {
		return h.c.do(ctx, http.MethodGet, "/drives/"+url.PathEscape(id)+"/", nil, nil, nil)
	})
	if cloudapi.IsNotFound(err) {
		return fmt.Errorf("%w: drive %s at %s", resource.ErrNotFound, id, h.endpoint)
	}
	return err
}

// Addresses: the IPv4 of the runtime NICs, as Occopus reads it
// (runtime.nics[*].ip_v4.uuid): the first public one is Public, the
// first private one Private (Public when there is none).
func (h *Handler) Addresses(ctx context.Context, hd resource.Handle) (resource.Addresses, error) {
	d := parseData(hd)
	if d.Kind == kindDrive {
		return resource.Addresses{}, fmt.Errorf("%w: drive %s has no server", resource.ErrNotFound, hd.ID)
	}
	s, err := h.getServer(ctx, d.NodeID, hd.ID)
	if err != nil {
		return resource.Addresses{}, err
	}
	a := addressesOf(s)
	if a.Public == "" {
		return a, fmt.Errorf("cloudsigma: server %s at %s (status %s) has no IPv4 address yet", hd.ID, h.endpoint, s.Status)
	}
	return a, nil
}

func addressesOf(s server) resource.Addresses {
	var nics []runtimeNIC
	if s.Runtime != nil {
		nics = s.Runtime.NICs
	}
	if len(nics) == 0 {
		for _, n := range s.NICs {
			if n.Runtime != nil {
				nics = append(nics, *n.Runtime)
			}
		}
	}
	var a resource.Addresses
	var first string
	for _, n := range nics {
		if n.IPv4 == nil || n.IPv4.UUID == "" {
			continue
		}
		ip := n.IPv4.UUID
		if first == "" {
			first = ip
		}
		switch n.InterfaceType {
		case "public":
			if a.Public == "" {
				a.Public = ip
			}
		case "private":
			if a.Private == "" {
				a.Private = ip
			}
		}
	}
	if a.Public == "" {
		a.Public = first
	}
	if a.Private == "" {
		a.Private = a.Public
	}
	return a
}

// findServer returns the server carrying the node's meta.
func (h *Handler) findServer(ctx context.Context, infraID, nodeID string) (server, bool, error) {
	var (
		s     server
		found bool
	)
	err := h.cloud.Do(ctx, "find server", nodeID, func(ctx context.Context) error {
		var err error
		s, found, err = h.findServerOnce(ctx, infraID, nodeID)
		return err
	})
	return s, found, err
}

func (h *Handler) findServerOnce(ctx context.Context, infraID, nodeID string) (server, bool, error) {
	all, err := list[server](ctx, h.c, "/servers/detail/")
	if err != nil {
		return server{}, false, err
	}
	var match []server
	for _, s := range all {
		if s.meta(MetaInfraID) == infraID && s.meta(MetaNodeID) == nodeID {
			match = append(match, s)
		}
	}
	if len(match) == 0 {
		return server{}, false, nil
	}
	// Should two ever exist, every caller adopts the same one.
	sort.Slice(match, func(i, j int) bool { return match[i].UUID < match[j].UUID })
	return match[0], true, nil
}

// Find returns the server made for a node id, or the clone made for it
// when its server never was (so that an interrupted creation is adopted,
// seen shut down, and removed).
func (h *Handler) Find(ctx context.Context, infraID, nodeID string) (resource.Handle, bool, error) {
	s, found, err := h.findServer(ctx, infraID, nodeID)
	if err != nil {
		return resource.Handle{}, false, err
	}
	if found {
		return makeHandle(s.UUID, handleData{InfraID: infraID, NodeID: nodeID, Drive: bootDriveOf(s)}), true, nil
	}
	var d drive
	err = h.cloud.Do(ctx, "find drive", nodeID, func(ctx context.Context) error {
		var err error
		d, found, err = h.findDriveOnce(ctx, cloneName(infraID, nodeID))
		return err
	})
	if err != nil || !found {
		return resource.Handle{}, false, err
	}
	return makeHandle(d.UUID, handleData{Kind: kindDrive, InfraID: infraID, NodeID: nodeID}), true, nil
}

// List returns every server carrying the infra id in its meta, and every
// clone named for the infrastructure that no server uses.
func (h *Handler) List(ctx context.Context, infraID string) ([]resource.Owned, error) {
	prefix := cloneName(infraID, "")
	return h.list(ctx, func(s server) bool { return s.meta(MetaInfraID) == infraID },
		func(name string) (string, string, bool) {
			node, ok := strings.CutPrefix(name, prefix)
			return infraID, node, ok && node != ""
		})
}

// ListAll returns every server of the account carrying an infra id and a
// node id in its meta, and every clone named for a node that no server
// uses, whoever made them. Infra ids are UUIDs (the engine makes them so),
// which tells where a clone's name has its node id.
func (h *Handler) ListAll(ctx context.Context) ([]resource.Owned, error) {
	return h.list(ctx, func(s server) bool { return s.meta(MetaInfraID) != "" && s.meta(MetaNodeID) != "" }, parseCloneName)
}

// parseCloneName reads back what cloneName wrote for an infra id that is
// a UUID.
func parseCloneName(name string) (infraID, nodeID string, ok bool) {
	rest, ok := strings.CutPrefix(name, "occopus-")
	const n = 36 // a UUID's length
	if !ok || len(rest) < n+2 || rest[n] != '-' {
		return "", "", false
	}
	if _, err := uuid.Parse(rest[:n]); err != nil {
		return "", "", false
	}
	return rest[:n], rest[n+1:], true
}

// list returns the servers keep takes and the clones clone names (infra
// and node id) that no server uses, at most resource.MaxSweep in all.
func (h *Handler) list(ctx context.Context, keep func(server) bool, clone func(name string) (infraID, nodeID string, ok bool)) ([]resource.Owned, error) {
	var (
		servers []server
		drives  []drive
	)
	err := h.cloud.Do(ctx, "list servers", "", func(ctx context.Context) error {
		var err error
		servers, err = list[server](ctx, h.c, "/servers/detail/")
		return err
	})
	if err != nil {
		return nil, err
	}
	err = h.cloud.Do(ctx, "list drives", "", func(ctx context.Context) error {
		var err error
		drives, err = list[drive](ctx, h.c, "/drives/detail/")
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []resource.Owned
	used := map[string]bool{}
	for _, s := range servers {
		for _, d := range s.Drives {
			used[d.uuid()] = true
		}
	}
	for _, s := range servers {
		if !keep(s) {
			continue
		}
		infra, node := s.meta(MetaInfraID), s.meta(MetaNodeID)
		out = append(out, resource.Owned{
			Handle:  makeHandle(s.UUID, handleData{InfraID: infra, NodeID: node, Drive: bootDriveOf(s)}),
			InfraID: infra, NodeID: node, NodeName: s.meta(MetaNodeName), StoreID: s.meta(MetaStoreID),
		})
	}
	for _, d := range drives {
		infra, node, ok := clone(d.Name)
		if !ok || used[d.UUID] || len(d.MountedOn) > 0 {
			continue
		}
		out = append(out, resource.Owned{
			Handle:  makeHandle(d.UUID, handleData{Kind: kindDrive, InfraID: infra, NodeID: node}),
			InfraID: infra, NodeID: node,
		})
	}
	sort.Slice(out, func(i, j int) bool {
		return cmp.Or(strings.Compare(out[i].InfraID, out[j].InfraID), strings.Compare(out[i].NodeID, out[j].NodeID)) < 0
	})
	if len(out) > resource.MaxSweep {
		h.log.Warn("more servers and clones than one listing gives; the rest wait for a later one", "max", resource.MaxSweep)
		out = out[:resource.MaxSweep]
	}
	return out, nil
}
