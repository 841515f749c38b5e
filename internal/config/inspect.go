package config

import (
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/occopus-go/occopus/internal/yamldiag"
)

// Report is what `occopus validate` says of a configuration file: the
// settings it takes and Occopus's sections it leaves aside, and why.
type Report struct {
	Config  *Config
	Used    []string
	Ignored []string
}

// ownKeys are the top-level keys of this program's configuration, read
// from rawConfig so that a new setting is known here too.
var ownKeys = func() []string {
	t := reflect.TypeOf(rawConfig{})
	out := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		out = append(out, strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0])
	}
	return out
}()

// occopusIgnored are the keys of Occopus's own configuration (and of its
// redis_config.yaml) that have no meaning here, with the reason.
var occopusIgnored = map[string]string{
	"plugins":                    "!python_import of Python modules; the plugins of this build are compiled in",
	"logging":                    "Python logging dictConfig; logs go to stderr, -v for debug",
	"kvs":                        "Occopus's key-value store; the store is components.uds",
	"components.resourcehandler": "the resource handlers are chosen by each node's resource type",
	"components.configmanager":   "the config managers are chosen by each node's config_management type",
	"components.infobroker":      "!InfoRouter: state is read from the store and the backends directly",
	"components.eventlog":        "events are kept in the store and sent to webhooks",
	"components.dry_run":         "use `occopus plan` to see what a build would do",
	"components.uds.altdbs":      "one Redis database holds everything, under the key prefix",
}

// IsConfig tells a configuration file (ours or Occopus's) by its
// top-level keys, before it is parsed as a description: Occopus's Python
// tags would be refused there.
func IsConfig(src []byte) bool {
	var doc yaml.Node
	if yaml.Unmarshal(src, &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return false
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		switch m.Content[i].Value {
		case "components", "plugins", "logging", "kvs":
			return true
		}
	}
	return false
}

// Inspect checks a configuration file: unknown keys are errors naming
// their place; the report says what is used and what is ignored.
func Inspect(path string) (*Report, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, FieldErrors{{File: path, Msg: fmt.Sprintf("cannot read: %v", err)}}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, yamlError(path, src, err)
	}
	r := &Report{}
	var errs FieldErrors
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, FieldErrors{{File: path, Line: 1, Col: 1, Msg: "a configuration file must be a mapping"}}
	}
	pairs(doc.Content[0], func(k, v *yaml.Node) {
		switch {
		case occopusIgnored[k.Value] != "":
			r.Ignored = append(r.Ignored, fmt.Sprintf("%s (%s)", k.Value, occopusIgnored[k.Value]))
		case k.Value == "components":
			pairs(v, func(ck, cv *yaml.Node) {
				key := "components." + ck.Value
				switch {
				case occopusIgnored[key] != "":
					r.Ignored = append(r.Ignored, fmt.Sprintf("%s (%s)", key, occopusIgnored[key]))
				case ck.Value == "rest" || ck.Value == "uds":
					pairs(cv, func(uk, _ *yaml.Node) {
						if k := key + "." + uk.Value; occopusIgnored[k] != "" {
							r.Ignored = append(r.Ignored, fmt.Sprintf("%s (%s)", k, occopusIgnored[k]))
						}
					})
				default:
					errs = append(errs, FieldError{File: path, Line: ck.Line, Col: ck.Column, Key: key,
						Msg: fmt.Sprintf("unknown component %q (known: rest, uds; Occopus's resourcehandler, configmanager, infobroker, eventlog, dry_run are ignored)", ck.Value)})
				}
			})
		case contains(ownKeys, k.Value):
			r.Used = append(r.Used, k.Value)
		default:
			errs = append(errs, FieldError{File: path, Line: k.Line, Col: k.Column, Key: k.Value,
				Msg: fmt.Sprintf("unknown configuration key %q (known: %s)", k.Value, strings.Join(sortedKeys(), ", "))})
		}
	})
	if len(errs) > 0 {
		return nil, errs
	}
	c := &Config{Home: DefaultHome(), Parallel: 32, REST: REST{Host: "127.0.0.1", Port: 5000}, Store: Store{Protocol: "sqlite"}}
	if err := c.read(path); err != nil {
		return nil, err
	}
	r.Config = c
	if c.Store.Protocol == "redis" {
		r.Used = append(r.Used, fmt.Sprintf("components.uds (store: redis at %s:%d db %d)", c.Store.Host, c.Store.Port, c.Store.DB))
	} else if hasKey(doc.Content[0], "components", "uds") {
		r.Used = append(r.Used, "components.uds (store: sqlite)")
	}
	if hasKey(doc.Content[0], "components", "rest") {
		r.Used = append(r.Used, fmt.Sprintf("components.rest (rest-service listens on %s:%d)", c.REST.Host, c.REST.Port))
	}
	return r, nil
}

func pairs(m *yaml.Node, f func(k, v *yaml.Node)) {
	if m == nil || m.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		f(m.Content[i], m.Content[i+1])
	}
}

func hasKey(m *yaml.Node, keys ...string) bool {
	for _, k := range keys {
		var next *yaml.Node
		pairs(m, func(kn, v *yaml.Node) {
			if kn.Value == k {
				next = v
			}
		})
		if next == nil {
			return false
		}
		m = next
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys() []string {
	out := append([]string(nil), ownKeys...)
	for k := range occopusIgnored {
		if !strings.Contains(k, ".") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// FieldError is a problem at a place of a configuration file.
type FieldError struct {
	File      string
	Line, Col int
	Key, Msg  string
}

func (e FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// FieldErrors are every problem found, in file order.
type FieldErrors []FieldError

func (es FieldErrors) Error() string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Error()
	}
	return strings.Join(out, "\n")
}

// yamlError places the fault of YAML the parser refused.
func yamlError(path string, src []byte, err error) FieldErrors {
	if e := yamldiag.Diagnose(path, src); e != nil {
		return FieldErrors{{File: path, Line: e.Pos.Line, Col: e.Pos.Col, Msg: e.Msg}}
	}
	return FieldErrors{{File: path, Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}
}
