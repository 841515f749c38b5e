// Package azureaci runs nodes as Azure container instances (`type: azure_aci`).
package azureaci

import (
	"fmt"

	"github.com/occopus-go/occopus/descr"
)

func init() {
	descr.RegisterSection(descr.SectionResource, "azure_aci", &descr.Schema{Fields: []descr.Field{
		{Key: "endpoint", Required: true, Type: descr.String},
		{Key: "resource_group", Required: true, Type: descr.String},
		{Key: "location", Required: true, Type: descr.String},
		{Key: "cpu_cores", Required: true, Type: descr.Scalar},
		{Key: "memory", Required: true, Type: descr.Scalar},
		{Key: "image", Required: true, Type: descr.String},
		{Key: "os_type", Required: true, Type: descr.String},
		{Key: "network_type", Required: true, Type: descr.String},
		{Key: "gpu_type", Type: descr.String},
		{Key: "gpu_count", Type: descr.Int},
		{Key: "ports", Type: descr.ListOf(descr.Int)},
		{Key: "vnet_name", Type: descr.String},
		{Key: "subnet_name", Type: descr.String},
		{Key: "name", Type: descr.String},
	}, Check: func(n *descr.Node, path string) []*descr.Error {
		if nt := n.Get("network_type"); nt != nil && nt.Value != "Public" && nt.Value != "Private" {
			return []*descr.Error{{Pos: nt.Pos, Path: path + ".network_type", Msg: fmt.Sprintf("must be Public or Private, not %q", nt.Value)}}
		}
		return nil
	}})
}
