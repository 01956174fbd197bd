package doctor

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/godbus/dbus/v5"

	"github.com/onramp-mesh/onramp/agent/status"
)

// HostInspector is the Inspector of the command: NftablesInspector for the
// nftables backend, ResolvedInspector for resolved.
func HostInspector(ctx context.Context, rv status.Redirect) (Live, error) {
	switch rv.Backend {
	case "nftables":
		return NftablesInspector(ctx, rv)
	case "resolved":
		return ResolvedInspector(ctx, rv)
	}
	return Live{}, ErrNotInspected
}

// ResolvedInspector asks systemd-resolved over D-Bus what it has on the
// redirect's link: a DNS server and the routing domains (the mesh's, or
// "~." with captureAll). A link reverted behind onramp's back (resolvectl
// revert, a networkd reload) has neither.
func ResolvedInspector(ctx context.Context, rv status.Redirect) (Live, error) {
	if rv.Backend != "resolved" {
		return Live{}, ErrNotInspected
	}
	ifindex := rv.Ifindex
	if ifindex == 0 && rv.Link != "" {
		ifc, err := net.InterfaceByName(rv.Link)
		if err != nil {
			return Live{Present: false, Detail: fmt.Sprintf("the redirect's link %s is gone: %v", rv.Link, err)}, nil
		}
		ifindex = ifc.Index
	}
	if ifindex == 0 {
		return Live{}, fmt.Errorf("%w: the agent names no link", ErrNotInspected)
	}
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		return Live{}, fmt.Errorf("%w: system bus: %v", ErrNotInspected, err)
	}
	defer conn.Close()
	const name = "org.freedesktop.resolve1"
	var path dbus.ObjectPath
	if err := conn.Object(name, "/org/freedesktop/resolve1").CallWithContext(ctx, name+".Manager.GetLink", 0, int32(ifindex)).Store(&path); err != nil {
		return Live{Present: false, Detail: fmt.Sprintf("systemd-resolved does not know the link %s (ifindex %d): %v", rv.Link, ifindex, err)}, nil
	}
	link := conn.Object(name, path)
	var servers []struct {
		Family int32
		Addr   []byte
		Port   uint16
		Name   string
	}
	v, err := link.GetProperty(name + ".Link.DNSEx")
	if err == nil {
		err = v.Store(&servers)
	}
	if err != nil {
		return Live{}, fmt.Errorf("%w: link DNSEx: %v", ErrNotInspected, err)
	}
	var domains []struct {
		Domain  string
		Routing bool
	}
	if v, err = link.GetProperty(name + ".Link.Domains"); err == nil {
		err = v.Store(&domains)
	}
	if err != nil {
		return Live{}, fmt.Errorf("%w: link Domains: %v", ErrNotInspected, err)
	}
	var srv, dom []string
	for _, s := range servers {
		if a, ok := netip.AddrFromSlice(s.Addr); ok {
			port := s.Port
			if port == 0 {
				port = 53
			}
			srv = append(srv, netip.AddrPortFrom(a.Unmap(), port).String())
		}
	}
	for _, d := range domains {
		if d.Routing {
			dom = append(dom, "~"+d.Domain)
		} else {
			dom = append(dom, d.Domain)
		}
	}
	live := Live{Present: true, Detail: fmt.Sprintf("link %s: DNS %v, domains %v", rv.Link, srv, dom)}
	if len(srv) == 0 {
		live.Present, live.Detail = false, fmt.Sprintf("systemd-resolved has no DNS server on the link %s any more", rv.Link)
		return live, nil
	}
	want := rv.Domains
	if rv.CaptureAll {
		want = []string{"."}
	}
	for _, w := range want {
		w = strings.Trim(strings.TrimPrefix(w, "~"), ".")
		found := false
		for _, d := range domains {
			if strings.EqualFold(strings.Trim(d.Domain, "."), w) {
				found = true
			}
		}
		if !found {
			if w == "" {
				w = "."
			}
			live.Present, live.Detail = false, fmt.Sprintf("systemd-resolved does not route %s to the link %s any more (%s)", w, rv.Link, live.Detail)
			return live, nil
		}
	}
	return live, nil
}
