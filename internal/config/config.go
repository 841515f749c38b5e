// Package config finds and reads occopus_config.yaml and auth_data.yaml.
// Occopus's own configuration files are read unchanged: their Python tags
// (!python_import, !UDS, ...) are ignored and the few settings that apply
// here are picked out.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the orchestrator configuration. The zero value plus Home is
// the embedded default: SQLite under Home, loopback REST, no cmd().
type Config struct {
	// Home is $OCCOPUS_HOME (default ~/.occopus).
	Home string `yaml:"-"`
	// File is the configuration file read, "" when none.
	File string `yaml:"-"`
	// AuthDataPath is the auth_data.yaml in use, "" when none.
	AuthDataPath string `yaml:"-"`

	// AllowCmd lets templates run programs on this host with cmd().
	AllowCmd bool `yaml:"allow_cmd"`
	// AllowFileImports lets descriptions that arrive over the network use
	// !yaml_import / !text_import of this host's files.
	AllowFileImports bool `yaml:"allow_file_imports"`
	// AllowNetworkCmd lets descriptions that arrive over the network use
	// cmd() (AllowCmd must be set too).
	AllowNetworkCmd bool `yaml:"allow_network_cmd"`

	// Parallel bounds concurrent creations and drops with --parallelize
	// (default 32).
	Parallel int `yaml:"parallel"`
	// RateLimit and RateBurst bound calls per second to each cloud endpoint
	// (0: the cloud handlers' default, 10/s with a burst of 20).
	RateLimit float64 `yaml:"rate_limit"`
	RateBurst int     `yaml:"rate_burst"`
	// WebhookAllow, when set, lists where webhooks may go: CIDRs,
	// addresses, host names, ".domain" suffixes.
	WebhookAllow []string `yaml:"webhook_allow"`
	// MaxDescriptionBytes bounds a description with every alias expanded
	// (0: descr.DefaultMaxBytes, 4 MiB: far above any real description,
	// far below what exhausts a laptop).
	MaxDescriptionBytes int `yaml:"max_description_bytes"`
	// Limits cap the instances a node, an infrastructure and the whole
	// service may have.
	Limits Limits `yaml:"limits"`
	// Events bounds the event log (`events: {max_age: 720h,
	// per_infrastructure: 10000}`); zero fields take the defaults, a
	// negative one turns that bound off.
	Events Events `yaml:"events"`
	// Orphans configure the sweep for orphans (`orphans: {sweep: remove,
	// grace: 10m, interval: 10m}`); zero fields take the defaults.
	Orphans Orphans `yaml:"orphans"`

	Store Store `yaml:"-"`
	REST  REST  `yaml:"-"`
	HA    HA    `yaml:"-"`
}

// Limits are the caps on instance counts (occopus_config.yaml `limits:`);
// zero fields take the engine's defaults (100 per node, 500 per
// infrastructure, 2000 in all).
type Limits struct {
	PerNode  int `yaml:"instances_per_node"`
	PerInfra int `yaml:"instances_per_infrastructure"`
	Total    int `yaml:"instances"`
}

// Events are the retention bounds of the event log.
type Events struct {
	MaxAge   time.Duration
	PerInfra int
}

// Orphans configure the REST service's sweep for orphans.
type Orphans struct {
	// Sweep is remove, report or off ("": the default, remove).
	Sweep string
	// Grace is how long an orphan is seen before it is removed (0: the
	// default, 10 minutes; negative: none, written `grace: 0s`).
	Grace time.Duration
	// Interval between sweeps (0: the default, 10 minutes).
	Interval time.Duration
}

// Store selects the store. Occopus names it `components: uds:`.
type Store struct {
	Protocol string // sqlite (default), redis or etcd
	Path     string // sqlite file
	Host     string
	Port     int
	DB       int
	Password string
	// Prefix of every Redis key (default "occopus:") or etcd key
	// (default "occopus/").
	Prefix string
	// etcd: the members' client URLs (default http://127.0.0.1:2379), a
	// user (with Password), and TLS files (relative to the configuration
	// file's directory).
	Endpoints                 []string
	Username                  string
	CertFile, KeyFile, CAFile string
}

// HA configures work sharing between replicas of the REST service on one
// store (`ha: {enabled: true, lease_ttl: 10s}`): each attached
// infrastructure is maintained by the one replica holding its lease.
// With an etcd store it is on unless `enabled: false`.
type HA struct {
	Enabled bool
	// LeaseTTL is how long an owner's lease lasts without renewal, so how
	// soon another replica takes over from a dead one (0: 10 s).
	LeaseTTL time.Duration
}

// REST holds the REST service's defaults (`components: rest:`).
type REST struct {
	Host string
	Port int
}

// The environment variables Occopus 1.10 reads for its two files, used
// when --cfg and --auth_data_path are not given.
const (
	EnvConfigPath   = "OCCOPUS_CONFIG_PATH"
	EnvAuthDataPath = "OCCOPUS_AUTH_DATA_PATH"
)

// DefaultHome is $OCCOPUS_HOME, else ~/.occopus.
func DefaultHome() string {
	if h := os.Getenv("OCCOPUS_HOME"); h != "" {
		return h
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".occopus")
	}
	return ".occopus"
}

// Load reads the configuration: cfgPath when given (it must exist), else
// Home/occopus_config.yaml when present, else defaults. authPath likewise
// for auth_data.yaml.
func Load(cfgPath, authPath string) (*Config, error) {
	c := &Config{Home: DefaultHome(), Parallel: 32}
	c.REST = REST{Host: "127.0.0.1", Port: 5000}
	c.Store = Store{Protocol: "sqlite"}
	path := cfgPath
	if path == "" {
		// As Occopus 1.10: --cfg, then $OCCOPUS_CONFIG_PATH (which must
		// name a file), then the home directory's file when present.
		if p := os.Getenv(EnvConfigPath); p != "" {
			if !exists(p) {
				return nil, fmt.Errorf("configuration file %s (from $%s): does not exist", p, EnvConfigPath)
			}
			path = p
		} else if p := filepath.Join(c.Home, "occopus_config.yaml"); exists(p) {
			path = p
		}
	}
	if path != "" {
		if err := c.read(path); err != nil {
			return nil, err
		}
	}
	if c.Store.Protocol == "sqlite" && c.Store.Path == "" {
		c.Store.Path = filepath.Join(c.Home, "occopus.db")
	}
	c.AuthDataPath = authPath
	if authPath == "" {
		if p := os.Getenv(EnvAuthDataPath); p != "" {
			if !exists(p) {
				return nil, fmt.Errorf("auth data file %s (from $%s): does not exist", p, EnvAuthDataPath)
			}
			c.AuthDataPath = p
		} else if p := filepath.Join(c.Home, "auth_data.yaml"); exists(p) {
			c.AuthDataPath = p
		}
	} else if !exists(authPath) {
		return nil, fmt.Errorf("auth data file %s: does not exist", authPath)
	}
	return c, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func (c *Config) read(path string) error {
	src, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("configuration file %s: %w", path, err)
	}
	c.File = path
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		return fmt.Errorf("configuration file: %w", yamlError(path, src, err))
	}
	stripTags(&root)
	var raw rawConfig
	if err := root.Decode(&raw); err != nil {
		return fmt.Errorf("configuration file %s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	c.AllowCmd, c.AllowFileImports, c.AllowNetworkCmd = raw.AllowCmd, raw.AllowFileImports, raw.AllowNetworkCmd
	if raw.Parallel < 0 {
		return fmt.Errorf("configuration file %s: parallel: must be at least 1, not %d", path, raw.Parallel)
	}
	if raw.Parallel > 0 {
		c.Parallel = raw.Parallel
	}
	if raw.RateLimit < 0 || raw.RateBurst < 0 {
		return fmt.Errorf("configuration file %s: rate_limit and rate_burst must not be negative", path)
	}
	c.RateLimit, c.RateBurst = raw.RateLimit, raw.RateBurst
	c.WebhookAllow = raw.WebhookAllow
	switch {
	case raw.MaxDescription < 0:
		return fmt.Errorf("configuration file %s: max_description_bytes: must be positive, not %d", path, raw.MaxDescription)
	case raw.MaxDescription > 0:
		c.MaxDescriptionBytes = raw.MaxDescription
	}
	if v := raw.Events.MaxAge; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("configuration file %s: events.max_age: %q is not a duration such as 720h", path, v)
		}
		c.Events.MaxAge = d
	}
	c.Events.PerInfra = raw.Events.PerInfra
	if err := c.Orphans.read(raw.Orphans.Sweep, raw.Orphans.Grace, raw.Orphans.Interval); err != nil {
		return fmt.Errorf("configuration file %s: orphans.%w", path, err)
	}
	if l := raw.Limits; l != nil {
		for _, v := range []struct {
			key string
			n   int
			dst *int
		}{{"instances_per_node", l.PerNode, &c.Limits.PerNode}, {"instances_per_infrastructure", l.PerInfra, &c.Limits.PerInfra}, {"instances", l.Total, &c.Limits.Total}} {
			if v.n < 0 {
				return fmt.Errorf("configuration file %s: limits.%s: must be at least 1, not %d", path, v.key, v.n)
			}
			if v.n > 0 {
				*v.dst = v.n
			}
		}
	}
	if c.RateLimit > 0 && c.RateBurst == 0 {
		c.RateBurst = max(1, int(c.RateLimit*2))
	}
	if r := raw.Components.REST; r.Host != "" || r.Port != 0 {
		if r.Host != "" {
			c.REST.Host = r.Host
		}
		if r.Port != 0 {
			c.REST.Port = r.Port
		}
	}
	u := raw.Components.UDS
	switch u.Protocol {
	case "", "sqlite":
		c.Store.Protocol = "sqlite"
		if u.Path != "" {
			c.Store.Path = u.Path
			if !filepath.IsAbs(u.Path) {
				c.Store.Path = filepath.Join(filepath.Dir(path), u.Path)
			}
		}
	case "redis":
		c.Store = Store{Protocol: "redis", Host: u.Host, Port: u.Port, DB: u.DB, Password: u.Password, Prefix: u.Prefix}
		if c.Store.Host == "" {
			c.Store.Host = "localhost"
		}
		if c.Store.Port == 0 {
			c.Store.Port = 6379
		}
	case "etcd":
		c.Store = Store{Protocol: "etcd", Username: u.Username, Password: u.Password, Prefix: u.Prefix}
		if u.Host != "" || u.Port != 0 || u.DB != 0 || u.Path != "" {
			return fmt.Errorf("configuration file %s: components.uds: host, port, db and path are not etcd settings; "+
				"give the members' client URLs as endpoints: [http://127.0.0.1:2379, ...]", path)
		}
		if u.Password != "" && u.Username == "" {
			return fmt.Errorf("configuration file %s: components.uds: a password without a username", path)
		}
		for i, e := range u.Endpoints {
			eu, err := url.Parse(e)
			if err != nil || (eu.Scheme != "http" && eu.Scheme != "https") || eu.Host == "" {
				return fmt.Errorf("configuration file %s: components.uds.endpoints[%d]: %q is not a client URL such as http://127.0.0.1:2379", path, i, e)
			}
			c.Store.Endpoints = append(c.Store.Endpoints, e)
		}
		if len(c.Store.Endpoints) == 0 {
			c.Store.Endpoints = []string{"http://127.0.0.1:2379"}
		}
		if (u.Cert == "") != (u.Key == "") {
			return fmt.Errorf("configuration file %s: components.uds: give both cert and key (a client certificate), or neither", path)
		}
		rel := func(f string) string {
			if f != "" && !filepath.IsAbs(f) {
				return filepath.Join(filepath.Dir(path), f)
			}
			return f
		}
		c.Store.CertFile, c.Store.KeyFile, c.Store.CAFile = rel(u.Cert), rel(u.Key), rel(u.CA)
	default:
		return fmt.Errorf("configuration file %s: components.uds.protocol: unknown store %q (use sqlite, redis or etcd)", path, u.Protocol)
	}
	c.HA.Enabled = c.Store.Protocol == "etcd"
	if raw.HA.Enabled != nil {
		c.HA.Enabled = *raw.HA.Enabled
	}
	if v := raw.HA.LeaseTTL; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return fmt.Errorf("configuration file %s: ha.lease_ttl: %q is not a duration of at least 1s such as 10s", path, v)
		}
		c.HA.LeaseTTL = d
	}
	return nil
}

// rawConfig is the file as written; its yaml keys are the known ones.
type rawConfig struct {
	AllowCmd         bool     `yaml:"allow_cmd"`
	AllowFileImports bool     `yaml:"allow_file_imports"`
	AllowNetworkCmd  bool     `yaml:"allow_network_cmd"`
	Parallel         int      `yaml:"parallel"`
	RateLimit        float64  `yaml:"rate_limit"`
	RateBurst        int      `yaml:"rate_burst"`
	WebhookAllow     []string `yaml:"webhook_allow"`
	MaxDescription   int      `yaml:"max_description_bytes"`
	Limits           *Limits  `yaml:"limits"`
	Events           struct {
		MaxAge   string `yaml:"max_age"`
		PerInfra int    `yaml:"per_infrastructure"`
	} `yaml:"events"`
	Orphans struct {
		Sweep    string `yaml:"sweep"`
		Grace    string `yaml:"grace"`
		Interval string `yaml:"interval"`
	} `yaml:"orphans"`
	Components struct {
		REST struct {
			Host string `yaml:"host"`
			Port int    `yaml:"port"`
		} `yaml:"rest"`
		UDS struct {
			Protocol string `yaml:"protocol"`
			Path     string `yaml:"path"`
			Host     string `yaml:"host"`
			Port     int    `yaml:"port"`
			DB       int    `yaml:"db"`
			Password string `yaml:"password"`
			Prefix   string `yaml:"prefix"`
			// etcd
			Endpoints []string `yaml:"endpoints"`
			Username  string   `yaml:"username"`
			Cert      string   `yaml:"cert"`
			Key       string   `yaml:"key"`
			CA        string   `yaml:"ca"`
		} `yaml:"uds"`
	} `yaml:"components"`
	HA struct {
		Enabled  *bool  `yaml:"enabled"`
		LeaseTTL string `yaml:"lease_ttl"`
	} `yaml:"ha"`
}

// read checks and sets the `orphans:` keys; the error starts with the key.
func (o *Orphans) read(sweep, grace, interval string) error {
	switch sweep {
	case "", "remove", "report", "off":
		o.Sweep = sweep
	default:
		return fmt.Errorf("sweep: %q is not remove, report or off", sweep)
	}
	if grace != "" {
		d, err := time.ParseDuration(grace)
		if err != nil || d < 0 {
			return fmt.Errorf("grace: %q is not a duration such as 10m (0s: remove at first sight)", grace)
		}
		o.Grace = d
		if d == 0 {
			o.Grace = -1 // none, which 0 (the default) cannot say
		}
	}
	if interval != "" {
		d, err := time.ParseDuration(interval)
		if err != nil || d < time.Second {
			return fmt.Errorf("interval: %q is not a duration of at least 1s such as 10m", interval)
		}
		o.Interval = d
	}
	return nil
}

// stripTags drops application tags (Occopus's !python_import, !UDS, ...)
// so the plain structure underneath can be decoded.
func stripTags(n *yaml.Node) {
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		n.Tag = ""
	}
	for _, c := range n.Content {
		stripTags(c)
	}
}
