package nametable

import (
	"fmt"
	"strings"
)

// normName lowercases s and drops one trailing dot.
func normName(s string) string {
	s = strings.TrimSuffix(s, ".")
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// checkName validates a normalized hostname. A wildcard ("*" as the whole
// first label) is allowed only when wildcardOK; it reports whether s is one.
func checkName(s string, wildcardOK bool) (wildcard bool, err error) {
	if s == "" {
		return false, fmt.Errorf("empty hostname")
	}
	if len(s) > 253 {
		return false, fmt.Errorf("hostname is %d characters long, the limit is 253", len(s))
	}
	rest := s
	for i := 0; ; i++ {
		label, tail, more := strings.Cut(rest, ".")
		switch {
		case label == "":
			return false, fmt.Errorf("empty label (a leading dot or two dots in a row)")
		case len(label) > 63:
			return false, fmt.Errorf("label %q is %d characters long, the limit is 63", label, len(label))
		case label == "*":
			if i != 0 || !wildcardOK {
				return false, fmt.Errorf("'*' is allowed only as the whole first label of a wildcard host")
			}
			if !more {
				return false, fmt.Errorf("a wildcard needs a domain after \"*.\"")
			}
			wildcard = true
		default:
			for j := 0; j < len(label); j++ {
				c := label[j]
				if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
					return false, fmt.Errorf("label %q has the character %q; hostnames use letters, digits, '-' and '_'", label, c)
				}
			}
		}
		if !more {
			return wildcard, nil
		}
		rest = tail
	}
}

// appendWire appends the wire form of the normalized, valid name s, without
// the terminating zero-length label.
func appendWire(dst []byte, s string) []byte {
	for s != "" {
		label, tail, _ := strings.Cut(s, ".")
		dst = append(dst, byte(len(label)))
		dst = append(dst, label...)
		s = tail
	}
	return dst
}

// wireToText converts a wire name without its terminating zero to
// presentation form with a trailing dot.
func wireToText(w string) string {
	var b strings.Builder
	for len(w) > 0 {
		n := int(w[0])
		if 1+n > len(w) {
			break
		}
		b.WriteString(w[1 : 1+n])
		b.WriteByte('.')
		w = w[1+n:]
	}
	if b.Len() == 0 {
		return "."
	}
	return b.String()
}
