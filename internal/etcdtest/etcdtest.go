// Package etcdtest runs a private etcd cluster for tests: n members of
// the etcd binary (Debian's etcd-server package; scripts/test.sh installs
// it when missing) as child processes on loopback, on free ports, with
// their data in the test's temporary directory. A real process per member
// means a member can be killed (SIGKILL) like a host that dies.
//
// Without the binary the test is skipped, or fails under CI=true.
package etcdtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Cluster is a running test cluster.
type Cluster struct {
	Members []*Member
}

// Member is one etcd process.
type Member struct {
	Name      string
	ClientURL string
	peerURL   string
	dir       string
	cmd       *exec.Cmd
	done      chan struct{}
	args      []string
	logf      *os.File
}

// Binary returns the path of the etcd binary, skipping (or, under
// CI=true, failing) t when there is none.
func Binary(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("OCCOPUS_TEST_ETCD"), "/usr/bin/etcd"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath("etcd"); err == nil {
		return p
	}
	msg := "no etcd binary (install Debian's etcd-server, or set OCCOPUS_TEST_ETCD); scripts/test.sh installs it"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: etcd tests must run)")
	}
	t.Skip(msg)
	return ""
}

// freePort returns a port nothing listens on right now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start starts an n-member cluster and waits until it answers; t.Cleanup
// kills it.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	bin := Binary(t)
	root := t.TempDir()
	token := fmt.Sprintf("occotest-%d-%d", os.Getpid(), time.Now().UnixNano())
	c := &Cluster{}
	var initial []string
	for i := range n {
		m := &Member{Name: fmt.Sprintf("m%d", i), dir: filepath.Join(root, fmt.Sprintf("m%d", i)),
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
			peerURL:   fmt.Sprintf("http://127.0.0.1:%d", freePort(t))}
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.peerURL)
	}
	for _, m := range c.Members {
		m.args = []string{bin, "--name", m.Name, "--data-dir", filepath.Join(m.dir, "data"),
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", token,
			// Short rounds: a test cluster on loopback elects a leader
			// within a second of losing one.
			"--heartbeat-interval", "50", "--election-timeout", "500",
			"--logger", "zap", "--log-level", "warn"}
		if err := os.MkdirAll(m.dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := m.start(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, m := range c.Members {
			m.Kill()
		}
	})
	if err := c.Wait(t.Context(), 60*time.Second); err != nil {
		for _, m := range c.Members {
			b, _ := os.ReadFile(filepath.Join(m.dir, "etcd.log"))
			t.Logf("%s log:\n%s", m.Name, tail(string(b), 2000))
		}
		t.Fatal(err)
	}
	return c
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (m *Member) start() error {
	f, err := os.OpenFile(filepath.Join(m.dir, "etcd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	m.logf = f
	m.cmd = exec.Command(m.args[0], m.args[1:]...)
	m.cmd.Stdout, m.cmd.Stderr = f, f
	// Its own process group, so that a signal to the test's group (^C)
	// does not reach it before the clean-up does.
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start etcd %s: %w", m.Name, err)
	}
	m.done = make(chan struct{})
	go func() {
		m.cmd.Wait() //nolint:errcheck // killed on purpose
		f.Close()
		close(m.done)
	}()
	return nil
}

// Kill ends the member with SIGKILL and waits for it; killing a dead one
// does nothing.
func (m *Member) Kill() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	select {
	case <-m.done:
		return
	default:
	}
	m.cmd.Process.Kill() //nolint:errcheck // may have exited
	<-m.done
}

// Restart starts a killed member again on its data directory.
func (m *Member) Restart() error {
	m.Kill()
	for i, a := range m.args {
		if a == "--initial-cluster-state" {
			m.args[i+1] = "existing"
		}
	}
	return m.start()
}

// Endpoints are the client URLs of every member.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.Members {
		out = append(out, m.ClientURL)
	}
	return out
}

// Wait returns once a linearizable read through every endpoint succeeds
// (so the cluster has a leader), or after timeout.
func (c *Cluster) Wait(ctx context.Context, timeout time.Duration) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := cli.Get(rctx, "health")
		rcancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcd cluster %v did not answer: %w", c.Endpoints(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
