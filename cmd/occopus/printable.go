package main

import (
	"fmt"
	"strings"
	"unicode"
)

// cleanLine makes text from descriptions, backends and the store safe to
// print on one terminal line: control characters (escape sequences, NUL,
// carriage returns, newlines) are shown as \xNN or \uNNNN instead of
// being obeyed by the terminal. Names are checked at validate, but
// backend messages and stores written by others are not.
func cleanLine(s string) string { return clean(s, false) }

// cleanText is cleanLine keeping newlines, for messages of several lines.
func cleanText(s string) string { return clean(s, true) }

func clean(s string, keepNewlines bool) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || r == unicode.ReplacementChar }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n' && keepNewlines:
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == unicode.ReplacementChar:
			b.WriteString(`\ufffd`)
		case r < 0x80 && unicode.IsControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unicode.IsControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
