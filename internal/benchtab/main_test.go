package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// The table of a sample run matches the golden file, and counts the
// targets its medians miss.
func TestTable(t *testing.T) {
	in, err := os.Open("testdata/bench.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	order, vals, err := parse(in)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	missed := table(&out, order, vals)
	want, err := os.ReadFile("testdata/bench.golden")
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		t.Errorf("table:\n%s\nwant:\n%s", out.String(), want)
	}
	if missed != 2 {
		t.Errorf("%d targets missed, want 2", missed)
	}
}

func TestParseRefusesGarbage(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"BenchmarkX-2 5 abc ns/op\n", `BenchmarkX: figure "abc" is not a number`},
	} {
		_, _, err := parse(strings.NewReader(c.in))
		if err == nil || err.Error() != c.want {
			t.Errorf("parse(%q) = %v, want %s", c.in, err, c.want)
		}
	}
}
