package nametable

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// MaxDomains bounds the list Domains returns. systemd-resolved keeps at
// most 256 domains on a link; the rest of that budget is left for the
// configured stub zones.
const MaxDomains = 200

// Domains returns the DNS zones whose names this index answers, for the
// host's resolver to route to the proxy (systemd-resolved's routing-only
// domains): the cluster domain, each host of a non-Kubernetes entry
// (ServiceEntry; a wildcard gives its suffix), the Kubernetes short forms
// "name.ns" and "name.ns.svc", and the reverse zones of the mesh's
// addresses (/24 for IPv4, /64 for IPv6). A zone covers its subdomains.
//
// The list is lowercase, without trailing dots, sorted, with no zone
// inside another, and at most MaxDomains long: when there are more, the
// longest names are replaced by their parents (api.example.com by
// example.com, a /24 reverse zone by its /16) until it fits. Names of one
// label ("name" in the proxy's own namespace) cannot be routed and are not
// listed. A nil index gives the cluster domain alone.
func (ix *Index) Domains() []string {
	cd := DefaultClusterDomain
	if ix != nil && ix.hc.ClusterDomain != "" {
		cd = ix.hc.ClusterDomain
	}
	cd = strings.ToLower(strings.TrimSuffix(cd, "."))
	if ix == nil {
		return []string{cd}
	}
	var names, rev []string
	for k := range ix.names {
		name := strings.TrimSuffix(wireToText(k), ".")
		if strings.Count(name, ".") == 0 || underZone(name, cd) {
			continue
		}
		names = append(names, strings.ToLower(name))
	}
	for k := range ix.wild {
		names = append(names, strings.ToLower(strings.TrimSuffix(wireToText(k), ".")))
	}
	// Withheld names too (dataPlane none): the proxy forwards them upstream
	// as the host's resolver would, and counts their lookups for doctor.
	for _, w := range ix.withheld {
		name := strings.TrimPrefix(strings.TrimSuffix(w.Host, "."), "*.")
		if strings.Count(name, ".") > 0 && !underZone(name, cd) {
			names = append(names, name)
		}
	}
	for k := range ix.ptr {
		rev = append(rev, reverseZone(netip.AddrFrom16(k).Unmap()))
	}
	budget := MaxDomains - 1
	// Reverse zones and names share the budget in proportion, each at least half of what is left.
	revBudget := max(budget/4, budget-len(compactZones(names)))
	rev = fitZones(rev, revBudget, 3)
	names = fitZones(names, budget-len(rev), 1)
	return compactZones(append(append(names, rev...), cd))
}

// reverseZone is the zone of a's PTR name one level above the address: the
// /24 of an IPv4 address, the /64 of an IPv6 one.
func reverseZone(a netip.Addr) string {
	if a.Is4() {
		b := a.As4()
		return fmt.Sprintf("%d.%d.%d.in-addr.arpa", b[2], b[1], b[0])
	}
	b := a.As16()
	var sb strings.Builder
	for i := 7; i >= 0; i-- {
		fmt.Fprintf(&sb, "%x.%x.", b[i]&0xf, b[i]>>4)
	}
	sb.WriteString("ip6.arpa")
	return sb.String()
}

// underZone reports whether name is zone or below it.
func underZone(name, zone string) bool {
	return name == zone || strings.HasSuffix(name, "."+zone)
}

// compactZones sorts, deduplicates and drops zones inside another.
func compactZones(z []string) []string {
	set := make(map[string]bool, len(z))
	for _, s := range z {
		set[s] = true
	}
	out := make([]string, 0, len(set))
	for s := range set {
		inside := false
		for p := s; !inside; {
			i := strings.IndexByte(p, '.')
			if i < 0 {
				break
			}
			p = p[i+1:]
			inside = set[p]
		}
		if !inside {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// fitZones merges zones into a common parent until at most n are left:
// each round takes the most specific parent of two zones or more (the one
// that removes the most among equals), never one of fewer than minLabels labels
// (3 keeps reverse zones at least a /8, "10.in-addr.arpa"); what still does
// not fit is cut.
func fitZones(z []string, n, minLabels int) []string {
	z = compactZones(z)
	for len(z) > n {
		count := map[string]int{}
		for _, s := range z {
			for p := s; ; {
				i := strings.IndexByte(p, '.')
				if i < 0 {
					break
				}
				p = p[i+1:]
				if strings.Count(p, ".")+1 < minLabels {
					break
				}
				count[p]++
			}
		}
		best, bestN, bestL := "", 0, -1
		for p, c := range count {
			l := strings.Count(p, ".")
			if c < 2 {
				continue
			}
			if l > bestL || (l == bestL && (c > bestN || (c == bestN && p < best))) {
				best, bestN, bestL = p, c, l
			}
		}
		if best == "" {
			// No two zones share a parent: cut the longest names to their parents.
			most := 0
			for _, s := range z {
				most = max(most, strings.Count(s, ".")+1)
			}
			if most <= minLabels {
				break
			}
			for i, s := range z {
				if strings.Count(s, ".")+1 == most {
					z[i] = s[strings.IndexByte(s, '.')+1:]
				}
			}
			z = compactZones(z)
			continue
		}
		z = compactZones(append(z, best))
	}
	if len(z) > n {
		z = z[:max(n, 0)]
	}
	return z
}
