// Package chef is the chef config manager (`config_management: {type:
// chef}`): it registers every node instance on a Chef Infra Server before
// its VM boots, as Occopus 1.10 does, and waits for chef-client on the VM
// to report a converge.
//
// Section keys (as in Occopus):
//
//	endpoint:    the server URL with the organization
//	             (https://chef.example.org/organizations/acme)
//	run_list:    the node's run list (recipe[apache2], role[web], ...; a
//	             bare name is a recipe)
//	environment: optional; a Chef environment of the user's to put the
//	             nodes in instead of the infrastructure's own (it must exist
//	             and is neither created nor deleted)
//
// Credentials come from the auth_data entry of type chef under
// `config_management:` (selected like resource credentials, by type and
// any selector such as endpoint): client_name and client_key, a PEM RSA
// private key (usually `!text_import`ed). Every request is signed with it
// (Mixlib authentication through github.com/go-chef/chef): protocol 1.3,
// or 1.0 when the server refuses the first 1.3 request and accepts 1.0.
//
// What it does, each step create-or-update so that a retried or resumed
// pass never fails on "already exists" and a second one writes nothing:
//
//   - before the first node of a pass: the environment named after the
//     infrastructure id;
//   - before each instance's VM is created: the role `{infra_id}_{node
//     name}` (left as it is when it exists: users may give it a run list)
//     and the node named after the node id, with chef_environment = the
//     infra id, run_list = the role, recipe[connect] (the cookbook that
//     reads `connections`), then the section's run list (as Occopus 1.10
//     builds it), and normal attributes = the node's merged attributes,
//     dotted keys expanded, plus `connections` from the dependencies'
//     attribute mappings;
//   - readiness: the node is converged once chef-client has saved it with
//     automatic.ohai_time;
//   - dropping an instance deletes its node and its client (the one
//     chef-client registered under the node id);
//   - destroying the infrastructure deletes the nodes left in its
//     environment, its roles (`{infra_id}_*`) and its environment, all
//     found by name, so a destroy after a crash finds them too.
//
// The VM side is the node's own cloud-init (its `chef:` module, with
// environment {{infra_id}} and node_name {{node_id}}).
package chef

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"

	gochef "github.com/go-chef/chef"

	"github.com/occopus-go/occopus/auth"
	"github.com/occopus-go/occopus/configmgr"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/internal/cloudapi"
)

func init() {
	configmgr.Register(configmgr.Plugin{Type: "chef", Schema: descr.SchemaOf[Settings](), Resolve: Resolve, New: New})
}

// Settings are the keys of a chef section: the connection New reads and
// the per-node keys Register reads from each instance's section.
type Settings struct {
	Connection
	Instance
}

// Connection says which server, organization and environment.
type Connection struct {
	Endpoint    string `occopus:"endpoint,required"`
	Environment string `occopus:"environment"`
}

// Instance is what a node is registered with.
type Instance struct {
	RunList []string `occopus:"run_list,required"`
}

// Credentials are the keys of a chef auth_data entry.
type Credentials struct {
	ClientName string      `occopus:"client_name"`
	ClientKey  auth.Secret `occopus:"client_key"`
}

// Resolve renders the section; chef offers no template names.
func Resolve(path string, section map[string]any, r configmgr.Renderer) (map[string]any, map[string]any, error) {
	out, err := configmgr.RenderSection(path, section, r)
	return out, nil, err
}

// Protocol versions of the Mixlib signature.
const (
	protoUnknown int32 = iota // 1.3 first; 1.0 if the server refuses it
	proto13
	proto10
)

// Manager talks to one organization of one Chef Infra Server as one
// client. It is safe for concurrent use.
type Manager struct {
	server string // the endpoint as given, without a trailing slash
	client string // client_name
	env    string // the user's environment; "" = the infra id
	log    *slog.Logger
	cloud  *cloudapi.Caller

	c13, c10 *gochef.Client
	proto    atomic.Int32
}

var (
	_ configmgr.Manager       = (*Manager)(nil)
	_ configmgr.InfraPreparer = (*Manager)(nil)
	_ configmgr.Registrar     = (*Manager)(nil)
	_ configmgr.Reporter      = (*Manager)(nil)
	_ configmgr.NodeDropper   = (*Manager)(nil)
	_ configmgr.InfraDropper  = (*Manager)(nil)
)

// New builds the Manager of a rendered section and its credentials. It
// does not contact the server.
func New(cfg configmgr.Config) (configmgr.Manager, error) {
	return newManager(cfg, nil)
}

// newManager builds the manager; base sends its HTTP requests (nil:
// http.DefaultTransport).
func newManager(cfg configmgr.Config, base http.RoundTripper) (*Manager, error) {
	var set Connection
	derr := descr.Decode("config_management", cfg.Section, &set)
	server, baseURL, err := checkEndpoint(set.Endpoint)
	if err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, fmt.Errorf("chef: server %s: %w", server, derr)
	}
	hint := "auth_data.yaml needs a config_management entry of type chef whose auth_data has client_name and client_key (a PEM private key)"
	if cfg.Auth == nil {
		return nil, fmt.Errorf("chef: no credentials for chef server %s: %s", server, hint)
	}
	var cred Credentials
	if err := descr.Decode("auth_data", cfg.Auth, &cred); err != nil {
		return nil, fmt.Errorf("chef: credentials for chef server %s: %w", server, err)
	}
	var missing []string
	if cred.ClientName == "" {
		missing = append(missing, "client_name")
	}
	if cred.ClientKey == "" {
		missing = append(missing, "client_key")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("chef: credentials for chef server %s lack %s (%s)", server, strings.Join(missing, " and "), hint)
	}
	// The parser's own message never quotes the key.
	if _, err := gochef.PrivateKeyFromString([]byte(cred.ClientKey)); err != nil {
		return nil, fmt.Errorf("chef: client_key of client %s for chef server %s is not a PEM RSA private key (%v)", cred.ClientName, server, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{server: server, client: cred.ClientName, env: set.Environment,
		log: log.With("config_manager", "chef", "server", server, "client", cred.ClientName)}
	// Every request, whichever protocol signs it, waits for the host's
	// rate limit; the Caller retries, the HTTP client never does.
	hc := &http.Client{Transport: &cloudapi.Transport{Base: base, Limiter: cfg.Limiter}}
	for _, v := range []struct {
		c   **gochef.Client
		ver gochef.AuthVersion
	}{{&m.c13, gochef.AuthVersion13}, {&m.c10, gochef.AuthVersion10}} {
		c, err := gochef.NewClient(&gochef.Config{Name: cred.ClientName, Key: string(cred.ClientKey), BaseURL: baseURL,
			AuthenticationVersion: v.ver, Client: hc})
		if err != nil {
			return nil, fmt.Errorf("chef: client %s for chef server %s: %v", cred.ClientName, server, err)
		}
		*v.c = c
	}
	m.cloud = &cloudapi.Caller{Provider: "chef", Endpoint: server, Classify: classify,
		Secrets: keySecrets(string(cred.ClientKey)), Log: m.log}
	return m, nil
}

// checkEndpoint checks the endpoint key and returns it for messages and
// as go-chef's base URL (ending in "/", so that "nodes/x" resolves below
// the organization).
func checkEndpoint(ep string) (server, base string, err error) {
	ep = strings.TrimSpace(ep)
	u, perr := url.Parse(ep)
	if ep == "" || perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("chef: endpoint %q is not the http(s) URL of a Chef Infra Server organization (e.g. https://chef.example.org/organizations/acme)", ep)
	}
	server = strings.TrimRight(ep, "/")
	return server, server + "/", nil
}

// keySecrets are what the Caller scrubs: the key and each line of it, so
// that an answer quoting one line is scrubbed too.
func keySecrets(key string) []string {
	out := []string{key, strings.TrimSpace(key)}
	for line := range strings.Lines(key) {
		if l := strings.TrimSpace(line); len(l) >= auth.MinSecretLen {
			out = append(out, l)
		}
	}
	return out
}

// String implements configmgr.Manager.
func (m *Manager) String() string {
	s := fmt.Sprintf("chef server %s (client %s)", m.server, m.client)
	if m.env != "" {
		s += fmt.Sprintf(" environment %s", m.env)
	}
	return s
}

// environment is the Chef environment of an infrastructure's nodes.
func (m *Manager) environment(infraID string) string { return cmp.Or(m.env, infraID) }

// errNoEnvironment is returned for an `environment` the server lacks.
var errNoEnvironment = errors.New("no such environment")

// PrepareInfra implements configmgr.InfraPreparer: the infrastructure's
// environment, created when missing (POST on a 404; a 409 from a race is
// as good). The user's environment is only checked.
func (m *Manager) PrepareInfra(ctx context.Context, infraID string) error {
	name := m.environment(infraID)
	var env gochef.Environment
	err := m.call(ctx, "read environment "+name, "", http.MethodGet, "environments/"+url.PathEscape(name), nil, &env)
	switch {
	case err == nil:
		return nil
	case !cloudapi.IsNotFound(err):
		return err
	case m.env != "":
		return fmt.Errorf("chef: chef server %s has no environment %s (named by config_management.environment; create it, or leave the key out to use one per infrastructure): %w",
			m.server, name, errNoEnvironment)
	}
	env = gochef.Environment{Name: name, Description: "Occopus infrastructure " + infraID, ChefType: "environment",
		JsonClass: "Chef::Environment", CookbookVersions: map[string]string{}, DefaultAttributes: map[string]any{}, OverrideAttributes: map[string]any{}}
	err = m.call(ctx, "create environment "+name, "", http.MethodPost, "environments", env, nil)
	if isConflict(err) {
		return nil
	}
	return err
}
