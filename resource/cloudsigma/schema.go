// Package cloudsigma runs nodes on CloudSigma (`type: cloudsigma`).
package cloudsigma

import "github.com/occopus-go/occopus/descr"

func init() {
	descr.RegisterSection(descr.SectionResource, "cloudsigma", &descr.Schema{Fields: []descr.Field{
		{Key: "endpoint", Required: true, Type: descr.String},
		{Key: "libdrive_id", Required: true, Type: descr.String},
		{Key: "description", Required: true, Type: descr.MapOf(&descr.Schema{Open: true, Fields: []descr.Field{
			{Key: "cpu", Required: true, Type: descr.Int},
			{Key: "mem", Required: true, Type: descr.Int},
			{Key: "vnc_password", Required: true, Type: descr.String},
			{Key: "pubkeys", Type: descr.ListOf(descr.String)},
			{Key: "nics", Type: descr.ListOf(descr.AnyMap)},
		}})},
		{Key: "name", Type: descr.String},
	}})
}
