package dnsproxy

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/onramp-mesh/onramp/agent/resolvconf"
)

// Config configures a Proxy. It must be complete: New refuses a value out
// of range (zero included) instead of putting a default in its place.
//
// The defaults a user sees (listen addresses, timeout, UDP size, cache
// bounds, serve-stale window) have one owner, agent/config, which fills
// every field from onramp.yaml and its built-in defaults. The bounds that
// are no user's setting are this package's: DefaultMaxInFlight,
// MaxFlightWaiters and StaleTTL.
type Config struct {
	// Listen are the addresses Serve opens, UDP and TCP on each, e.g.
	// 127.0.0.1:15053 and [::1]:15053. Not needed with ServeConns.
	Listen []string
	// PacketConns and Listeners, when set, are served by Serve instead of
	// opening Listen (e.g. sockets handed in by systemd socket activation).
	PacketConns []net.PacketConn
	Listeners   []net.Listener
	// Upstreams are the servers for names outside the mesh, as IP or
	// IP:port. Empty means the host's own upstreams, taken from Host.
	Upstreams []string
	// Host is the watcher of the host's resolver whose upstreams the proxy
	// follows when Upstreams is empty. Its owner runs it and may share it
	// (the name table follows its search list). Nil means the proxy runs a
	// watcher of the system's files of its own.
	Host *resolvconf.Watcher
	// Stubs forward whole zones to their own servers, e.g.
	// "internal." -> {"10.0.0.2"}.
	Stubs map[string][]string
	// Timeout bounds one try against one upstream.
	Timeout time.Duration
	// MaxInFlight bounds the queries forwarded at once; beyond it queries
	// are answered SERVFAIL and counted as rejected. DefaultMaxInFlight
	// suits a host.
	MaxInFlight int
	// SocketMark, when not zero, is set as SO_MARK on every upstream
	// socket so that a firewall redirect can exempt the proxy's own
	// queries (needs CAP_NET_ADMIN; without, queries go unmarked).
	SocketMark uint32
	// Cache bounds and tunes the answer cache.
	Cache CacheConfig
	// UDPSize is the largest UDP response sent, whatever the client
	// advertises: 512 to 65535 (1232 avoids fragmentation).
	UDPSize int
}

// DefaultMaxInFlight is a bound on queries in flight that a single host
// does not reach in normal use (CoreDNS's forward suggests 1000 for its
// max_concurrent).
const DefaultMaxInFlight = 1024

func (c *Config) validate() error {
	if c.UDPSize < 512 || c.UDPSize > 65535 {
		return fmt.Errorf("dnsproxy: UDP size %d is out of range; use 512 to 65535 (1232 avoids fragmentation)", c.UDPSize)
	}
	if err := (ForwarderConfig{Timeout: c.Timeout, MaxInFlight: c.MaxInFlight}).validate(); err != nil {
		return err
	}
	return c.Cache.validate()
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
