package cloudsigma

import (
	"github.com/occopus-go/occopus/auth"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource"
)

func init() {
	resource.Register(resource.Plugin{Type: "cloudsigma", Schema: descr.SchemaOf[Settings](), New: New})
}

// Settings are the keys of a cloudsigma resource section (Occopus's:
// type, endpoint, libdrive_id, description; optional name): the
// connection New reads and the instance keys Create reads from each
// spec's rendered section.
type Settings struct {
	Connection
	Instance
	// Name names the resource; it selects the auth_data entry, as in
	// Occopus. The server's name is description.name.
	Name string `occopus:"name"`
}

// Connection says which CloudSigma API to talk to.
type Connection struct {
	// Endpoint is the API 2.0 base URL, such as
	// https://zrh.cloudsigma.com/api/2.0.
	Endpoint string `occopus:"endpoint,required"`
}

// Instance says what server to make.
type Instance struct {
	// LibDriveID is the library drive cloned for the server's boot drive.
	LibDriveID  string      `occopus:"libdrive_id,required"`
	Description Description `occopus:"description,required"`
}

// Description is CloudSigma's server object, passed through: the keys
// Occopus requires are checked, every other key (pubkeys, nics with
// ip_v4_conf, vlan and firewall_policy, smp, tags, meta, drives, name,
// ...) goes to the API as written. meta and drives are merged with the
// backend's own entries, not replaced (Occopus overwrites them).
type Description struct {
	// CPU is in MHz.
	CPU int `occopus:"cpu,required"`
	// Mem is in bytes.
	Mem         int64          `occopus:"mem,required"`
	VNCPassword auth.Secret    `occopus:"vnc_password,required"`
	Rest        map[string]any `occopus:",rest"`
}

// Credentials are the keys of a cloudsigma auth_data entry: the account's
// e-mail address and password (HTTP Basic).
type Credentials struct {
	Email    string      `occopus:"email"`
	Password auth.Secret `occopus:"password"`
}
