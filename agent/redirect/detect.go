package redirect

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/godbus/dbus/v5"
	"github.com/google/nftables"

	"github.com/onramp-mesh/onramp/agent/resolvconf"
)

// Host is what Detect asks of the machine. SystemHost asks the real one;
// tests give fake host states.
type Host interface {
	// ResolvedOnBus reports whether org.freedesktop.resolve1 has an owner
	// on the system bus (systemd-resolved is running).
	ResolvedOnBus() (bool, error)
	// Nameservers are the nameserver lines of /etc/resolv.conf.
	Nameservers() ([]netip.AddrPort, error)
	// Nftables says why nftables cannot be programmed over netlink, or nil.
	Nftables() error
}

// Choice is the backend Detect picked and why.
type Choice struct {
	Backend string
	Reason  string
}

// Detect picks the backend for mode (auto, resolved, nftables or none)
// from what host runs:
//
//   - resolved when systemd-resolved owns its bus name and /etc/resolv.conf
//     points at its stub (127.0.0.53/54): applications ask resolved, so
//     resolved must route the mesh's domains;
//   - otherwise nftables, when a netlink nftables socket works;
//   - otherwise none, with the reason (Detect never fails for auto).
//
// An explicit mode the host cannot do is an error that says why.
func Detect(mode string, host Host) (Choice, error) {
	onBus, busErr := host.ResolvedOnBus()
	servers, rcErr := host.Nameservers()
	stub := false
	for _, s := range servers {
		if resolvconf.IsResolvedStub(s) {
			stub = true
		}
	}
	resolvedWhy := func() string {
		switch {
		case busErr != nil:
			return "systemd-resolved is not reachable on the system bus (" + busErr.Error() + ")"
		case !onBus:
			return "systemd-resolved is not running (org.freedesktop.resolve1 has no owner)"
		case rcErr != nil:
			return "cannot read /etc/resolv.conf (" + rcErr.Error() + ")"
		case !stub:
			return "/etc/resolv.conf does not point at systemd-resolved's stub 127.0.0.53"
		}
		return ""
	}
	switch mode {
	case None:
		return Choice{None, "redirect.mode is none"}, nil
	case Resolved:
		if busErr != nil || !onBus {
			return Choice{}, fmt.Errorf("redirect: mode resolved: %s; start systemd-resolved or set redirect.mode to auto", resolvedWhy())
		}
		r := "redirect.mode is resolved"
		if why := resolvedWhy(); why != "" {
			r += "; note: " + why + ", so applications may not ask resolved"
		}
		return Choice{Resolved, r}, nil
	case Nftables:
		if err := host.Nftables(); err != nil {
			return Choice{}, fmt.Errorf("redirect: mode nftables: %v; run the agent with CAP_NET_ADMIN or set redirect.mode to auto", err)
		}
		return Choice{Nftables, "redirect.mode is nftables"}, nil
	case Auto, "":
	default:
		return Choice{}, fmt.Errorf("redirect: unknown mode %q; use auto, resolved, nftables or none", mode)
	}
	why := resolvedWhy()
	if why == "" {
		return Choice{Resolved, "systemd-resolved manages DNS: /etc/resolv.conf points at its stub"}, nil
	}
	nftErr := host.Nftables()
	if nftErr == nil {
		return Choice{Nftables, why + "; nftables works"}, nil
	}
	return Choice{None, fmt.Sprintf("no way to redirect the host's resolver: %s, and nftables does not work (%v); "+
		"point clients at the proxy (nameserver 127.0.0.1 with port 15053 is not possible in resolv.conf: use a local resolver's forwarding), "+
		"or give the agent CAP_NET_ADMIN", why, nftErr)}, nil
}

// SystemHost is the real machine: the system bus, /etc/resolv.conf (or
// ResolvConf) and the kernel's nftables.
type SystemHost struct {
	ResolvConf string
}

// ResolvedOnBus asks the system bus whether resolved owns its name.
func (h SystemHost) ResolvedOnBus() (bool, error) {
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		return false, err
	}
	defer conn.Close()
	var has bool
	if err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, resolvedBusName).Store(&has); err != nil {
		return false, err
	}
	return has, nil
}

// Nameservers reads the nameserver lines of the resolver file.
func (h SystemHost) Nameservers() ([]netip.AddrPort, error) {
	path := h.ResolvConf
	if path == "" {
		path = resolvconf.ResolvConfPath
	}
	c, err := resolvconf.ParseFile(path)
	if err != nil {
		return nil, err
	}
	return c.Servers, nil
}

// Nftables lists the tables over netlink: it fails without CAP_NET_ADMIN
// or without nf_tables in the kernel.
func (h SystemHost) Nftables() error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	if _, err := c.ListTables(); err != nil {
		if errors.Is(err, errPerm) || strings.Contains(err.Error(), "operation not permitted") {
			return fmt.Errorf("nftables: %w (needs CAP_NET_ADMIN)", err)
		}
		return fmt.Errorf("nftables: %w", err)
	}
	return nil
}
