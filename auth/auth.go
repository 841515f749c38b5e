// Package auth reads Occopus's auth_data.yaml: the credentials used to talk
// to cloud resources and configuration managers.
//
// The file is a mapping with a list under `resource` and one under
// `config_management`. Each entry has a `type`, an `auth_data` mapping (the
// credentials, kept opaque: whatever the plugin needs) and optionally
// selectors, which are any other keys (endpoint, name, image_id,
// regionname...):
//
//	resource:
//	  - type: ec2
//	    endpoint: https://ec2.eu-west-1.amazonaws.com
//	    auth_data:
//	      accesskey: AKIA...
//	      secretkey: !text_import {url: file://ec2.secret}
//
// A resource is given the entry of its type whose selectors all equal the
// same keys of the resource; when several match, the one with most
// selectors wins (see [Data.Select]).
//
// Credentials must never reach logs: [Data] prints only types and
// selectors, [Secret] prints as "[REDACTED]", and [Data.Secrets] with
// [Redact] scrubs text that may contain them.
package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/agnivade/levenshtein"

	"github.com/occopus-go/occopus/descr"
)

// Sections of auth_data.yaml.
const (
	SectionResource         = "resource"
	SectionConfigManagement = "config_management"
)

var sections = []string{SectionResource, SectionConfigManagement}

// ErrNoMatch is wrapped by the error of [Data.Select] when no entry fits.
var ErrNoMatch = errors.New("no matching auth_data entry")

// MinSecretLen is the shortest value [Data.Secrets] reports: shorter ones
// would scrub ordinary words and numbers out of logs.
const MinSecretLen = 4

// Data is a parsed auth_data.yaml. A nil *Data is valid and selects
// nothing. Data is read-only once loaded and safe for concurrent use.
type Data struct {
	file    string
	entries map[string][]*entry // by section
}

type entry struct {
	section string
	index   int
	pos     descr.Pos
	typ     string
	sels    []selector // in file order
	auth    *descr.Node
}

type selector struct {
	key string
	// raw is the text written in the file, value the text of the YAML
	// value (differs for e.g. 0x10 or yes): a resource value equal to
	// either matches.
	raw, value string
}

// Load reads and checks an auth_data.yaml file. Imports (!yaml_import,
// !text_import) are resolved relative to it. Problems are reported as
// positioned [descr.Errors].
func Load(path string) (*Data, error) {
	root, err := descr.ParseFile(path, descr.LoadOptions{})
	if err != nil {
		return nil, err
	}
	return FromTree(path, root)
}

// Parse reads auth_data.yaml source; name is used in positions and as the
// base of relative imports.
func Parse(name string, src []byte) (*Data, error) {
	root, err := descr.Parse(name, src, descr.LoadOptions{})
	if err != nil {
		return nil, err
	}
	return FromTree(name, root)
}

// FromTree checks an auth_data tree already parsed (`occopus validate`
// parses a file once to tell what it is).
func FromTree(file string, root *descr.Node) (*Data, error) {
	d := &Data{file: file, entries: map[string][]*entry{}}
	if root.IsNull() {
		// An empty file holds no credentials; that is not an error.
		return d, nil
	}
	var errs descr.Errors
	if root.Kind != descr.MapNode {
		errs = append(errs, &descr.Error{Pos: root.Pos, Msg: fmt.Sprintf("auth_data must be a mapping with `resource` and/or `config_management` lists, not %s", root.TypeName())})
		return nil, errs.Err()
	}
	root.Pairs(func(k, v *descr.Node) {
		if k.Value != SectionResource && k.Value != SectionConfigManagement {
			errs = append(errs, &descr.Error{Pos: k.Pos, Path: k.Value, Msg: "unknown top-level key" + suggest(k.Value, sections)})
			return
		}
		d.entries[k.Value], errs = readSection(k.Value, v, errs)
	})
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return d, nil
}

func readSection(section string, v *descr.Node, errs descr.Errors) ([]*entry, descr.Errors) {
	if v.IsNull() {
		return nil, errs
	}
	if v.Kind != descr.SeqNode {
		return nil, append(errs, &descr.Error{Pos: v.Pos, Path: section, Msg: "must be a list of entries (each with type and auth_data), not " + v.TypeName()})
	}
	var out []*entry
	for i, n := range v.Content {
		path := fmt.Sprintf("%s[%d]", section, i)
		if n.Kind != descr.MapNode {
			errs = append(errs, &descr.Error{Pos: n.Pos, Path: path, Msg: "an entry must be a mapping with type and auth_data, not " + n.TypeName()})
			continue
		}
		e := &entry{section: section, index: i, pos: n.Pos}
		ok := true
		var keys []string
		n.Pairs(func(k, v *descr.Node) { keys = append(keys, k.Value) })
		n.Pairs(func(k, v *descr.Node) {
			switch k.Value {
			case "type":
				if v.Kind != descr.ScalarNode || v.IsNull() || v.Value == "" {
					errs = append(errs, &descr.Error{Pos: v.Pos, Path: path + ".type", Msg: "type must be a resource type such as ec2 or nova, not " + v.TypeName()})
					ok = false
					return
				}
				e.typ = v.Value
			case "auth_data":
				if v.Kind != descr.MapNode {
					errs = append(errs, &descr.Error{Pos: v.Pos, Path: path + ".auth_data", Msg: "auth_data must be a mapping of credentials, not " + v.TypeName()})
					ok = false
					return
				}
				e.auth = v
			default:
				if isTypo(k.Value, keys) {
					return // reported below as the missing key's hint
				}
				if v.Kind != descr.ScalarNode || v.IsNull() {
					errs = append(errs, &descr.Error{Pos: v.Pos, Path: path + "." + k.Value, Msg: fmt.Sprintf("selector %q must be a plain value compared with the resource's %q, not %s", k.Value, k.Value, v.TypeName())})
					ok = false
					return
				}
				e.sels = append(e.sels, selector{key: k.Value, raw: v.Value, value: plainString(v.Interface())})
			}
		})
		if n.Get("type") == nil {
			errs = append(errs, &descr.Error{Pos: n.Pos, Path: path, Msg: "entry has no type" + missingHint("type", keys)})
			ok = false
		}
		if n.Get("auth_data") == nil {
			errs = append(errs, &descr.Error{Pos: n.Pos, Path: path, Msg: "entry has no auth_data" + missingHint("auth_data", keys)})
			ok = false
		}
		if !ok {
			continue
		}
		// Two entries with the same type and selectors can never be told
		// apart: report it here rather than on every Select.
		for _, prev := range out {
			if prev.typ == e.typ && sameSelectors(prev.sels, e.sels) {
				errs = append(errs, &descr.Error{Pos: e.pos, Path: path, Msg: fmt.Sprintf("duplicate entry: same type %q and selectors as the entry at %s", e.typ, lineOf(prev.pos))})
				ok = false
				break
			}
		}
		if ok {
			out = append(out, e)
		}
	}
	return out, errs
}

func sameSelectors(a, b []selector) bool {
	if len(a) != len(b) {
		return false
	}
	m := make(map[string]string, len(a))
	for _, s := range a {
		m[s.key] = s.value
	}
	for _, s := range b {
		if v, ok := m[s.key]; !ok || v != s.value {
			return false
		}
	}
	return true
}

// isTypo reports whether key is a misspelling of type or auth_data that
// keys lack (reported once, as that key's hint).
func isTypo(key string, keys []string) bool {
	return misspelling("type", keys) == key || misspelling("auth_data", keys) == key
}

// misspelling returns the key of keys that is probably a misspelling of
// want, or "" when want is present or nothing is close.
func misspelling(want string, keys []string) string {
	if slices.Contains(keys, want) {
		return ""
	}
	for _, k := range keys {
		if d := levenshtein.ComputeDistance(strings.ToLower(k), want); d <= max(1, len(want)/4) {
			return k
		}
	}
	return ""
}

func missingHint(want string, keys []string) string {
	if k := misspelling(want, keys); k != "" {
		return fmt.Sprintf(" (did you mean %q instead of %q?)", want, k)
	}
	return ""
}

// suggest returns ` (did you mean "x"?)` for the closest valid key, or the
// list of valid keys when none is close.
func suggest(got string, valid []string) string {
	best, bestD := "", math.MaxInt
	for _, v := range valid {
		if d := levenshtein.ComputeDistance(strings.ToLower(got), v); d < bestD {
			best, bestD = v, d
		}
	}
	if bestD <= max(2, len(got)/3) {
		return fmt.Sprintf(" %q (did you mean %q?)", got, best)
	}
	return fmt.Sprintf(" %q (valid keys: %s)", got, strings.Join(valid, ", "))
}

// Select returns the auth_data of the entry of section ("resource" or
// "config_management") that fits res: its type equals res["type"] and each
// of its selectors equals the same key of res, compared as strings. Of
// several fitting entries the one with most selectors wins; a tie is an
// error naming both entries. When none fits the error wraps [ErrNoMatch].
//
// The returned map is a fresh copy; the caller may keep or change it.
func (d *Data) Select(section string, res map[string]any) (map[string]any, error) {
	if section != SectionResource && section != SectionConfigManagement {
		return nil, fmt.Errorf("auth: unknown auth_data section %q (want %q or %q)", section, SectionResource, SectionConfigManagement)
	}
	if d == nil {
		return nil, &NoMatchError{Section: section, Type: str(res, "type"), Endpoint: str(res, "endpoint"), Name: str(res, "name")}
	}
	typ, _ := lookup(res, "type")
	var best []*entry
	var sameType []*entry
	for _, e := range d.entries[section] {
		if e.typ != typ {
			continue
		}
		sameType = append(sameType, e)
		if !e.matches(res) {
			continue
		}
		switch {
		case len(best) == 0 || len(e.sels) > len(best[0].sels):
			best = []*entry{e}
		case len(e.sels) == len(best[0].sels):
			best = append(best, e)
		}
	}
	switch len(best) {
	case 0:
		return nil, &NoMatchError{Section: section, Type: typ, Endpoint: str(res, "endpoint"), Name: str(res, "name"), File: d.file, others: sameType}
	case 1:
		return plainMap(best[0].auth), nil
	}
	locs := make([]string, len(best))
	for i, e := range best {
		locs[i] = lineOf(e.pos) + " (" + e.describeSelectors() + ")"
	}
	return nil, fmt.Errorf("ambiguous auth_data for %s: entries at %s match equally well; add a selector (e.g. endpoint or name) to tell them apart",
		describe(section, typ, str(res, "endpoint"), str(res, "name")), strings.Join(locs, " and "))
}

func (e *entry) matches(res map[string]any) bool {
	for _, s := range e.sels {
		v, ok := lookup(res, s.key)
		if !ok || (v != s.raw && v != s.value) {
			return false
		}
	}
	return true
}

func (e *entry) describeSelectors() string {
	if len(e.sels) == 0 {
		return "type only"
	}
	parts := make([]string, len(e.sels))
	for i, s := range e.sels {
		parts[i] = fmt.Sprintf("%s %q", s.key, s.raw)
	}
	return strings.Join(parts, ", ")
}

// lookup returns res[key] as a string, and whether it is present and not
// nil.
func lookup(res map[string]any, key string) (string, bool) {
	v, ok := res[key]
	if !ok || v == nil {
		return "", false
	}
	return plainString(v), true
}

func str(res map[string]any, key string) string { s, _ := lookup(res, key); return s }

// plainString renders a scalar as YAML would write it.
func plainString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case fmt.Stringer:
		return v.String()
	}
	return fmt.Sprint(v)
}

func lineOf(p descr.Pos) string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

func describe(section, typ, endpoint, name string) string {
	kind := "resource"
	if section == SectionConfigManagement {
		kind = "config_management"
	}
	s := fmt.Sprintf("%s type %q", kind, typ)
	var sel []string
	if endpoint != "" {
		sel = append(sel, fmt.Sprintf("endpoint %q", endpoint))
	}
	if name != "" {
		sel = append(sel, fmt.Sprintf("name %q", name))
	}
	if len(sel) > 0 {
		s += " (" + strings.Join(sel, ", ") + ")"
	}
	return s
}

// NoMatchError is returned by [Data.Select] when no entry fits; it wraps
// [ErrNoMatch].
type NoMatchError struct {
	Section              string
	Type, Endpoint, Name string
	File                 string // "" when no auth_data file is configured
	others               []*entry
}

func (e *NoMatchError) Error() string {
	what := describe(e.Section, e.Type, e.Endpoint, e.Name)
	if e.File == "" {
		return fmt.Sprintf("no auth_data entry for %s: no auth_data file is configured (set auth_data_path or create $OCCOPUS_HOME/auth_data.yaml)", what)
	}
	s := fmt.Sprintf("no auth_data entry for %s in %s", what, e.File)
	if len(e.others) > 0 {
		locs := make([]string, len(e.others))
		for i, o := range e.others {
			locs[i] = lineOf(o.pos) + " (" + o.describeSelectors() + ")"
		}
		s += fmt.Sprintf("; entries of type %q with other selectors: %s", e.Type, strings.Join(locs, ", "))
	}
	return s
}

func (e *NoMatchError) Unwrap() error { return ErrNoMatch }

// plainMap turns an auth_data node into plain values (see plain).
func plainMap(n *descr.Node) map[string]any {
	m := make(map[string]any, len(n.Content)/2)
	n.Pairs(func(k, v *descr.Node) { m[k.Value] = plain(v) })
	return m
}

// plain is descr.Node.Interface, except that text read with !text_import
// loses ONE trailing newline: key and token files end with a newline that
// is not part of the secret (a password "s3cret\n" would fail to log in),
// while a PEM key stays valid without it. Only one is removed so content
// that really ends in blank lines keeps the rest.
func plain(n *descr.Node) any {
	switch {
	case n == nil:
		return nil
	case n.Kind == descr.MapNode:
		return plainMap(n)
	case n.Kind == descr.SeqNode:
		l := make([]any, len(n.Content))
		for i, c := range n.Content {
			l[i] = plain(c)
		}
		return l
	case n.Verbatim:
		return trimOneNewline(n.Value)
	}
	return n.Interface()
}

func trimOneNewline(s string) string {
	if t, ok := strings.CutSuffix(s, "\r\n"); ok {
		return t
	}
	return strings.TrimSuffix(s, "\n")
}

// Secrets returns every string value of at least [MinSecretLen] bytes
// under any auth_data, longest first, for scrubbing logs with [Redact].
// Each line of a multi-line value (a key file) is included too, so a log
// that quotes one line of it is scrubbed as well.
func (d *Data) Secrets() []string {
	if d == nil {
		return nil
	}
	seen := map[string]bool{}
	var walk func(v any)
	add := func(s string) {
		if len(s) >= MinSecretLen && !seen[s] {
			seen[s] = true
		}
	}
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		case string:
			add(v)
			if strings.Contains(v, "\n") {
				for line := range strings.Lines(v) {
					add(strings.TrimSpace(line))
				}
			}
		}
	}
	for _, sec := range sections {
		for _, e := range d.entries[sec] {
			walk(plainMap(e.auth))
		}
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sortLongestFirst(out)
	return out
}

func sortLongestFirst(s []string) {
	sort.Slice(s, func(i, j int) bool {
		if len(s[i]) != len(s[j]) {
			return len(s[i]) > len(s[j])
		}
		return s[i] < s[j]
	})
}

// Redacted replaces secrets in output.
const Redacted = "[REDACTED]"

// Redact replaces each occurrence of each secret in s with "[REDACTED]".
// Longer secrets are replaced first, so one that contains another is
// removed whole. Empty secrets are ignored.
func Redact(s string, secrets []string) string {
	if len(secrets) == 0 || s == "" {
		return s
	}
	sorted := make([]string, 0, len(secrets))
	for _, x := range secrets {
		if x != "" {
			sorted = append(sorted, x)
		}
	}
	sortLongestFirst(sorted)
	// strings.Replacer tries old strings in argument order at each
	// position, so the longest secret wins.
	pairs := make([]string, 0, 2*len(sorted))
	for _, x := range sorted {
		pairs = append(pairs, x, Redacted)
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

// File is the file the data was read from.
func (d *Data) File() string {
	if d == nil {
		return ""
	}
	return d.file
}

// Types lists the types of a section's entries, in file order, repeated
// when several entries share a type.
func (d *Data) Types(section string) []string {
	if d == nil {
		return nil
	}
	var out []string
	for _, e := range d.entries[section] {
		out = append(out, e.typ)
	}
	return out
}

// String describes the file and its entries' types and selectors, never
// credentials.
func (d *Data) String() string {
	if d == nil {
		return "auth_data: none"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "auth_data %s:", d.file)
	for _, sec := range sections {
		es := d.entries[sec]
		fmt.Fprintf(&b, " %s[", sec)
		for i, e := range es {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(e.typ)
			for _, s := range e.sels {
				fmt.Fprintf(&b, " %s=%q", s.key, s.raw)
			}
		}
		b.WriteString("]")
	}
	return b.String()
}

// GoString keeps %#v from printing the credentials held inside.
func (d *Data) GoString() string { return d.String() }

// Format prints [Data.String] for every verb, so no verb (%d, %x, %+v...)
// can reach the credentials held inside.
func (d *Data) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprint(f, strconv.Quote(d.String()))
		return
	}
	fmt.Fprint(f, d.String())
}

// LogValue logs the file and the types of its entries, never credentials.
func (d *Data) LogValue() slog.Value {
	if d == nil {
		return slog.StringValue("none")
	}
	return slog.GroupValue(
		slog.String("file", d.file),
		slog.Any(SectionResource, d.Types(SectionResource)),
		slog.Any(SectionConfigManagement, d.Types(SectionConfigManagement)),
	)
}

// MarshalJSON gives the same summary as LogValue.
func (d *Data) MarshalJSON() ([]byte, error) {
	if d == nil {
		return []byte("null"), nil
	}
	return json.Marshal(struct {
		File             string   `json:"file"`
		Resource         []string `json:"resource"`
		ConfigManagement []string `json:"config_management"`
	}{d.file, d.Types(SectionResource), d.Types(SectionConfigManagement)})
}
