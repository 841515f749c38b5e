package local

import "github.com/occopus-go/occopus/descr"

func init() {
	descr.RegisterSection(descr.SectionResource, "local", &descr.Schema{Fields: []descr.Field{
		{Key: "workdir", Type: descr.String},
		{Key: "shell", Type: descr.String},
		// Go duration ("5s") or seconds; descr.String takes any scalar.
		{Key: "stop_timeout", Type: descr.String},
		{Key: "name", Type: descr.String},
	}})
}
