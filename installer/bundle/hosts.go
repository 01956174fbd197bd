package bundle

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strings"
)

// ParseHosts parses the bundle's hosts file, in /etc/hosts syntax: an IP then
// one or more names per line; `#` starts a comment; blank lines are skipped.
// The file may be empty.
func ParseHosts(data []byte) ([]HostEntry, error) {
	var out []HostEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		ip, err := netip.ParseAddr(f[0])
		if err != nil || ip.Zone() != "" {
			return nil, &Error{File: FileHosts, Line: n, Msg: fmt.Sprintf("%q is not an IP address; lines are `<gateway IP> istiod.istio-system.svc`", f[0])}
		}
		if len(f) < 2 {
			return nil, &Error{File: FileHosts, Line: n, Msg: fmt.Sprintf("no host name after %s", f[0])}
		}
		names := make([]string, 0, len(f)-1)
		for _, name := range f[1:] {
			if !validHostName(name) {
				return nil, &Error{File: FileHosts, Line: n, Msg: fmt.Sprintf("%q is not a valid host name", name)}
			}
			names = append(names, strings.ToLower(strings.TrimSuffix(name, ".")))
		}
		out = append(out, HostEntry{IP: ip, Names: names})
	}
	if err := sc.Err(); err != nil {
		return nil, &Error{File: FileHosts, Msg: "cannot read", Err: err}
	}
	return out, nil
}

func validHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c == '-' || c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
				return false
			}
		}
	}
	return true
}

// FormatHosts renders entries in /etc/hosts syntax.
func FormatHosts(entries []HostEntry) ([]byte, error) {
	var b strings.Builder
	for i, e := range entries {
		if !e.IP.IsValid() {
			return nil, &Error{File: FileHosts, Line: i + 1, Msg: "entry has no IP address"}
		}
		if len(e.Names) == 0 {
			return nil, &Error{File: FileHosts, Line: i + 1, Msg: fmt.Sprintf("entry for %s has no host name", e.IP)}
		}
		b.WriteString(e.IP.String())
		for _, n := range e.Names {
			if !validHostName(n) {
				return nil, &Error{File: FileHosts, Line: i + 1, Msg: fmt.Sprintf("%q is not a valid host name", n)}
			}
			b.WriteByte(' ')
			b.WriteString(n)
		}
		b.WriteByte('\n')
	}
	return []byte(b.String()), nil
}

// lookupHosts returns the addresses entries give for name.
func lookupHosts(entries []HostEntry, name string) []netip.Addr {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	var out []netip.Addr
	for _, e := range entries {
		for _, n := range e.Names {
			if n == name {
				out = append(out, e.IP)
				break
			}
		}
	}
	return out
}
