package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
)

const dumpDir = "../../../shared/occopus-1.10-redis-dump"

type dumpKey struct {
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
}

// TestMigrateFromOccopus takes over the infrastructure of a real Occopus
// 1.10 store: the captured containers are made again on the Docker engine
// (same image, command and env, no labels), the captured Redis content is
// written into a real redis-server under a user of this test with the new
// containers' ids in place of the captured ones, and then migrate,
// maintain (nothing re-created), scale -c 1 (one more) and destroy (none
// left) run as a user would run them. Occopus's keys are unchanged after.
func TestMigrateFromOccopus(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(dumpDir, "redis.json"))
	if err != nil {
		t.Skipf("no captured Occopus store at %s (../shared not laid out): %v", dumpDir, err)
	}
	addr := os.Getenv("OCCOPUS_TEST_REDIS_ADDR")
	if addr == "" {
		requireOrSkip(t, "no Redis: run `eval \"$(scripts/services.sh redis)\"` first")
	}
	dockerBackend.require(t)
	var dump map[string]map[string]dumpKey
	if err := json.Unmarshal(raw, &dump); err != nil {
		t.Fatal(err)
	}
	lines, err := os.ReadFile(filepath.Join(dumpDir, "containers.txt"))
	if err != nil {
		t.Fatal(err)
	}
	// The containers, made again.
	tag := uuid.NewString()[:8]
	// A network of their own: on the default bridge a container could get
	// 172.17.0.2, the address the captured drop request names.
	netw := "occo-migrate-" + tag
	docker(t, "network", "create", netw)
	t.Cleanup(func() { dockerCLI(context.Background(), "network", "rm", netw) })
	newID := map[string]string{}
	for i, l := range strings.Split(strings.TrimSpace(string(lines)), "\n") {
		f := strings.Fields(l)
		start, end := strings.Index(l, "["), strings.LastIndex(l, "]")
		var envs []string
		if len(f) < 3 || start < 0 || json.Unmarshal([]byte(l[start:end+1]), &envs) != nil {
			t.Fatalf("containers.txt line %d: %q", i+1, l)
		}
		args := []string{"run", "-d", "--network", netw, "--name", fmt.Sprintf("occo-migrate-%s-%d", tag, i)}
		for _, e := range envs {
			args = append(args, "-e", e)
		}
		id := strings.TrimSpace(docker(t, append(args, "occo-bar:v2", "sh", "/root/start.sh")...))
		t.Cleanup(func() { dockerCLI(context.Background(), "rm", "-f", id) })
		newID[f[0]] = id
	}
	// The store, written under this test's user with the new ids.
	user := "migrate-" + tag
	ctx := context.Background()
	var written []func() (string, string)
	for db, keys := range dump {
		var n int
		fmt.Sscan(db, &n)
		c := goredis.NewClient(&goredis.Options{Addr: addr, DB: n, Password: os.Getenv("OCCOPUS_TEST_REDIS_PASS")})
		t.Cleanup(func() { c.Close() })
		for k, v := range keys {
			key := strings.Replace(k, "root@", user+"@", 1)
			subst := func(s string) string {
				for old, nw := range newID {
					s = strings.ReplaceAll(s, old, nw)
				}
				return s
			}
			switch v.Type {
			case "string":
				var s string
				json.Unmarshal(v.Value, &s)
				if err := c.Set(ctx, key, subst(s), 0).Err(); err != nil {
					t.Fatal(err)
				}
			case "hash":
				var h map[string]string
				json.Unmarshal(v.Value, &h)
				for hk, hv := range h {
					if err := c.HSet(ctx, key, hk, subst(hv)).Err(); err != nil {
						t.Fatal(err)
					}
				}
			default:
				t.Fatalf("key %s: type %s", k, v.Type)
			}
			t.Cleanup(func() { c.Del(context.Background(), key) })
			written = append(written, func() (string, string) {
				d, _ := c.Dump(ctx, key).Result()
				return fmt.Sprintf("%d/%s", n, key), d
			})
		}
	}
	snapshot := func() string {
		var out []string
		for _, f := range written {
			k, v := f()
			out = append(out, k+"="+v)
		}
		sort.Strings(out)
		return strings.Join(out, "\n")
	}
	before := snapshot()

	t.Setenv("OCCOPUS_HOME", t.TempDir())
	t.Setenv(envMigratePassword, os.Getenv("OCCOPUS_TEST_REDIS_PASS"))
	const infraID = "ae8e635f-cb86-46f3-8c5f-2ecebcca7fb1"
	stdout, stderr, code := run(t, "migrate", "--from-redis", addr, "--user", user, "--dry-run")
	if code != 0 || !strings.Contains(stdout, "would take over: 5 node type(s), 1 infrastructure(s), 3 instance(s)") {
		t.Fatalf("migrate --dry-run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if out, _, _ := run(t, "maintain", "-l"); strings.Contains(out, infraID) {
		t.Fatalf("--dry-run recorded the infrastructure:\n%s", out)
	}
	stdout, stderr, code = run(t, "migrate", "--from-redis", addr, "--user", user)
	if code != 0 || !strings.Contains(stdout, "taken over: 5 node type(s), 1 infrastructure(s), 3 instance(s)") {
		t.Fatalf("migrate: exit %d\n%s\n%s", code, stdout, stderr)
	}
	t.Logf("migrate:\n%s", stdout)
	t.Cleanup(func() { run(t, "destroy", "-i", infraID, "--force") })
	for _, id := range newID {
		if !strings.Contains(stdout, id[:12]) {
			t.Errorf("container %s is not among those taken over", id[:12])
		}
	}
	if _, stderr, code := run(t, "migrate", "--from-redis", addr, "--user", user); code == 0 || !strings.Contains(stderr, "already in the store") {
		t.Errorf("a second migrate: exit %d, stderr %q", code, stderr)
	}

	running := func() int {
		n := 0
		for _, id := range newID {
			if out, err := dockerCLI(ctx, "inspect", "-f", "{{.State.Running}}", id); err == nil && strings.TrimSpace(out) == "true" {
				n++
			}
		}
		return n
	}
	made := func() int { return len(containers(t, "occopus.infra_id="+infraID)) }

	if _, stderr, code := run(t, "maintain", "-i", infraID); code != 0 {
		t.Fatalf("maintain: exit %d\n%s", code, stderr)
	}
	if r, m := running(), made(); r != 3 || m != 0 {
		t.Fatalf("after maintain: %d of the 3 taken-over containers run, %d made; want 3 and none", r, m)
	}
	if _, stderr, code := run(t, "scale", "-i", infraID, "-n", "receiver", "-c", "1"); code != 0 {
		t.Fatalf("scale: exit %d\n%s", code, stderr)
	}
	if _, stderr, code := run(t, "maintain", "-i", infraID); code != 0 {
		t.Fatalf("maintain after scale: exit %d\n%s", code, stderr)
	}
	if r, m := running(), made(); r != 3 || m != 1 {
		t.Fatalf("after scale -c 1: %d of the 3 taken-over containers run, %d made; want 3 and 1", r, m)
	}
	if _, stderr, code := run(t, "destroy", "-i", infraID); code != 0 {
		t.Fatalf("destroy: exit %d\n%s", code, stderr)
	}
	left := 0
	for _, id := range newID {
		if _, err := dockerCLI(ctx, "inspect", id); err == nil {
			left++
		}
	}
	if left != 0 || made() != 0 {
		t.Fatalf("after destroy: %d taken-over and %d made containers left", left, made())
	}
	if after := snapshot(); after != before {
		t.Errorf("Occopus's Redis changed:\n--- before\n%s\n--- after\n%s", before, after)
	}
}
