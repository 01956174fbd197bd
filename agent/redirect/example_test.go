package redirect_test

import (
	"fmt"
	"net/netip"

	"github.com/onramp-mesh/onramp/agent/redirect"
)

// debianHost is a Debian 12 host as shipped: systemd-resolved runs and
// /etc/resolv.conf points at its stub.
type debianHost struct{}

func (debianHost) ResolvedOnBus() (bool, error) { return true, nil }
func (debianHost) Nftables() error              { return nil }
func (debianHost) Nameservers() ([]netip.AddrPort, error) {
	return []netip.AddrPort{netip.MustParseAddrPort("127.0.0.53:53")}, nil
}

// The detector picks the backend from what the host runs; the plan says
// what the host's resolver should send to the proxy.
func ExampleDetect() {
	c, err := redirect.Detect(redirect.Auto, debianHost{})
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Backend)
	p := redirect.Plan{
		Listen:  []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:15053"), netip.MustParseAddrPort("[::1]:15053")},
		Domains: []string{"Cluster.Local.", "api.example.com", "cluster.local"},
	}.Normalize()
	fmt.Println(p.Domains, fmt.Sprintf("%#x", p.Mark))
	// Output:
	// resolved
	// [api.example.com cluster.local] 0x15053
}
