package dnsproxy

import (
	"net"
	"net/netip"
	"sync/atomic"
)

// addrSet is the set of the host's own interface addresses, replaced as a
// whole on refresh so that lookups take no lock.
type addrSet struct {
	p atomic.Pointer[map[netip.Addr]struct{}]
}

// localAddrs holds the host's interface addresses, refreshed by every
// running proxy.
var localAddrs addrSet

func (s *addrSet) has(a netip.Addr) bool {
	m := s.p.Load()
	if m == nil {
		return false
	}
	_, ok := (*m)[a.Unmap()]
	return ok
}

// refresh reads the interface addresses again; on error the old set stays.
func (s *addrSet) refresh() error {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return err
	}
	m := make(map[netip.Addr]struct{}, len(addrs))
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				m[ip.Unmap().WithZone("")] = struct{}{}
			}
		}
	}
	s.p.Store(&m)
	return nil
}

// allowed reports whether a query from src may be answered: only the host
// itself may use the proxy, whatever address it listens on.
func allowed(src netip.Addr) bool {
	if src.Is4() {
		if src.As4()[0] == 127 {
			return true
		}
	} else if src.Is4In6() {
		if src.Unmap().As4()[0] == 127 {
			return true
		}
	} else if src == netip.IPv6Loopback() {
		return true
	}
	return localAddrs.has(src.WithZone(""))
}
