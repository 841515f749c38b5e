package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoad(t *testing.T) {
	cases := []struct {
		name    string
		file    string // occopus_config.yaml content; "" = no file
		check   func(t *testing.T, c *Config)
		wantErr string
	}{
		{name: "no file: embedded defaults", check: func(t *testing.T, c *Config) {
			if c.File != "" || c.Store.Protocol != "sqlite" || !strings.HasSuffix(c.Store.Path, "occopus.db") || c.REST.Host != "127.0.0.1" || c.REST.Port != 5000 || c.AllowCmd {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{name: "own keys", file: "allow_cmd: true\nallow_file_imports: yes\ncomponents:\n  uds: {protocol: sqlite, path: state.db}\n  rest: {port: 8080}\n", check: func(t *testing.T, c *Config) {
			if !c.AllowCmd || !c.AllowFileImports || filepath.Base(c.Store.Path) != "state.db" || c.REST.Port != 8080 || c.REST.Host != "127.0.0.1" {
				t.Errorf("got %+v", c)
			}
		}},
		{name: "python tags are ignored", file: "plugins: !python_import\n  - occo.x\ncomponents:\n  uds: !UDS\n    protocol: redis\n    host: db.local\n    port: 6380\n    db: 2\n", check: func(t *testing.T, c *Config) {
			if !reflect.DeepEqual(c.Store, Store{Protocol: "redis", Host: "db.local", Port: 6380, DB: 2}) || c.HA.Enabled {
				t.Errorf("store %+v", c.Store)
			}
		}},
		{name: "rate limit", file: "rate_limit: 50\n", check: func(t *testing.T, c *Config) {
			if c.RateLimit != 50 || c.RateBurst != 100 {
				t.Errorf("rate %v burst %d, want 50 and 100", c.RateLimit, c.RateBurst)
			}
		}},
		{name: "negative rate", file: "rate_limit: -1\n", wantErr: "must not be negative"},
		{name: "hardening defaults", check: func(t *testing.T, c *Config) {
			if c.Limits != (Limits{}) || c.MaxDescriptionBytes != 0 || c.WebhookAllow != nil {
				t.Errorf("limits %+v, max description %d, webhook_allow %v", c.Limits, c.MaxDescriptionBytes, c.WebhookAllow)
			}
		}},
		{name: "hardening keys", file: "limits: {instances_per_node: 7, instances: 70}\nmax_description_bytes: 1000\nwebhook_allow: [10.0.0.0/8, hooks.example.org]\n", check: func(t *testing.T, c *Config) {
			if c.Limits != (Limits{PerNode: 7, Total: 70}) || c.MaxDescriptionBytes != 1000 || len(c.WebhookAllow) != 2 {
				t.Errorf("limits %+v, max description %d, webhook_allow %v", c.Limits, c.MaxDescriptionBytes, c.WebhookAllow)
			}
		}},
		{name: "events retention", file: "events: {max_age: 168h, per_infrastructure: -1}\n", check: func(t *testing.T, c *Config) {
			if c.Events.MaxAge != 168*time.Hour || c.Events.PerInfra != -1 {
				t.Errorf("events %+v", c.Events)
			}
		}},
		{name: "bad events age", file: "events: {max_age: a month}\n", wantErr: `events.max_age: "a month" is not a duration`},
		{name: "orphans: defaults", check: func(t *testing.T, c *Config) {
			if c.Orphans != (Orphans{}) {
				t.Errorf("orphans %+v, want zero (the Manager's defaults)", c.Orphans)
			}
		}},
		{name: "orphans keys", file: "orphans: {sweep: report, grace: 30m, interval: 1h}\n", check: func(t *testing.T, c *Config) {
			if c.Orphans != (Orphans{Sweep: "report", Grace: 30 * time.Minute, Interval: time.Hour}) {
				t.Errorf("orphans %+v", c.Orphans)
			}
		}},
		{name: "orphans: no grace", file: "orphans: {sweep: remove, grace: 0s}\n", check: func(t *testing.T, c *Config) {
			if c.Orphans != (Orphans{Sweep: "remove", Grace: -1}) {
				t.Errorf("orphans %+v, want remove with no grace (-1)", c.Orphans)
			}
		}},
		{name: "orphans off", file: "orphans:\n  sweep: off\n", check: func(t *testing.T, c *Config) {
			if c.Orphans.Sweep != "off" {
				t.Errorf("orphans %+v", c.Orphans)
			}
		}},
		{name: "bad orphan sweep", file: "orphans: {sweep: delete}\n", wantErr: `orphans.sweep: "delete" is not remove, report or off`},
		{name: "bad orphan grace", file: "orphans: {grace: soon}\n", wantErr: `orphans.grace: "soon" is not a duration`},
		{name: "negative orphan grace", file: "orphans: {grace: -5m}\n", wantErr: `orphans.grace: "-5m"`},
		{name: "orphan interval too short", file: "orphans: {interval: 1ms}\n", wantErr: `orphans.interval: "1ms" is not a duration of at least 1s`},
		{name: "negative limit", file: "limits: {instances_per_infrastructure: -1}\n", wantErr: "limits.instances_per_infrastructure: must be at least 1, not -1"},
		{name: "negative description size", file: "max_description_bytes: -5\n", wantErr: "max_description_bytes: must be positive"},
		{name: "unknown store", file: "components:\n  uds: {protocol: mongodb}\n", wantErr: `components.uds.protocol: unknown store "mongodb"`},
		{name: "bad yaml", file: "components: [\n", wantErr: "invalid YAML"},
		{name: "etcd", file: "components:\n  uds: {protocol: etcd, endpoints: [http://127.0.0.1:2379, 'https://10.0.0.2:2379'], prefix: prod/, username: occo, password: pw, cert: tls/c.pem, key: tls/k.pem, ca: /etc/ca.pem}\nha: {lease_ttl: 5s}\n", check: func(t *testing.T, c *Config) {
			want := Store{Protocol: "etcd", Prefix: "prod/", Username: "occo", Password: "pw",
				Endpoints: []string{"http://127.0.0.1:2379", "https://10.0.0.2:2379"},
				CertFile:  filepath.Join(filepath.Dir(c.File), "tls/c.pem"), KeyFile: filepath.Join(filepath.Dir(c.File), "tls/k.pem"), CAFile: "/etc/ca.pem"}
			if !reflect.DeepEqual(c.Store, want) {
				t.Errorf("store %+v, want %+v", c.Store, want)
			}
			if c.HA != (HA{Enabled: true, LeaseTTL: 5 * time.Second}) {
				t.Errorf("ha %+v: etcd turns it on", c.HA)
			}
		}},
		{name: "etcd defaults", file: "components:\n  uds: {protocol: etcd}\nha: {enabled: false}\n", check: func(t *testing.T, c *Config) {
			if !reflect.DeepEqual(c.Store.Endpoints, []string{"http://127.0.0.1:2379"}) || c.HA.Enabled {
				t.Errorf("store %+v ha %+v", c.Store, c.HA)
			}
		}},
		{name: "ha over redis", file: "components:\n  uds: {protocol: redis}\nha: {enabled: true}\n", check: func(t *testing.T, c *Config) {
			if !c.HA.Enabled || c.HA.LeaseTTL != 0 {
				t.Errorf("ha %+v", c.HA)
			}
		}},
		{name: "etcd bad endpoint", file: "components:\n  uds: {protocol: etcd, endpoints: [http://a:1, '127.0.0.1:2379']}\n", wantErr: `components.uds.endpoints[1]: "127.0.0.1:2379" is not a client URL`},
		{name: "etcd host", file: "components:\n  uds: {protocol: etcd, host: a}\n", wantErr: "host, port, db and path are not etcd settings"},
		{name: "etcd cert without key", file: "components:\n  uds: {protocol: etcd, cert: c.pem}\n", wantErr: "give both cert and key"},
		{name: "etcd password without user", file: "components:\n  uds: {protocol: etcd, password: x}\n", wantErr: "a password without a username"},
		{name: "bad lease ttl", file: "ha: {lease_ttl: 10ms}\n", wantErr: `ha.lease_ttl: "10ms" is not a duration of at least 1s`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			t.Setenv("OCCOPUS_HOME", home)
			if tc.file != "" {
				if err := os.WriteFile(filepath.Join(home, "occopus_config.yaml"), []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			c, err := Load("", "")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

// TestOccopusConfigUnchanged reads the seeds' own configuration file.
func TestOccopusConfigUnchanged(t *testing.T) {
	path := "../../../shared/occopus-tutorials/dot-occopus/occopus_config.yaml"
	if _, err := os.Stat(path); err != nil {
		t.Skipf("Occopus's configuration file is not at %s (../shared not laid out)", path)
	}
	t.Setenv("OCCOPUS_HOME", t.TempDir())
	c, err := Load(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Protocol != "redis" || c.Store.Host != "localhost" || c.Store.Port != 6379 || c.REST.Port != 5000 {
		t.Errorf("got store %+v rest %+v", c.Store, c.REST)
	}
}

func TestAuthPath(t *testing.T) {
	home := t.TempDir()
	t.Setenv("OCCOPUS_HOME", home)
	if _, err := Load("", filepath.Join(home, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing --auth_data_path: %v", err)
	}
	if err := os.WriteFile(filepath.Join(home, "auth_data.yaml"), []byte("resource: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load("", "")
	if err != nil || c.AuthDataPath != filepath.Join(home, "auth_data.yaml") {
		t.Fatalf("default auth path: %v %q", err, c.AuthDataPath)
	}
}

// TestEnvPaths: $OCCOPUS_CONFIG_PATH and $OCCOPUS_AUTH_DATA_PATH are used
// when no flag is given, as Occopus 1.10 does; a flag wins; a variable
// naming a missing file is an error naming the variable.
func TestEnvPaths(t *testing.T) {
	home, other := t.TempDir(), t.TempDir()
	t.Setenv("OCCOPUS_HOME", home)
	cfg := filepath.Join(other, "cfg.yaml")
	ad := filepath.Join(other, "ad.yaml")
	flagCfg := filepath.Join(other, "flag.yaml")
	for f, body := range map[string]string{cfg: "parallel: 7\n", ad: "resource: []\n", flagCfg: "parallel: 9\n",
		filepath.Join(home, "occopus_config.yaml"): "parallel: 5\n"} {
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name, envCfg, envAuth, flagCfg string
		parallel                       int
		auth, wantErr                  string
	}{
		{name: "home", parallel: 5},
		{name: "env", envCfg: cfg, envAuth: ad, parallel: 7, auth: ad},
		{name: "flag wins", envCfg: cfg, flagCfg: flagCfg, parallel: 9},
		{name: "env missing config", envCfg: filepath.Join(other, "nope.yaml"), wantErr: "(from $OCCOPUS_CONFIG_PATH): does not exist"},
		{name: "env missing auth", envAuth: filepath.Join(other, "nope.yaml"), wantErr: "(from $OCCOPUS_AUTH_DATA_PATH): does not exist"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvConfigPath, tc.envCfg)
			t.Setenv(EnvAuthDataPath, tc.envAuth)
			c, err := Load(tc.flagCfg, "")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Parallel != tc.parallel || c.AuthDataPath != tc.auth {
				t.Errorf("parallel %d auth %q, want %d %q", c.Parallel, c.AuthDataPath, tc.parallel, tc.auth)
			}
		})
	}
}

// TestInspect: Occopus's configuration is accepted with each of its
// sections said to be used or ignored; an unknown key is an error at its
// place.
func TestInspect(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("OCCOPUS_HOME", dir)
	cases := []struct {
		name, src string
		used      []string
		ignored   []string
		wantErr   string
	}{
		{name: "occopus", src: "plugins: !python_import\n  - occo.infobroker\ncomponents:\n  rest: {host: 0.0.0.0, port: 5001}\n  uds: !UDS\n    protocol: redis\n    host: h\n    port: 6380\n    db: 2\n    altdbs: {node_def: 1}\n  infobroker: !InfoRouter\n    sub_providers: []\nlogging:\n  version: 1\n",
			used: []string{"components.uds (store: redis at h:6380 db 2)", "components.rest (rest-service listens on 0.0.0.0:5001)"}, ignored: []string{"plugins", "components.uds.altdbs", "components.infobroker", "logging"}},
		{name: "ours", src: "parallel: 4\nlimits: {instances: 10}\n", used: []string{"parallel", "limits"}},
		{name: "unknown key", src: "components: {}\nparalel: 4\n", wantErr: "cfg.yaml:2:1: paralel: unknown configuration key \"paralel\""},
		{name: "unknown component", src: "components:\n  rst: {}\n", wantErr: "cfg.yaml:2:3: components.rst: unknown component \"rst\""},
		{name: "bad yaml", src: "components:\n\trest: {}\n", wantErr: "cfg.yaml:2:1: invalid YAML: tabs are not allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "cfg.yaml")
			if err := os.WriteFile(p, []byte(tc.src), 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := Inspect(p)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(r.Used, "|") != strings.Join(tc.used, "|") {
				t.Errorf("used %q, want %q", r.Used, tc.used)
			}
			if len(r.Ignored) != len(tc.ignored) {
				t.Fatalf("ignored %q, want %q", r.Ignored, tc.ignored)
			}
			for i, ig := range tc.ignored {
				if !strings.HasPrefix(r.Ignored[i], ig+" (") {
					t.Errorf("ignored[%d] = %q, want %s (...)", i, r.Ignored[i], ig)
				}
			}
		})
	}
}
