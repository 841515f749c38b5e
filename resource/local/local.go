// Package local is the resource backend whose node instances are processes
// on this host, each with its own loopback address (127.x.y.z). It makes
// infrastructures testable without a cloud or Docker.
//
// Resource section keys:
//
//	type:         local
//	workdir:      the process's working directory (default $OCCOPUS_HOME/local/<infra_id>)
//	shell:        runs a one-string command as `shell -c` (default /bin/sh)
//	stop_timeout: grace between SIGTERM and SIGKILL on Destroy (default 5s)
//
// Files under $OCCOPUS_HOME/local/<infra_id>/: <node_id>.log gets the
// process's stdout and stderr, <node_id>.json its record (pid, start time,
// address). The process also carries OCCOPUS_INFRA_ID, OCCOPUS_NODE_ID,
// OCCOPUS_NODE_NAME, OCCOPUS_IP and (when the store has one) OCCOPUS_STORE_ID
// in its environment, so List and ListAll find it in /proc even when its
// record was lost, and tell whose store made it.
package local

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource"
)

func init() {
	resource.Register(resource.Plugin{Type: "local", Schema: descr.SchemaOf[Settings](), New: New})
}

// Settings are the keys of a local resource section.
type Settings struct {
	Workdir string `occopus:"workdir"`
	Shell   string `occopus:"shell"`
	// StopTimeout: a Go duration ("5s") or seconds; default DefaultStopTimeout.
	StopTimeout *time.Duration `occopus:"stop_timeout"`
	// Name selects auth_data entries (none are needed here).
	Name string `occopus:"name"`
}

// Environment variables given to every instance.
const (
	EnvInfraID  = "OCCOPUS_INFRA_ID"
	EnvNodeID   = "OCCOPUS_NODE_ID"
	EnvNodeName = "OCCOPUS_NODE_NAME"
	EnvIP       = "OCCOPUS_IP"
	EnvStoreID  = "OCCOPUS_STORE_ID"
)

// InheritedEnv are the variables of the orchestrator's own environment an
// instance gets (with LC_*): what a program needs to run, never the
// service's secrets (OCCOPUS_TOKEN, AWS_SECRET_ACCESS_KEY, ...). Anything
// else an instance needs comes from its contextualisation's env.
var InheritedEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM"}

// inherited is the allowed part of this process's environment.
func inherited() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if slices.Contains(InheritedEnv, k) || strings.HasPrefix(k, "LC_") {
			out = append(out, kv)
		}
	}
	return out
}

// DefaultStopTimeout is the grace between SIGTERM and SIGKILL.
const DefaultStopTimeout = 5 * time.Second

// Handler runs node instances as local processes.
type Handler struct {
	root        string // $OCCOPUS_HOME/local
	shell       string
	workdir     string
	stopTimeout time.Duration
	log         *slog.Logger
}

var (
	_ resource.Handler = (*Handler)(nil)
	_ resource.Lister  = (*Handler)(nil)
	_ resource.Finder  = (*Handler)(nil)
	_ resource.Sweeper = (*Handler)(nil)
)

// New builds a Handler; Config.Home (else $OCCOPUS_HOME) is required.
func New(cfg resource.Config) (resource.Handler, error) {
	home := cfg.Home
	if home == "" {
		home = os.Getenv("OCCOPUS_HOME")
	}
	if home == "" {
		return nil, errors.New("local: no home directory (Config.Home or $OCCOPUS_HOME) for records and logs")
	}
	// Absolute, since records and the instances' working directory must
	// not depend on where the orchestrator was started.
	home, err := filepath.Abs(home)
	if err != nil {
		return nil, fmt.Errorf("local: home %q: %w", cfg.Home, err)
	}
	var set Settings
	if err := descr.Decode("resource", cfg.Resource, &set); err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	h := &Handler{
		root:        filepath.Join(home, "local"),
		shell:       cmp.Or(set.Shell, "/bin/sh"),
		workdir:     set.Workdir,
		stopTimeout: DefaultStopTimeout,
		log:         cfg.Logger,
	}
	if set.StopTimeout != nil {
		h.stopTimeout = *set.StopTimeout
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.log = h.log.With("backend", "local")
	if err := os.MkdirAll(h.root, 0o755); err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	return h, nil
}

// Close releases nothing: instances outlive the handler by design.
func (h *Handler) Close() error { return nil }

// Nearby: local processes are inspected on this host, cheaply.
func (h *Handler) Nearby() bool { return true }

// record is the <node_id>.json file.
type record struct {
	PID       int       `json:"pid"`
	StartTime uint64    `json:"start_time"` // /proc/<pid>/stat field 22: tells a recycled pid apart
	Address   string    `json:"address"`
	InfraID   string    `json:"infra_id"`
	NodeID    string    `json:"node_id"`
	NodeName  string    `json:"node_name"`
	StoreID   string    `json:"store_id,omitempty"`
	Command   []string  `json:"command"`
	Log       string    `json:"log"`
	Created   time.Time `json:"created"`
}

// handleData is the backend-private part of a Handle: enough to find the
// record, and the process itself when the record is gone.
type handleData struct {
	InfraID   string `json:"infra_id"`
	NodeID    string `json:"node_id"`
	StartTime uint64 `json:"start_time"`
	Address   string `json:"address"`
}

func (r *record) handle() resource.Handle {
	data, _ := json.Marshal(handleData{InfraID: r.InfraID, NodeID: r.NodeID, StartTime: r.StartTime, Address: r.Address})
	return resource.Handle{ID: strconv.Itoa(r.PID), Data: data}
}

var safeID = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// checkIDs keeps ids usable as file names under root.
func checkIDs(infraID, nodeID string) error {
	if !safeID.MatchString(infraID) {
		return fmt.Errorf("infra id %q is not usable as a file name", infraID)
	}
	if !safeID.MatchString(nodeID) {
		return fmt.Errorf("node id %q is not usable as a file name", nodeID)
	}
	return nil
}

func (h *Handler) infraDir(infraID string) string { return filepath.Join(h.root, infraID) }
func (h *Handler) recordPath(infraID, nodeID string) string {
	return filepath.Join(h.infraDir(infraID), nodeID+".json")
}

// LogPath is where the node's stdout and stderr go.
func (h *Handler) LogPath(infraID, nodeID string) string {
	return filepath.Join(h.infraDir(infraID), nodeID+".log")
}

func (h *Handler) readRecord(infraID, nodeID string) (*record, error) {
	b, err := os.ReadFile(h.recordPath(infraID, nodeID))
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("record %s: %w", h.recordPath(infraID, nodeID), err)
	}
	return &r, nil
}

// writeRecord writes via rename so a reader never sees half a record.
func (h *Handler) writeRecord(r *record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	path := h.recordPath(r.InfraID, r.NodeID)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// lock takes the backend-wide lock (a flock, so it holds across processes
// and across goroutines, each of which opens its own file description).
// Create needs it for idempotency and for unique address allocation.
func (h *Handler) lock(ctx context.Context) (func(), error) {
	f, err := os.OpenFile(filepath.Join(h.root, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Create starts the node's process, or returns the live one already made
// for its node id (by record, or found in /proc after a lost record).
func (h *Handler) Create(ctx context.Context, spec resource.Spec) (resource.Handle, error) {
	wrap := func(err error) error {
		return fmt.Errorf("local: create node %s of infra %s: %w", spec.NodeID, spec.InfraID, err)
	}
	if err := checkIDs(spec.InfraID, spec.NodeID); err != nil {
		return resource.Handle{}, wrap(err)
	}
	cmdline := spec.Context.Command
	if len(cmdline) == 0 {
		return resource.Handle{}, wrap(errors.New("no command to run (contextualisation gave none)"))
	}
	unlock, err := h.lock(ctx)
	if err != nil {
		return resource.Handle{}, wrap(err)
	}
	defer unlock()

	if r, err := h.readRecord(spec.InfraID, spec.NodeID); err == nil {
		if alive(r.PID, r.StartTime) {
			return r.handle(), nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return resource.Handle{}, wrap(err)
	}
	procs := scanProc()
	for _, p := range procs {
		if p.leader() && p.env[EnvInfraID] == spec.InfraID && p.env[EnvNodeID] == spec.NodeID {
			// Running, but its record was lost: adopt it.
			r := p.record(h.LogPath(spec.InfraID, spec.NodeID))
			if err := os.MkdirAll(h.infraDir(spec.InfraID), 0o755); err != nil {
				return resource.Handle{}, wrap(err)
			}
			if err := h.writeRecord(r); err != nil {
				return resource.Handle{}, wrap(err)
			}
			return r.handle(), nil
		}
	}

	addr, err := h.allocate(spec.NodeID, procs)
	if err != nil {
		return resource.Handle{}, wrap(err)
	}
	dir := h.infraDir(spec.InfraID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return resource.Handle{}, wrap(err)
	}
	logPath := h.LogPath(spec.InfraID, spec.NodeID)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return resource.Handle{}, wrap(err)
	}
	defer logf.Close() // the child has its own descriptor

	var cmd *exec.Cmd
	if len(cmdline) == 1 {
		cmd = exec.Command(h.shell, "-c", cmdline[0])
	} else {
		cmd = exec.Command(cmdline[0], cmdline[1:]...)
	}
	// Not CommandContext: the instance must outlive this call, and us.
	cmd.Dir = h.workdir
	if cmd.Dir == "" {
		cmd.Dir = dir
	}
	cmd.Env = append(append(inherited(), spec.Context.Env...),
		EnvInfraID+"="+spec.InfraID,
		EnvNodeID+"="+spec.NodeID,
		EnvNodeName+"="+spec.NodeName,
		EnvIP+"="+addr)
	if spec.StoreID != "" {
		cmd.Env = append(cmd.Env, EnvStoreID+"="+spec.StoreID)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// A session of its own: no terminal signals from ours, and a process
	// group Destroy can signal as a whole.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return resource.Handle{}, wrap(err)
	}
	pid := cmd.Process.Pid
	// Not reaped yet, so /proc/<pid> is there even if it already exited.
	st, err := readStat(pid)
	// Reap it if it ends while we live, so it leaves no zombie; if we exit
	// first it is re-parented and lives on.
	go func() { _ = cmd.Wait() }()
	if err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return resource.Handle{}, wrap(fmt.Errorf("reading /proc/%d/stat: %w", pid, err))
	}
	r := &record{
		PID: pid, StartTime: st.startTime, Address: addr,
		InfraID: spec.InfraID, NodeID: spec.NodeID, NodeName: spec.NodeName, StoreID: spec.StoreID,
		Command: cmd.Args, Log: logPath, Created: time.Now().UTC(),
	}
	if err := h.writeRecord(r); err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return resource.Handle{}, wrap(err)
	}
	h.log.Info("process started", "node_id", spec.NodeID, "pid", pid, "address", addr)
	return r.handle(), nil
}

// allocate picks the node's loopback address: a hash of the node id, so a
// node keeps its address across re-creation, probed on past addresses in
// use by any other live instance (records of every infra, and /proc).
func (h *Handler) allocate(nodeID string, procs []proc) (string, error) {
	used := map[string]bool{}
	for _, r := range h.allRecords() {
		if r.NodeID != nodeID && alive(r.PID, r.StartTime) {
			used[r.Address] = true
		}
	}
	for _, p := range procs {
		if ip := p.env[EnvIP]; ip != "" && p.env[EnvNodeID] != nodeID {
			used[ip] = true
		}
	}
	for i := 0; i < 1000; i++ {
		sum := sha256.Sum256([]byte(nodeID + "#" + strconv.Itoa(i)))
		n := binary.BigEndian.Uint32(sum[:4]) & 0xffffff
		a, b, c := byte(n>>16), byte(n>>8), byte(n)
		// Skip the well-known 127.0.0.1 and the .0/.255 ends, which some
		// tools treat as network or broadcast addresses.
		if c == 0 || c == 255 || (a == 0 && b == 0 && c == 1) {
			continue
		}
		ip := fmt.Sprintf("127.%d.%d.%d", a, b, c)
		if !used[ip] {
			return ip, nil
		}
	}
	return "", errors.New("no free loopback address")
}

// allRecords reads every record under root, of every infra.
func (h *Handler) allRecords() []*record {
	paths, _ := filepath.Glob(filepath.Join(h.root, "*", "*.json"))
	var out []*record
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var r record
		if json.Unmarshal(b, &r) == nil {
			out = append(out, &r)
		}
	}
	return out
}

// target is what a handle points at: the record if there is one, else the
// live process named by the handle.
func (h *Handler) target(hd resource.Handle) (r *record, found bool, err error) {
	var d handleData
	if len(hd.Data) > 0 {
		if err := json.Unmarshal(hd.Data, &d); err != nil {
			return nil, false, fmt.Errorf("local: handle %s: %w", hd.ID, err)
		}
	}
	pid, _ := strconv.Atoi(hd.ID)
	superseded := false
	if d.InfraID != "" && d.NodeID != "" && checkIDs(d.InfraID, d.NodeID) == nil {
		r, err := h.readRecord(d.InfraID, d.NodeID)
		if err == nil {
			if pid <= 0 || (r.PID == pid && (d.StartTime == 0 || r.StartTime == d.StartTime)) {
				return r, true, nil
			}
			// The node was re-created: the record is of another instance.
			superseded = true
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, false, fmt.Errorf("local: %w", err)
		}
	}
	// No record of it: the process itself, if it is still the one we started.
	if pid > 0 {
		if p, err := readProc(pid); err == nil && p.state != 'Z' &&
			(d.StartTime == 0 || p.startTime == d.StartTime) &&
			p.env[EnvNodeID] != "" && (d.NodeID == "" || p.env[EnvNodeID] == d.NodeID) {
			return p.record(""), true, nil
		}
	}
	if superseded {
		return nil, false, errSuperseded
	}
	return nil, false, nil
}

// errSuperseded: the handle's instance is gone and its node id now has
// another instance, which the handle must not reach.
var errSuperseded = errors.New("instance superseded")

// State: running while the recorded process lives, shutdown once it ended,
// ErrNotFound without a record or a live process.
func (h *Handler) State(ctx context.Context, hd resource.Handle) (resource.State, error) {
	r, found, err := h.target(hd)
	if err != nil && !errors.Is(err, errSuperseded) {
		return resource.StateUnknown, err
	}
	if !found {
		return resource.StateUnknown, fmt.Errorf("local: process %s: %w", hd.ID, resource.ErrNotFound)
	}
	if alive(r.PID, r.StartTime) {
		return resource.StateRunning, nil
	}
	return resource.StateShutdown, nil
}

// Addresses returns the instance's loopback address as both addresses.
func (h *Handler) Addresses(ctx context.Context, hd resource.Handle) (resource.Addresses, error) {
	r, found, err := h.target(hd)
	if err != nil && !errors.Is(err, errSuperseded) {
		return resource.Addresses{}, err
	}
	if !found {
		return resource.Addresses{}, fmt.Errorf("local: process %s: %w", hd.ID, resource.ErrNotFound)
	}
	return resource.Addresses{Public: r.Address, Private: r.Address}, nil
}

// Destroy sends SIGTERM to the instance's process group and to any other
// process that carries its node id, SIGKILLs what is left after the grace
// period, and removes the record. Gone is success.
func (h *Handler) Destroy(ctx context.Context, hd resource.Handle) error {
	r, found, err := h.target(hd)
	if errors.Is(err, errSuperseded) {
		return nil // its own instance is gone; leave the new one alone
	}
	if err != nil {
		return err
	}
	var d handleData
	_ = json.Unmarshal(hd.Data, &d)
	infraID, nodeID := d.InfraID, d.NodeID
	if found {
		infraID, nodeID = r.InfraID, r.NodeID
	}
	if nodeID == "" {
		return nil // nothing to go by: a handle of nothing we made
	}
	targets := func() (pids []int) {
		if found && alive(r.PID, r.StartTime) {
			pids = append(pids, -r.PID) // the whole group
		}
		for _, p := range scanProc() {
			if p.state != 'Z' && p.env[EnvInfraID] == infraID && p.env[EnvNodeID] == nodeID {
				pids = append(pids, p.pid)
			}
		}
		return pids
	}
	signal := func(sig syscall.Signal) int {
		pids := targets()
		for _, p := range pids {
			_ = syscall.Kill(p, sig)
		}
		return len(pids)
	}
	if signal(syscall.SIGTERM) > 0 {
		deadline := time.Now().Add(h.stopTimeout)
		for len(targets()) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
		if signal(syscall.SIGKILL) > 0 {
			h.log.Warn("process ignored SIGTERM; killed", "node_id", nodeID)
			for i := 0; i < 100 && len(targets()) > 0; i++ {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	if checkIDs(infraID, nodeID) == nil {
		err := os.Remove(h.recordPath(infraID, nodeID))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("local: destroy node %s: %w", nodeID, err)
		}
		// The log goes with its instance, and the directory with the
		// infrastructure's last one: nothing is left under $OCCOPUS_HOME.
		if err := os.Remove(h.LogPath(infraID, nodeID)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("local: destroy node %s: %w", nodeID, err)
		}
		_ = os.Remove(h.infraDir(infraID)) // only if empty
	}
	if left := targets(); len(left) > 0 {
		return fmt.Errorf("local: destroy node %s: processes %v survived SIGKILL", nodeID, left)
	}
	return nil
}

// List returns the infra's instances: its records, plus session leaders in
// /proc that carry its infra id but have no record (crash safety).
func (h *Handler) List(ctx context.Context, infraID string) ([]resource.Owned, error) {
	if !safeID.MatchString(infraID) {
		return nil, nil
	}
	seen := map[string]bool{}
	var out []resource.Owned
	paths, err := filepath.Glob(filepath.Join(h.infraDir(infraID), "*.json"))
	if err != nil {
		return nil, fmt.Errorf("local: list infra %s: %w", infraID, err)
	}
	for _, p := range paths {
		nodeID := strings.TrimSuffix(filepath.Base(p), ".json")
		r, err := h.readRecord(infraID, nodeID)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // destroyed meanwhile
			}
			return nil, fmt.Errorf("local: list infra %s: %w", infraID, err)
		}
		seen[r.NodeID] = true
		out = append(out, owned(r))
	}
	for _, p := range scanProc() {
		if p.leader() && p.env[EnvInfraID] == infraID && !seen[p.env[EnvNodeID]] {
			seen[p.env[EnvNodeID]] = true
			out = append(out, owned(p.record("")))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out, nil
}

func owned(r *record) resource.Owned {
	return resource.Owned{Handle: r.handle(), InfraID: r.InfraID, NodeID: r.NodeID, NodeName: r.NodeName, StoreID: r.StoreID}
}

// ListAll returns the instances of every infrastructure: the records
// under this home, plus session leaders in /proc that carry an infra and
// a node id but have no record here. /proc shows the processes of other
// homes of this user too (another $OCCOPUS_HOME, another service): their
// store id tells them apart.
func (h *Handler) ListAll(ctx context.Context) ([]resource.Owned, error) {
	seen := map[[2]string]bool{}
	var out []resource.Owned
	add := func(r *record) bool {
		k := [2]string{r.InfraID, r.NodeID}
		if r.InfraID == "" || r.NodeID == "" || seen[k] {
			return true
		}
		if len(out) == resource.MaxSweep {
			h.log.Warn("more instances than one sweep looks at; the rest wait for a later one", "max", resource.MaxSweep)
			return false
		}
		seen[k] = true
		out = append(out, owned(r))
		return true
	}
	for _, r := range h.allRecords() {
		// A record is named after its ids: one whose content says
		// otherwise is not ours to act on.
		if checkIDs(r.InfraID, r.NodeID) != nil {
			continue
		}
		if !add(r) {
			break
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	for _, p := range scanProc() {
		if p.leader() && !add(p.record("")) {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].InfraID < out[j].InfraID || out[i].InfraID == out[j].InfraID && out[i].NodeID < out[j].NodeID
	})
	return out, nil
}

// Find returns the instance of one node id, by record or in /proc.
func (h *Handler) Find(ctx context.Context, infraID, nodeID string) (resource.Handle, bool, error) {
	if checkIDs(infraID, nodeID) != nil {
		return resource.Handle{}, false, nil
	}
	r, err := h.readRecord(infraID, nodeID)
	if err == nil {
		return r.handle(), true, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return resource.Handle{}, false, fmt.Errorf("local: %w", err)
	}
	for _, p := range scanProc() {
		if p.leader() && p.env[EnvInfraID] == infraID && p.env[EnvNodeID] == nodeID {
			return p.record("").handle(), true, nil
		}
	}
	return resource.Handle{}, false, nil
}
