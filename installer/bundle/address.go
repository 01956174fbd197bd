package bundle

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// NetInterface describes one network interface for choosing the VM's IP.
type NetInterface struct {
	Name     string
	Up       bool
	Loopback bool
	// Virtual is true for software interfaces (no backing device), such as
	// veth, bridges and tunnels.
	Virtual bool
	// Bridged is true for a bridge (docker0, br-*) or a port enslaved to one
	// (a container's veth): addresses there are not reachable from the mesh.
	Bridged bool
	Addrs   []netip.Addr
}

// AddressSource is how Load discovers the network; every field is optional
// and defaults to the running host.
type AddressSource struct {
	// Resolve looks a host name up (default: the system resolver, 3 s timeout).
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	// RouteSource returns the local address the kernel would use to reach dst
	// (default: a UDP "connect", which sends no packet).
	RouteSource func(dst netip.AddrPort) (netip.Addr, error)
	// Interfaces lists the host's interfaces (default: net.Interfaces plus
	// /sys/class/net).
	Interfaces func() ([]NetInterface, error)
}

func (s AddressSource) withDefaults() AddressSource {
	if s.Resolve == nil {
		s.Resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if s.RouteSource == nil {
		s.RouteSource = udpRouteSource
	}
	if s.Interfaces == nil {
		s.Interfaces = SystemInterfaces
	}
	return s
}

// udpRouteSource learns the source address of the route to dst by connecting
// a UDP socket, which selects a route without sending anything.
func udpRouteSource(dst netip.AddrPort) (netip.Addr, error) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(dst))
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

// SystemInterfaces lists this host's interfaces, classifying each with
// /sys/class/net (virtual devices, bridges and bridge ports).
func SystemInterfaces() ([]NetInterface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := make([]NetInterface, 0, len(ifs))
	for _, ifc := range ifs {
		ni := NetInterface{
			Name:     ifc.Name,
			Up:       ifc.Flags&net.FlagUp != 0,
			Loopback: ifc.Flags&net.FlagLoopback != 0,
		}
		sys := filepath.Join("/sys/class/net", ifc.Name)
		if target, err := filepath.EvalSymlinks(sys); err == nil {
			ni.Virtual = strings.Contains(target, "/devices/virtual/")
		}
		if _, err := os.Stat(filepath.Join(sys, "bridge")); err == nil {
			ni.Bridged = true
		}
		if _, err := os.Stat(filepath.Join(sys, "brport")); err == nil {
			ni.Bridged = true
		}
		if ifc.Name == "docker0" || strings.HasPrefix(ifc.Name, "br-") {
			ni.Bridged = true
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
					ni.Addrs = append(ni.Addrs, ip.Unmap())
				}
			}
		}
		out = append(out, ni)
	}
	return out, nil
}

// ChooseIP picks the VM's address for the mesh. An explicit address (from
// ISTIO_SVC_IP) wins. Otherwise it is the source address of the route to the
// control plane at discovery (host:port; the host is looked up in hosts, then
// with the resolver), unless that address is loopback, link-local or on a
// bridge (docker0, br-*, a bridged veth; istio#28269). Failing that, it is
// the first global unicast address (IPv4 first) of an up, non-virtual,
// non-bridged interface, then of any up non-bridged interface. The returned
// notes say how the choice was made.
func ChooseIP(ctx context.Context, explicit string, discovery string, hosts []HostEntry, src AddressSource) (netip.Addr, []string, error) {
	if explicit != "" {
		ip, err := netip.ParseAddr(explicit)
		if err != nil || ip.Zone() != "" {
			return netip.Addr{}, nil, &Error{File: FileClusterEnv, Key: "ISTIO_SVC_IP", Msg: fmt.Sprintf("%q is not an IP address", explicit)}
		}
		return ip.Unmap(), []string{"ISTIO_SVC_IP set in cluster.env"}, nil
	}
	src = src.withDefaults()
	var notes []string
	ifaces, ifErr := src.Interfaces()
	if ifErr != nil {
		notes = append(notes, "cannot list interfaces: "+ifErr.Error())
	}
	owner := func(ip netip.Addr) *NetInterface {
		for i := range ifaces {
			for _, a := range ifaces[i].Addrs {
				if a == ip {
					return &ifaces[i]
				}
			}
		}
		return nil
	}

	var lastResort netip.Addr
	host, portStr, err := net.SplitHostPort(discovery)
	if err == nil {
		port := uint16(15012)
		if p, perr := parsePort(portStr); perr == nil {
			port = p
		}
		var dsts []netip.Addr
		if ip, perr := netip.ParseAddr(host); perr == nil {
			dsts = []netip.Addr{ip}
		} else if dsts = lookupHosts(hosts, host); len(dsts) == 0 {
			dsts, err = src.Resolve(ctx, host)
			if err != nil {
				notes = append(notes, fmt.Sprintf("cannot resolve %s: %v", host, err))
			}
		}
		for _, dst := range dsts {
			ip, rerr := src.RouteSource(netip.AddrPortFrom(dst.Unmap(), port))
			if rerr != nil {
				notes = append(notes, fmt.Sprintf("no route to %s: %v", dst, rerr))
				continue
			}
			ip = ip.Unmap()
			switch ifc := owner(ip); {
			case !ip.IsValid() || ip.IsUnspecified():
				continue
			case ip.IsLoopback():
				if !lastResort.IsValid() {
					lastResort = ip
				}
				notes = append(notes, fmt.Sprintf("route to %s leaves from loopback %s; looking for a routable address", dst, ip))
			case ip.IsLinkLocalUnicast():
				notes = append(notes, fmt.Sprintf("route to %s leaves from link-local %s; skipped", dst, ip))
			case ifc != nil && ifc.Bridged:
				notes = append(notes, fmt.Sprintf("route to %s leaves from %s on bridge %s; skipped", dst, ip, ifc.Name))
			default:
				return ip, append(notes, fmt.Sprintf("source address of the route to the control plane %s", dst)), nil
			}
		}
	}
	for pass := 0; pass < 2; pass++ {
		for _, ifc := range ifaces {
			if !ifc.Up || ifc.Loopback || ifc.Bridged || (pass == 0 && ifc.Virtual) {
				continue
			}
			for _, want4 := range []bool{true, false} {
				for _, a := range ifc.Addrs {
					if a.Is4() == want4 && a.IsGlobalUnicast() {
						return a, append(notes, fmt.Sprintf("first global unicast address of interface %s", ifc.Name)), nil
					}
				}
			}
		}
	}
	if lastResort.IsValid() {
		return lastResort, append(notes, "no routable interface address; using loopback"), nil
	}
	return netip.Addr{}, notes, &Error{File: FileClusterEnv, Key: "ISTIO_SVC_IP",
		Msg: fmt.Sprintf("cannot choose this VM's IP (no route to %s and no global unicast address on an up interface: %s); set ISTIO_SVC_IP", discovery, strings.Join(notes, "; "))}
}

func parsePort(s string) (uint16, error) {
	var p uint64
	if s == "" || len(s) > 5 {
		return 0, fmt.Errorf("bad port %q", s)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("bad port %q", s)
		}
		p = p*10 + uint64(c-'0')
	}
	if p == 0 || p > 65535 {
		return 0, fmt.Errorf("port %q out of range", s)
	}
	return uint16(p), nil
}
