package health

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
)

// mysqlEnv returns the test server from env (see scripts/services.sh
// mariadb). Without it the test skips, except under CI=true where a missing
// database must not silently turn the suite green.
func mysqlEnv(t *testing.T) (host, port, user, pass, db string) {
	t.Helper()
	addr := os.Getenv("OCCOPUS_TEST_MYSQL_ADDR")
	user, pass, db = os.Getenv("OCCOPUS_TEST_MYSQL_USER"), os.Getenv("OCCOPUS_TEST_MYSQL_PASS"), os.Getenv("OCCOPUS_TEST_MYSQL_DB")
	if addr == "" || user == "" || db == "" {
		msg := "OCCOPUS_TEST_MYSQL_ADDR/USER/PASS/DB not set; start a server with: eval \"$(scripts/services.sh mariadb)\""
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("OCCOPUS_TEST_MYSQL_ADDR=%q: %v", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		t.Fatalf("OCCOPUS_TEST_MYSQL_ADDR=%q: tests only talk to loopback", addr)
	}
	return host, port, user, pass, db
}

func TestMySQLProbe(t *testing.T) {
	host, port, user, pass, db := mysqlEnv(t)
	data := map[string]any{"variables": map[string]any{"dbuser": user}}
	tests := []struct {
		name    string
		entry   map[string]any
		want    Status
		wantOut string
	}{
		{"right credentials", map[string]any{"name": db, "user": user, "pass": pass, "port": port}, Pass, "SELECT 1 ok"},
		{"templated host and user", map[string]any{"name": db, "user": "{{ variables.dbuser }}", "pass": pass, "host": "{{ip}}", "port": port}, Pass, "SELECT 1 ok"},
		{"wrong password", map[string]any{"name": db, "user": user, "pass": pass + "-wrong", "port": port}, Fail, "Access denied"},
		{"wrong db name", map[string]any{"name": db + "_nope", "user": user, "pass": pass, "port": port}, Fail, "denied"},
		{"nothing listening", map[string]any{"name": db, "user": user, "pass": pass, "port": closedPort(t)}, Fail, "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Build(map[string]any{"ping": false, "mysqldbs": []any{tt.entry}})
			if err != nil {
				t.Fatal(err)
			}
			rs := c.Run(context.Background(), Target{Addr: host, Data: data})
			if len(rs) != 1 {
				t.Fatalf("results %+v", rs)
			}
			r := rs[0]
			if r.Status != tt.want || r.Primitive != "mysqldbs" || !strings.Contains(r.Output, tt.wantOut) {
				t.Fatalf("got %s %q, want %s containing %q", r.Status, r.Output, tt.want, tt.wantOut)
			}
			if pass != "" && strings.Contains(r.Output, pass) {
				t.Errorf("output leaks the password: %q", r.Output)
			}
			t.Log(r.Output)
		})
	}
}
