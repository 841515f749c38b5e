package occoredis

import (
	"context"

	goredis "github.com/redis/go-redis/v9"
)

// go-redis prints its own lines (pool and reconnect notices) on stderr
// through a package-wide logger; what matters of them comes back as
// errors, which the store wraps and its callers show. They must not reach
// the user between a command's own lines.
func init() { goredis.SetLogger(quiet{}) }

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}
