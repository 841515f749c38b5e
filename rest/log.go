package rest

import (
	"log/slog"

	"github.com/occopus-go/occopus/auth"
)

// RedactAttr returns a slog.HandlerOptions.ReplaceAttr that scrubs the
// secrets from every message and string, error or Stringer value, so a
// credential quoted in an error from a backend never reaches a log line.
func RedactAttr(secrets []string) func(groups []string, a slog.Attr) slog.Attr {
	return func(_ []string, a slog.Attr) slog.Attr {
		if len(secrets) == 0 {
			return a
		}
		v := a.Value.Resolve()
		switch v.Kind() {
		case slog.KindString:
			return slog.String(a.Key, auth.Redact(v.String(), secrets))
		case slog.KindAny:
			switch x := v.Any().(type) {
			case error:
				return slog.String(a.Key, auth.Redact(x.Error(), secrets))
			case interface{ String() string }:
				return slog.String(a.Key, auth.Redact(x.String(), secrets))
			}
		}
		return a
	}
}
