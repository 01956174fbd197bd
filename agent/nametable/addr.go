package nametable

import (
	"fmt"
	"net/netip"
)

// parseAddr sorts out one address of an entry: it returns the address to
// serve, or why the address is dropped.
//
// Istio's agent (pkg/dns/client, through netutil.ParseIPsSplitToV4V6) drops
// only what netip.ParseAddr refuses and answers every other address: as A
// when it is IPv4, else as AAAA. onramp follows it, except where a client
// would be handed an address it cannot use:
//
//   - not an address ("not-an-ip", "1.2.3", "01.2.3.4"): dropped, as by
//     Istio's agent.
//   - a CIDR ("10.0.0.0/24", even "10.0.0.1/32"): dropped, as by Istio's
//     agent. istiod itself turns a single-address CIDR into its address and
//     leaves wider ones out of the table, so one that arrives names no host.
//   - zoned ("fe80::1%eth0"): dropped. Istio's agent answers AAAA fe80::1,
//     but the zone cannot travel in a DNS answer, and a link-local address
//     without its zone cannot be connected to: the record could only fail.
//   - unspecified ("0.0.0.0", "::"): dropped. Istio's agent answers it, but
//     connecting to it reaches this host itself, not the service.
//
// One form is served differently from Istio's agent:
//
//   - IPv4-mapped ("::ffff:10.105.0.1") is answered as A 10.105.0.1, and not
//     as AAAA ::ffff:10.105.0.1 as Istio's agent does. The address names an
//     IPv4 host (RFC 4291 §2.5.5.2) and the packets are IPv4 whichever record
//     the client got. As an A record it reaches every client; as AAAA only
//     programs with dual-stack sockets reach it, while IPv4-only programs,
//     A-only lookups, IPV6_V6ONLY sockets and hosts without IPv6 fail, and
//     the reverse (PTR) name would be the IPv4 one anyway. Whoever wrote
//     the mapped form meant the IPv4 address.
func parseAddr(s string) (netip.Addr, string) {
	a, err := netip.ParseAddr(s)
	switch {
	case err == nil:
	case isPrefix(s):
		return a, fmt.Sprintf("%q is a CIDR range, not an address; a DNS answer carries single addresses", s)
	default:
		return a, fmt.Sprintf("%q is not an IP address", s)
	}
	switch {
	case a.Zone() != "":
		return a, fmt.Sprintf("%q has a zone (%%%s); a DNS answer cannot carry it, and the address is unusable without it", s, a.Zone())
	case a.Unmap().IsUnspecified():
		return a, fmt.Sprintf("%q is the unspecified address; connecting to it reaches this host, not the service", s)
	}
	return a.Unmap(), ""
}

func isPrefix(s string) bool {
	_, err := netip.ParsePrefix(s)
	return err == nil
}
