// Package redirect points the host's resolver at onramp's DNS proxy, so that
// applications that use the system resolver (glibc, /etc/resolv.conf,
// getent, Python, Java, Go) get mesh answers, and takes it back out again.
//
// A Backend applies a Plan, reports what it put in place (State), and
// removes everything it added. There is one backend per way a Linux host
// does DNS, chosen by Detect from what the host runs:
//
//	systemd-resolved manages DNS (its bus name is owned and /etc/resolv.conf
//	points at its stub)  ─► resolved: onramp's own link, configured over
//	                         D-Bus with the mesh's routing-only domains
//	otherwise, nftables works over netlink ─► nftables: one inet table of
//	                         onramp's that redirects port-53 traffic to the
//	                         resolv.conf nameservers to the proxy
//	neither               ─► none (said loudly; clients must ask the proxy)
//
// Before a backend changes anything it records what it is about to change
// under StateDir/redirect, so that RemoveRecorded (what `onramp redirect
// remove` runs, also with the agent dead, after a crash or a reboot)
// restores the host exactly.
package redirect

import (
	"context"
	"net/netip"
	"slices"
	"strings"

	"github.com/onramp-mesh/onramp/agent/status"
)

// Backend names, as config's redirect.mode spells them.
const (
	Auto     = "auto"
	Resolved = "resolved"
	Nftables = "nftables"
	None     = "none"
)

// DefaultMark is the socket mark (SO_MARK) of the proxy's own upstream
// sockets; the nftables backend lets packets with it pass unredirected.
const DefaultMark uint32 = 0x15053

// Plan is what the host's resolver should do.
type Plan struct {
	// Listen are the proxy's addresses (127.0.0.1:15053, [::1]:15053).
	Listen []netip.AddrPort
	// Domains are the mesh's DNS zones, routed to the proxy (resolved).
	// See nametable.Index.Domains; the configured stub zones belong here too.
	Domains []string
	// CaptureAll sends every query of the host to the proxy, not only the
	// mesh's domains (resolved: "~."; nftables: all port-53 traffic).
	CaptureAll bool
	// Mark is the socket mark of the proxy's own upstream queries, which
	// the nftables backend exempts. Zero means DefaultMark.
	Mark uint32
}

// Normalize returns the plan with its domains lowercased, without trailing
// dots, deduplicated and sorted, and the default mark filled in.
func (p Plan) Normalize() Plan {
	out := p
	out.Listen = slices.Clone(p.Listen)
	out.Domains = NormalizeDomains(p.Domains)
	if out.Mark == 0 {
		out.Mark = DefaultMark
	}
	return out
}

// NormalizeDomains lowercases, strips leading "~" and trailing dots, drops
// empty names, deduplicates and sorts.
func NormalizeDomains(in []string) []string {
	out := make([]string, 0, len(in))
	for _, d := range in {
		d = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(d), "~"), "."))
		if d != "" {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Equal reports whether two plans ask for the same configuration.
func (p Plan) Equal(o Plan) bool {
	p, o = p.Normalize(), o.Normalize()
	return slices.Equal(p.Listen, o.Listen) && slices.Equal(p.Domains, o.Domains) && p.CaptureAll == o.CaptureAll && p.Mark == o.Mark
}

// Backend is one way of pointing the host's resolver at the proxy. Apply is
// idempotent: applying the plan in place changes nothing, applying a new
// one replaces the old. Remove takes out everything the backend added; it
// is safe to call when nothing is in place.
type Backend interface {
	Name() string
	Apply(ctx context.Context, p Plan) error
	State() State
	Remove(ctx context.Context) error
}

// Watcher is implemented by backends that keep their configuration in
// place while the agent runs: nftables restores its table after a ruleset
// flush, resolved re-applies when resolved restarts and follows resolved's
// real upstream servers. Run returns when ctx ends.
type Watcher interface {
	Run(ctx context.Context) error
}

// State is what a backend put in place, as `onramp redirect status`,
// `onramp status` and `onramp doctor` show it and as the record under
// StateDir/redirect keeps it. It is defined in agent/status, whose report
// carries it; fields that do not apply to a backend are empty.
type State = status.Redirect

func addrStrings(a []netip.AddrPort) []string {
	out := make([]string, len(a))
	for i, x := range a {
		out[i] = x.String()
	}
	return out
}
