package cloudtest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/auth"
	"github.com/occopus-go/occopus/store"
	"github.com/occopus-go/occopus/store/sqlite"

	_ "github.com/occopus-go/occopus/plugins/standard"
)

// tutorialsDir holds Occopus's own tutorials, kept outside the repository
// in ../shared.
const tutorialsDir = "../../shared/occopus-tutorials"

// tutorial returns the directory of one tutorial, or skips the test.
func tutorial(t testing.TB, name string) string {
	t.Helper()
	dir := filepath.Join(tutorialsDir, name)
	if _, err := os.Stat(filepath.Join(dir, "nodes", "node_definitions.yaml")); err != nil {
		t.Skipf("no Occopus tutorial %s at %s (../shared is not laid out beside this checkout): %v", name, dir, err)
	}
	return dir
}

// managerOptions are what newManager passes besides the store and auth.
type managerOptions struct {
	parallelize bool
	parallel    int
	onEvent     func(store.Event)
	// rateLimit and rateBurst: the cloud rate limit (0: the default).
	rateLimit float64
	rateBurst int
}

// newManager opens a SQLite store in a temporary directory, loads
// authData (the text of an auth_data.yaml, written there) with package auth
// and returns a Manager over both; both are closed when the test ends.
func newManager(t testing.TB, authData string, o managerOptions) *occopus.Manager {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "auth_data.yaml")
	if err := os.WriteFile(path, []byte(authData), 0o600); err != nil {
		t.Fatal(err)
	}
	ad, err := auth.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "occopus.db"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := occopus.New(occopus.Options{Store: st, Home: dir, Auth: ad, Parallelize: o.parallelize, Parallel: o.parallel,
		RateLimit: o.rateLimit, RateBurst: o.rateBurst})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	if o.onEvent != nil {
		m.Subscribe(occopus.Observer{Event: o.onEvent})
	}
	t.Cleanup(func() {
		m.Close()
		st.Close()
	})
	return m
}

// newManagerWith is newManager with the caller's Options (Store, Home
// and Auth are set here).
func newManagerWith(t testing.TB, authData string, opt occopus.Options) *occopus.Manager {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "auth_data.yaml")
	if err := os.WriteFile(path, []byte(authData), 0o600); err != nil {
		t.Fatal(err)
	}
	ad, err := auth.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "occopus.db"))
	if err != nil {
		t.Fatal(err)
	}
	opt.Store, opt.Home, opt.Auth = st, dir, ad
	m, err := occopus.New(opt)
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Close()
		st.Close()
	})
	return m
}
