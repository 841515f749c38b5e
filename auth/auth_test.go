package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/occopus-go/occopus/descr"
)

const tutorialsAuth = "../../shared/occopus-tutorials/dot-occopus/auth_data.yaml"

func mustLoad(t *testing.T, path string) *Data {
	t.Helper()
	d, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return d
}

func TestTutorialsAuthData(t *testing.T) {
	if _, err := os.Stat(tutorialsAuth); err != nil {
		t.Skipf("tutorials' auth_data.yaml not available at %s (%v); clone occopus-tutorials into /work/shared to run this test", tutorialsAuth, err)
	}
	d := mustLoad(t, tutorialsAuth)
	tests := []struct {
		typ     string
		wantKey string
		want    string
	}{
		{"ec2", "accesskey", "your_access_key"},
		{"nova", "username", "your_username"},
		{"azure_aci", "client_secret", "your_client_secret"},
		{"azure_vm", "subscription_id", "your_subscription_id"},
		{"cloudbroker", "email", "your@email.com"},
		{"cloudsigma", "password", "your_password"},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			got, err := d.Select(SectionResource, map[string]any{"type": tt.typ, "endpoint": "https://somewhere", "name": "cloud"})
			if err != nil {
				t.Fatal(err)
			}
			if got[tt.wantKey] != tt.want {
				t.Errorf("%s = %v, want %q", tt.wantKey, got[tt.wantKey], tt.want)
			}
		})
	}
	if got := d.Types(SectionResource); len(got) != len(tests) {
		t.Errorf("Types = %v, want %d entries", got, len(tests))
	}
	if _, err := d.Select(SectionConfigManagement, map[string]any{"type": "chef"}); !errors.Is(err, ErrNoMatch) {
		t.Errorf("chef in a file without config_management: err = %v, want ErrNoMatch", err)
	}
}

func TestSelectSpecificity(t *testing.T) {
	d := mustLoad(t, "testdata/specific.yaml")
	const ep = "https://ec2.eu-west-1.amazonaws.com"
	tests := []struct {
		name    string
		section string
		res     map[string]any
		want    string // value of the first auth_data key checked
	}{
		{"type only", SectionResource, map[string]any{"type": "ec2"}, "key-type"},
		{"other endpoint falls back to type", SectionResource, map[string]any{"type": "ec2", "endpoint": "https://other"}, "key-type"},
		{"type+endpoint", SectionResource, map[string]any{"type": "ec2", "endpoint": ep}, "key-endpoint"},
		{"type+endpoint, other name", SectionResource, map[string]any{"type": "ec2", "endpoint": ep, "name": "other"}, "key-endpoint"},
		{"type+endpoint+name", SectionResource, map[string]any{"type": "ec2", "endpoint": ep, "name": "my_ec2_cloud", "image_id": "ami-1"}, "key-name"},
		{"name without endpoint", SectionResource, map[string]any{"type": "ec2", "name": "my_ec2_cloud"}, "key-type"},
		{"int selector compared as string", SectionResource, map[string]any{"type": "nova", "endpoint": "https://nova.example.org:5000/v3", "port": 5000}, "nova-user"},
		{"string value of int selector", SectionResource, map[string]any{"type": "nova", "endpoint": "https://nova.example.org:5000/v3", "port": "5000"}, "nova-user"},
		{"config management", SectionConfigManagement, map[string]any{"type": "chef", "endpoint": "https://chef.example.org"}, "chef-client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.Select(tt.section, tt.res)
			if err != nil {
				t.Fatal(err)
			}
			var first string
			for _, k := range []string{"accesskey", "username", "client_name"} {
				if v, ok := got[k].(string); ok {
					first = v
					break
				}
			}
			if first != tt.want {
				t.Errorf("selected %v, want the entry with %q", got, tt.want)
			}
		})
	}

	// The returned map is a copy.
	a, _ := d.Select(SectionResource, map[string]any{"type": "ec2"})
	a["accesskey"] = "changed"
	b, _ := d.Select(SectionResource, map[string]any{"type": "ec2"})
	if b["accesskey"] != "key-type" {
		t.Errorf("Select result shares state: %v", b)
	}
}

func TestSelectTie(t *testing.T) {
	d := mustLoad(t, "testdata/tie.yaml")
	_, err := d.Select(SectionResource, map[string]any{"type": "ec2", "endpoint": "https://x", "name": "my_ec2_cloud"})
	if err == nil {
		t.Fatal("tie: want an error")
	}
	for _, want := range []string{"ambiguous", "testdata/tie.yaml:4 (endpoint", "testdata/tie.yaml:7 (name", `resource type "ec2"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("tie error %q lacks %q", err, want)
		}
	}
	if errors.Is(err, ErrNoMatch) {
		t.Errorf("a tie is not ErrNoMatch: %v", err)
	}
	if strings.Contains(err.Error(), "s1-endpoint") || strings.Contains(err.Error(), "s2-name") {
		t.Errorf("tie error shows a secret: %v", err)
	}
	// Only one of them matches: no tie.
	got, err := d.Select(SectionResource, map[string]any{"type": "ec2", "endpoint": "https://x"})
	if err != nil || got["accesskey"] != "k1" {
		t.Errorf("endpoint only: %v, %v", got, err)
	}
}

func TestSelectNoMatch(t *testing.T) {
	d := mustLoad(t, "testdata/specific.yaml")
	tests := []struct {
		name    string
		d       *Data
		section string
		res     map[string]any
		want    string
	}{
		{"unknown type with endpoint and name", d, SectionResource,
			map[string]any{"type": "azure_vm", "endpoint": "https://x", "name": "my_ec2_cloud"},
			`no auth_data entry for resource type "azure_vm" (endpoint "https://x", name "my_ec2_cloud") in testdata/specific.yaml`},
		{"type only", d, SectionResource, map[string]any{"type": "cloudsigma"},
			`no auth_data entry for resource type "cloudsigma" in testdata/specific.yaml`},
		{"selectors differ", d, SectionResource, map[string]any{"type": "nova", "endpoint": "https://other"},
			`no auth_data entry for resource type "nova" (endpoint "https://other") in testdata/specific.yaml; entries of type "nova" with other selectors: testdata/specific.yaml:17 (endpoint "https://nova.example.org:5000/v3", port "5000")`},
		{"config management", d, SectionConfigManagement, map[string]any{"type": "puppet", "name": "p"},
			`no auth_data entry for config_management type "puppet" (name "p") in testdata/specific.yaml`},
		{"nil data", nil, SectionResource, map[string]any{"type": "ec2", "endpoint": "https://x"},
			`no auth_data entry for resource type "ec2" (endpoint "https://x"): no auth_data file is configured`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.d.Select(tt.section, tt.res)
			if err == nil {
				t.Fatalf("want an error, got %v", got)
			}
			if !errors.Is(err, ErrNoMatch) {
				t.Errorf("error %v does not wrap ErrNoMatch", err)
			}
			var nm *NoMatchError
			if !errors.As(err, &nm) {
				t.Errorf("error %T is not a *NoMatchError", err)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error\n  %s\nwant prefix\n  %s", err, tt.want)
			}
		})
	}
	if _, err := d.Select("resources", map[string]any{"type": "ec2"}); err == nil || errors.Is(err, ErrNoMatch) {
		t.Errorf("unknown section: err = %v", err)
	}
}

func TestTextImport(t *testing.T) {
	d := mustLoad(t, "testdata/textimport.yaml")
	got, err := d.Select(SectionResource, map[string]any{"type": "nova"})
	if err != nil {
		t.Fatal(err)
	}
	if got["password"] != "p4ssw0rd-from-file" {
		t.Errorf("password = %q, want the file content without its trailing newline", got["password"])
	}
	key, _ := os.ReadFile("testdata/id_key")
	// The key file ends with a blank line: only ONE newline is removed.
	if want := strings.TrimSuffix(string(key), "\n"); got["private_key"] != want || !strings.HasSuffix(want, "-----\n") {
		t.Errorf("private_key = %q, want %q", got["private_key"], want)
	}
	dock, err := d.Select(SectionResource, map[string]any{"type": "docker"})
	if err != nil || dock["registry_token"] != "tok-imported-yaml" {
		t.Errorf("yaml_import auth_data: %v, %v", dock, err)
	}

	secrets := d.Secrets()
	for _, want := range []string{"p4ssw0rd-from-file", "tok-imported-yaml", "alice", "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE", got["private_key"].(string)} {
		if !contains(secrets, want) {
			t.Errorf("Secrets() lacks %q", want)
		}
	}
	if contains(secrets, "bob") {
		t.Errorf("Secrets() has a value shorter than %d bytes", MinSecretLen)
	}
	for i := 1; i < len(secrets); i++ {
		if len(secrets[i]) > len(secrets[i-1]) {
			t.Errorf("Secrets() not longest first: %q before %q", secrets[i-1], secrets[i])
		}
	}
	log := fmt.Sprintf("ssh failed with key %s", got["private_key"])
	if r := Redact(log, secrets); strings.Contains(r, "b3BlbnNz") || !strings.Contains(r, Redacted) {
		t.Errorf("Redact left key material: %q", r)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // resource types
	}{
		{"empty", "", nil},
		{"null sections", "resource:\nconfig_management:\n", nil},
		{"flow", "resource: [{type: ec2, auth_data: {a: b}}, {type: nova, auth_data: {}}]", []string{"ec2", "nova"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse("mem.yaml", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Types(SectionResource); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("types = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	tests := []struct {
		file string
		want []string // each must appear in the error text
		n    int      // number of errors
	}{
		{"list.yaml", []string{"list.yaml:1:1: auth_data must be a mapping", "not a list"}, 1},
		{"scalar.yaml", []string{"scalar.yaml:1:1: auth_data must be a mapping", "not a string"}, 1},
		{"unknown_key.yaml", []string{`unknown_key.yaml:1:1: resources: unknown top-level key "resources" (did you mean "resource"?)`}, 1},
		{"unknown_far.yaml", []string{`unknown_far.yaml:2:1: credentials: unknown top-level key "credentials" (valid keys: resource, config_management)`}, 1},
		{"no_type.yaml", []string{"no_type.yaml:4:5: resource[1]: entry has no type"}, 1},
		{"no_auth.yaml", []string{`no_auth.yaml:2:5: resource[0]: entry has no auth_data (did you mean "auth_data" instead of "auth-data"?)`}, 1},
		{"auth_not_map.yaml", []string{"auth_not_map.yaml:3:16: config_management[0].auth_data: auth_data must be a mapping of credentials, not a string"}, 1},
		{"section_not_list.yaml", []string{"section_not_list.yaml:2:3: resource: must be a list of entries", "not a mapping"}, 1},
		{"duplicate.yaml", []string{"duplicate.yaml:5:5: resource[1]: duplicate entry", "duplicate.yaml:2"}, 1},
		{"selector_map.yaml", []string{`selector_map.yaml:3:15: resource[0].endpoint: selector "endpoint" must be a plain value`}, 1},
		{"missing_import.yaml", []string{"missing_import.yaml:4:37: url: cannot import", "does-not-exist.txt"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "malformed", tt.file)
			d, err := Load(path)
			if err == nil {
				t.Fatalf("Load(%s) = %v, want an error", path, d)
			}
			t.Log(err)
			var es descr.Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error %T is not descr.Errors: %v", err, err)
			}
			if len(es) != tt.n {
				t.Errorf("%d errors, want %d", len(es), tt.n)
			}
			for _, e := range es {
				if e.Pos.Line == 0 {
					t.Errorf("error without a line: %v", e)
				}
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n  %s\nlacks\n  %s", err, w)
				}
			}
			// Credentials in a rejected file never reach the message.
			if strings.Contains(err.Error(), "secretkey: b") {
				t.Errorf("error shows auth_data: %v", err)
			}
		})
	}
	if _, err := Load("testdata/does-not-exist.yaml"); err == nil || !strings.Contains(err.Error(), "does-not-exist.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

func TestRedact(t *testing.T) {
	tests := []struct {
		name    string
		s       string
		secrets []string
		want    string
	}{
		{"none", "nothing here", []string{"secret"}, "nothing here"},
		{"no secrets", "a secret", nil, "a secret"},
		{"every occurrence", "pw=hunter2 again hunter2", []string{"hunter2"}, "pw=[REDACTED] again [REDACTED]"},
		{"several", "user alice key AKIA123", []string{"AKIA123", "alice"}, "user [REDACTED] key [REDACTED]"},
		{"longest first", "token abcd-efgh", []string{"abcd", "abcd-efgh"}, "token [REDACTED]"},
		{"empty secret ignored", "text", []string{""}, "text"},
		{"in json", `{"password":"s3cr3t!"}`, []string{"s3cr3t!"}, `{"password":"[REDACTED]"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Redact(tt.s, tt.secrets); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.s, got, tt.want)
			}
		})
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	const value = "sup3r-s3cret"
	s := Secret(value)
	type wrapper struct {
		User     string
		Password Secret
	}
	w := wrapper{"alice", s}

	var jsonLog bytes.Buffer
	slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("login", "password", s, "creds", w)
	var textLog bytes.Buffer
	slog.New(slog.NewTextHandler(&textLog, nil)).Info("login", "password", s)
	jsonOut, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		out  string
	}{
		{"%v", fmt.Sprintf("%v", s)},
		{"%s", fmt.Sprintf("%s", s)},
		{"%#v", fmt.Sprintf("%#v", s)},
		{"%q", fmt.Sprintf("%q", s)},
		{"%x", fmt.Sprintf("%x", s)},
		{"%d", fmt.Sprintf("%d", s)},
		{"struct %+v", fmt.Sprintf("%+v", w)},
		{"struct %#v", fmt.Sprintf("%#v", w)},
		{"Sprint", fmt.Sprint(s)},
		{"json", string(jsonOut)},
		{"slog json", jsonLog.String()},
		{"slog text", textLog.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.out, value) {
				t.Errorf("shows the secret: %s", tt.out)
			}
			if !strings.Contains(tt.out, Redacted) {
				t.Errorf("lacks %s: %s", Redacted, tt.out)
			}
		})
	}
	if s.String() != Redacted || s.GoString() != Redacted || s.LogValue().String() != Redacted {
		t.Error("String/GoString/LogValue must give [REDACTED]")
	}
	if string(s) != value {
		t.Error("string(s) must give the value")
	}
}

func TestDataNeverPrintsCredentials(t *testing.T) {
	d := mustLoad(t, "testdata/specific.yaml")
	var jsonLog bytes.Buffer
	slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("loaded", "auth", d)
	jsonOut, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	outs := map[string]string{
		"String":    d.String(),
		"%v":        fmt.Sprintf("%v", d),
		"%+v":       fmt.Sprintf("%+v", d),
		"%#v":       fmt.Sprintf("%#v", d),
		"%d":        fmt.Sprintf("%d", d),
		"%q":        fmt.Sprintf("%q", d),
		"struct":    fmt.Sprintf("%+v", struct{ D *Data }{d}),
		"slog json": jsonLog.String(),
		"json":      string(jsonOut),
	}
	for name, out := range outs {
		for _, secret := range d.Secrets() {
			if strings.Contains(out, secret) {
				t.Errorf("%s shows %q: %s", name, secret, out)
			}
		}
		if !strings.Contains(out, "ec2") || !strings.Contains(out, "chef") {
			t.Errorf("%s does not describe the entries: %s", name, out)
		}
	}
	if !strings.Contains(d.String(), `endpoint="https://ec2.eu-west-1.amazonaws.com"`) {
		t.Errorf("String lacks selectors: %s", d)
	}
	var nilData *Data
	if nilData.String() != "auth_data: none" || nilData.Secrets() != nil || nilData.File() != "" {
		t.Error("nil *Data misbehaves")
	}
}
