package cloudtest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/occopus-go/occopus"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource/ec2/ec2fake"
)

// TestEchoedCredentialsNeverLeave: a cloud whose error quotes a credential
// (this EC2 answers "unknown access key AKIA…") does not get it printed:
// the build's error, the events and the log have [REDACTED] instead.
func TestEchoedCredentialsNeverLeave(t *testing.T) {
	dir := tutorial(t, "ec2-ping")
	fake := ec2fake.New(ec2fake.Options{})
	t.Cleanup(fake.Close)
	defs, err := descr.LoadNodeDefs(filepath.Join(dir, "nodes", "node_definitions.yaml"), descr.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	replacePlaceholders(t, defs, map[string]any{"endpoint": fake.URL(), "regionname": fake.Region(), "image_id": "ami-0123456789abcdef0"})
	const wrongKey = "AKIAWRONGKEY0123456"
	authData := fmt.Sprintf("resource:\n  - type: ec2\n    endpoint: %s\n    auth_data:\n      accesskey: %s\n      secretkey: fake-secret-key-0123456789\n", fake.URL(), wrongKey)
	var logs bytes.Buffer
	var mu sync.Mutex
	var events []string
	m := newManagerWith(t, authData, occopus.Options{Log: slog.New(slog.NewTextHandler(&syncWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	m.Subscribe(occopus.Observer{Event: func(ev occopus.Event) { mu.Lock(); events = append(events, ev.Message); mu.Unlock() }})
	if err := m.ImportNodeDefs(context.Background(), defs); err != nil {
		t.Fatal(err)
	}
	in, err := descr.LoadInfra(filepath.Join(dir, "infra-ec2-ping.yaml"), descr.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = m.Build(ctx, in, "")
	if err == nil {
		t.Fatal("a build with a wrong key succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	texts := map[string]string{"the error": err.Error(), "the events": strings.Join(events, "\n"), "the log": logs.String()}
	if !strings.Contains(err.Error(), "AuthFailure") || !strings.Contains(err.Error(), "[REDACTED]") {
		t.Errorf("the error does not say why, with the key hidden: %v", err)
	}
	for what, s := range texts {
		if strings.Contains(s, wrongKey) {
			t.Errorf("%s shows the access key:\n%s", what, s)
		}
	}
}

type syncWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
