package nametable

import (
	"fmt"
	"net/netip"

	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
)

// Synthetic returns a deterministic name table of n entries with a realistic
// mix, for benchmarks and tests: the first four are Bookinfo's services in
// namespace ns1 (productpage, reviews, ratings, details); of the rest about
// 70% are Kubernetes ClusterIP services spread over 50 namespaces (one in
// five dual-stack), 10% headless services with three pod IPs, 5% per-pod
// names of headless services, 10% ServiceEntries with auto-allocated VIPs
// (240.240.0.0/16 and 2001:2::/48) and 5% ServiceEntries with their own
// addresses, a quarter of which are wildcards. Every address is unique.
func Synthetic(n int) *ndspb.NameTable {
	t := &ndspb.NameTable{Table: make(map[string]*ndspb.NameInfo, n)}
	k8s := func(short, ns string, ips ...string) {
		t.Table[short+"."+ns+".svc.cluster.local"] = &ndspb.NameInfo{
			Ips: ips, Registry: ndspb.RegistryKubernetes, Shortname: short, Namespace: ns,
		}
	}
	ext := func(host string, ips ...string) {
		t.Table[host] = &ndspb.NameInfo{Ips: ips, Registry: ndspb.RegistryExternal}
	}
	bookinfo := []string{"productpage", "reviews", "ratings", "details"}
	for i := 0; i < n; i++ {
		if i < len(bookinfo) {
			k8s(bookinfo[i], "ns1", v4(10, 96, i), v6("fd00:10:96::", i))
			continue
		}
		ns := fmt.Sprintf("ns-%d", i%50)
		switch i % 20 {
		case 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13:
			if i%5 == 0 {
				k8s(fmt.Sprintf("svc-%d", i), ns, v4(10, 96, i), v6("fd00:10:96::", i))
			} else {
				k8s(fmt.Sprintf("svc-%d", i), ns, v4(10, 96, i))
			}
		case 14, 15:
			k8s(fmt.Sprintf("hl-%d", i), ns, v4(10, 128, 3*i), v4(10, 128, 3*i+1), v4(10, 128, 3*i+2))
		case 16:
			k8s(fmt.Sprintf("web-0.hl-%d", i), ns, v4(10, 160, i))
		case 17, 18:
			ext(fmt.Sprintf("api-%d.ext-%d.example.com", i, i%100), v4(240, 240, i), v6("2001:2::", i))
		case 19:
			if i%80 == 19 {
				ext(fmt.Sprintf("*.wild-%d.example.org", i), v4(192, 168, i))
			} else {
				ext(fmt.Sprintf("db-%d.corp.internal", i), v4(172, 16, 2*i), v4(172, 16, 2*i+1))
			}
		}
	}
	return t
}

// v4 returns the address a.b.0.0 + i, spilling into the second octet.
func v4(a, b byte, i int) string {
	base := uint32(a)<<24 | uint32(b)<<16
	x := base + uint32(i)
	return netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)}).String()
}

// v6 returns prefix + i.
func v6(prefix string, i int) string {
	p := netip.MustParseAddr(prefix).As16()
	x := uint32(i)
	p[12], p[13], p[14], p[15] = byte(x>>24), byte(x>>16), byte(x>>8), byte(x)
	return netip.AddrFrom16(p).String()
}
