// Package resolvconf reads resolv.conf(5) files the way glibc's resolver does,
// finds the host's real upstream DNS servers (looking through systemd-resolved's
// stub listener), and follows changes to those files with one Watcher.
package resolvconf

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits and defaults that glibc applies to resolv.conf options.
const (
	// DefaultPort is the port of a nameserver line without an explicit port.
	DefaultPort = 53
	// DefaultNdots is the ndots value when no "options ndots:N" is given.
	DefaultNdots = 1
	// MaxNdots is the largest ndots glibc accepts; larger values are capped.
	MaxNdots = 15
	// DefaultTimeout is glibc's per-try timeout (RES_TIMEOUT).
	DefaultTimeout = 5 * time.Second
	// MaxTimeout is the cap glibc applies to "options timeout:N".
	MaxTimeout = 30 * time.Second
	// DefaultAttempts is glibc's number of tries per server (RES_DFLRETRY).
	DefaultAttempts = 2
	// MaxAttempts is the cap glibc applies to "options attempts:N".
	MaxAttempts = 5
)

// maxLineLen bounds one line of input so a hostile file cannot exhaust memory.
const maxLineLen = 64 << 10

// Config is the content of a resolv.conf file.
type Config struct {
	// Servers are the nameservers in file order. A line without a port gets
	// port 53; IPv6 zone ids ("fe80::1%eth0") are kept. As an extension to
	// glibc, "addr:port" and "[v6addr]:port" are accepted.
	Servers []netip.AddrPort
	// Search is the search list, lowercased, without trailing dots. Of the
	// "domain" and "search" lines, the last one in the file wins, as in glibc.
	Search []string
	// Ndots is "options ndots:N": DefaultNdots when absent, capped at MaxNdots.
	Ndots int
	// Options holds the other "options" of the file.
	Options Options
}

// Options are the resolver options of a resolv.conf "options" line other
// than ndots.
type Options struct {
	Timeout       time.Duration // timeout:N, DefaultTimeout when absent
	Attempts      int           // attempts:N, DefaultAttempts when absent
	Rotate        bool          // rotate
	EDNS0         bool          // edns0
	UseVC         bool          // use-vc (TCP only)
	TrustAD       bool          // trust-ad
	SingleRequest bool          // single-request or single-request-reopen
	NoTLDQuery    bool          // no-tld-query
	// Unknown lists the options this package does not interpret, verbatim.
	Unknown []string
}

// Default returns the configuration glibc uses when resolv.conf has no
// settings: no servers, no search list, ndots 1 and default options.
func Default() *Config {
	return &Config{Ndots: DefaultNdots, Options: Options{Timeout: DefaultTimeout, Attempts: DefaultAttempts}}
}

// Parse reads a resolv.conf from r. Like glibc it skips lines it does not
// understand (bad addresses, unknown keywords) rather than failing; it returns
// an error only when r fails or a line is longer than 64 KiB.
func Parse(r io.Reader) (*Config, error) {
	c := Default()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLineLen)
	line := 0
	for sc.Scan() {
		line++
		c.parseLine(sc.Bytes())
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("resolvconf: line %d is longer than %d bytes; this is not a resolv.conf file", line+1, maxLineLen)
		}
		return nil, fmt.Errorf("resolvconf: reading line %d: %w", line+1, err)
	}
	return c, nil
}

// ParseFile reads and parses the resolv.conf file at path.
func ParseFile(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("resolvconf: %w", err)
	}
	defer f.Close()
	c, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return c, nil
}

// fields splits a line into whitespace-separated words, stopping at a word
// that starts a comment.
func fields(b []byte) []string {
	var out []string
	for _, w := range bytes.Fields(b) {
		if w[0] == '#' || w[0] == ';' {
			break
		}
		out = append(out, string(w))
	}
	return out
}

func (c *Config) parseLine(b []byte) {
	if len(b) == 0 || b[0] == '#' || b[0] == ';' {
		return
	}
	f := fields(b)
	if len(f) == 0 {
		return
	}
	switch f[0] {
	case "nameserver":
		if len(f) < 2 {
			return
		}
		if ap, err := ParseServer(f[1]); err == nil {
			c.Servers = append(c.Servers, ap)
		}
	case "domain":
		// glibc: "domain" replaces the search list with that one name.
		c.Search = nil
		if len(f) >= 2 {
			if d, ok := normDomain(f[1]); ok {
				c.Search = []string{d}
			}
		}
	case "search":
		c.Search = nil
		seen := map[string]bool{}
		for _, w := range f[1:] {
			if d, ok := normDomain(w); ok && !seen[d] {
				seen[d] = true
				c.Search = append(c.Search, d)
			}
		}
	case "options":
		for _, o := range f[1:] {
			c.parseOption(o)
		}
	}
}

// ParseServer parses a DNS server address as resolv.conf and onramp's
// configuration write it: an IP ("10.0.0.2", "fe80::1%eth0", "[fd00::2]")
// with port 53, or IP:port ("10.0.0.2:5353", "[fd00::2]:53"). An
// IPv4-mapped IPv6 address is taken as the IPv4 address; port 0 is refused.
func ParseServer(s string) (netip.AddrPort, error) {
	host := s
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(a.Unmap(), DefaultPort), nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Port() != 0 {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	return netip.AddrPort{}, fmt.Errorf("server %q is not IP or IP:port with a port above 0 (e.g. 10.0.0.2 or [fd00::2]:53)", s)
}

// normDomain lowercases d and drops a trailing dot. The root (".") and names
// with empty labels or spaces are rejected.
func normDomain(d string) (string, bool) {
	d = strings.ToLower(strings.TrimSuffix(d, "."))
	if d == "" || len(d) > 253 || strings.Contains(d, "..") || strings.HasPrefix(d, ".") {
		return "", false
	}
	return d, true
}

func (c *Config) parseOption(o string) {
	name, val, hasVal := strings.Cut(o, ":")
	num := func(max int) (int, bool) {
		if !hasVal {
			return 0, false
		}
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 {
			return 0, false
		}
		return min(n, max), true
	}
	switch name {
	case "ndots":
		if n, ok := num(MaxNdots); ok {
			c.Ndots = n
		}
	case "timeout":
		if n, ok := num(int(MaxTimeout / time.Second)); ok && n > 0 {
			c.Options.Timeout = time.Duration(n) * time.Second
		}
	case "attempts":
		if n, ok := num(MaxAttempts); ok && n > 0 {
			c.Options.Attempts = n
		}
	case "rotate":
		c.Options.Rotate = true
	case "edns0":
		c.Options.EDNS0 = true
	case "use-vc":
		c.Options.UseVC = true
	case "trust-ad":
		c.Options.TrustAD = true
	case "single-request", "single-request-reopen":
		c.Options.SingleRequest = true
	case "no-tld-query":
		c.Options.NoTLDQuery = true
	default:
		c.Options.Unknown = append(c.Options.Unknown, o)
	}
}

// Equal reports whether c and o hold the same configuration.
func (c *Config) Equal(o *Config) bool {
	if c == nil || o == nil {
		return c == o
	}
	return slices.Equal(c.Servers, o.Servers) && slices.Equal(c.Search, o.Search) && c.Ndots == o.Ndots &&
		c.Options.Timeout == o.Options.Timeout && c.Options.Attempts == o.Options.Attempts &&
		c.Options.Rotate == o.Options.Rotate && c.Options.EDNS0 == o.Options.EDNS0 &&
		c.Options.UseVC == o.Options.UseVC && c.Options.TrustAD == o.Options.TrustAD &&
		c.Options.SingleRequest == o.Options.SingleRequest && c.Options.NoTLDQuery == o.Options.NoTLDQuery &&
		slices.Equal(c.Options.Unknown, o.Options.Unknown)
}
