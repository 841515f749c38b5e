package cloudtest

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource/cloudsigma"
	"github.com/occopus-go/occopus/resource/cloudsigma/csfake"
)

// cloudsigma-ping is built with its own files; in memory only, and only
// in the resource sections:
//
//	endpoint    → the fake's API URL
//	libdrive_id → the fake's library drive (CloudSigma refuses an unknown one)
//
// Left as the tutorial has them, because the fake does not check them:
// the description's pubkeys and firewall_policy (uuids of the user's
// objects), cpu, mem and vnc_password (sent as written).
func TestTutorialCloudSigmaPing(t *testing.T) {
	dir := tutorial(t, "cloudsigma-ping")
	fake := csfake.New(csfake.Options{})
	t.Cleanup(fake.Close)
	defs, err := descr.LoadNodeDefs(filepath.Join(dir, "nodes", "node_definitions.yaml"), descr.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	replacePlaceholders(t, defs, map[string]any{
		"endpoint":    fake.URL(),
		"libdrive_id": csfake.LibDrive,
	})
	// The tutorial's resource sections are named my_cloudsigma_cloud: the
	// auth_data entry selects them by that name, as Occopus's would.
	authData := fmt.Sprintf(`resource:
  - type: cloudsigma
    name: my_cloudsigma_cloud
    auth_data:
      email: %s
      password: %s
`, fake.Email(), fake.Password())
	received := func() map[string]sent {
		out := map[string]sent{}
		for _, s := range fake.Servers() {
			out[s.Meta[cloudsigma.MetaNodeID]] = sent{userData: s.UserData, infraID: s.Meta[cloudsigma.MetaInfraID],
				nodeID: s.Meta[cloudsigma.MetaNodeID], nodeName: s.Meta[cloudsigma.MetaNodeName]}
			if s.Status != "running" {
				t.Errorf("server %s is %s, want running", s.UUID, s.Status)
			}
			if got := s.Meta[cloudsigma.MetaBase64Fields]; got != cloudsigma.MetaUserData {
				t.Errorf("server %s: base64_fields %q, want %q", s.UUID, got, cloudsigma.MetaUserData)
			}
			if s.Request["cpu"] != float64(2000) || s.Request["mem"] != float64(1073741824) || s.Request["vnc_password"] != "secret" {
				t.Errorf("server %s: cpu %v mem %v vnc_password %v, want the tutorial's", s.UUID, s.Request["cpu"], s.Request["mem"], s.Request["vnc_password"])
			}
			nics := fmt.Sprint(s.Request["nics"])
			if !strings.Contains(nics, "replace_with_id_of_your_network_policy_on_your_target_cloud") || !strings.Contains(nics, "dhcp") {
				t.Errorf("server %s: nics %s, want the tutorial's", s.UUID, nics)
			}
			if len(s.Drives) != 1 {
				t.Errorf("server %s: drives %v, want the clone", s.UUID, s.Drives)
			}
		}
		return out
	}
	m, id := buildTutorial(t, dir, defs, authData, received)
	if n := fake.Created(); n != 2 {
		t.Errorf("the fake made %d servers, want 2", n)
	}
	if n := len(fake.Drives()); n != 2 {
		t.Errorf("the fake has %d drives, want the 2 clones", n)
	}
	// CloudSigma tells no cost: null, not 0.
	c, err := m.Cost(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if c.TotalCost != nil {
		t.Errorf("cost %v, want none", *c.TotalCost)
	}
	tearDown(t, m, id)
	if s := fake.Servers(); len(s) != 0 {
		t.Errorf("servers left at the fake after teardown: %+v", s)
	}
	if d := fake.Drives(); len(d) != 0 {
		t.Errorf("drives left at the fake after teardown: %+v", d)
	}
}
