package tmpl

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The differential test renders generated templates (genCase in
// differential_gen_test.go) here and with Python's Jinja2 (driven through
// scripts/jinja2_diff.py, one long-lived process fed JSON lines) and
// compares the output, or that both fail. `go test ./tmpl` runs a bounded
// number of cases; the long mode is on purpose:
//
//	go test ./tmpl -run TestJinja2Differential -jinja2.cases=1000000 -jinja2.seed=7 -timeout 0
//
// (or JINJA2_CASES / JINJA2_SEED in the environment; `make difftest`).
// The interpreter is Debian's /usr/bin/python3 with python3-jinja2, as on
// CI (scripts/test.sh installs it); JINJA2_PYTHON overrides it. Without it
// the test skips, except under CI=true where that is a failure.
var (
	diffCases = flag.Int("jinja2.cases", envInt("JINJA2_CASES", 1500), "number of generated templates the differential test renders with Jinja2")
	diffSeed  = flag.Int64("jinja2.seed", int64(envInt("JINJA2_SEED", 1)), "seed of the differential test's generator")
	diffMax   = flag.Int("jinja2.maxdiffs", 20, "stop the differential test after this many differences")
	diffOnly  = flag.Int("jinja2.only", -1, "compare only this case number (the others are generated and skipped)")
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// jinja2Python returns the Python interpreter that has Jinja2, skipping the
// test (failing it under CI=true) when there is none.
func jinja2Python(t testing.TB) string {
	t.Helper()
	py := os.Getenv("JINJA2_PYTHON")
	if py == "" {
		py = "/usr/bin/python3"
	}
	out, err := exec.Command(py, "-c", "import jinja2; print(jinja2.__version__)").CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("%s cannot import jinja2 (%v: %s); install Debian's python3-jinja2 (scripts/test.sh does) or set JINJA2_PYTHON",
			py, err, strings.TrimSpace(string(out)))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return py
}

// jinjaDriver is the scripts/jinja2_diff.py process.
type jinjaDriver struct {
	cmd     *exec.Cmd
	in      io.WriteCloser
	out     *bufio.Reader
	stderr  *bytes.Buffer
	version string
}

type jinjaResult struct {
	ID    int     `json:"id"`
	Out   *string `json:"out"`
	Error string  `json:"error"`
	Msg   string  `json:"msg"`
}

func startJinja(t testing.TB, py string) *jinjaDriver {
	t.Helper()
	script, err := filepath.Abs("../scripts/jinja2_diff.py")
	if err != nil {
		t.Fatal(err)
	}
	d := &jinjaDriver{cmd: exec.Command(py, script), stderr: &bytes.Buffer{}}
	d.cmd.Stderr = d.stderr
	if d.in, err = d.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d.out = bufio.NewReaderSize(stdout, 1<<20)
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.close)
	line, err := d.readLine(30 * time.Second)
	if err != nil {
		t.Fatalf("jinja2_diff.py did not start: %v; stderr: %s", err, d.stderr)
	}
	var hello struct{ Jinja2, Python string }
	if err := json.Unmarshal(line, &hello); err != nil || hello.Jinja2 == "" {
		t.Fatalf("jinja2_diff.py greeting %q: %v", line, err)
	}
	d.version = "Jinja2 " + hello.Jinja2 + " on Python " + hello.Python
	return d
}

func (d *jinjaDriver) close() {
	_ = d.in.Close()
	done := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = d.cmd.Process.Kill()
		<-done
	}
}

func (d *jinjaDriver) readLine(timeout time.Duration) ([]byte, error) {
	type res struct {
		b   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() {
		b, err := d.out.ReadBytes('\n')
		ch <- res{b, err}
	}()
	select {
	case r := <-ch:
		return r.b, r.err
	case <-time.After(timeout):
		_ = d.cmd.Process.Kill()
		return nil, fmt.Errorf("no answer within %s", timeout)
	}
}

// render asks Jinja2 for one case.
func (d *jinjaDriver) render(id int, src string, data json.RawMessage) (jinjaResult, error) {
	line, err := json.Marshal(map[string]any{"id": id, "src": src, "data": data})
	if err != nil {
		return jinjaResult{}, err
	}
	if _, err := d.in.Write(append(line, '\n')); err != nil {
		return jinjaResult{}, fmt.Errorf("writing to jinja2_diff.py: %w; stderr: %s", err, d.stderr)
	}
	b, err := d.readLine(20 * time.Second)
	if err != nil {
		return jinjaResult{}, fmt.Errorf("reading from jinja2_diff.py: %w; stderr: %s", err, d.stderr)
	}
	var r jinjaResult
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("jinja2_diff.py answered %q: %w", b, err)
	}
	if r.ID != id {
		return r, fmt.Errorf("jinja2_diff.py answered case %d for case %d", r.ID, id)
	}
	return r, nil
}

// decodeData turns the case's JSON data into what a YAML description
// gives a template (int64/float64 numbers), as loadGolden does.
func decodeData(raw json.RawMessage) (Data, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	m, _ = yamlLike(m).(map[string]any)
	return Data(m), nil
}

// pyObjectRE matches the repr of a Python object that has no literal
// form, with its address: an iterator (reverse, a dict's keys()), a bound
// method, a range. tmpl has lists and plain values there (documented in
// the package comment), and the address differs every run anyway.
var pyObjectRE = regexp.MustCompile(`(?i)<[a-z_]+ object at 0x[0-9a-f]+>|<built-in method |\bdict_(keys|values|items)\(|\brange\(-?\d+, -?\d+(, -?\d+)?\)`)

// pythonObjectOutput reports whether Jinja2 printed such an object.
func pythonObjectOutput(want jinjaResult) bool {
	return want.Out != nil && pyObjectRE.MatchString(*want.Out)
}

// diffOutcome compares our result with Jinja2's; it returns "" when they
// agree (same text, or both an error).
func diffOutcome(got string, gotErr error, want jinjaResult) string {
	switch {
	case want.Out == nil && gotErr != nil:
		return ""
	case want.Out == nil:
		return fmt.Sprintf("Jinja2 raised %s (%s), we rendered %q", want.Error, want.Msg, got)
	case gotErr != nil:
		return fmt.Sprintf("Jinja2 rendered %q, we failed: %v", *want.Out, gotErr)
	case got != *want.Out:
		return fmt.Sprintf("Jinja2 rendered %q, we rendered %q", *want.Out, got)
	}
	return ""
}

func TestJinja2Differential(t *testing.T) {
	py := jinja2Python(t)
	d := startJinja(t, py)
	g := newGen(*diffSeed)
	var diffs []string
	var errorsBoth, rendered, pyObjects int
	start := time.Now()
	n := *diffCases
	for i := 0; i < n && len(diffs) < *diffMax; i++ {
		src, data := g.genCase()
		if *diffOnly >= 0 && i != *diffOnly {
			continue
		}
		raw, err := json.Marshal(data)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		t0 := time.Now()
		want, err := d.render(i, src, raw)
		if err != nil {
			t.Fatalf("case %d (%q): %v", i, src, err)
		}
		dd, err := decodeData(raw)
		if err != nil {
			t.Fatal(err)
		}
		t1 := time.Now()
		got, gotErr := renderWatched(i, src, dd)
		if pythonObjectOutput(want) {
			pyObjects++
			continue
		}
		if slow := time.Since(t1); slow > time.Second || t1.Sub(t0) > time.Second {
			t.Logf("case %d is slow (Jinja2 %s, tmpl %s): %q", i, t1.Sub(t0).Round(time.Millisecond), slow.Round(time.Millisecond), src)
		}
		if msg := diffOutcome(got, gotErr, want); msg != "" {
			c := map[string]any{"name": fmt.Sprintf("diff_seed%d_case%d", *diffSeed, i), "src": src, "data": json.RawMessage(raw)}
			if want.Out != nil {
				c["out"] = *want.Out
			} else {
				c["error"] = want.Error
			}
			js, _ := json.Marshal(c)
			diffs = append(diffs, fmt.Sprintf("case %d: %s\n  src  %q\n  data %s\n  golden: %s", i, msg, src, raw, js))
			if testing.Verbose() {
				// Shown as found: a long run's findings survive stopping it.
				t.Logf("difference %d: %s", len(diffs), diffs[len(diffs)-1])
			}
			continue
		}
		if gotErr != nil {
			errorsBoth++
		} else {
			rendered++
		}
		if testing.Verbose() && (i+1)%100000 == 0 {
			t.Logf("%d cases, %s", i+1, time.Since(start).Round(time.Second))
		}
	}
	t.Logf("%s: %d generated cases (seed %d) in %s: %d rendered alike, %d failed in both, %d not compared (Jinja2 printed a Python object's address), %d differences",
		d.version, rendered+errorsBoth+pyObjects+len(diffs), *diffSeed, time.Since(start).Round(time.Millisecond), rendered, errorsBoth, pyObjects, len(diffs))
	if len(diffs) > 0 {
		t.Errorf("%d differences from Jinja2 (each becomes a case in testdata/golden.json):\n%s", len(diffs), strings.Join(diffs, "\n"))
	}
}

// TestDiffOutcome pins the comparison rule: same text, or an error in both.
func TestDiffOutcome(t *testing.T) {
	s := func(v string) *string { return &v }
	tests := []struct {
		got    string
		gotErr error
		want   jinjaResult
		differ bool
	}{
		{"a", nil, jinjaResult{Out: s("a")}, false},
		{"a", nil, jinjaResult{Out: s("b")}, true},
		{"", errors.New("x"), jinjaResult{Error: "UndefinedError"}, false},
		{"", errors.New("x"), jinjaResult{Out: s("")}, true},
		{"", nil, jinjaResult{Error: "TypeError"}, true},
	}
	for _, tt := range tests {
		if got := diffOutcome(tt.got, tt.gotErr, tt.want) != ""; got != tt.differ {
			t.Errorf("diffOutcome(%q, %v, %+v) differ=%v, want %v", tt.got, tt.gotErr, tt.want, got, tt.differ)
		}
	}
}

// TestPythonObjectOutput pins which Jinja2 outputs are not compared.
func TestPythonObjectOutput(t *testing.T) {
	s := func(v string) jinjaResult { return jinjaResult{Out: &v} }
	for out, want := range map[string]bool{
		"x<list_reverseiterator object at 0x7f4960b9b2e0>": true,
		"<built-in method items of dict object at 0x7f>":   true,
		"dict_keys(['a'])":    true,
		"range(0, 3)":         true,
		"[1, 2] (1, 2) range": false,
		"Markup('x')":         false,
	} {
		if got := pythonObjectOutput(s(out)); got != want {
			t.Errorf("pythonObjectOutput(%q) = %v", out, got)
		}
	}
	if pythonObjectOutput(jinjaResult{Error: "TypeError"}) {
		t.Error("an error is compared")
	}
}

// renderWatched renders one case; a render that does not end within a
// minute fails the test with the case, rather than stalling a long run.
func renderWatched(i int, src string, data Data) (string, error) {
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-done:
		case <-time.After(time.Minute):
			panic(fmt.Sprintf("TestJinja2Differential: case %d (seed %d) has rendered for a minute: %q", i, *diffSeed, src))
		}
	}()
	return Render(src, data, Options{Addresses: testAddrs})
}
