// Package docker is the resource backend that runs each node instance as a
// Docker container, through the official Engine API client.
//
// Resource section keys (as in Occopus):
//
//	type:     docker
//	endpoint: unix:///var/run/docker.sock | /path/to/docker.sock | tcp://host:port
//	          (absent: DOCKER_HOST etc. from the environment)
//	origin:   dockerhub | <registry host> | local | http(s)://…/rootfs.tar | file:///…tar | /…tar
//	          (absent: the local image if there is one, else Docker Hub)
//	image:    repository name
//	tag:      default latest
//	network:  network to connect to (network_mode also accepted), default bridge
//
// Contextualisation gives Env ("K=V") and Command (a list, or one string
// split shell-style).
package docker

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"

	"github.com/occopus-go/occopus/auth"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/internal/keylock"
	"github.com/occopus-go/occopus/resource"
)

// Labels put on every container, so List/Find can recover them after a
// crash, and ListAll can tell this store's from another's.
const (
	LabelInfraID  = "occopus.infra_id"
	LabelNodeID   = "occopus.node_id"
	LabelNodeName = "occopus.node_name"
	LabelStoreID  = "occopus.store_id"
)

// StopTimeout is how long Destroy lets a container handle SIGTERM before
// the engine kills it.
const StopTimeout = 5 * time.Second

func init() {
	resource.Register(resource.Plugin{Type: "docker", Schema: descr.SchemaOf[Settings](), New: New})
}

// Settings are the keys of a docker resource section: the connection New
// reads, and the instance keys Create reads from each rendered section.
type Settings struct {
	Connection
	Instance
	// Name selects auth_data entries; the container's name is derived
	// from the ids (ContainerName).
	Name string `occopus:"name"`
}

// Connection says which engine to talk to.
type Connection struct {
	// Endpoint is optional: without it the engine of DOCKER_HOST or the
	// local socket is used. Occopus required it.
	Endpoint string `occopus:"endpoint"`
}

// Instance says what to run.
type Instance struct {
	Origin  string `occopus:"origin"`
	Image   string `occopus:"image,required"`
	Tag     string `occopus:"tag"`
	Network string `occopus:"network"`
	// NetworkMode is docker-py's name for Network.
	NetworkMode string `occopus:"network_mode"`
}

// Credentials are the optional registry credentials of an auth_data entry.
type Credentials struct {
	Username string      `occopus:"username"`
	Password auth.Secret `occopus:"password"`
	Server   string      `occopus:"server"`
}

// Handler runs node instances as containers on one Docker endpoint.
type Handler struct {
	cli      *client.Client
	endpoint string         // as configured, for error messages
	section  map[string]any // what the handler was made for: Create's default
	log      *slog.Logger

	locks keylock.Locks // per container name / image ref

	negMu      sync.Mutex
	negotiated bool // the API version is settled (see negotiate)
}

// negotiate settles the API version before the handler's first request.
// The client negotiates lazily, on the first request, while some of its
// calls (ContainerList with filters) read the version unlocked: a data race
// when the first requests run concurrently (a parallel destroy, say).
func (h *Handler) negotiate(ctx context.Context) {
	h.negMu.Lock()
	defer h.negMu.Unlock()
	if h.negotiated {
		return
	}
	ping, err := h.cli.Ping(ctx)
	if err != nil {
		return // the request that follows reports the engine's absence
	}
	h.cli.NegotiateAPIVersionPing(ping)
	h.negotiated = true
}

var (
	_ resource.Handler = (*Handler)(nil)
	_ resource.Lister  = (*Handler)(nil)
	_ resource.Finder  = (*Handler)(nil)
	_ resource.Sweeper = (*Handler)(nil)
	_ resource.Nearby  = (*Handler)(nil)
)

// New builds a Handler from a resource section. It does not contact the
// engine: a wrong endpoint shows at the first call.
func New(cfg resource.Config) (resource.Handler, error) {
	var conn Connection
	if err := descr.Decode("resource", cfg.Resource, &conn); err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	endpoint := conn.Endpoint
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if endpoint != "" {
		host, err := hostFromEndpoint(endpoint)
		if err != nil {
			return nil, err
		}
		opts = append(opts, client.WithHost(host))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker: client for endpoint %q: %w", endpoint, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if endpoint == "" {
		endpoint = cli.DaemonHost()
	}
	return &Handler{
		cli:      cli,
		endpoint: endpoint,
		section:  cfg.Resource,
		log:      log.With("backend", "docker", "endpoint", endpoint),
	}, nil
}

// hostFromEndpoint accepts a URL the client understands, or a bare path of
// an existing socket. Anything else, such as the tutorials' placeholder
// "replace_with_your_docker_endpoint", is an error naming the value.
func hostFromEndpoint(ep string) (string, error) {
	if strings.Contains(ep, "://") {
		u, err := url.Parse(ep)
		if err != nil {
			return "", fmt.Errorf("docker: endpoint %q: %w", ep, err)
		}
		switch u.Scheme {
		case "unix", "tcp", "http", "https", "npipe":
			return ep, nil
		}
		return "", fmt.Errorf("docker: endpoint %q: unsupported scheme %q (want unix:// or tcp://)", ep, u.Scheme)
	}
	if fi, err := os.Stat(ep); err == nil && fi.Mode()&os.ModeSocket != 0 {
		return "unix://" + ep, nil
	}
	return "", fmt.Errorf("docker: endpoint %q is neither a unix:// or tcp:// URL nor an existing socket path; set it to your Docker endpoint, e.g. unix:///var/run/docker.sock", ep)
}

// Close releases the client's connections.
func (h *Handler) Close() error { return h.cli.Close() }

// Nearby: an engine on a unix socket is on this host, where an inspect
// costs a millisecond; one over tcp:// may be remote and is polled as a
// cloud.
func (h *Handler) Nearby() bool { return strings.HasPrefix(h.cli.DaemonHost(), "unix://") }

// Client exposes the Engine client (for tests and diagnostics).
func (h *Handler) Client() *client.Client { return h.cli }

// handleData is the backend-private part of a Handle.
type handleData struct {
	Name    string `json:"name"`
	Network string `json:"network,omitempty"`
}

var invalidNameChars = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// ContainerName is the deterministic name of a node's container: the
// idempotency key of Create, enforced by the engine's unique names.
func ContainerName(infraID, nodeID string) string {
	infra := infraID
	if len(infra) > 8 {
		infra = infra[:8]
	}
	raw := infra + "-" + nodeID
	clean := invalidNameChars.ReplaceAllString(raw, "-")
	if clean != raw || len(clean) > 100 {
		// Keep distinct ids distinct after cleaning/truncation.
		sum := sha256.Sum256([]byte(infraID + "\x00" + nodeID))
		if len(clean) > 80 {
			clean = clean[:80]
		}
		clean += "-" + hex.EncodeToString(sum[:4])
	}
	return "occopus-" + clean
}

// nameWait bounds how long Create waits for a create under way that holds
// the container name.
const nameWait = 30 * time.Second

// Create starts the node's container, or returns the one already made for
// its node id.
func (h *Handler) Create(ctx context.Context, spec resource.Spec) (resource.Handle, error) {
	h.negotiate(ctx)
	if spec.InfraID == "" || spec.NodeID == "" {
		return resource.Handle{}, errors.New("docker: create: spec needs an infra id and a node id")
	}
	section := spec.Resource
	if section == nil {
		section = h.section
	}
	var set Instance
	derr := descr.Decode("resource", section, &set)
	img, tag, origin, netw := set.Image, set.Tag, set.Origin, cmp.Or(set.Network, set.NetworkMode, "bridge")
	if i := strings.LastIndex(img, ":"); tag == "" && i > strings.LastIndex(img, "/") {
		img, tag = img[:i], img[i+1:] // image: name:tag
	}
	if tag == "" {
		tag = "latest"
	}
	name := ContainerName(spec.InfraID, spec.NodeID)
	wrap := func(err error) error {
		return fmt.Errorf("docker: create node %s (%s:%s) on %s: %w", spec.NodeID, img, tag, h.endpoint, err)
	}
	if derr != nil {
		return resource.Handle{}, wrap(derr)
	}
	defer h.locks.Lock("name:" + name)()

	// With a local image, the create itself is the look-up: a container
	// already made for the node shows as a name conflict, a missing image
	// as not found. That saves two round trips on every create. Other
	// origins look first, so a retry doesn't pull again.
	local := origin == "local"
	if !local {
		if hd, ok, err := h.existing(ctx, name, spec); err != nil || ok {
			if err != nil {
				return resource.Handle{}, wrap(err)
			}
			return hd, nil
		}
	}

	ref := img + ":" + tag
	if !local {
		if err := h.ensureImage(ctx, origin, img, tag, spec.Auth); err != nil {
			return resource.Handle{}, wrap(err)
		}
	}
	if origin != "" && origin != "dockerhub" && origin != "local" && !isTarball(origin) {
		ref = registryRef(origin, img) + ":" + tag
	}

	cmd := spec.Context.Command
	if len(cmd) == 1 {
		words, err := splitShell(cmd[0])
		if err != nil {
			return resource.Handle{}, wrap(err)
		}
		cmd = words
	}
	cfg := &container.Config{
		Image: ref,
		Env:   spec.Context.Env,
		Cmd:   cmd,
		Labels: map[string]string{
			LabelInfraID:  spec.InfraID,
			LabelNodeID:   spec.NodeID,
			LabelNodeName: spec.NodeName,
		},
	}
	if spec.StoreID != "" {
		cfg.Labels[LabelStoreID] = spec.StoreID
	}
	yes := true
	hostCfg := &container.HostConfig{
		NetworkMode: container.NetworkMode(netw),
		// An init as PID 1 forwards SIGTERM to the command and reaps its
		// children, so Destroy's stop is quick and no zombies pile up.
		Init: &yes,
	}
	// Creating and starting are not abandoned half-way when ctx ends
	// (Ctrl-C during a build): an aborted request may still make the
	// container at the daemon, after the caller's clean-up looked for it.
	// Both calls are short; finishing them lets the caller find and remove
	// what was made.
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	var resp container.CreateResponse
	var err error
	delay, deadline := 50*time.Millisecond, time.Now().Add(nameWait)
	for {
		resp, err = h.cli.ContainerCreate(octx, cfg, hostCfg, nil, nil, name)
		if !cerrdefs.IsConflict(err) {
			break
		}
		// Made before (a retry), or by another process between our
		// look and our create.
		hd, ok, err2 := h.existing(ctx, name, spec)
		if err2 != nil {
			return resource.Handle{}, wrap(err2)
		}
		if ok {
			return hd, nil
		}
		// The name is taken but nothing answers to it yet: a create
		// under way, perhaps of a process killed meanwhile, which the
		// daemon finishes or undoes. Wait for either, then look again;
		// failing here made the caller replace the node beside it (the
		// chaos suite saw a node at 2 of 1).
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return resource.Handle{}, wrap(ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
	if err != nil {
		if local && cerrdefs.IsNotFound(err) {
			// The image, or the network? ensureImage says which.
			if ierr := h.ensureImage(ctx, origin, img, tag, spec.Auth); ierr != nil {
				return resource.Handle{}, wrap(ierr)
			}
		}
		return resource.Handle{}, wrap(err)
	}
	if err := h.cli.ContainerStart(octx, resp.ID, container.StartOptions{}); err != nil {
		// A container that cannot start would only be found and fail again
		// on retry; remove it so a corrected retry starts clean.
		rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = h.cli.ContainerRemove(rmCtx, resp.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		return resource.Handle{}, wrap(fmt.Errorf("start: %w", err))
	}
	h.log.Info("container created", "node_id", spec.NodeID, "container", resp.ID, "name", name)
	return makeHandle(resp.ID, name, netw), nil
}

// existing returns the container already named for the node, starting it
// if it was created but never started.
func (h *Handler) existing(ctx context.Context, name string, spec resource.Spec) (resource.Handle, bool, error) {
	c, err := h.cli.ContainerInspect(ctx, name)
	if cerrdefs.IsNotFound(err) {
		return resource.Handle{}, false, nil
	}
	if err != nil {
		return resource.Handle{}, false, err
	}
	var labels map[string]string
	if c.Config != nil {
		labels = c.Config.Labels
	}
	if labels[LabelInfraID] != spec.InfraID || labels[LabelNodeID] != spec.NodeID {
		return resource.Handle{}, false, fmt.Errorf("container name %s is taken by a container of infra %q node %q", name, labels[LabelInfraID], labels[LabelNodeID])
	}
	if c.State != nil && c.State.Status == container.StateCreated {
		if err := h.cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
			return resource.Handle{}, false, fmt.Errorf("start existing %s: %w", name, err)
		}
	}
	netw := ""
	if c.HostConfig != nil {
		netw = string(c.HostConfig.NetworkMode)
	}
	return makeHandle(c.ID, name, netw), true, nil
}

func makeHandle(id, name, netw string) resource.Handle {
	data, _ := json.Marshal(handleData{Name: name, Network: netw})
	return resource.Handle{ID: id, Data: data}
}

func isTarball(origin string) bool {
	return strings.HasPrefix(origin, "http://") || strings.HasPrefix(origin, "https://") ||
		strings.HasPrefix(origin, "file://") || strings.HasPrefix(origin, "/") ||
		strings.HasPrefix(origin, "./") || strings.HasSuffix(origin, ".tar") ||
		strings.HasSuffix(origin, ".tar.gz") || strings.HasSuffix(origin, ".tgz")
}

// registryRef prefixes the image with the registry unless it already names it.
func registryRef(registryHost, img string) string {
	if strings.HasPrefix(img, registryHost+"/") {
		return img
	}
	return registryHost + "/" + img
}

// ensureImage makes image:tag available as origin says.
func (h *Handler) ensureImage(ctx context.Context, origin, img, tag string, auth map[string]any) error {
	ref := img + ":" + tag
	switch {
	case origin == "local":
		if _, err := h.cli.ImageInspect(ctx, ref); err != nil {
			if cerrdefs.IsNotFound(err) {
				return fmt.Errorf("origin is local but image %s does not exist on the engine (build or load it first)", ref)
			}
			return fmt.Errorf("inspect image %s: %w", ref, err)
		}
		return nil
	case isTarball(origin):
		defer h.locks.Lock("image:" + ref)()
		if _, err := h.cli.ImageInspect(ctx, ref); err == nil {
			return nil // imported before
		}
		return h.importTarball(ctx, origin, ref)
	default: // dockerhub, "" or a registry host
		if origin == "" {
			// No origin said: an image already here is used as is, so that
			// an offline engine works; else it is pulled from Docker Hub.
			if _, err := h.cli.ImageInspect(ctx, ref); err == nil {
				return nil
			}
		}
		if origin != "" && origin != "dockerhub" {
			ref = registryRef(origin, img) + ":" + tag
		}
		defer h.locks.Lock("image:" + ref)()
		opts := image.PullOptions{}
		if enc := registryAuth(auth); enc != "" {
			opts.RegistryAuth = enc
		}
		err := h.pull(ctx, ref, opts)
		if err == nil {
			return nil
		}
		// Without a reachable registry an image already present still serves.
		if _, ierr := h.cli.ImageInspect(ctx, ref); ierr == nil {
			h.log.Warn("pull failed; using the local image", "image", ref, "err", err)
			return nil
		}
		return err
	}
}

func (h *Handler) pull(ctx context.Context, ref string, opts image.PullOptions) error {
	rc, err := h.cli.ImagePull(ctx, ref, opts)
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	defer rc.Close()
	if err := drainJSONStream(rc); err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	return nil
}

// importTarball imports a `docker import`-style rootfs tarball from a URL
// (fetched by the engine) or a local file (streamed to it), as Occopus does.
func (h *Handler) importTarball(ctx context.Context, origin, ref string) error {
	var src image.ImportSource
	if strings.HasPrefix(origin, "http://") || strings.HasPrefix(origin, "https://") {
		src.SourceName = origin
	} else {
		path := origin
		if strings.HasPrefix(origin, "file://") {
			u, err := url.Parse(origin)
			if err != nil {
				return fmt.Errorf("origin %q: %w", origin, err)
			}
			path = u.Path
		}
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("import %s: %w", ref, err)
		}
		defer f.Close()
		src.Source, src.SourceName = f, "-"
	}
	rc, err := h.cli.ImageImport(ctx, src, ref, image.ImportOptions{})
	if err != nil {
		return fmt.Errorf("import %s from %s: %w", ref, origin, err)
	}
	defer rc.Close()
	if err := drainJSONStream(rc); err != nil {
		return fmt.Errorf("import %s from %s: %w", ref, origin, err)
	}
	h.log.Info("image imported", "image", ref, "origin", origin)
	return nil
}

// drainJSONStream reads a pull/import progress stream to its end: the
// engine reports failures inside the stream, after a 200 status.
func drainJSONStream(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("reading engine progress: %w", err)
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
	}
}

// registryAuth encodes username/password (and optional server) of the
// selected auth_data entry for the engine; "" when there are none.
func registryAuth(authData map[string]any) string {
	var c Credentials
	if err := descr.Decode("auth_data", authData, &c); err != nil || (c.Username == "" && c.Password == "") {
		return ""
	}
	enc, err := registry.EncodeAuthConfig(registry.AuthConfig{
		Username: c.Username, Password: string(c.Password), ServerAddress: c.Server,
	})
	if err != nil {
		return ""
	}
	return enc
}

// State maps the container's status to a resource state.
func (h *Handler) State(ctx context.Context, hd resource.Handle) (resource.State, error) {
	h.negotiate(ctx)
	c, err := h.cli.ContainerInspect(ctx, hd.ID)
	if cerrdefs.IsNotFound(err) {
		return resource.StateUnknown, fmt.Errorf("docker: container %s: %w", shortID(hd.ID), resource.ErrNotFound)
	}
	if err != nil {
		return resource.StateUnknown, fmt.Errorf("docker: state of container %s on %s: %w", shortID(hd.ID), h.endpoint, err)
	}
	if c.State == nil {
		return resource.StateUnknown, nil
	}
	return mapState(c.State.Status), nil
}

func mapState(s container.ContainerState) resource.State {
	switch s {
	case container.StateRunning:
		return resource.StateRunning
	case container.StateCreated, container.StateRestarting, container.StatePaused:
		return resource.StatePending
	case container.StateExited, container.StateDead, container.StateRemoving:
		return resource.StateShutdown
	}
	return resource.StateUnknown
}

// Addresses returns the container's IP on its network; Public = Private,
// as a container has one address.
func (h *Handler) Addresses(ctx context.Context, hd resource.Handle) (resource.Addresses, error) {
	h.negotiate(ctx)
	c, err := h.cli.ContainerInspect(ctx, hd.ID)
	if cerrdefs.IsNotFound(err) {
		return resource.Addresses{}, fmt.Errorf("docker: container %s: %w", shortID(hd.ID), resource.ErrNotFound)
	}
	if err != nil {
		return resource.Addresses{}, fmt.Errorf("docker: addresses of container %s on %s: %w", shortID(hd.ID), h.endpoint, err)
	}
	var d handleData
	_ = json.Unmarshal(hd.Data, &d)
	ip := containerIP(c, d.Network)
	if ip == "" {
		status := ""
		if c.State != nil {
			status = string(c.State.Status)
		}
		return resource.Addresses{}, fmt.Errorf("docker: container %s has no IP address (status %q)", shortID(hd.ID), status)
	}
	return resource.Addresses{Public: ip, Private: ip}, nil
}

// containerIP prefers the named network, then the first (by name) network
// that has an address.
func containerIP(c container.InspectResponse, netw string) string {
	if c.NetworkSettings == nil {
		return ""
	}
	nets := c.NetworkSettings.Networks
	if ep, ok := nets[netw]; ok && ep != nil && ep.IPAddress != "" {
		return ep.IPAddress
	}
	names := make([]string, 0, len(nets))
	for n := range nets {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if ep := nets[n]; ep != nil && ep.IPAddress != "" {
			return ep.IPAddress
		}
	}
	return ""
}

// Destroy stops (briefly) and removes the container with its volumes.
func (h *Handler) Destroy(ctx context.Context, hd resource.Handle) error {
	h.negotiate(ctx)
	if hd.ID == "" {
		return nil
	}
	secs := int(StopTimeout / time.Second)
	err := h.cli.ContainerStop(ctx, hd.ID, container.StopOptions{Timeout: &secs})
	if err != nil && !cerrdefs.IsNotFound(err) {
		// Remove with force kills it anyway; note why the stop failed.
		h.log.Warn("stop failed; removing by force", "container", hd.ID, "err", err)
	}
	err = h.cli.ContainerRemove(ctx, hd.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
	switch {
	case err == nil, cerrdefs.IsNotFound(err):
		return nil
	case cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in progress"):
		// Another removal is under way (a concurrent Destroy, or one whose
		// client was interrupted: the daemon goes on). Gone means gone:
		// return when it is, or a replacement made next would run beside
		// it (the chaos suite saw a node at 2 of 1 after a Ctrl-C'd destroy).
		if werr := h.waitRemoved(ctx, hd.ID); werr != nil {
			return fmt.Errorf("docker: destroy container %s on %s: waiting for the removal under way: %w", shortID(hd.ID), h.endpoint, werr)
		}
		return nil
	}
	return fmt.Errorf("docker: destroy container %s on %s: %w", shortID(hd.ID), h.endpoint, err)
}

// waitRemoved returns once the container no longer exists.
func (h *Handler) waitRemoved(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	okC, errC := h.cli.ContainerWait(ctx, id, container.WaitConditionRemoved)
	select {
	case <-okC:
		return nil
	case err := <-errC:
		if cerrdefs.IsNotFound(err) {
			return nil // removed before the wait began
		}
		return err
	}
}

// List finds every container labelled with the infra id, in any state.
func (h *Handler) List(ctx context.Context, infraID string) ([]resource.Owned, error) {
	h.negotiate(ctx)
	cs, err := h.list(ctx, filters.Arg("label", LabelInfraID+"="+infraID))
	if err != nil {
		return nil, fmt.Errorf("docker: list containers of infra %s on %s: %w", infraID, h.endpoint, err)
	}
	return owned(cs), nil
}

// ListAll finds every container of the engine that carries an infra id
// label, in any state, whoever made it (another $OCCOPUS_HOME or user on
// the same engine too: the store id label tells them apart).
func (h *Handler) ListAll(ctx context.Context) ([]resource.Owned, error) {
	h.negotiate(ctx)
	cs, err := h.list(ctx, filters.Arg("label", LabelInfraID))
	if err != nil {
		return nil, fmt.Errorf("docker: list labelled containers on %s: %w", h.endpoint, err)
	}
	if len(cs) > resource.MaxSweep {
		h.log.Warn("more labelled containers than one sweep looks at; the rest wait for a later one", "containers", len(cs), "max", resource.MaxSweep)
		cs = cs[:resource.MaxSweep]
	}
	out := owned(cs)
	// A container with an infra id but no node id (made by hand) is
	// nothing the store could account for.
	return slices.DeleteFunc(out, func(o resource.Owned) bool { return o.InfraID == "" || o.NodeID == "" }), nil
}

func owned(cs []container.Summary) []resource.Owned {
	out := make([]resource.Owned, 0, len(cs))
	for _, c := range cs {
		out = append(out, resource.Owned{
			Handle:   makeHandle(c.ID, containerName(c.Names), c.HostConfig.NetworkMode),
			InfraID:  c.Labels[LabelInfraID],
			NodeID:   c.Labels[LabelNodeID],
			NodeName: c.Labels[LabelNodeName],
			StoreID:  c.Labels[LabelStoreID],
		})
	}
	return out
}

// Find returns the container made for one node id.
func (h *Handler) Find(ctx context.Context, infraID, nodeID string) (resource.Handle, bool, error) {
	h.negotiate(ctx)
	cs, err := h.list(ctx,
		filters.Arg("label", LabelInfraID+"="+infraID),
		filters.Arg("label", LabelNodeID+"="+nodeID))
	if err != nil {
		return resource.Handle{}, false, fmt.Errorf("docker: find node %s of infra %s on %s: %w", nodeID, infraID, h.endpoint, err)
	}
	if len(cs) == 0 {
		return resource.Handle{}, false, nil
	}
	// Create allows one per node id (by name); prefer that one if ever more.
	want := ContainerName(infraID, nodeID)
	c := cs[0]
	for _, x := range cs {
		if containerName(x.Names) == want {
			c = x
		}
	}
	if c.State == container.StateCreated {
		// Its creator died between create and start (kill -9 during a
		// build): finish the creation, or the instance never runs.
		err := h.cli.ContainerStart(ctx, c.ID, container.StartOptions{})
		if cerrdefs.IsNotFound(err) {
			// Listed, then gone: the daemon was undoing a create whose
			// client went away (seen by the chaos suite). There is
			// nothing to adopt; the caller creates it again.
			return resource.Handle{}, false, nil
		}
		if err != nil {
			return resource.Handle{}, false, fmt.Errorf("docker: start container %s of node %s: %w", shortID(c.ID), nodeID, err)
		}
	}
	return makeHandle(c.ID, containerName(c.Names), c.HostConfig.NetworkMode), true, nil
}

func (h *Handler) list(ctx context.Context, args ...filters.KeyValuePair) ([]container.Summary, error) {
	return h.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(args...)})
}

func containerName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return strings.TrimPrefix(names[0], "/")
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
