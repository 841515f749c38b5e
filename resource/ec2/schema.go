// Package ec2 runs nodes on EC2-compatible clouds (`type: ec2`).
package ec2

import (
	"github.com/occopus-go/occopus/descr"
	"github.com/occopus-go/occopus/resource"
)

func init() {
	resource.Register(resource.Plugin{Type: "ec2", New: New, Schema: &descr.Schema{Fields: []descr.Field{
		{Key: "endpoint", Required: true, Type: descr.String},
		{Key: "regionname", Required: true, Type: descr.String},
		{Key: "image_id", Required: true, Type: descr.String},
		{Key: "instance_type", Required: true, Type: descr.String},
		{Key: "key_name", Type: descr.String},
		{Key: "security_group_ids", Type: descr.ListOf(descr.String)},
		{Key: "subnet_id", Type: descr.String},
		{Key: "tags", Type: descr.AnyMap},
		{Key: "name", Type: descr.String},
	}}})
}
