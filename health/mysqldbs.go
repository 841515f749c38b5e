package health

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/occopus-go/occopus/descr"
)

// Defaults of the mysqldbs primitive.
const (
	DefaultMySQLTimeout = 5 * time.Second
	DefaultMySQLPort    = "3306"
)

func init() {
	Register(Plugin{Type: "mysqldbs", Schema: descr.ListOf(descr.MapOf(&descr.Schema{Fields: []descr.Field{
		{Key: "name", Required: true, Type: descr.String},
		{Key: "user", Required: true, Type: descr.String},
		{Key: "pass", Required: true, Type: descr.String},
		{Key: "host", Type: descr.String},
		{Key: "port", Type: descr.Int},
	}})), New: newMySQLProbes})
}

// MySQLProbe connects to a database and runs `SELECT 1`. Every string field
// is a template rendered at check time like urls (so `host: "{{ip}}"` or
// credentials from variables work).
type MySQLProbe struct {
	Name    string        // database name (required)
	User    string        // required
	Pass    string        // may be empty
	Host    string        // default Target.Addr
	Port    string        // default DefaultMySQLPort; a string so it may be a template
	Timeout time.Duration // default DefaultMySQLTimeout, covers connect + query
}

func newMySQLProbes(v any) ([]Probe, error) {
	l, err := asList(v)
	if err != nil {
		return nil, err
	}
	out := make([]Probe, 0, len(l))
	for i, e := range l {
		p, err := parseMySQL(e)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func parseMySQL(e any) (*MySQLProbe, error) {
	m, ok := e.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want a mapping {name, user, pass}, got %T", e)
	}
	p := &MySQLProbe{Port: DefaultMySQLPort, Timeout: DefaultMySQLTimeout}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic error for several bad keys
	for _, k := range keys {
		v := m[k]
		var dst *string
		switch k {
		case "name":
			dst = &p.Name
		case "user":
			dst = &p.User
		case "pass":
			dst = &p.Pass
		case "host":
			dst = &p.Host
		case "port":
			if _, ok := v.(string); !ok {
				n, err := parsePort(v)
				if err != nil {
					return nil, err
				}
				p.Port = fmt.Sprint(n)
				continue
			}
			dst = &p.Port
		default:
			return nil, fmt.Errorf("unknown key %q (want name, user, pass, host, port)", k)
		}
		switch s := v.(type) {
		case string:
			*dst = s
		case int, int64, float64, bool: // YAML may type e.g. a numeric password
			*dst = fmt.Sprint(s)
		case nil:
			*dst = ""
		default:
			return nil, fmt.Errorf("%s: want a string, got %T", k, v)
		}
	}
	if p.Name == "" || p.User == "" {
		return nil, fmt.Errorf("name and user are required")
	}
	return p, nil
}

func (p *MySQLProbe) Check(ctx context.Context, t Target) Result {
	start := time.Now()
	r := Result{Primitive: "mysqldbs"}
	var f [5]string
	for i, src := range []string{p.Name, p.User, p.Pass, p.Host, p.Port} {
		s, err := render(src, t)
		if err != nil {
			// Don't echo the template source: it may hold the password.
			return fail(r, start, "mysql %s: rendering settings: %v", p.Name, redact(err, p.Pass))
		}
		f[i] = s
	}
	name, user, password, host, port := f[0], f[1], f[2], f[3], f[4]
	if host == "" {
		host = t.Addr
	}
	if host == "" {
		return fail(r, start, "mysql %s: target has no address", name)
	}
	if port == "" {
		port = DefaultMySQLPort
	}
	timeout := orDefault(p.Timeout, DefaultMySQLTimeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(host, port)
	cfg.User, cfg.Passwd, cfg.DBName = user, password, name
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = timeout, timeout, timeout
	cfg.Logger = nopLogger{} // failures are reported in the Result, not on stderr
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return fail(r, start, "mysql %s@%s/%s: %v", user, cfg.Addr, name, err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	var one int
	if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fail(r, start, "mysql %s@%s/%s: %v", user, cfg.Addr, name, redact(err, password))
	}
	return pass(r, start, "mysql %s@%s/%s: SELECT 1 ok", user, cfg.Addr, name)
}

// redact keeps a password out of Result.Output, which ends up in logs.
func redact(err error, secret string) string {
	s := err.Error()
	if secret != "" {
		s = strings.ReplaceAll(s, secret, "***")
	}
	return s
}

type nopLogger struct{}

func (nopLogger) Print(...any) {}
