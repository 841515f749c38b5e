package health

import "github.com/occopus-go/occopus/descr"

// The keys of the health_check section, registered with the description
// checker beside the primitives that read them.
func init() {
	descr.RegisterHealthCheck(descr.Field{Key: "type", Type: descr.String}) // Occopus writes `basic`
	descr.RegisterHealthCheck(descr.Field{Key: "ping", Type: descr.Bool})
	descr.RegisterHealthCheck(descr.Field{Key: "ports", Type: descr.ListOf(descr.Int)})
	descr.RegisterHealthCheck(descr.Field{Key: "urls", Type: descr.ListOf(descr.String)})
	descr.RegisterHealthCheck(descr.Field{Key: "mysqldbs", Type: descr.ListOf(descr.MapOf(&descr.Schema{Fields: []descr.Field{
		{Key: "name", Required: true, Type: descr.String},
		{Key: "user", Required: true, Type: descr.String},
		{Key: "pass", Required: true, Type: descr.String},
		{Key: "host", Type: descr.String},
		{Key: "port", Type: descr.Int},
	}}))})
	descr.RegisterHealthCheck(descr.Field{Key: "timeout", Type: descr.Number})
}
