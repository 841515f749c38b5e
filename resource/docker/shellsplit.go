package docker

import (
	"fmt"
	"strings"
)

// splitShell splits a command line into words the way a POSIX shell (and
// Python's shlex.split, which Occopus uses) does: blanks separate words,
// single quotes keep everything literally, double quotes keep everything but
// a backslash before \ " $ ` or newline, and an unquoted backslash escapes
// the next character. No expansion is done: `$x` stays `$x`, as in the
// Python original. A quoted empty string is a word.
func splitShell(s string) ([]string, error) {
	var (
		words   []string
		cur     strings.Builder
		inWord  bool
		escaped bool
		quote   rune // 0, '\'' or '"'
	)
	for _, r := range s {
		switch {
		case escaped:
			escaped = false
			if r == '\n' {
				continue // line continuation
			}
			if quote == '"' && !strings.ContainsRune("\\\"$`", r) {
				cur.WriteRune('\\')
			}
			cur.WriteRune(r)
			inWord = true
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\\':
			escaped = true
		case quote == '"':
			if r == '"' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote = r
			inWord = true
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if escaped {
		return nil, fmt.Errorf("command %q ends with a lone backslash", s)
	}
	if quote != 0 {
		return nil, fmt.Errorf("command %q has an unterminated %c quote", s, quote)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
