package auth

import (
	"fmt"
	"log/slog"
	"strconv"
)

// Secret is a credential that prints as "[REDACTED]" everywhere: fmt (every
// verb), slog, JSON and text marshalling. Convert it to string explicitly
// where the value is really needed: string(s).
type Secret string

func (Secret) String() string   { return Redacted }
func (Secret) GoString() string { return Redacted }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON implements json.Marshaler.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(Redacted)), nil }

// MarshalText implements encoding.TextMarshaler (YAML, map keys, slog's
// text handler).
func (Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// Format implements fmt.Formatter: without it verbs such as %d or %x would
// print the underlying string.
func (Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprint(f, strconv.Quote(Redacted))
		return
	}
	fmt.Fprint(f, Redacted)
}
