package daemon

import (
	"context"
	"fmt"
	"net"
	"slices"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/onramp-mesh/onramp/agent/config"
	"github.com/onramp-mesh/onramp/agent/dnsproxy"
	"github.com/onramp-mesh/onramp/agent/redirect"
	"github.com/onramp-mesh/onramp/agent/resolvconf"
	"github.com/onramp-mesh/onramp/agent/status"
)

// dnsServer is the DNS proxy with its sockets, opened when it is built (or
// passed by systemd) so that a port in use is an error before anything
// starts.
type dnsServer struct {
	proxy     *dnsproxy.Proxy
	pcs       []net.PacketConn
	ls        []net.Listener
	activated bool
}

// newDNSServer opens the DNS sockets and builds the proxy answering mesh
// names from table.
//
// host is the watcher whose upstreams the proxy follows; nil when
// dns.upstreams is set.
//
// mark says the host's redirect exempts the proxy's upstream queries by
// their socket mark (nftables): they carry redirect.DefaultMark.
func newDNSServer(cfg config.Config, activated func() ([]net.PacketConn, []net.Listener, error), host *resolvconf.Watcher, table dnsproxy.Table, mark bool, log hclog.Logger) (*dnsServer, error) {
	d := &dnsServer{}
	var err error
	if activated != nil {
		if d.pcs, d.ls, err = activated(); err != nil {
			return nil, err
		}
	}
	if d.activated = len(d.pcs)+len(d.ls) > 0; d.activated {
		if got := d.Addrs(); !slices.Equal(got, cfg.DNS.Listen) {
			log.Warn("socket activation overrides dns.listen; serving the sockets systemd passed", "dns.listen", fmt.Sprint(cfg.DNS.Listen), "serving", fmt.Sprint(got))
		}
	} else if d.pcs, d.ls, err = dnsproxy.Listen(cfg.DNS.Listen); err != nil {
		return nil, err
	}
	pcfg := proxyConfig(cfg)
	pcfg.PacketConns, pcfg.Listeners, pcfg.Host = d.pcs, d.ls, host
	if mark {
		pcfg.SocketMark = redirect.DefaultMark
	}
	if d.proxy, err = dnsproxy.New(pcfg, log); err != nil {
		d.Close()
		return nil, err
	}
	d.proxy.SetTable(table)
	return d, nil
}

// Serve answers queries until ctx ends.
func (d *dnsServer) Serve(ctx context.Context) error { return d.proxy.Serve(ctx) }

// Close stops the proxy and closes its sockets, also when it never served.
func (d *dnsServer) Close() {
	if d.proxy != nil {
		d.proxy.Close()
	}
	for _, c := range d.pcs {
		c.Close()
	}
	for _, l := range d.ls {
		l.Close()
	}
}

// Addrs are the addresses served, UDP and TCP, each once, in socket order.
func (d *dnsServer) Addrs() []string {
	var out []string
	add := func(a net.Addr) {
		if s := a.String(); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, c := range d.pcs {
		add(c.LocalAddr())
	}
	for _, l := range d.ls {
		add(l.Addr())
	}
	return out
}

// Status is what `onramp status` shows about DNS.
func (d *dnsServer) Status() status.DNS {
	st := status.DNS{Listen: d.Addrs(), SocketActivated: d.activated}
	for _, u := range d.proxy.Upstreams() {
		st.Upstreams = append(st.Upstreams, u.String())
	}
	return st
}

// activatedSockets returns the DNS sockets systemd handed over (onramp.socket),
// or none when the agent was not socket-activated. With them, systemd holds
// the listeners across restarts, so the host's queries wait instead of failing.
func activatedSockets() ([]net.PacketConn, []net.Listener, error) {
	var pcs []net.PacketConn
	var ls []net.Listener
	closeAll := func() {
		for _, c := range pcs {
			c.Close()
		}
		for _, l := range ls {
			l.Close()
		}
	}
	for _, f := range activation.Files(true) {
		typ, err := unix.GetsockoptInt(int(f.Fd()), unix.SOL_SOCKET, unix.SO_TYPE)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("socket activation: fd %d (%s): %w", f.Fd(), f.Name(), err)
		}
		switch typ {
		case unix.SOCK_DGRAM:
			pc, err := net.FilePacketConn(f)
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("socket activation: %s: %w", f.Name(), err)
			}
			pcs = append(pcs, pc)
		case unix.SOCK_STREAM:
			l, err := net.FileListener(f)
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("socket activation: %s: %w", f.Name(), err)
			}
			ls = append(ls, l)
		default:
			closeAll()
			return nil, nil, fmt.Errorf("socket activation: %s is neither a datagram nor a stream socket", f.Name())
		}
		f.Close()
	}
	return pcs, ls, nil
}

// proxyConfig maps the agent's configuration onto the DNS proxy's; agent/config
// owns every default the user sees.
func proxyConfig(c config.Config) dnsproxy.Config {
	return dnsproxy.Config{
		Listen:      c.DNS.Listen,
		Upstreams:   c.DNS.Upstreams,
		Stubs:       c.DNS.Stubs,
		Timeout:     c.DNS.Timeout.D(),
		MaxInFlight: dnsproxy.DefaultMaxInFlight,
		UDPSize:     c.DNS.UDPSize,
		Cache: dnsproxy.CacheConfig{
			MaxEntries:  c.DNS.Cache.MaxEntries,
			MaxBytes:    c.DNS.Cache.MaxBytes,
			MinTTL:      c.DNS.Cache.MinTTL.D(),
			MaxTTL:      c.DNS.Cache.MaxTTL.D(),
			StaleWindow: c.DNS.Cache.StaleWindow.D(),
		},
	}
}
