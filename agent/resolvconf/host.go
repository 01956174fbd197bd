package resolvconf

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
)

// Default locations of the files HostUpstreams reads.
const (
	// ResolvConfPath is the resolver configuration applications use.
	ResolvConfPath = "/etc/resolv.conf"
	// ResolvedUpstreamPath is the file where systemd-resolved lists its real
	// upstream servers (not its 127.0.0.53 stub).
	ResolvedUpstreamPath = "/run/systemd/resolve/resolv.conf"
)

// ErrNoUpstreams is wrapped by the error HostUpstreams returns when no usable
// upstream server is left after filtering.
var ErrNoUpstreams = errors.New("no usable upstream DNS server")

// resolvedStubs are systemd-resolved's local listeners: 127.0.0.53 is the stub
// with search-domain handling, 127.0.0.54 the "proxy" stub.
var resolvedStubs = []netip.Addr{netip.MustParseAddr("127.0.0.53"), netip.MustParseAddr("127.0.0.54")}

// Paths says where HostUpstreams looks. The zero value uses the system
// paths.
type Paths struct {
	// ResolvConf is the host's resolver file; default ResolvConfPath.
	ResolvConf string
	// ResolvedUpstream is systemd-resolved's upstream list; default
	// ResolvedUpstreamPath.
	ResolvedUpstream string
	// Exclude are addresses that must never be used as upstreams, besides
	// systemd-resolved's stubs, e.g. the DNS proxy's own listeners (the
	// proxy also drops those itself).
	Exclude []netip.AddrPort
}

func (p Paths) withDefaults() Paths {
	if p.ResolvConf == "" {
		p.ResolvConf = ResolvConfPath
	}
	if p.ResolvedUpstream == "" {
		p.ResolvedUpstream = ResolvedUpstreamPath
	}
	return p
}

// HostUpstreams returns the host's real upstream servers using the system
// paths; see Paths.HostUpstreams.
func HostUpstreams() (path string, cfg *Config, err error) {
	return Paths{}.HostUpstreams()
}

// IsResolvedStub reports whether ap is one of systemd-resolved's local stub
// listeners (127.0.0.53:53 or 127.0.0.54:53).
func IsResolvedStub(ap netip.AddrPort) bool {
	for _, s := range resolvedStubs {
		if ap.Addr() == s {
			return true
		}
	}
	return false
}

// HostUpstreams finds the servers a DNS forwarder on this host should use.
// It reads p.ResolvConf; when that file points at systemd-resolved's stub
// (127.0.0.53 or 127.0.0.54) it reads p.ResolvedUpstream instead, which lists
// the upstreams resolved itself uses. It returns the path it took the
// configuration from (the one to Watch) and the configuration with every
// server that would loop removed: resolved's stubs, p.Exclude, and duplicates.
//
// When no server is left, err wraps ErrNoUpstreams and cfg is still returned
// (with an empty Servers) so the caller can use its search list.
func (p Paths) HostUpstreams() (path string, cfg *Config, err error) {
	p = p.withDefaults()
	path = p.ResolvConf
	cfg, err = ParseFile(path)
	if err != nil {
		return path, nil, err
	}
	if hasStub(cfg.Servers) {
		up, uerr := ParseFile(p.ResolvedUpstream)
		if uerr != nil {
			if errors.Is(uerr, os.ErrNotExist) {
				return path, nil, fmt.Errorf("resolvconf: %s points at systemd-resolved's stub but %s does not exist; start systemd-resolved or list real nameservers in %s", p.ResolvConf, p.ResolvedUpstream, p.ResolvConf)
			}
			return path, nil, uerr
		}
		path, cfg = p.ResolvedUpstream, up
	}
	dropped := p.Filter(cfg)
	if len(cfg.Servers) == 0 {
		what := "it lists no nameserver"
		if len(dropped) > 0 {
			what = "it lists only " + joinAddrs(dropped) + ", which would loop back to this host's DNS proxy or systemd-resolved"
		}
		return path, cfg, fmt.Errorf("resolvconf: %w in %s: %s; add a nameserver line for a real DNS server", ErrNoUpstreams, path, what)
	}
	return path, cfg, nil
}

// Filter removes from cfg.Servers every server that would loop (resolved's
// stubs, p.Exclude, duplicates) and returns the removed ones.
func (p Paths) Filter(cfg *Config) (dropped []netip.AddrPort) {
	p = p.withDefaults()
	kept := cfg.Servers[:0:0]
	seen := map[netip.AddrPort]bool{}
	for _, s := range cfg.Servers {
		switch {
		case IsResolvedStub(s), p.excluded(s):
			dropped = append(dropped, s)
		case seen[s]:
		default:
			seen[s] = true
			kept = append(kept, s)
		}
	}
	cfg.Servers = kept
	return dropped
}

func (p Paths) excluded(s netip.AddrPort) bool {
	for _, e := range p.Exclude {
		if e.Port() != s.Port() {
			continue
		}
		ea, sa := e.Addr().Unmap(), s.Addr().Unmap()
		if ea == sa || (ea.IsUnspecified() && sa.IsLoopback()) || (ea.IsLoopback() && sa.IsUnspecified()) {
			return true
		}
	}
	return false
}

func hasStub(s []netip.AddrPort) bool {
	for _, a := range s {
		if IsResolvedStub(a) {
			return true
		}
	}
	return false
}

func joinAddrs(a []netip.AddrPort) string {
	s := make([]string, len(a))
	for i, x := range a {
		s[i] = x.String()
	}
	return strings.Join(s, ", ")
}
