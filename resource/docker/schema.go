package docker

import "github.com/occopus-go/occopus/descr"

func init() {
	descr.RegisterSection(descr.SectionResource, "docker", &descr.Schema{Fields: []descr.Field{
		// endpoint is optional: without it the engine of DOCKER_HOST or the
		// local socket is used. Occopus required it.
		{Key: "endpoint", Type: descr.String},
		{Key: "origin", Type: descr.String},
		{Key: "image", Required: true, Type: descr.String},
		{Key: "tag", Type: descr.String},
		{Key: "network", Type: descr.String},
		{Key: "network_mode", Type: descr.String},
		{Key: "name", Type: descr.String},
	}})
}
