package main

import (
	"strings"
	"testing"
)

// TestHelpExamples: every command's --help shows an example.
func TestHelpExamples(t *testing.T) {
	root := newRoot(&env{})
	cmds := append(root.Commands(), root)
	for _, c := range cmds {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		args := []string{c.Name(), "--help"}
		if c == root {
			args = []string{"--help"}
		}
		stdout, stderr, code := run(t, args...)
		if code != 0 || !strings.Contains(stdout, "Examples:\n  occopus ") {
			t.Errorf("occopus %s: exit %d, no example:\n%s%s", strings.Join(args, " "), code, stdout, stderr)
		}
	}
}

// TestArgumentErrors: a missing or extra argument is named.
func TestArgumentErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"build"}, "missing argument INFRA_FILE"},
		{[]string{"render"}, "missing argument INFRA_FILE"},
		{[]string{"import"}, "missing argument NODE_DEFINITION_FILE"},
		{[]string{"validate"}, "missing argument FILE"},
		{[]string{"build", "a.yaml", "b.yaml"}, `unexpected argument "b.yaml": build takes INFRA_FILE`},
		{[]string{"plan", "-i", "x", "a", "b"}, `unexpected argument "b": plan takes at most one INFRA_FILE`},
		{[]string{"migrate"}, "missing --from-redis HOST:PORT[/DB]"},
	}
	for _, tc := range cases {
		_, stderr, code := run(t, tc.args...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, stderr, tc.want)
		}
	}
}
