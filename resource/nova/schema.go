package nova

import (
	"fmt"
	"strings"

	"github.com/occopus-go/occopus/auth"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource"
)

func init() {
	schema := descr.SchemaOf[Settings]()
	schema.Check = func(n *descr.Node, path string) []*descr.Error {
		if n.Get("project_id") == nil && n.Get("tenant_name") == nil {
			return []*descr.Error{{Pos: n.Pos, Path: path, Msg: `missing required key "project_id" (or the deprecated "tenant_name")`}}
		}
		return nil
	}
	resource.Register(resource.Plugin{Type: "nova", Schema: schema, New: New})
}

// Settings are the keys of a nova resource section (see the package
// documentation): the connection New reads, and the instance keys Create
// reads from each spec's rendered section.
type Settings struct {
	Connection
	Instance
	// Name selects the auth_data entry.
	Name string `occopus:"name"`
}

// Connection says where to log in and which project to work in.
type Connection struct {
	Endpoint  string `occopus:"endpoint,required"`
	ProjectID string `occopus:"project_id"`
	// TenantName is the project's name (deprecated by Keystone v3:
	// project_id).
	TenantName     string `occopus:"tenant_name"`
	UserDomainName string `occopus:"user_domain_name"`
	// ProjectDomainName is the domain of tenant_name's project (default
	// user_domain_name).
	ProjectDomainName string `occopus:"project_domain_name"`
	RegionName        string `occopus:"region_name"`
}

// Instance says what server to make.
type Instance struct {
	ImageID        string   `occopus:"image_id,required"`
	FlavorName     string   `occopus:"flavor_name,required"`
	ServerName     string   `occopus:"server_name"`
	KeyName        string   `occopus:"key_name"`
	SecurityGroups []string `occopus:"security_groups"`
	NetworkID      string   `occopus:"network_id"`
	FloatingIP     YesNo    `occopus:"floating_ip"`
	FloatingIPPool string   `occopus:"floating_ip_pool"`
	VolumeSize     int      `occopus:"volume_size"`
	VolumePersist  bool     `occopus:"volume_persist"`
}

// Credentials are the keys of a nova auth_data entry: username and
// password, or type application_credential with id and secret.
type Credentials struct {
	// Type is password (the default; also v3password) or
	// application_credential (also v3applicationcredential).
	Type     string      `occopus:"type"`
	Username string      `occopus:"username"`
	Password auth.Secret `occopus:"password"`
	ID       string      `occopus:"id"`
	Secret   auth.Secret `occopus:"secret"`
	// ApplicationCredentialID and ApplicationCredentialSecret are the
	// long names of ID and Secret.
	ApplicationCredentialID     string      `occopus:"application_credential_id"`
	ApplicationCredentialSecret auth.Secret `occopus:"application_credential_secret"`
	// UserDomainName is the user's domain when the resource section
	// gives none (default "Default").
	UserDomainName string `occopus:"user_domain_name"`
}

// YesNo is a flag as Occopus's descriptions write it: yes/no,
// true/false, on/off, 1/0; empty is no. Any single value passes
// validation (a tutorial's placeholder too); Create refuses the others.
type YesNo bool

// SettingType implements descr.Setting: a single value.
func (YesNo) SettingType() descr.Type { return descr.Scalar }

// DecodeSetting implements descr.Setting.
func (y *YesNo) DecodeSetting(path string, v any) error {
	if s, ok := v.(string); ok && strings.TrimSpace(s) == "" {
		*y = false
		return nil
	}
	var b bool
	if descr.DecodeValue(path, v, &b) != nil {
		return &descr.Error{Path: path, Msg: fmt.Sprintf("%v is not yes/no or true/false", v)}
	}
	*y = YesNo(b)
	return nil
}
