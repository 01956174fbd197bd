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
//
// Forwarding is bounded: at most Config.MaxInFlight queries are forwarded
// at once and MaxFlightWaiters clients wait on one coalesced query; beyond
// either, a query is answered SERVFAIL at once (see README.md, metrics).
package dnsproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
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
	// now reads the clock for the queries the servers read; a variable
	// for tests.
	now func() time.Time

	// The default upstreams come from one source: SetUpstreams if it was
	// given servers, else Config.Upstreams, else the host's.
	upMu     sync.Mutex
	static   []netip.AddrPort
	host     []netip.AddrPort
	override []netip.AddrPort
	stubs    map[string][]netip.AddrPort

	metrics struct {
		requests, refused, formerr counter
	}

	mu        sync.Mutex
	pconns    []net.PacketConn
	listeners []net.Listener
	tcpConns  map[*tcpConn]struct{}
	closed    bool
	done      chan struct{}
	// serving is closed once ServeConns has set up (for tests).
	serving chan struct{}
}

// New checks cfg and builds a proxy; nothing is opened until Serve. log is
// used as given (name it for the component, e.g. log.Named("dns")).
func New(cfg Config, log hclog.Logger) (*Proxy, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if err := cfg.validate(); err != nil {
		return nil, err
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
	cache, err := NewCache(cfg.Cache)
	if err != nil {
		return nil, err
	}
	fwd, err := NewForwarder(ForwarderConfig{Timeout: cfg.Timeout, MaxInFlight: cfg.MaxInFlight, SocketMark: cfg.SocketMark}, log.Named("forward"))
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		cfg:      cfg,
		log:      log,
		mesh:     NewMesh(),
		cache:    cache,
		fwd:      fwd,
		now:      time.Now,
		static:   ups,
		stubs:    stubs,
		tcpConns: make(map[*tcpConn]struct{}),
		done:     make(chan struct{}),
		serving:  make(chan struct{}),
	}
	p.chain = p.buildChain()
	p.upMu.Lock()
	p.applyUpstreamsLocked()
	p.upMu.Unlock()
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

// SetUpstreams replaces the default upstream servers at run time, e.g.
// with systemd-resolved's real per-link servers when the host resolver is
// redirected to the proxy. They stay in force, whatever Config.Upstreams
// or the host's files say, until SetUpstreams is called with none, which
// returns to those. Stub zones keep their servers. A server that would
// loop back to the proxy (its own listen addresses, resolved's stubs
// 127.0.0.53 and 127.0.0.54) is dropped with a warning.
func (p *Proxy) SetUpstreams(servers []netip.AddrPort) {
	p.upMu.Lock()
	defer p.upMu.Unlock()
	p.override = slices.Clone(servers)
	p.applyUpstreamsLocked()
}

// Upstreams returns the default upstream servers in use: after the loop
// guard, in order of preference.
func (p *Proxy) Upstreams() []netip.AddrPort {
	g := p.fwd.groups.Load().def
	out := make([]netip.AddrPort, len(g.servers))
	for i, u := range g.servers {
		out[i] = u.addr
	}
	return out
}

// applyUpstreamsLocked hands the upstreams of the current source to the
// forwarder; p.upMu held.
func (p *Proxy) applyUpstreamsLocked() {
	servers := p.host
	switch {
	case len(p.override) > 0:
		servers = p.override
	case len(p.static) > 0:
		servers = p.static
	}
	// The stub zones were checked by New: this cannot fail.
	if err := p.fwd.SetUpstreams(servers, p.stubs); err != nil {
		p.log.Error("cannot use the upstream servers", "servers", fmt.Sprint(servers), "error", err)
	}
}

// followsHost reports whether the default upstreams come from the host.
func (p *Proxy) followsHost() bool { return len(p.cfg.Upstreams) == 0 }

// hostChanged takes the host's new upstreams.
func (p *Proxy) hostChanged(h resolvconf.Host) {
	if h.UpstreamErr != nil {
		p.log.Warn("cannot read the host's upstream servers; keeping the previous ones", "error", h.UpstreamErr)
		return
	}
	p.upMu.Lock()
	p.host = h.Upstreams
	p.applyUpstreamsLocked()
	overridden := len(p.override) > 0
	p.upMu.Unlock()
	p.log.Info("host's upstream servers", "file", h.UpstreamsFrom, "servers", fmt.Sprint(h.Upstreams), "in_use", !overridden)
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
		pc, l, err := listenPair(lc, ap)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		pcs, ls = append(pcs, pc), append(ls, l)
	}
	return pcs, ls, nil
}

// ephemeralTries is how often listenPair picks another ephemeral port when
// the one the kernel gave for UDP is taken for TCP.
const ephemeralTries = 16

// listenPair opens UDP and TCP on ap. Port 0 takes an ephemeral port, the
// same for both: the UDP one, again until TCP can have it too.
func listenPair(lc net.ListenConfig, ap netip.AddrPort) (net.PacketConn, net.Listener, error) {
	network := "udp4"
	if ap.Addr().Is6() {
		network = "udp6"
	}
	for try := 1; ; try++ {
		pc, err := lc.ListenPacket(context.Background(), network, ap.String())
		if err != nil {
			return nil, nil, fmt.Errorf("dnsproxy: listen on udp %s: %w (is another DNS server using it?)", ap, err)
		}
		tcpAddr := netip.AddrPortFrom(ap.Addr(), pc.LocalAddr().(*net.UDPAddr).AddrPort().Port())
		l, err := lc.Listen(context.Background(), "tcp"+network[3:], tcpAddr.String())
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		if ap.Port() != 0 || !errors.Is(err, syscall.EADDRINUSE) || try == ephemeralTries {
			return nil, nil, fmt.Errorf("dnsproxy: listen on tcp %s: %w (is another DNS server using it?)", tcpAddr, err)
		}
	}
}

// Serve answers queries until ctx is done or Close is called, then returns
// nil. It serves cfg.PacketConns and cfg.Listeners when given, else opens
// cfg.Listen, and returns an error when the sockets cannot be opened.
func (p *Proxy) Serve(ctx context.Context) error {
	pcs, ls := p.cfg.PacketConns, p.cfg.Listeners
	if len(pcs) == 0 && len(ls) == 0 {
		if len(p.cfg.Listen) == 0 {
			return errors.New("dnsproxy: nothing to serve: give listen addresses or sockets")
		}
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
	if err := p.adopt(pcs, ls); err != nil {
		return err
	}
	if err := localAddrs.refresh(); err != nil {
		p.log.Warn("cannot read interface addresses; only loopback clients are served", "error", err)
	}
	p.fwd.setSelf(listenAddrs(pcs, ls))
	p.upMu.Lock()
	p.applyUpstreamsLocked()
	p.upMu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	run := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	// Whichever comes first, the caller's cancel or Close, stops it all.
	run(func() {
		select {
		case <-ctx.Done():
		case <-p.done:
		}
		p.Close()
		cancel()
	})
	run(func() { p.refreshLocalAddrs(ctx) })
	if p.followsHost() {
		run(func() { p.followHost(ctx) })
	}
	for _, c := range pcs {
		run(func() { p.serveUDP(c) })
	}
	for _, l := range ls {
		run(func() { p.serveTCP(l, run) })
	}
	p.log.Info("DNS proxy serving", "udp", len(pcs), "tcp", len(ls), "upstreams", fmt.Sprint(p.Upstreams()), "stubs", len(p.stubs))
	close(p.serving)
	wg.Wait()
	return nil
}

// adopt takes ownership of the sockets, unless the proxy was closed.
func (p *Proxy) adopt(pcs []net.PacketConn, ls []net.Listener) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("dnsproxy: proxy was closed; create a new one with New")
	}
	p.pconns = append(p.pconns, pcs...)
	p.listeners = append(p.listeners, ls...)
	return nil
}

// listenAddrs returns the local addresses of the sockets.
func listenAddrs(pcs []net.PacketConn, ls []net.Listener) []netip.AddrPort {
	var self []netip.AddrPort
	add := func(ap netip.AddrPort) { self = append(self, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())) }
	for _, c := range pcs {
		if a, ok := c.LocalAddr().(*net.UDPAddr); ok {
			add(a.AddrPort())
		}
	}
	for _, l := range ls {
		if a, ok := l.Addr().(*net.TCPAddr); ok {
			add(a.AddrPort())
		}
	}
	return self
}

// refreshLocalAddrs re-reads the host's interface addresses, which may
// query the proxy, every 30 s until ctx is done.
func (p *Proxy) refreshLocalAddrs(ctx context.Context) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := localAddrs.refresh(); err != nil {
				p.log.Warn("cannot refresh interface addresses", "error", err)
			}
		}
	}
}

// followHost takes the host's upstreams from cfg.Host, or from a watcher
// of the system's files of its own, until ctx is done.
func (p *Proxy) followHost(ctx context.Context) {
	w := p.cfg.Host
	if w == nil {
		w = &resolvconf.Watcher{}
		defer w.Subscribe(p.hostChanged)()
		if err := w.Run(ctx); err != nil {
			p.log.Error("cannot follow the host's upstream servers", "error", err)
		}
		return
	}
	defer w.Subscribe(p.hostChanged)()
	<-ctx.Done()
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
		c.close()
	}
	p.mu.Unlock()
	p.fwd.Close()
	return nil
}
