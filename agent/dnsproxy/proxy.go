// Package dnsproxy is onramp's local DNS proxy: it answers the names of the
// mesh from the NDS name table, caches everything else and forwards misses
// to the host's upstream servers.
//
// The query path is a chain of handlers (see chain.go):
//
//	client -> UDP batch loop / TCP -> Mesh -> Cache -> Forwarder -> upstreams
//
// The UDP side reads and writes batches with recvmmsg/sendmmsg and answers
// mesh names and cache hits without allocating; only the host itself may
// query, whatever address the proxy listens on.
package dnsproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/onramp-mesh/onramp/agent/nametable"
	"github.com/onramp-mesh/onramp/agent/resolvconf"
	"golang.org/x/sys/unix"
)

// Proxy is the DNS proxy. Create it with New, run it with Serve, install
// name tables with SetTable.
type Proxy struct {
	cfg   Config
	log   hclog.Logger
	mesh  *Mesh
	cache *Cache
	fwd   *Forwarder
	chain Next

	upstreams []netip.AddrPort
	stubs     map[string][]netip.AddrPort

	metrics struct {
		requests, refused, formerr counter
	}

	mu        sync.Mutex
	pconns    []net.PacketConn
	listeners []net.Listener
	tcpConns  map[net.Conn]struct{}
	closed    bool
	done      chan struct{}
}

// New checks cfg and builds a proxy; nothing is opened until Serve. log is
// used as given (name it for the component, e.g. log.Named("dns")).
func New(cfg Config, log hclog.Logger) (*Proxy, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	cfg.setDefaults()
	if cfg.UDPSize < 512 || cfg.UDPSize > 65535 {
		return nil, fmt.Errorf("dnsproxy: UDP size %d is out of range; use 512 to 65535 (1232 avoids fragmentation)", cfg.UDPSize)
	}
	ups, err := parseServers(cfg.Upstreams, "dnsproxy: upstreams")
	if err != nil {
		return nil, err
	}
	stubs := make(map[string][]netip.AddrPort, len(cfg.Stubs))
	for z, list := range cfg.Stubs {
		if len(list) == 0 {
			return nil, fmt.Errorf("dnsproxy: stub zone %q has no servers; give at least one IP[:port]", z)
		}
		s, err := parseServers(list, "dnsproxy: stub zone "+z)
		if err != nil {
			return nil, err
		}
		if _, err := zoneWire(z); err != nil {
			return nil, err
		}
		stubs[z] = s
	}
	p := &Proxy{
		cfg:       cfg,
		log:       log,
		mesh:      NewMesh(),
		cache:     NewCache(cfg.Cache),
		fwd:       NewForwarder(cfg.Timeout, log.Named("forward")),
		upstreams: ups,
		stubs:     stubs,
		tcpConns:  make(map[net.Conn]struct{}),
		done:      make(chan struct{}),
	}
	p.chain = p.buildChain()
	return p, nil
}

// SetTable installs the mesh name table atomically; queries keep being
// answered during the swap. Until the first table (or after a nil one),
// mesh names are forwarded like any other. t is typically the agent's
// tablestate.Tables, installed once: it swaps indexes behind AppendResponse
// itself, so the proxy keeps no copy of its own.
func (p *Proxy) SetTable(t Table) {
	if ix, ok := t.(*nametable.Index); ok && ix == nil {
		t = nil
	}
	p.mesh.SetTable(t)
}

// Requests returns how many queries the proxy has received.
func (p *Proxy) Requests() uint64 { return p.metrics.requests.load() }

// Listen opens a UDP socket and a TCP listener on each address, with
// SO_REUSEPORT set so that more sockets can share an address.
func Listen(addrs []string) ([]net.PacketConn, []net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
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
	for _, a := range addrs {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("dnsproxy: listen address %q is not IP:port (e.g. 127.0.0.1:15053 or [::1]:15053)", a)
		}
		network := "udp4"
		if ap.Addr().Is6() {
			network = "udp6"
		}
		pc, err := lc.ListenPacket(context.Background(), network, ap.String())
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("dnsproxy: listen on udp %s: %w (is another DNS server using it?)", a, err)
		}
		pcs = append(pcs, pc)
		// An ephemeral UDP port gets the same TCP port.
		tcpAddr := netip.AddrPortFrom(ap.Addr(), pc.LocalAddr().(*net.UDPAddr).AddrPort().Port())
		l, err := lc.Listen(context.Background(), "tcp"+network[3:], tcpAddr.String())
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("dnsproxy: listen on tcp %s: %w (is another DNS server using it?)", tcpAddr, err)
		}
		ls = append(ls, l)
	}
	return pcs, ls, nil
}

// Serve answers queries until ctx is done or Close is called, then returns
// nil. It opens cfg.Listen unless sockets were given in cfg.PacketConns and
// cfg.Listeners, follows the host's upstreams when none are configured, and
// returns an error when the sockets cannot be opened.
func (p *Proxy) Serve(ctx context.Context) error {
	pcs, ls := p.cfg.PacketConns, p.cfg.Listeners
	if len(pcs) == 0 && len(ls) == 0 {
		var err error
		pcs, ls, err = Listen(p.cfg.Listen)
		if err != nil {
			return err
		}
	}
	return p.ServeConns(ctx, pcs, ls)
}

// ServeConns is Serve on sockets opened by the caller. The proxy owns them
// from then on and closes them when it stops.
func (p *Proxy) ServeConns(ctx context.Context, pcs []net.PacketConn, ls []net.Listener) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return errors.New("dnsproxy: proxy was closed; create a new one with New")
	}
	p.pconns = append(p.pconns, pcs...)
	p.listeners = append(p.listeners, ls...)
	p.mu.Unlock()

	var self []netip.AddrPort
	for _, c := range pcs {
		if a, ok := c.LocalAddr().(*net.UDPAddr); ok {
			self = append(self, a.AddrPort())
		}
	}
	for _, l := range ls {
		if a, ok := l.Addr().(*net.TCPAddr); ok {
			self = append(self, a.AddrPort())
		}
	}
	for i, s := range self {
		self[i] = netip.AddrPortFrom(s.Addr().Unmap(), s.Port())
	}
	if err := localAddrs.refresh(); err != nil {
		p.log.Warn("cannot read interface addresses; only loopback clients are served", "error", err)
	}
	p.fwd.setSelf(self)
	if err := p.fwd.SetUpstreams(p.upstreams, p.stubs); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	go func() {
		select {
		case <-ctx.Done():
		case <-p.done:
		}
		p.Close()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-p.done:
				return
			case <-t.C:
				if err := localAddrs.refresh(); err != nil {
					p.log.Warn("cannot refresh interface addresses", "error", err)
				}
			}
		}
	}()
	if len(p.cfg.Upstreams) == 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.followHost(ctx, self)
		}()
	}
	for _, c := range pcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.serveUDP(c)
		}()
	}
	for _, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.serveTCP(l)
		}()
	}
	p.log.Info("DNS proxy serving", "udp", len(pcs), "tcp", len(ls), "upstreams", len(p.upstreams), "stubs", len(p.stubs))
	wg.Wait()
	return nil
}

// followHost uses the host's upstream servers and follows their changes.
func (p *Proxy) followHost(ctx context.Context, self []netip.AddrPort) {
	paths := p.cfg.HostFiles
	paths.Exclude = append(append(append([]netip.AddrPort{}, resolvconf.DefaultExclude...), paths.Exclude...), self...)
	err := paths.WatchHost(ctx, func(path string, cfg *resolvconf.Config, err error) {
		if err != nil {
			p.log.Warn("cannot read the host's upstream servers; keeping the previous ones", "error", err)
			return
		}
		if err := p.fwd.SetUpstreams(cfg.Servers, p.stubs); err != nil {
			p.log.Warn("cannot use the host's upstream servers", "file", path, "error", err)
			return
		}
		p.log.Info("using the host's upstream servers", "file", path, "servers", fmt.Sprint(cfg.Servers))
	})
	if err != nil {
		p.log.Error("cannot follow the host's upstream servers", "error", err)
	}
}

// Close stops serving: sockets close, the read loops end and Serve
// returns. Queries in flight to upstreams are abandoned.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	for _, c := range p.pconns {
		c.Close()
	}
	for _, l := range p.listeners {
		l.Close()
	}
	for c := range p.tcpConns {
		c.Close()
	}
	p.mu.Unlock()
	p.fwd.Close()
	return nil
}
