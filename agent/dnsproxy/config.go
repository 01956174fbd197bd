package dnsproxy

import (
	"fmt"

	"github.com/onramp-mesh/onramp/agent/resolvconf"
	"net"
	"net/netip"
	"time"
)

// Config configures a Proxy. Zero values take the documented defaults.
type Config struct {
	// Listen are the addresses to serve UDP and TCP on.
	// Default 127.0.0.1:15053 and [::1]:15053.
	Listen []string
	// PacketConns and Listeners, when set, are served instead of opening
	// Listen (e.g. sockets handed in by systemd socket activation).
	PacketConns []net.PacketConn
	Listeners   []net.Listener
	// Upstreams are the servers for names outside the mesh, as IP or
	// IP:port. Empty means the host's own upstreams from resolv.conf (the
	// real ones behind systemd-resolved), followed as the file changes.
	Upstreams []string
	// HostFiles says where the host's upstreams are read from when
	// Upstreams is empty; the zero value means /etc/resolv.conf and
	// systemd-resolved's /run/systemd/resolve/resolv.conf.
	HostFiles resolvconf.Paths
	// Stubs forward whole zones to their own servers, e.g.
	// "internal." -> {"10.0.0.2"}.
	Stubs map[string][]string
	// Timeout bounds one try against one upstream. Default 2s.
	Timeout time.Duration
	// MaxInFlight bounds the queries forwarded at once; beyond it queries
	// are answered SERVFAIL and counted as rejected. Default 1024.
	MaxInFlight int
	// SocketMark, when not zero, is set as SO_MARK on every upstream
	// socket so that a firewall redirect can exempt the proxy's own
	// queries (needs CAP_NET_ADMIN; without, queries go unmarked).
	SocketMark uint32
	// Cache bounds and tunes the answer cache.
	Cache CacheConfig
	// UDPSize is the largest UDP response sent, whatever the client
	// advertises (at least 512). Default 1232.
	UDPSize int
}

func (c *Config) setDefaults() {
	if len(c.Listen) == 0 && len(c.PacketConns) == 0 && len(c.Listeners) == 0 {
		c.Listen = []string{"127.0.0.1:15053", "[::1]:15053"}
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Second
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 1024
	}
	if c.UDPSize == 0 {
		c.UDPSize = 1232
	}
	c.Cache.setDefaults()
}

func parseServers(list []string, what string) ([]netip.AddrPort, error) {
	out := make([]netip.AddrPort, 0, len(list))
	for _, s := range list {
		ap, err := resolvconf.ParseServer(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, ap)
	}
	return out, nil
}
