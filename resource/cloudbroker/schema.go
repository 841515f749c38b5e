// Package cloudbroker runs nodes through the CloudBroker platform (`type: cloudbroker`).
package cloudbroker

import "github.com/occopus-go/occopus/descr"

func init() {
	descr.RegisterSection(descr.SectionResource, "cloudbroker", &descr.Schema{Fields: []descr.Field{
		{Key: "endpoint", Required: true, Type: descr.String},
		{Key: "description", Required: true, Type: descr.MapOf(&descr.Schema{Open: true, Fields: []descr.Field{
			{Key: "deployment_id", Required: true, Type: descr.String},
			{Key: "instance_type_id", Required: true, Type: descr.String},
			{Key: "key_pair_id", Type: descr.String},
			{Key: "opened_port", Type: descr.Scalar},
		}})},
		{Key: "start_in_vpc", Type: descr.Bool},
		{Key: "name", Type: descr.String},
	}})
}
