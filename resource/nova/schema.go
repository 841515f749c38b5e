// Package nova runs nodes on OpenStack Nova (`type: nova`).
package nova

import (
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource"
)

func init() {
	resource.Register(resource.Plugin{Type: "nova", New: New, Schema: &descr.Schema{Fields: []descr.Field{
		{Key: "endpoint", Required: true, Type: descr.String},
		{Key: "image_id", Required: true, Type: descr.String},
		{Key: "flavor_name", Required: true, Type: descr.String},
		{Key: "project_id", Type: descr.String},
		{Key: "tenant_name", Type: descr.String}, // deprecated by Keystone v3: project_id
		{Key: "user_domain_name", Type: descr.String},
		{Key: "project_domain_name", Type: descr.String}, // domain of tenant_name's project (default user_domain_name)
		{Key: "region_name", Type: descr.String},
		{Key: "server_name", Type: descr.String},
		{Key: "key_name", Type: descr.String},
		{Key: "security_groups", Type: descr.ListOf(descr.String)},
		{Key: "network_id", Type: descr.String},
		{Key: "floating_ip", Type: descr.Scalar},
		{Key: "floating_ip_pool", Type: descr.String},
		{Key: "volume_size", Type: descr.Int},
		{Key: "volume_persist", Type: descr.Bool},
		{Key: "name", Type: descr.String},
	}, Check: func(n *descr.Node, path string) []*descr.Error {
		if n.Get("project_id") == nil && n.Get("tenant_name") == nil {
			return []*descr.Error{{Pos: n.Pos, Path: path, Msg: `missing required key "project_id" (or the deprecated "tenant_name")`}}
		}
		return nil
	}}})
}
