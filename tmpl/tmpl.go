// Package tmpl renders Occopus templates (node definitions, contextualisation
// files, attributes) with Jinja2's grammar and semantics, on top of gonja v2.
//
// Grammar. gonja's lexer and parser differ from Jinja2's in ways templates
// hit: they treat in/is/and/or/not as keywords even after a dot (so
// `item.in` was a syntax error), fold a newline inside an expression into
// the next token, know two string escapes, bind `is` after arithmetic and
// parse comparisons, `in` and conditional expressions their own way.
// Templates are therefore lexed and parsed by a port of jinja2/lexer.py and
// jinja2/parser.py (lex.go, parse.go): a word after a dot is always an
// attribute, keywords count only where Jinja2's parser looks for them, and
// errors carry Jinja2's messages with line and column. gonja's parser still
// builds the statements, from a canonical token stream in which each
// expression is one placeholder name (its public API: parser.NewParser on a
// tokens.Stream); no expression is parsed by gonja.
//
// Semantics. gonja's control structures run the template; every expression
// is compiled by the rewriter (rewrite.go, compile.go, ournodes.go) into Go
// closures with Python's semantics (str() and repr(), arithmetic with exact
// integers, tuples apart from lists, comparisons, slices), and the filters,
// tests and methods whose gonja versions differ are rewritten from Jinja2's
// and Python's (pyfilters.go, pytests.go, methods.go, funcs.go, json.go).
//
// Undefined values follow Occopus' needs rather than one Jinja2 class:
// printing, iterating, attribute access, operators and passing them to a
// function fail with a positioned *RenderError naming the expression, while
// `default`, `is defined` and boolean tests treat them as Jinja2 does; inside
// a container they print as Undefined, and an inline if without else gives
// Jinja2's plain Undefined (printed as ""), as in Jinja2.
//
// TestJinja2Differential compares this package with Python's Jinja2 on
// generated templates and data (differential_test.go); every difference it
// found is fixed and has a case in testdata/golden.json, except these, which
// are deliberate, cannot occur in Occopus templates, or would need Python
// itself (TestDocumentedDifferences pins each):
//
//   - Dicts from Data are Go maps, without insertion order: they print and
//     iterate in sorted key order (literal dicts keep theirs).
//   - include, import, from, extends, block, call and autoescape are
//     refused (they read other files or need inheritance), and so are
//     recursive for loops; a for loop assigns one name or two (k, v), set
//     and with one name.
//   - An attribute never finds a Python method: d.items is the key "items"
//     (Jinja2 gives dict.items for d.items, and for d['items'] when the key
//     is missing); printing a function or a macro shows a Go value.
//   - range() returns a list (at most 100000 items), not a range object;
//     reverse, dict.keys()/values()/items() and map/select/... return
//     lists, not iterators or views (which print as <... at 0x...>).
//   - A negative number to a fractional power (a complex number in Python)
//     is an error; \N{name} escapes in string literals are refused.
//   - Markup (escape, safe, tojson) stays Markup through repr, + and * with
//     strings, slices and the string filters and methods, but Markup % args
//     does not escape the args.
//   - An unknown filter or test is a syntax error wherever it is; Jinja2
//     defers the error to run time inside an if block or an inline if (so
//     validate reports such a name even in a branch that is never taken).
//   - A macro parameter's default is evaluated where the macro is defined
//     and cannot name the macro's parameters (Jinja2: the earlier ones).
//   - A name assigned at the top level after a nested block (for, with,
//     macro, filter) reads it is, in Jinja2, undefined in that block until
//     the assignment ran, even when the data has the name; here the block
//     reads the data's value.
//   - break and continue are Jinja2's loopcontrols extension, which Occopus
//     does not enable: here a loop's else runs only when there were no items
//     (with the extension, also when no iteration ran to its end), and a
//     loop's if filter is evaluated for every item before the first
//     iteration (Jinja2 evaluates it as it goes, so after a break it never
//     sees the rest).
//   - Macro calls nest at most 100 deep (Jinja2: Python's recursion limit,
//     about 200), expressions at most 200 in the parser; a render is
//     bounded to 1,000,000 evaluation steps.
//   - Jinja2 folds constant expressions when it compiles a template and
//     then reports some of their errors (None[1:] ~ 'x') even where they
//     never run; here they fail only when evaluated.
//   - pprint is repr with sorted dict keys (Python's wraps long values);
//     wordwrap, urlize, xmlattr and random are gonja's, not compared.
//   - Only failure, not its message, is compared: errors here name the
//     position and the expression, not Python's exception.
package tmpl

import (
	"container/list"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/nikolalohinski/gonja/v2/builtins"
	controlStructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
	"github.com/nikolalohinski/gonja/v2/parser"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// Addresses resolves node names to addresses for getip & co.
type Addresses interface {
	IP(node string) (string, error)       // getip
	PrivIP(node string) (string, error)   // getprivip
	AllIPs(node string) ([]string, error) // getipall
}

// Options are per-render settings; they are not part of the parsed template
// so one compiled template can be rendered for many node instances.
type Options struct {
	// AllowCmd lets cmd(...) run a program on this host; refused unless true
	// because templates may come from untrusted infrastructure descriptions.
	AllowCmd bool
	// FromNetwork says the description arrived over the network, so that a
	// refused cmd() names the setting that allows it there
	// (allow_network_cmd); it allows nothing by itself.
	FromNetwork bool
	// Addresses answers getip & co.; nil makes them fail naming the node.
	Addresses Addresses
}

// Data is the template namespace (infra_id, infra_name, name, node_id,
// variables, resource, contextualisation, ...).
type Data map[string]any

// SyntaxError is a template that cannot be parsed; Line and Col are 1-based
// positions inside the template source.
type SyntaxError struct {
	Line, Col int
	Msg       string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Col, e.Msg)
}

// RenderError is a failure while rendering; Line/Col are 0 when unknown.
type RenderError struct {
	Line, Col int
	Msg       string
}

func (e *RenderError) Error() string {
	switch {
	case e.Line > 0 && e.Col > 0:
		return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Col, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// HasTemplate reports whether s contains any template syntax ({{, {%, {#),
// so callers can skip parsing plain strings.
func HasTemplate(s string) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '{' {
			switch s[i+1] {
			case '{', '%', '#':
				return true
			}
		}
	}
	return false
}

// Template is a parsed template; it is immutable and safe for concurrent
// Render calls.
type Template struct {
	src   string
	plain bool // no template syntax: Render returns src as Jinja2 would
	gt    *exec.Template
}

// Check parses src and reports a syntax error (*SyntaxError) or nil.
func Check(src string) error {
	_, err := Parse(src)
	return err
}

// Parse compiles src. Results are cached by source (bounded LRU) because the
// same node definition is rendered once per instance.
func Parse(src string) (*Template, error) {
	if !HasTemplate(src) {
		return &Template{src: src, plain: true}, nil
	}
	if t, err, ok := cache.get(src); ok {
		return t, err
	}
	t, err := parse(src)
	cache.put(src, t, err)
	return t, err
}

// Render renders src with data; errors are *SyntaxError or *RenderError.
func Render(src string, data Data, opt Options) (string, error) {
	if !HasTemplate(src) {
		return dropTrailingNewline(src), nil
	}
	t, err := Parse(src)
	if err != nil {
		return "", err
	}
	return t.Render(data, opt)
}

// dropTrailingNewline mimics Jinja2's keep_trailing_newline=False, which
// removes exactly one trailing "\n" (or "\r\n") from the source.
func dropTrailingNewline(s string) string {
	return strings.TrimSuffix(normalizeNewlines(s), "\n")
}

// normalizeNewlines converts \r\n and \r to \n, as Jinja2's lexer does for
// template data and string literals (newline_sequence="\n").
func normalizeNewlines(s string) string {
	if !strings.Contains(s, "\r") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// stateKey is the context key of the per-render state; the NUL byte makes it
// impossible to reference from template source.
const stateKey = "\x00state"

// renderState is per-render mutable data, stored in the render's own
// context so concurrent renders of one Template never share it.
type renderState struct {
	opt      Options
	firstErr *RenderError // first hard error raised by our evaluation hooks
	steps    int          // evaluation budget used, see maxSteps
	depth    int          // nesting of evaluations, see maxDepth
	macros   int          // nesting of macro calls, see maxMacroDepth
	// pairItems are the items of the for loop over pairs (for k, v in
	// ...) running at each loop depth, for loop.previtem/nextitem.
	pairItems map[int][]any
}

func (s *renderState) fail(line, col int, format string, args ...any) *RenderError {
	e := &RenderError{Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
	if s != nil && s.firstErr == nil {
		s.firstErr = e
	}
	return e
}

// Render executes the template. It never panics: a panic inside gonja is
// turned into a *RenderError.
func (t *Template) Render(data Data, opt Options) (out string, err error) {
	if t.plain {
		return dropTrailingNewline(t.src), nil
	}
	st := &renderState{opt: opt}
	defer func() {
		if r := recover(); r != nil {
			out = ""
			if st.firstErr != nil {
				err = st.firstErr
				return
			}
			err = &RenderError{Msg: fmt.Sprintf("internal template engine error: %v", r)}
		}
	}()
	ctx := exec.EmptyContext()
	for k, v := range data {
		ctx.Set(k, v)
	}
	ctx.Set(stateKey, st)
	var sb strings.Builder
	if e := t.gt.Execute(&sb, ctx); e != nil {
		return "", toRenderError(e, st)
	}
	if st.firstErr != nil {
		// Raised by our code but dropped by gonja (it ignores errors in
		// a for loop's if condition, for one): still an error.
		return "", st.firstErr
	}
	return sb.String(), nil
}

// toRenderError prefers the precise error raised by our hooks over gonja's
// wrapped message chain.
func toRenderError(err error, st *renderState) error {
	if re := findRenderError(err); re != nil {
		return re
	}
	if u := findUndefined(err); u != nil {
		return u.renderError()
	}
	if st.firstErr != nil {
		return st.firstErr
	}
	return &RenderError{Msg: cleanGonjaMessage(err.Error())}
}

// cleanGonjaMessage strips gonja's generic wrapper prefix.
func cleanGonjaMessage(s string) string {
	return strings.TrimPrefix(s, "unable to execute template: ")
}

// unwrapAll walks an error chain including gonja's *exec.Value wrappers,
// which do not implement Unwrap.
func unwrapAll(err error, visit func(error) bool) {
	for depth := 0; err != nil && depth < 1000; depth++ {
		if visit(err) {
			return
		}
		switch e := err.(type) {
		case *exec.Value:
			inner, _ := e.Interface().(error)
			err = inner
			continue
		case interface{ Unwrap() error }:
			err = e.Unwrap()
			continue
		case interface{ Cause() error }:
			err = e.Cause()
			continue
		}
		return
	}
}

func findRenderError(err error) (found *RenderError) {
	unwrapAll(err, func(e error) bool {
		var re *RenderError
		if errors.As(e, &re) {
			found = re
			return true
		}
		if r, ok := e.(*RenderError); ok {
			found = r
			return true
		}
		return false
	})
	return found
}

func findUndefined(err error) (found *undefined) {
	unwrapAll(err, func(e error) bool {
		if u, ok := e.(*undefined); ok {
			found = u
			return true
		}
		return false
	})
	return found
}

// --- parsing -----------------------------------------------------------

var (
	baseConfig = func() *config.Config {
		c := config.New()
		c.StrictUndefined = false // undefined handling is ours (rewrite.go)
		c.KeepTrailingNewline = false
		return c
	}()

	// enabledStatements are the gonja statements allowed in Occopus
	// templates: include/import/extends would read files from this host.
	// The rewriter (rewrite.go) has a rule for each.
	// raw is not among them: like Jinja2, our lexer turns a raw block
	// into template data.
	enabledStatements = []string{"if", "for", "set", "macro", "with", "filter", "break", "continue"}

	controlSet = func() *exec.ControlStructureSet {
		set := exec.NewControlStructureSet(map[string]parser.ControlStructureParser{})
		for _, name := range enabledStatements {
			p, ok := controlStructures.All.Get(name)
			if !ok {
				panic("tmpl: gonja lacks control structure " + name)
			}
			if err := set.Register(name, p); err != nil {
				panic(err)
			}
		}
		return set
	}()

	filterSet = func() *exec.FilterSet {
		fs := exec.NewFilterSet(map[string]exec.FilterFunction{}).Update(builtins.Filters)
		for _, name := range []string{"wordwrap"} {
			f, _ := fs.Get(name)
			_ = fs.Replace(name, boundedArgs(f))
		}
		for name, f := range fixedFilters() {
			_ = fs.Replace(name, f)
		}
		for name, f := range ourFilters {
			if fs.Exists(name) {
				_ = fs.Replace(name, f)
			} else {
				_ = fs.Register(name, f)
			}
		}
		return fs
	}()

	testSet = func() *exec.TestSet {
		ts := exec.NewTestSet(map[string]exec.TestFunction{}).Update(builtins.Tests)
		for name, f := range pyTests {
			_ = ts.Replace(name, f)
		}
		_ = ts.Replace("filter", nameTest(func(s string) bool { return filterSet.Exists(s) && !strings.HasPrefix(s, "\x00") }))
		_ = ts.Replace("test", nameTest(func(s string) bool { return ts.Exists(s) }))
		return ts
	}()
)

// sourceLoader serves only the template itself; anything else (include,
// import) is refused.
type sourceLoader struct{ src string }

const rootName = "template"

func (l sourceLoader) Read(path string) (io.Reader, error) {
	if path != rootName {
		return nil, fmt.Errorf("loading other templates (%q) is not supported", path)
	}
	return strings.NewReader(l.src), nil
}
func (l sourceLoader) Resolve(path string) (string, error) { return path, nil }
func (l sourceLoader) Inherit(string) (loaders.Loader, error) {
	return nil, errors.New("loading other templates is not supported")
}

func parse(src string) (t *Template, err error) {
	defer func() {
		if r := recover(); r != nil {
			t = nil
			err = &SyntaxError{Line: 1, Col: 1, Msg: fmt.Sprintf("internal parser error: %v", r)}
		}
	}()
	src = normalizeNewlines(src)
	pr, err := parseJinja(src)
	if err != nil {
		return nil, err
	}
	globals := exec.EmptyContext().Update(builtins.GlobalFunctions).Update(builtins.GlobalVariables)
	globals.Set("lipsum", nil) // random text generator, useless here and unbounded
	for name, fn := range ourFunctions {
		globals.Set(name, fn)
	}
	env := &exec.Environment{
		Context:           globals,
		Filters:           filterSet,
		Tests:             testSet,
		ControlStructures: controlSet,
		Methods:           methodSet,
	}
	root, err := parser.NewParser(rootName, tokens.NewStream(pr.stream), baseConfig, sourceLoader{src}, controlSet).Parse()
	if err != nil {
		// parse.go checked the template against Jinja2's grammar, so
		// gonja refusing the canonical stream is our bug.
		return nil, internalSyntaxError(err)
	}
	// gonja builds an executable template only from source text, which it
	// would lex itself; build one from an empty source and give it the
	// tree parsed from our stream (Root returns the template's own node).
	gt, err := exec.NewTemplate(rootName, baseConfig, sourceLoader{""}, env)
	if err != nil {
		return nil, internalSyntaxError(err)
	}
	*gt.Root() = *root
	if r := gt.Root(); len(r.Nodes) != len(root.Nodes) || r.Macros == nil && root.Macros != nil {
		// A gonja whose Root returns a copy would render nothing.
		return nil, &SyntaxError{Line: 1, Col: 1, Msg: fmt.Sprintf("internal error: gonja %s: Template.Root no longer returns the template's own tree; tmpl.parse must be updated", gonjaVersion())}
	}
	rw := &rewriter{env: globals, placeholders: pr.exprs}
	if err := rw.template(gt.Root()); err != nil {
		return nil, err
	}
	return &Template{src: src, gt: gt}, nil
}

func internalSyntaxError(err error) error {
	line, col := 1, 1
	var se *parser.SyntaxError
	if errors.As(err, &se) && se.Line > 0 {
		line, col = se.Line, max(se.Column, 1)
	}
	return &SyntaxError{Line: line, Col: col, Msg: "internal error: gonja refused the parsed template: " + err.Error()}
}

// --- cache ---------------------------------------------------------------

// maxCached bounds memory use of the parse cache; infrastructures have few
// distinct templates, so a small LRU keeps the hit rate high.
const maxCached = 512

type cacheEntry struct {
	src string
	t   *Template
	err error
}

type lru struct {
	mu    sync.Mutex
	ll    *list.List
	items map[string]*list.Element
}

var cache = &lru{ll: list.New(), items: map[string]*list.Element{}}

func (c *lru) get(src string) (*Template, error, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[src]; ok {
		c.ll.MoveToFront(el)
		e := el.Value.(*cacheEntry)
		return e.t, e.err, true
	}
	return nil, nil, false
}

func (c *lru) put(src string, t *Template, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[src]; ok {
		c.ll.MoveToFront(el)
		return
	}
	c.items[src] = c.ll.PushFront(&cacheEntry{src: src, t: t, err: err})
	for c.ll.Len() > maxCached {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).src)
	}
}
