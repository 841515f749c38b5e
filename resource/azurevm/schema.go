package azurevm

import (
	"github.com/occopus-go/occopus/auth"
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource"
	"github.com/occopus-go/occopus/resource/azure"
)

func init() {
	schema := descr.SchemaOf[Settings]()
	schema.Check = func(n *descr.Node, path string) []*descr.Error {
		if n.Get("password") == nil && n.Get("ssh_key_data") == nil {
			return []*descr.Error{{Pos: n.Pos, Path: path, Msg: `missing required key "password" or "ssh_key_data" (how the VM's user logs in)`}}
		}
		return nil
	}
	resource.Register(resource.Plugin{Type: "azure_vm", Schema: schema, New: New})
}

// Settings are the keys of an azure_vm resource section, as Occopus and
// its tutorials write them: the connection New reads, and the instance
// keys Create reads from each spec's rendered section.
type Settings struct {
	azure.Connection
	Instance
}

// Instance says what VM to make.
type Instance struct {
	Location  string `occopus:"location,required"`
	VMSize    string `occopus:"vm_size,required"`
	Publisher string `occopus:"publisher,required"`
	Offer     string `occopus:"offer,required"`
	SKU       string `occopus:"sku,required"`
	Version   string `occopus:"version,required"`
	Username  string `occopus:"username,required"`
	// Password or SSHKeyData (or both) let Username log in.
	Password   auth.Secret `occopus:"password"`
	SSHKeyData string      `occopus:"ssh_key_data"`
	// VNetName and SubnetName name the user's network; without them a
	// virtual network (10.0.0.0/16) and subnet (/24) are made for the VM.
	VNetName   string `occopus:"vnet_name"`
	SubnetName string `occopus:"subnet_name"`
	// NICName names the user's network interface (Occopus documents the
	// key): used as it is, nothing else is made for the network.
	NICName        string      `occopus:"nic_name"`
	PublicIPNeeded azure.YesNo `occopus:"public_ip_needed"`
	// ServerName is the VM's host name (default the VM's name).
	ServerName string `occopus:"server_name"`
	// CustomData is accepted and ignored, as by Occopus: the custom data
	// is the rendered cloud-init of the contextualisation section.
	CustomData any `occopus:"customdata"`
}

// secretKeys are the instance keys New reads to scrub them from errors.
type secretKeys struct {
	Password auth.Secret `occopus:"password"`
}
