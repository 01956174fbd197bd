package daemon

import (
	"fmt"
	"net"

	"github.com/coreos/go-systemd/v22/activation"
	"golang.org/x/sys/unix"

	"github.com/onramp-mesh/onramp/agent/config"
	"github.com/onramp-mesh/onramp/agent/dnsproxy"
)

// activatedSockets returns the DNS sockets systemd handed over (onramp.socket),
// or none when the agent was not socket-activated. With them, systemd holds
// the listeners across restarts, so the host's queries wait instead of failing.
func activatedSockets() ([]net.PacketConn, []net.Listener, error) {
	var pcs []net.PacketConn
	var ls []net.Listener
	for _, f := range activation.Files(true) {
		typ, err := unix.GetsockoptInt(int(f.Fd()), unix.SOL_SOCKET, unix.SO_TYPE)
		if err != nil {
			return nil, nil, fmt.Errorf("socket activation: fd %d (%s): %w", f.Fd(), f.Name(), err)
		}
		switch typ {
		case unix.SOCK_DGRAM:
			pc, err := net.FilePacketConn(f)
			if err != nil {
				return nil, nil, fmt.Errorf("socket activation: %s: %w", f.Name(), err)
			}
			pcs = append(pcs, pc)
		case unix.SOCK_STREAM:
			l, err := net.FileListener(f)
			if err != nil {
				return nil, nil, fmt.Errorf("socket activation: %s: %w", f.Name(), err)
			}
			ls = append(ls, l)
		default:
			return nil, nil, fmt.Errorf("socket activation: %s is neither a datagram nor a stream socket", f.Name())
		}
		f.Close()
	}
	return pcs, ls, nil
}

// proxyConfig maps the agent's configuration onto the DNS proxy's.
func proxyConfig(c config.Config) (dnsproxy.Config, error) {
	pcs, ls, err := activatedSockets()
	if err != nil {
		return dnsproxy.Config{}, err
	}
	return dnsproxy.Config{
		Listen:      c.DNS.Listen,
		PacketConns: pcs,
		Listeners:   ls,
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
	}, nil
}
