package tmpl

import (
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file is a lexer for Jinja2's default syntax ({{ }}, {% %}, {# #},
// no line statements, trim_blocks and lstrip_blocks off), written from
// jinja2/lexer.py (3.1) rule by rule. gonja's own lexer differs from
// Jinja2's in ways templates hit: it treats in/is/and/or/not as keywords
// only when a space follows (and then also after a dot, so `item.in` is a
// syntax error), folds a newline inside an expression into the next token,
// knows only the \" and \' string escapes (so '\\' never ends), and trims
// whitespace with its own rules. Jinja2 itself has no keywords in its
// lexer: every word is a name, and the parser decides by position.

type jtokKind int

const (
	jtEOF jtokKind = iota
	jtData
	jtVarBegin
	jtVarEnd
	jtBlockBegin
	jtBlockEnd
	jtName
	jtString
	jtInteger
	jtFloat
	jtOp // operators and punctuation; val is the operator text
)

// jtok is one Jinja2 token. pos is the byte offset of its first byte in the
// (newline-normalised) source; line and col are 1-based, col in bytes, as
// gonja counts them.
type jtok struct {
	kind      jtokKind
	val       string // data text, name, operator, or the literal's source text
	str       string // decoded value of a string literal
	num       int64
	big       *big.Int // an integer literal beyond int64
	flt       float64
	pos       int
	line, col int
}

func (t *jtok) is(kind jtokKind, val string) bool { return t.kind == kind && t.val == val }
func (t *jtok) isName(val string) bool            { return t.kind == jtName && t.val == val }

// describe names a token as Jinja2's describe_token does, for messages.
func (t *jtok) describe() string {
	switch t.kind {
	case jtEOF:
		return "end of template"
	case jtData:
		return "template data / text"
	case jtVarBegin:
		return "begin of print statement"
	case jtVarEnd:
		return "end of print statement"
	case jtBlockBegin:
		return "begin of statement block"
	case jtBlockEnd:
		return "end of statement block"
	case jtString:
		return "string"
	case jtInteger:
		return "integer"
	case jtFloat:
		return "float"
	}
	return t.val
}

// maxTokens bounds the token list of one template (about 3 bytes per token
// in practice, so this is far above any real template).
const maxTokens = 1 << 20

type lexer struct {
	src   string
	pos   int
	toks  []jtok
	lines []int // byte offset of each line start
	// balance is Jinja2's balancing_stack: the brackets open in this tag
	// (offsets); a tag only ends when it is empty.
	balance []int
}

func pyIsSpace(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }

// pyRstrip is Python's str.rstrip() (all Unicode whitespace).
func pyRstrip(s string) string { return strings.TrimRightFunc(s, pyIsSpace) }

// spaceLen is the length of the whitespace prefix of s (Python's \s*).
func spaceLen(s string) int {
	return len(s) - len(strings.TrimLeftFunc(s, pyIsSpace))
}

func (l *lexer) position(pos int) (int, int) {
	lo, hi := 0, len(l.lines)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if l.lines[mid] <= pos {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo + 1, pos - l.lines[lo] + 1
}

func (l *lexer) errAt(pos int, format string, args ...any) *SyntaxError {
	line, col := l.position(min(pos, len(l.src)))
	return &SyntaxError{Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

func (l *lexer) emit(t jtok) error {
	if len(l.toks) >= maxTokens {
		return l.errAt(t.pos, "template too long (more than %d tokens)", maxTokens)
	}
	t.line, t.col = l.position(t.pos)
	l.toks = append(l.toks, t)
	return nil
}

// lexJinja tokenises src, which must already have its newlines normalised
// to "\n". Like Jinja2 (keep_trailing_newline=False) it drops one trailing
// newline first.
func lexJinja(src string) ([]jtok, error) {
	src = strings.TrimSuffix(src, "\n")
	l := &lexer{src: src, lines: []int{0}}
	for i := 0; i < len(src); i++ {
		if src[i] == '\n' {
			l.lines = append(l.lines, i+1)
		}
	}
	if err := l.root(); err != nil {
		return nil, err
	}
	if err := l.emit(jtok{kind: jtEOF, pos: len(src)}); err != nil {
		return nil, err
	}
	return l.toks, nil
}

// rawTag matches a {% raw %} (word "raw") or {% endraw %} tag at the start
// of s, as Jinja2's regexes do: "{%", an optional sign, whitespace, the
// word, whitespace, and an end. It returns the tag's length, its opening
// sign and its end ("%}", "-%}" or, for endraw only, "+%}").
func rawTag(s, word string, plusEnd bool) (n int, sign byte, end string, ok bool) {
	if !strings.HasPrefix(s, "{%") {
		return 0, 0, "", false
	}
	i := 2
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		sign = s[i]
		i++
	}
	i += spaceLen(s[i:])
	if !strings.HasPrefix(s[i:], word) {
		return 0, 0, "", false
	}
	i += len(word)
	i += spaceLen(s[i:])
	for _, e := range []string{"+%}", "-%}", "%}"} {
		if e == "+%}" && !plusEnd {
			continue
		}
		if strings.HasPrefix(s[i:], e) {
			return i + len(e), sign, e, true
		}
	}
	return 0, 0, "", false
}

func (l *lexer) root() error {
	for l.pos < len(l.src) {
		rest := l.src[l.pos:]
		i := 0
		for {
			j := strings.IndexByte(rest[i:], '{')
			if j < 0 || i+j+1 >= len(rest) {
				i = -1
				break
			}
			i += j
			if c := rest[i+1]; c == '{' || c == '%' || c == '#' {
				break
			}
			i++
		}
		if i < 0 { // no more tags: the rest is text
			return l.emit(jtok{kind: jtData, val: rest, pos: l.pos})
		}
		text := rest[:i]
		start := l.pos + i
		tag := l.src[start:]
		sign := byte(0)
		if len(tag) > 2 && (tag[2] == '-' || tag[2] == '+') {
			sign = tag[2]
		}
		if n, _, e, ok := rawTag(tag, "raw", false); ok {
			if err := l.data(text, l.pos, sign == '-'); err != nil {
				return err
			}
			end := start + n
			if e == "-%}" {
				end += spaceLen(l.src[end:])
			}
			if err := l.raw(end); err != nil {
				return err
			}
			continue
		}
		if err := l.data(text, l.pos, sign == '-'); err != nil {
			return err
		}
		l.pos = start + 2
		if sign != 0 {
			l.pos++
		}
		var err error
		switch tag[1] {
		case '#':
			err = l.comment(start)
		case '{':
			err = l.tag(start, jtVarBegin)
		case '%':
			err = l.tag(start, jtBlockBegin)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// data emits template text; strip is the "-" of the following tag, which
// removes all whitespace before it.
func (l *lexer) data(text string, pos int, strip bool) error {
	if strip {
		text = pyRstrip(text)
	}
	if text == "" {
		return nil
	}
	return l.emit(jtok{kind: jtData, val: text, pos: pos})
}

// raw reads the text of a raw block starting at pos, up to the first
// {% endraw %}.
func (l *lexer) raw(pos int) error {
	for i := pos; ; i++ {
		j := strings.Index(l.src[i:], "{%")
		if j < 0 {
			if pos == len(l.src) {
				l.pos = pos // as for a comment: nothing left, no error
				return nil
			}
			return l.errAt(pos, "Missing end of raw directive")
		}
		i += j
		n, sign, end, ok := rawTag(l.src[i:], "endraw", true)
		if !ok {
			continue
		}
		if err := l.data(l.src[pos:i], pos, sign == '-'); err != nil {
			return err
		}
		l.pos = i + n
		if end == "-%}" {
			l.pos += spaceLen(l.src[l.pos:])
		}
		return nil
	}
}

// comment skips a comment; Jinja2 ends it at the first "#}" (optionally
// "+#}" or "-#}", the latter also eating the whitespace after it).
func (l *lexer) comment(start int) error {
	body := l.pos // after "{#" and its sign
	i := strings.Index(l.src[body:], "#}")
	if i < 0 {
		if body == len(l.src) {
			return nil // Jinja2's lexer stops quietly when nothing follows
		}
		return l.errAt(start, "Missing end of comment tag")
	}
	end := body + i
	l.pos = end + 2
	if end-1 >= body && l.src[end-1] == '-' {
		l.pos += spaceLen(l.src[l.pos:])
	}
	return nil
}

var (
	floatRE   = regexp.MustCompile(`^(?i)(\d+_)*\d+((\.(\d+_)*\d+)?e[+\-]?(\d+_)*\d+|\.(\d+_)*\d+)`)
	integerRE = regexp.MustCompile(`^(?i)(0b(_?[0-1])+|0o(_?[0-7])+|0x(_?[\da-f])+|[1-9](_?\d)*|0(_?0)*)`)
	closing   = map[byte]byte{'(': ')', '[': ']', '{': '}'}
	operators = []string{"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"}
)

// tag lexes the inside of {{ }} or {% %} from l.pos.
func (l *lexer) tag(start int, begin jtokKind) error {
	if err := l.emit(jtok{kind: begin, val: l.src[start:l.pos], pos: start}); err != nil {
		return err
	}
	l.balance = l.balance[:0]
	for {
		rest := l.src[l.pos:]
		if rest == "" {
			return nil // the parser reports the missing end
		}
		if len(l.balance) == 0 {
			if n, ok := tagEnd(rest, begin); ok {
				kind := jtVarEnd
				if begin == jtBlockBegin {
					kind = jtBlockEnd
				}
				if err := l.emit(jtok{kind: kind, val: rest[:n], pos: l.pos}); err != nil {
					return err
				}
				l.pos += n
				if rest[0] == '-' {
					l.pos += spaceLen(l.src[l.pos:])
				}
				return nil
			}
		}
		if n := spaceLen(rest); n > 0 {
			l.pos += n
			continue
		}
		if err := l.exprToken(rest); err != nil {
			return err
		}
	}
}

// tagEnd reports the length of the end of the current tag at the start of
// rest: "-}}"/"}}" for a print statement, "+%}"/"-%}"/"%}" for a block.
func tagEnd(rest string, begin jtokKind) (int, bool) {
	end := "}}"
	if begin == jtBlockBegin {
		end = "%}"
		if strings.HasPrefix(rest, "+%}") {
			return 3, true
		}
	}
	switch {
	case strings.HasPrefix(rest, "-"+end):
		return 3, true
	case strings.HasPrefix(rest, end):
		return 2, true
	}
	return 0, false
}

// exprToken lexes one token inside a tag, in Jinja2's rule order: float,
// integer, name, string, operator.
func (l *lexer) exprToken(rest string) error {
	pos := l.pos
	afterDot := pos > 0 && l.src[pos-1] == '.'
	if m := floatRE.FindString(rest); m != "" && !afterDot {
		f, err := strconv.ParseFloat(strings.ReplaceAll(m, "_", ""), 64)
		if err != nil && !math.IsInf(f, 0) { // 1e999 is inf, as literal_eval gives
			return l.errAt(pos, "invalid float literal %s", m)
		}
		l.pos += len(m)
		return l.emit(jtok{kind: jtFloat, val: m, flt: f, pos: pos})
	}
	if m := integerRE.FindString(rest); m != "" {
		l.pos += len(m)
		t := jtok{kind: jtInteger, val: m, pos: pos}
		digits := strings.ToLower(strings.ReplaceAll(m, "_", ""))
		base := 10
		if len(digits) > 1 && digits[0] == '0' {
			switch digits[1] {
			case 'b':
				base, digits = 2, digits[2:]
			case 'o':
				base, digits = 8, digits[2:]
			case 'x':
				base, digits = 16, digits[2:]
			}
		}
		n, ok := new(big.Int).SetString(digits, base)
		if !ok {
			return l.errAt(pos, "invalid integer literal %s", m)
		}
		if n.IsInt64() {
			t.num = n.Int64()
		} else {
			t.big = n
		}
		return l.emit(t)
	}
	if r, _ := utf8.DecodeRuneInString(rest); isNameRune(r) {
		n := 0
		for n < len(rest) {
			r, size := utf8.DecodeRuneInString(rest[n:])
			if !isNameRune(r) {
				break
			}
			n += size
		}
		name := rest[:n]
		l.pos += n
		if first, _ := utf8.DecodeRuneInString(name); !unicode.IsLetter(first) && first != '_' {
			return l.errAt(pos, "Invalid character in identifier")
		}
		return l.emit(jtok{kind: jtName, val: name, pos: pos})
	}
	if rest[0] == '\'' || rest[0] == '"' {
		n, ok := stringEnd(rest)
		if !ok {
			return l.errAt(pos, "unterminated string literal")
		}
		s, err := pyUnescape(rest[1 : n-1])
		if err != nil {
			return l.errAt(pos, "%s", err)
		}
		l.pos += n
		return l.emit(jtok{kind: jtString, val: rest[:n], str: s, pos: pos})
	}
	for _, op := range operators {
		if !strings.HasPrefix(rest, op) {
			continue
		}
		switch op {
		case "(", "[", "{":
			l.balance = append(l.balance, pos)
		case ")", "]", "}":
			if len(l.balance) == 0 {
				return l.errAt(pos, "unexpected '%s'", op)
			}
			open := l.balance[len(l.balance)-1]
			if want := closing[l.src[open]]; want != op[0] {
				line, col := l.position(open)
				return l.errAt(pos, "unexpected '%s', expected '%c' (to close the '%c' at line %d, column %d)", op, want, l.src[open], line, col)
			}
			l.balance = l.balance[:len(l.balance)-1]
		}
		l.pos += len(op)
		return l.emit(jtok{kind: jtOp, val: op, pos: pos})
	}
	r, _ := utf8.DecodeRuneInString(rest)
	return l.errAt(pos, "unexpected char %s", pyQuote(string(r)))
}

// isNameRune approximates Python's \w as Jinja2's name pattern uses it:
// letters, digits, the underscore and combining marks.
func isNameRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r) || unicode.Is(unicode.Pc, r)
}

// stringEnd returns the length of the string literal at the start of s
// ('...' or "..." where a backslash escapes any character).
func stringEnd(s string) (int, bool) {
	q := s[0]
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case q:
			return i + 1, true
		}
	}
	return 0, false
}

// pyUnescape decodes a string literal's body as Jinja2 does:
// body.encode("ascii", "backslashreplace").decode("unicode-escape"). The
// first step turns every non-ASCII character into \xhh, \uhhhh or
// \Uhhhhhhhh, so a backslash before one of them escapes the backslash of
// that sequence ('\é' is the four characters \xe9), exactly as in Python.
func pyUnescape(body string) (string, error) {
	if !strings.ContainsRune(body, '\\') {
		return body, nil
	}
	var a strings.Builder
	for _, r := range body {
		switch {
		case r < 0x80:
			a.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(&a, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&a, `\u%04x`, r)
		default:
			fmt.Fprintf(&a, `\U%08x`, r)
		}
	}
	s := a.String()
	var b strings.Builder
	hex := func(i, n int, what string) (rune, error) {
		if i+n > len(s) {
			return 0, fmt.Errorf("truncated %s escape", what)
		}
		v, err := strconv.ParseUint(s[i:i+n], 16, 32)
		if err != nil {
			return 0, fmt.Errorf("truncated %s escape", what)
		}
		return rune(v), nil
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			return "", fmt.Errorf("\\ at end of string")
		}
		switch c = s[i]; c {
		case '\n':
		case '\\', '\'', '"':
			b.WriteByte(c)
		case 'a':
			b.WriteByte('\a')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'v':
			b.WriteByte('\v')
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v, n := 0, 0
			for n < 3 && i+n < len(s) && s[i+n] >= '0' && s[i+n] <= '7' {
				v = v*8 + int(s[i+n]-'0')
				n++
			}
			b.WriteRune(rune(v))
			i += n - 1
		case 'x', 'u', 'U':
			n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
			what := map[byte]string{'x': `\xXX`, 'u': `\uXXXX`, 'U': `\UXXXXXXXX`}[c]
			r, err := hex(i+1, n, what)
			if err != nil {
				return "", err
			}
			if r > unicode.MaxRune {
				return "", fmt.Errorf("illegal Unicode character")
			}
			if r >= 0xd800 && r <= 0xdfff {
				// Python keeps a lone surrogate in a str; Go strings
				// cannot hold one.
				return "", fmt.Errorf("surrogate escape \\%c%0*x is not supported", c, n, r)
			}
			b.WriteRune(r)
			i += n
		case 'N':
			return "", fmt.Errorf(`\N{...} escapes are not supported`)
		default:
			b.WriteByte('\\')
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}
