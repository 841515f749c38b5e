// Package azurevm runs nodes as Azure virtual machines (`type: azure_vm`).
package azurevm

import "github.com/occopus-go/occopus/descr"

func init() {
	descr.RegisterSection(descr.SectionResource, "azure_vm", &descr.Schema{Fields: []descr.Field{
		{Key: "endpoint", Required: true, Type: descr.String},
		{Key: "resource_group", Required: true, Type: descr.String},
		{Key: "location", Required: true, Type: descr.String},
		{Key: "vm_size", Required: true, Type: descr.String},
		{Key: "publisher", Required: true, Type: descr.String},
		{Key: "offer", Required: true, Type: descr.String},
		{Key: "sku", Required: true, Type: descr.String},
		{Key: "version", Required: true, Type: descr.String},
		{Key: "username", Required: true, Type: descr.String},
		{Key: "password", Type: descr.String},
		{Key: "ssh_key_data", Type: descr.String},
		{Key: "public_ip_needed", Type: descr.Bool},
		{Key: "vnet_name", Type: descr.String},
		{Key: "subnet_name", Type: descr.String},
		{Key: "nic_name", Type: descr.String},
		{Key: "customdata", Type: descr.String},
		{Key: "server_name", Type: descr.String},
		{Key: "name", Type: descr.String},
	}, Check: func(n *descr.Node, path string) []*descr.Error {
		if n.Get("password") == nil && n.Get("ssh_key_data") == nil {
			return []*descr.Error{{Pos: n.Pos, Path: path, Msg: `needs "password" or "ssh_key_data" to log in to the VM`}}
		}
		return nil
	}})
}
