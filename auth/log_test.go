package auth

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

type stringer string

func (s stringer) String() string { return string(s) }

func TestRedactHandler(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(RedactHandler(slog.NewTextHandler(&b, nil), []string{"AKIAEXAMPLE", "s3cr3t-key"}))
	log = log.With("endpoint", "https://x/?k=s3cr3t-key").WithGroup("g")
	log.Info("login as AKIAEXAMPLE failed", "err", errors.New("denied: s3cr3t-key"),
		"who", stringer("AKIAEXAMPLE"), "n", 3, "sub", slog.GroupValue(slog.String("k", "s3cr3t-key")))
	out := b.String()
	if strings.Contains(out, "AKIAEXAMPLE") || strings.Contains(out, "s3cr3t-key") {
		t.Fatalf("a secret reached the log: %s", out)
	}
	if strings.Count(out, Redacted) != 5 || !strings.Contains(out, "g.n=3") {
		t.Fatalf("log line %s", out)
	}
	h := slog.NewTextHandler(&b, nil)
	if RedactHandler(h, nil) != slog.Handler(h) {
		t.Error("no secrets should mean no wrapper")
	}
}
