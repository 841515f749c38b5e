package cloudbroker

import (
	"fmt"
	"strings"

	"github.com/occopus-go/occopus/auth"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource"
)

func init() {
	resource.Register(resource.Plugin{Type: "cloudbroker", Schema: descr.SchemaOf[Settings](), New: New})
}

// Settings are the keys of a cloudbroker resource section (Occopus's:
// type, endpoint, description; optional name and start_in_vpc): the
// connection New reads and the instance keys Create reads from each
// spec's rendered section.
type Settings struct {
	Connection
	Instance
	// Name names the resource; it selects the auth_data entry, as in
	// Occopus.
	Name string `occopus:"name"`
}

// Connection says which CloudBroker platform to talk to.
type Connection struct {
	// Endpoint is the platform's API URL (https://cloudsme-prototype.cloudbroker.com).
	Endpoint string `occopus:"endpoint,required"`
}

// Instance says what instance to start.
type Instance struct {
	Description Description `occopus:"description,required"`
	// StartInVPC is sent as start-in-vpc when given. Occopus reads it from
	// the node definition's top level, where its own schema does not let
	// it be; here it is a key of the resource section, as documented.
	StartInVPC *bool `occopus:"start_in_vpc"`
}

// Description is CloudBroker's instance, passed through as the elements
// of the <instance> request: deployment_id and instance_type_id are
// required, every other key (key_pair_id, opened_port, disable_autostop,
// isolated, ...) is sent as written.
type Description struct {
	DeploymentID   string         `occopus:"deployment_id,required"`
	InstanceTypeID string         `occopus:"instance_type_id,required"`
	KeyPairID      string         `occopus:"key_pair_id"`
	OpenedPort     Ports          `occopus:"opened_port"`
	Rest           map[string]any `occopus:",rest"`
}

// Ports are the ports to open: CloudBroker takes them separated with
// commas; a YAML list of them is joined so.
type Ports string

// SettingType implements descr.Setting: one value or a list of them.
func (Ports) SettingType() descr.Type { return descr.OneOf(descr.Scalar, descr.ListOf(descr.Scalar)) }

// DecodeSetting implements descr.Setting.
func (p *Ports) DecodeSetting(path string, v any) error {
	s, err := text(path, v)
	*p = Ports(s)
	return err
}

// text writes a description value as the text of its element: scalars as
// YAML shows them, a list of scalars joined with commas.
func text(path string, v any) (string, error) {
	if list, ok := v.([]any); ok {
		parts := make([]string, 0, len(list))
		for i, x := range list {
			s, err := text(fmt.Sprintf("%s[%d]", path, i), x)
			if err != nil {
				return "", err
			}
			if _, nested := x.([]any); nested {
				return "", &descr.Error{Path: fmt.Sprintf("%s[%d]", path, i), Msg: "must be a single value, not a list"}
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, ","), nil
	}
	if _, ok := v.(map[string]any); ok {
		return "", &descr.Error{Path: path, Msg: "must be a single value or a list of them, not a mapping (CloudBroker's instance takes text elements)"}
	}
	var s string
	if err := descr.DecodeValue(path, v, &s); err != nil {
		return "", err
	}
	return s, nil
}

// Credentials are the keys of a cloudbroker auth_data entry: the
// account's e-mail address and password (HTTP Basic).
type Credentials struct {
	Email    string      `occopus:"email"`
	Password auth.Secret `occopus:"password"`
}
