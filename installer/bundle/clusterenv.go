package bundle

import (
	"fmt"
	"sort"
	"strings"
)

// EnvLine is one assignment of a cluster.env file.
type EnvLine struct {
	Key   string
	Value string
	// Line is the 1-based line the assignment starts on.
	Line int
}

// ParseClusterEnv parses cluster.env: shell assignments `KEY=value`, one per
// line, where value may be unquoted, single quoted, "double quoted" (backslash escapes
// \\ \" \$ \` and line continuation), or a concatenation of these. Blank
// lines, `# comments` (whole-line or after the value) and a leading `export`
// are accepted. Variable expansion ($VAR, `cmd`) is refused rather than
// silently taken literally. Later assignments of a key override earlier ones,
// as in a shell. Errors are *Error values naming the line. Both shell idioms
// for a single quote inside a single-quoted value are understood:
//
//	KEY='it'\''s'
//	KEY='it'"'"'s'
func ParseClusterEnv(data []byte) ([]EnvLine, error) {
	p := envParser{s: string(data), line: 1}
	var out []EnvLine
	for {
		p.skipBlankAndComments()
		if p.eof() {
			return out, nil
		}
		l, err := p.assignment()
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
}

type envParser struct {
	s    string
	i    int
	line int
}

func (p *envParser) eof() bool { return p.i >= len(p.s) }

func (p *envParser) errf(format string, args ...any) *Error {
	return &Error{File: FileClusterEnv, Line: p.line, Msg: fmt.Sprintf(format, args...)}
}

// skipBlankAndComments moves past whitespace, newlines and comment lines.
func (p *envParser) skipBlankAndComments() {
	for !p.eof() {
		switch c := p.s[p.i]; c {
		case '\n':
			p.line++
			p.i++
		case ' ', '\t', '\r':
			p.i++
		case '#':
			for !p.eof() && p.s[p.i] != '\n' {
				p.i++
			}
		default:
			return
		}
	}
}

func isKeyStart(c byte) bool {
	return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
}

func isKeyChar(c byte) bool { return isKeyStart(c) || (c >= '0' && c <= '9') }

// validKey reports whether k is a shell variable name.
func validKey(k string) bool {
	if k == "" || !isKeyStart(k[0]) {
		return false
	}
	for i := 1; i < len(k); i++ {
		if !isKeyChar(k[i]) {
			return false
		}
	}
	return true
}

func (p *envParser) assignment() (EnvLine, error) {
	start := p.line
	if strings.HasPrefix(p.s[p.i:], "export") && p.i+6 < len(p.s) && (p.s[p.i+6] == ' ' || p.s[p.i+6] == '\t') {
		p.i += 6
		for !p.eof() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
			p.i++
		}
	}
	k := p.i
	for !p.eof() && isKeyChar(p.s[p.i]) {
		p.i++
	}
	key := p.s[k:p.i]
	if key == "" || !isKeyStart(key[0]) || p.eof() || p.s[p.i] != '=' {
		return EnvLine{}, p.errf("expected KEY='value', got %q", p.restOfLine(k))
	}
	p.i++ // '='
	val, err := p.word()
	if err != nil {
		err.Key = key
		return EnvLine{}, err
	}
	// Only whitespace and an optional comment may follow the value.
	for !p.eof() && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\r') {
		p.i++
	}
	if !p.eof() && p.s[p.i] != '\n' && p.s[p.i] != '#' {
		e := p.errf("unexpected %q after the value; quote values that contain spaces", p.restOfLine(p.i))
		e.Key = key
		return EnvLine{}, e
	}
	return EnvLine{Key: key, Value: val, Line: start}, nil
}

func (p *envParser) restOfLine(from int) string {
	end := strings.IndexByte(p.s[from:], '\n')
	if end < 0 {
		return p.s[from:]
	}
	return strings.TrimRight(p.s[from:from+end], "\r")
}

// word reads one shell word made of unquoted, single- and double-quoted parts.
func (p *envParser) word() (string, *Error) {
	var b strings.Builder
	for !p.eof() {
		c := p.s[p.i]
		switch c {
		case ' ', '\t', '\r', '\n':
			return b.String(), nil
		case '\'':
			startLine := p.line
			p.i++
			end := strings.IndexByte(p.s[p.i:], '\'')
			if end < 0 {
				e := p.errf("unterminated single quote")
				e.Line = startLine
				return "", e
			}
			part := p.s[p.i : p.i+end]
			p.line += strings.Count(part, "\n")
			b.WriteString(part)
			p.i += end + 1
		case '"':
			startLine := p.line
			p.i++
			closed := false
			for !p.eof() && !closed {
				d := p.s[p.i]
				switch d {
				case '"':
					closed = true
					p.i++
				case '\\':
					if p.i+1 >= len(p.s) {
						p.i++
						continue
					}
					n := p.s[p.i+1]
					switch n {
					case '\\', '"', '$', '`':
						b.WriteByte(n)
					case '\n':
						p.line++ // line continuation: both characters vanish
					default:
						b.WriteByte('\\')
						b.WriteByte(n)
					}
					p.i += 2
				case '$', '`':
					return "", p.errf("variable or command expansion (%q) is not supported; escape it or use single quotes", d)
				default:
					if d == '\n' {
						p.line++
					}
					b.WriteByte(d)
					p.i++
				}
			}
			if !closed {
				e := p.errf("unterminated double quote")
				e.Line = startLine
				return "", e
			}
		case '\\':
			if p.i+1 >= len(p.s) {
				p.i++
				continue
			}
			if n := p.s[p.i+1]; n == '\n' {
				p.line++
			} else {
				b.WriteByte(n)
			}
			p.i += 2
		case '$', '`':
			return "", p.errf("variable or command expansion (%q) is not supported; quote the value with single quotes", c)
		case ';', '&', '|', '<', '>', '(', ')':
			return "", p.errf("shell operator %q is not allowed in cluster.env; quote the value with single quotes", c)
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return b.String(), nil
}

// quoteShell single-quotes v for a POSIX shell; an embedded quote closes the
// quoted part, adds an escaped quote and reopens it.
func quoteShell(v string) string {
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

// FormatClusterEnv renders env the way istioctl writes cluster.env: one
// KEY='value' line per key, sorted by key, single-quoted. Keys must be shell
// variable names.
func FormatClusterEnv(env map[string]string) ([]byte, error) {
	keys := make([]string, 0, len(env))
	for k := range env {
		if !validKey(k) {
			return nil, &Error{File: FileClusterEnv, Key: k, Msg: fmt.Sprintf("%q is not a valid variable name (letters, digits, underscore; not starting with a digit)", k)}
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(quoteShell(env[k]))
		b.WriteByte('\n')
	}
	return []byte(b.String()), nil
}
