package occoredis

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

const dumpFile = "../../../shared/occopus-1.10-redis-dump/redis.json"

type dumpKey struct {
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
}

func loadDump(t *testing.T) map[string]map[string]dumpKey {
	t.Helper()
	raw, err := os.ReadFile(dumpFile)
	if err != nil {
		t.Skipf("no captured Occopus store at %s (../shared not laid out): %v", dumpFile, err)
	}
	var d map[string]map[string]dumpKey
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func str(t *testing.T, k dumpKey) string {
	var s string
	if err := json.Unmarshal(k.Value, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func hash(t *testing.T, k dumpKey) map[string]string {
	var h map[string]string
	if err := json.Unmarshal(k.Value, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestParseDump reads the captured Occopus 1.10 store's values.
func TestParseDump(t *testing.T) {
	d := loadDump(t)
	const prefix = "root@ae8e635f-cb86-46f3-8c5f-2ecebcca7fb1"
	in, err := ParseDescription(str(t, d["10"][prefix+":description"]))
	if err != nil {
		t.Fatal(err)
	}
	if in.Name != "bar-ping" || len(in.Nodes) != 2 || in.UserID != "bars@example.org" {
		t.Fatalf("description: %+v", in)
	}
	byName := map[string]Node{}
	for _, n := range in.Nodes {
		byName[n.Name] = n
	}
	if r := byName["receiver"]; r.Type != "bar_receiver" || r.Min == nil || *r.Min != 2 || *r.Max != 3 {
		t.Errorf("receiver: %+v", r)
	}
	if s := byName["sender"]; s.Type != "bar_sender" || s.Min != nil {
		t.Errorf("sender: %+v", s)
	}
	if len(in.Dependencies) != 1 || in.Dependencies[0].From != "sender" || in.Dependencies[0].To != "receiver" {
		t.Errorf("dependencies: %+v", in.Dependencies)
	}
	if in.Variables["message"] != "hello from the receiver" {
		t.Errorf("variables: %v", in.Variables)
	}
	ids := map[string]bool{}
	for _, node := range []string{"receiver", "sender"} {
		for nodeID, raw := range hash(t, d["10"][prefix+":state:"+node]) {
			inst, err := ParseInstance(nodeID, raw)
			if err != nil {
				t.Fatalf("%s %s: %v", node, nodeID, err)
			}
			id, err := BackendID(inst.Resource["type"].(string), inst.InstanceID)
			if err != nil {
				t.Fatal(err)
			}
			ids[id] = true
			if inst.StartedAt.Year() < 2026 || inst.Resource["image"] != "occo-bar" {
				t.Errorf("instance %s: %+v", nodeID, inst)
			}
		}
	}
	containers, _ := os.ReadFile("../../../shared/occopus-1.10-redis-dump/containers.txt")
	for _, l := range strings.Split(strings.TrimSpace(string(containers)), "\n") {
		if id := strings.Fields(l)[0]; !ids[id] {
			t.Errorf("container %s of containers.txt not found among the instances %v", id, ids)
		}
	}
	reqs, err := ParseRequests(hash(t, d["10"][prefix+":scaling"]))
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 2 || !reqs[0].Create || reqs[0].Node != "receiver" || !reqs[1].Destroy || reqs[1].Victim != "172.17.0.2" {
		t.Errorf("requests: %+v", reqs)
	}
}

func TestBackendID(t *testing.T) {
	cases := []struct {
		typ     string
		id      any
		want    string
		wantErr string
	}{
		{"docker", "{'Id': 'ab4993f381ea95e4ba22c9ba46e34a4ba008e9b905af34dadce1cea561b3b92f', 'Warnings': []}", "ab4993f381ea95e4ba22c9ba46e34a4ba008e9b905af34dadce1cea561b3b92f", ""},
		{"docker", map[string]any{"Id": "0123456789abcdef"}, "", "holds no container id"},
		{"docker", "0123456789ab", "0123456789ab", ""},
		{"docker", "{'Warnings': []}", "", "holds no container id"},
		{"ec2", "i-0abc123", "i-0abc123", ""},
		{"nova", "6f1c1a50-8a6e-4a47-9d8e-1f5e8f2c9a10", "6f1c1a50-8a6e-4a47-9d8e-1f5e8f2c9a10", ""},
		{"ec2", map[string]any{"x": 1}, "", "is not an id"},
		{"azure_vm", map[string]any{"instance_id": "vm"}, "", "not taken over yet"},
		{"local", "1", "", "not one Occopus 1.10 makes"},
	}
	for _, tc := range cases {
		got, err := BackendID(tc.typ, tc.id)
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s %v: err %v, want %q", tc.typ, tc.id, err, tc.wantErr)
		case tc.wantErr == "" && (err != nil || got != tc.want):
			t.Errorf("%s %v: %q %v, want %q", tc.typ, tc.id, got, err, tc.want)
		}
	}
}

func TestParseAddress(t *testing.T) {
	cases := []struct {
		in, addr string
		db       int
		pass     string
		wantErr  string
	}{
		{"localhost:6379", "localhost:6379", 0, "", ""},
		{"127.0.0.1:6380/2", "127.0.0.1:6380", 2, "", ""},
		{"redis://:s3cret@h:1/3", "h:1", 3, "s3cret", ""},
		{"localhost", "", 0, "", "want HOST:PORT"},
		{"h:x", "", 0, "", "port is not a number"},
		{"h:1/x", "", 0, "", "database \"x\" is not a number"},
		{"redis://:s3cret@h", "", 0, "", "***@h"},
	}
	for _, tc := range cases {
		a, err := ParseAddress(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("%s: err %v, want %q without the password", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || a.Addr != tc.addr || a.DB != tc.db || a.Password != tc.pass || a.NodeDefDB != 1 || a.InfraDB != 10 {
			t.Errorf("%s: %+v %v", tc.in, a, err)
		}
	}
}
