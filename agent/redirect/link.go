package redirect

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// DefaultLink is the link onramp creates for resolved to route the mesh's
// domains through.
const DefaultLink = "onramp0"

// DefaultLinkAddr is the address onramp gives its link. systemd-resolved
// only makes a unicast DNS scope on a link that is up and has an address of
// global scope (not link-local, not host); 198.18.0.0/15 is reserved for
// benchmarking (RFC 2544) and never routed, and a /32 adds no route beyond
// the local one.
var DefaultLinkAddr = netip.MustParsePrefix("198.18.0.53/32")

// ownLink is onramp's link as it was found or made.
type ownLink struct {
	name    string
	index   int
	kind    string // dummy or veth
	created bool
}

// ensureLink finds the link called name, or creates it: a dummy interface
// where the kernel has them (real VMs), else a veth pair whose peer is
// name+"p" (kernels without dummy, as in some containers). Either way it
// is up, with addr.
func ensureLink(name string, addr netip.Prefix) (ownLink, error) {
	l, err := netlink.LinkByName(name)
	created := false
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return ownLink{}, fmt.Errorf("redirect: link %s: %w", name, err)
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name = name
		if err := netlink.LinkAdd(&netlink.Dummy{LinkAttrs: attrs}); err != nil {
			veth := &netlink.Veth{LinkAttrs: attrs, PeerName: name + "p"}
			if verr := netlink.LinkAdd(veth); verr != nil {
				return ownLink{}, fmt.Errorf("redirect: create link %s: dummy: %v; veth: %w (needs CAP_NET_ADMIN)", name, err, verr)
			}
		}
		created = true
		if l, err = netlink.LinkByName(name); err != nil {
			return ownLink{}, fmt.Errorf("redirect: link %s: %w", name, err)
		}
	}
	ol := ownLink{name: name, index: l.Attrs().Index, kind: l.Type(), created: created}
	if ol.kind == "veth" {
		if peer, err := netlink.LinkByName(name + "p"); err == nil {
			if err := netlink.LinkSetUp(peer); err != nil {
				return ol, fmt.Errorf("redirect: link %s: up: %w", peer.Attrs().Name, err)
			}
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return ol, fmt.Errorf("redirect: link %s: up: %w", name, err)
	}
	if addr.IsValid() {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), addr.Addr().BitLen())}}
		if err := netlink.AddrReplace(l, a); err != nil {
			return ol, fmt.Errorf("redirect: link %s: address %s: %w", name, addr, err)
		}
	}
	return ol, nil
}

// deleteLink deletes the link called name (and so its veth peer) if it
// exists.
func deleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("redirect: link %s: %w", name, err)
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("redirect: delete link %s: %w", name, err)
	}
	return nil
}

// linkIndex returns the index of the link called name, or 0.
func linkIndex(name string) int {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return 0
	}
	return l.Attrs().Index
}
