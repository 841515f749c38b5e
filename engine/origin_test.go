package engine

import (
	"strings"
	"testing"

	"github.com/occopus-go/occopus/store"
)

// TestCmdPolicyFollowsTheOrigin: whether cmd() runs is decided at the pass
// from the origin stored with the description, not by the process that
// runs the pass (issue 11 item 9).
func TestCmdPolicyFollowsTheOrigin(t *testing.T) {
	const defs = "'node_def:svc':\n  - resource: {type: fake, zone: \"{{ cmd('echo', 'a') }}\"}\n    health_check: {ping: false}\n"
	const desc = "infra_name: o\nnodes:\n  - {name: svc, type: svc}\n"
	cases := []struct {
		name                string
		network             bool
		allowCmd, allowNet  bool
		wantErr, wantOrigin string
	}{
		{name: "local, allowed", allowCmd: true, wantOrigin: store.OriginLocal},
		{name: "local, refused", wantErr: "set `allow_cmd: true`", wantOrigin: store.OriginLocal},
		{name: "network, allow_cmd only", network: true, allowCmd: true, wantErr: "set `allow_network_cmd: true`", wantOrigin: store.OriginNetwork},
		{name: "network, neither", network: true, wantErr: "set `allow_network_cmd: true`", wantOrigin: store.OriginNetwork},
		{name: "network, allow_network_cmd only", network: true, allowNet: true, wantErr: "set `allow_network_cmd: true` (with `allow_cmd: true`)", wantOrigin: store.OriginNetwork},
		{name: "network, both", network: true, allowCmd: true, allowNet: true, wantOrigin: store.OriginNetwork},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, Options{AllowCmd: c.allowCmd, AllowNetworkCmd: c.allowNet})
			w.importDefs(defs)
			var opts []SubmitOption
			if c.network {
				opts = append(opts, FromNetwork())
			}
			id, err := w.eng.Submit(t.Context(), w.infra(desc), "", opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { w.eng.Destroy(t.Context(), id, false) })
			if inf, err := w.st.Infra(t.Context(), id); err != nil || inf.Origin != c.wantOrigin {
				t.Fatalf("stored origin %q (%v), want %q", inf.Origin, err, c.wantOrigin)
			}
			_, err = w.eng.Build(t.Context(), id, BuildOptions{})
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("build: %v", err)
				}
				ins, _ := w.st.Instances(t.Context(), id)
				if len(ins) != 1 || ins[0].State != store.StateReady {
					t.Fatalf("instances %+v, want one ready", ins)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("build error %v, want one containing %q", err, c.wantErr)
			}
			if ins, _ := w.st.Instances(t.Context(), id); len(ins) != 0 {
				t.Fatalf("%d instance records after a refused cmd()", len(ins))
			}
		})
	}
}

// TestUpdateReplacesTheOrigin: a description replaced from this host's
// files (build -i) is local from then on, and one replaced over the
// network is network's.
func TestUpdateReplacesTheOrigin(t *testing.T) {
	w := newWorld(t, Options{})
	w.importDefs("'node_def:svc':\n  - resource: {type: fake, zone: a}\n    health_check: {ping: false}\n")
	const desc = "infra_name: o\nnodes:\n  - {name: svc, type: svc}\n"
	id, err := w.eng.Submit(t.Context(), w.infra(desc), "", FromNetwork())
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		opts []SubmitOption
		want string
	}{{nil, store.OriginLocal}, {[]SubmitOption{FromNetwork()}, store.OriginNetwork}} {
		if err := w.eng.Update(t.Context(), id, w.infra(desc), step.opts...); err != nil {
			t.Fatal(err)
		}
		if inf, _ := w.st.Infra(t.Context(), id); inf.Origin != step.want {
			t.Fatalf("origin after update %q, want %q", inf.Origin, step.want)
		}
	}
}
