package dnsproxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/onramp-mesh/onramp/agent/resolvconf"
)

// upstreamUDPSize is the EDNS payload size the forwarder advertises.
const upstreamUDPSize = 1232

// socketsPerUpstream is how many long-lived UDP sockets the forwarder keeps
// per upstream server; queries are spread over them and told apart by ID.
const socketsPerUpstream = 4

// Bounds of one upstream socket: at most maxPendingPerSocket queries wait
// on it, and a free query ID is searched for at most idTries times. Both
// fail the try at once (the next socket or server is tried) instead of
// spinning while holding the socket's lock.
const (
	maxPendingPerSocket = 16384
	idTries             = 32
)

// ForwarderConfig configures a Forwarder; every field must be set.
type ForwarderConfig struct {
	// Timeout bounds one try against one server.
	Timeout time.Duration
	// MaxInFlight bounds the queries being forwarded at once; beyond it a
	// query is answered SERVFAIL at once and counted as rejected (as
	// CoreDNS's forward does with max_concurrent).
	MaxInFlight int
	// SocketMark, when not zero, is set as SO_MARK on every upstream socket
	// (UDP and TCP), so that a firewall redirect can exempt the proxy's own
	// queries. Setting it needs CAP_NET_ADMIN; without, the forwarder logs
	// once and sends unmarked.
	SocketMark uint32
}

func (c ForwarderConfig) validate() error {
	if c.Timeout <= 0 {
		return fmt.Errorf("dnsproxy: upstream timeout %s must be positive (e.g. 2s)", c.Timeout)
	}
	if c.MaxInFlight <= 0 {
		return fmt.Errorf("dnsproxy: at most %d queries in flight: the bound must be positive (e.g. 1024)", c.MaxInFlight)
	}
	return nil
}

// Forwarder is the last link of the chain: it sends queries to upstream
// servers over pooled UDP sockets, retries over TCP when an answer is
// truncated, fails over across servers and answers SERVFAIL when all of
// them fail. Zones with stub servers go to those servers instead.
// It never blocks the caller: every admitted query is answered from a
// goroutine of its own, and at most MaxInFlight of those run at once.
type Forwarder struct {
	log hclog.Logger
	cfg ForwarderConfig

	groups   atomic.Pointer[forwardGroups]
	inFlight atomic.Int64

	mu   sync.Mutex
	pool map[netip.AddrPort]*upstream
	self []netip.AddrPort

	// setMark sets SO_MARK on a new socket of network (udp4, tcp6, ...);
	// a variable for tests.
	setMark  func(network string, fd uintptr, mark uint32) error
	markOnce sync.Once

	answered, servfail, failures, spoofed, rejected counter
	latency                                         histogram
}

type forwardGroups struct {
	def   *serverGroup
	stubs []stubZone // longest zone first
}

type stubZone struct {
	zone  []byte // lowercased wire format
	group *serverGroup
}

type serverGroup struct {
	servers []*upstream
	pref    atomic.Uint32
}

// NewForwarder returns a forwarder with no servers.
func NewForwarder(cfg ForwarderConfig, log hclog.Logger) (*Forwarder, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	f := &Forwarder{log: log, cfg: cfg, pool: make(map[netip.AddrPort]*upstream), setMark: setSocketMark}
	f.groups.Store(&forwardGroups{def: &serverGroup{}})
	return f, nil
}

func setSocketMark(_ string, fd uintptr, mark uint32) error {
	return unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
}

// control marks a new upstream socket. Lacking the privilege to, it logs
// once and lets the socket go unmarked: DNS keeps working, only a redirect
// that exempts by mark would catch these queries.
func (f *Forwarder) control(network, _ string, c syscall.RawConn) error {
	if f.cfg.SocketMark == 0 {
		return nil
	}
	var serr error
	if err := c.Control(func(fd uintptr) { serr = f.setMark(network, fd, f.cfg.SocketMark) }); err != nil {
		return err
	}
	if serr != nil {
		if errors.Is(serr, unix.EPERM) {
			f.markOnce.Do(func() {
				f.log.Warn("cannot mark upstream sockets (needs CAP_NET_ADMIN); sending unmarked", "mark", f.cfg.SocketMark, "error", serr)
			})
			return nil
		}
		return fmt.Errorf("set SO_MARK %#x: %w", f.cfg.SocketMark, serr)
	}
	return nil
}

func (f *Forwarder) dialer() *net.Dialer {
	return &net.Dialer{Timeout: f.cfg.Timeout, Control: f.control}
}

// setSelf records the proxy's own listen addresses, which are never used
// as upstreams.
func (f *Forwarder) setSelf(self []netip.AddrPort) {
	f.mu.Lock()
	f.self = self
	f.mu.Unlock()
}

// isSelf reports whether ap would send queries back to the proxy (or to
// the systemd-resolved stub, which may route them back to it); f.mu held.
func (f *Forwarder) isSelf(ap netip.AddrPort) bool {
	if resolvconf.IsResolvedStub(ap) {
		return true
	}
	for _, s := range f.self {
		if s == ap {
			return true
		}
		if s.Addr().IsUnspecified() && s.Port() == ap.Port() && (ap.Addr().IsLoopback() || localAddrs.has(ap.Addr())) {
			return true
		}
	}
	return false
}

// groupLocked builds a server group, reusing pooled sockets; f.mu held.
func (f *Forwarder) groupLocked(servers []netip.AddrPort, what string) *serverGroup {
	g := &serverGroup{}
	for _, ap := range servers {
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if f.isSelf(ap) {
			f.log.Warn("dropping upstream that points back at the proxy", "upstream", ap.String(), "for", what)
			continue
		}
		u := f.pool[ap]
		if u == nil {
			u = newUpstream(ap, f)
			f.pool[ap] = u
		}
		g.servers = append(g.servers, u)
	}
	return g
}

// SetUpstreams replaces the default servers and the stub zones. Sockets to
// servers that stay are kept; those to dropped servers close after a grace
// period for the queries in flight. Servers that would loop back to the
// proxy are dropped with a warning.
func (f *Forwarder) SetUpstreams(servers []netip.AddrPort, stubs map[string][]netip.AddrPort) error {
	type zoneServers struct {
		name    string
		wire    []byte
		servers []netip.AddrPort
	}
	zs := make([]zoneServers, 0, len(stubs))
	for z, s := range stubs {
		wire, err := zoneWire(z)
		if err != nil {
			return err
		}
		zs = append(zs, zoneServers{z, wire, s})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.pool
	f.pool = make(map[netip.AddrPort]*upstream, len(old))
	for k, v := range old {
		f.pool[k] = v
	}
	ng := &forwardGroups{def: f.groupLocked(servers, "default")}
	used := map[*upstream]bool{}
	for _, u := range ng.def.servers {
		used[u] = true
	}
	for _, z := range zs {
		g := f.groupLocked(z.servers, z.name)
		ng.stubs = append(ng.stubs, stubZone{zone: z.wire, group: g})
		for _, u := range g.servers {
			used[u] = true
		}
	}
	sort.SliceStable(ng.stubs, func(a, b int) bool { return len(ng.stubs[a].zone) > len(ng.stubs[b].zone) })
	for k, u := range f.pool {
		if !used[u] {
			delete(f.pool, k)
			time.AfterFunc(2*f.cfg.Timeout+time.Second, u.close)
		}
	}
	f.groups.Store(ng)
	return nil
}

// zoneWire converts a zone name such as "internal." to lowercased wire
// format.
func zoneWire(z string) ([]byte, error) {
	z = strings.ToLower(dns.Fqdn(z))
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(z, buf, 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("dnsproxy: stub zone %q is not a domain name: %v", z, err)
	}
	return buf[:n], nil
}

// groupFor returns the servers for qname: the longest matching stub zone,
// else the default servers.
func (g *forwardGroups) groupFor(qname []byte) *serverGroup {
	for _, z := range g.stubs {
		if len(z.zone) > len(qname) {
			continue
		}
		for i := 0; i < len(qname); i += int(qname[i]) + 1 {
			if len(qname)-i == len(z.zone) {
				if string(qname[i:]) == string(z.zone) {
					return z.group
				}
				break
			}
			if len(qname)-i < len(z.zone) {
				break
			}
		}
	}
	return g.def
}

// ServeDNS forwards r; it returns at once. Within MaxInFlight the answer
// comes from a goroutine; beyond it r is answered SERVFAIL right away.
func (f *Forwarder) ServeDNS(r *Request, _ Next) {
	if f.inFlight.Add(1) > int64(f.cfg.MaxInFlight) {
		f.inFlight.Add(-1)
		f.rejected.inc()
		r.Reply(appendHeaderOnly(r.Buf[:0], r, rcodeServFail))
		return
	}
	d := r.Detach()
	go f.exchange(d)
}

// InFlight returns how many queries are being forwarded now.
func (f *Forwarder) InFlight() int { return int(f.inFlight.Load()) }

// buildQuery makes the upstream query for d: RD set, CD and DO as asked,
// our own EDNS size, the ID left at zero.
func buildQuery(d *Request) []byte {
	q := make([]byte, 0, headerLen+len(d.QName)+4+optLen)
	q = append(q, 0, 0, byte((flagRD|d.Flags&flagCD)>>8), byte(d.Flags&flagCD), 0, 1, 0, 0, 0, 0, 0, 0)
	q = append(q, d.QName...)
	q = binary.BigEndian.AppendUint16(q, d.QType)
	q = binary.BigEndian.AppendUint16(q, d.QClass)
	return appendOPT(q, upstreamUDPSize, d.DO)
}

// exchange asks the servers for d in turn and answers it; it ends the
// query's slot among those in flight.
func (f *Forwarder) exchange(d *Request) {
	defer f.inFlight.Add(-1)
	g := f.groups.Load().groupFor(d.QName)
	n := len(g.servers)
	if n == 0 {
		f.servfail.inc()
		d.Reply(appendHeaderOnly(nil, d, rcodeServFail))
		return
	}
	q := buildQuery(d)
	start := int(g.pref.Load())
	var last []byte
	tries := max(n, 2)
	for i := range tries {
		idx := (start + i) % n
		u := g.servers[idx]
		t0 := time.Now()
		resp, err := u.exchangeUDP(q, d)
		if err == nil && resp[2]&(flagTC>>8) != 0 {
			resp, err = u.exchangeTCP(q, d)
		}
		if err != nil {
			f.failures.inc()
			f.log.Debug("upstream try failed", "upstream", u.addr.String(), "qtype", d.QType, "error", err)
			if n > 1 {
				g.pref.CompareAndSwap(uint32(idx), uint32((idx+1)%n))
			}
			continue
		}
		f.latency.observe(time.Since(t0))
		if rc := resp[3] & 0xF; rc == rcodeServFail || rc == rcodeRefused {
			f.failures.inc()
			last = resp
			continue
		}
		resp, err = stripOPT(resp, d.QEnd)
		if err != nil {
			f.failures.inc()
			continue
		}
		f.answered.inc()
		d.Reply(adaptResponse(resp[:0], resp, d))
		return
	}
	f.servfail.inc()
	if last != nil {
		if m, err := stripOPT(last, d.QEnd); err == nil {
			d.Reply(adaptResponse(nil, m, d))
			return
		}
	}
	d.Reply(appendHeaderOnly(nil, d, rcodeServFail))
}

// Close closes every upstream socket.
func (f *Forwarder) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.pool {
		u.close()
	}
}

// upstream is one server with its pool of connected UDP sockets.
type upstream struct {
	addr netip.AddrPort
	f    *Forwarder
	next atomic.Uint32

	mu     sync.Mutex
	socks  [socketsPerUpstream]*upSocket
	closed bool
}

func newUpstream(ap netip.AddrPort, f *Forwarder) *upstream { return &upstream{addr: ap, f: f} }

func (u *upstream) close() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.closed = true
	for i, s := range u.socks {
		if s != nil {
			s.conn.Close()
			u.socks[i] = nil
		}
	}
}

// socket returns one of the pooled sockets, opening it on first use or
// after it failed.
func (u *upstream) socket() (*upSocket, error) {
	i := int(u.next.Add(1)) % socketsPerUpstream
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil, fmt.Errorf("upstream %s: %w", u.addr, errRemoved)
	}
	if s := u.socks[i]; s != nil && !s.dead.Load() {
		return s, nil
	}
	c, err := u.f.dialer().Dial("udp", u.addr.String())
	if err != nil {
		return nil, fmt.Errorf("open UDP socket to %s: %w", u.addr, err)
	}
	s := &upSocket{conn: c.(*net.UDPConn), pending: make(map[uint16]*pendingQuery), f: u.f}
	u.socks[i] = s
	go s.readLoop()
	return s, nil
}

// upSocket is a connected UDP socket shared by many queries. The kernel
// only delivers datagrams from the server's address; each answer must also
// match a pending random ID and the question asked.
type upSocket struct {
	conn    *net.UDPConn
	f       *Forwarder
	dead    atomic.Bool
	mu      sync.Mutex
	closed  bool // no more queries are taken; s.mu held
	pending map[uint16]*pendingQuery
}

type pendingQuery struct {
	qname         []byte
	qtype, qclass uint16
	qend          int
	ch            chan []byte
	err           error // why ch got nil; written before the send
}

// Why a try on an upstream socket failed without an answer.
var (
	errPortUnreachable = errors.New("port unreachable (ICMP)")
	errSocketClosed    = errors.New("upstream socket closed")
	errRemoved         = errors.New("upstream was removed")
	errSocketBusy      = errors.New("too many queries pending on the upstream socket")
)

func (s *upSocket) readLoop() {
	defer s.conn.Close()
	buf := make([]byte, 65535)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				// The server's port is closed: fail the queries waiting
				// on this socket now instead of at their timeout.
				s.failPending(errPortUnreachable, false)
				continue
			}
			s.dead.Store(true)
			if errors.Is(err, net.ErrClosed) {
				s.failPending(errSocketClosed, true)
			} else {
				s.failPending(fmt.Errorf("read: %w", err), true)
			}
			return
		}
		if n < headerLen {
			continue
		}
		id := binary.BigEndian.Uint16(buf)
		s.mu.Lock()
		p := s.pending[id]
		if p == nil || buf[2]&0x80 == 0 || !sameQuestion(buf[:n], p.qend, p.qname, p.qtype, p.qclass) {
			s.mu.Unlock()
			s.f.spoofed.inc()
			continue
		}
		delete(s.pending, id)
		s.mu.Unlock()
		p.ch <- append([]byte(nil), buf[:n]...)
	}
}

// failPending answers every query waiting on s with err; with final, s
// takes no more queries.
func (s *upSocket) failPending(err error, final bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = s.closed || final
	for id, p := range s.pending {
		delete(s.pending, id)
		p.err = err
		p.ch <- nil
	}
}

// register gives p a query ID not pending on s. It fails rather than
// search long: the socket is full, or the random IDs it tried were taken.
func (s *upSocket) register(p *pendingQuery) (uint16, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errSocketClosed
	}
	if len(s.pending) >= maxPendingPerSocket {
		return 0, errSocketBusy
	}
	for range idTries {
		id := uint16(rand.Uint32())
		if s.pending[id] == nil {
			s.pending[id] = p
			return id, nil
		}
	}
	return 0, errSocketBusy
}

func (s *upSocket) unregister(id uint16, p *pendingQuery) {
	s.mu.Lock()
	if s.pending[id] == p {
		delete(s.pending, id)
	}
	s.mu.Unlock()
}

func (u *upstream) exchangeUDP(q []byte, d *Request) ([]byte, error) {
	s, err := u.socket()
	if err != nil {
		return nil, err
	}
	p := &pendingQuery{qname: d.QName, qtype: d.QType, qclass: d.QClass, qend: d.QEnd, ch: make(chan []byte, 1)}
	id, err := s.register(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u.addr, err)
	}
	defer s.unregister(id, p)
	qq := append([]byte(nil), q...)
	binary.BigEndian.PutUint16(qq, id)
	if _, err := s.conn.Write(qq); err != nil {
		return nil, fmt.Errorf("send to %s: %w", u.addr, err)
	}
	t := time.NewTimer(u.f.cfg.Timeout)
	defer t.Stop()
	select {
	case resp := <-p.ch:
		if resp == nil {
			return nil, fmt.Errorf("%s: %w", u.addr, p.err)
		}
		return resp, nil
	case <-t.C:
		return nil, fmt.Errorf("%s: no answer within %s", u.addr, u.f.cfg.Timeout)
	}
}

// exchangeTCP asks the server again over TCP, for answers too large for UDP.
func (u *upstream) exchangeTCP(q []byte, d *Request) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), u.f.cfg.Timeout)
	defer cancel()
	c, err := u.f.dialer().DialContext(ctx, "tcp", u.addr.String())
	if err != nil {
		return nil, fmt.Errorf("TCP to %s: %w", u.addr, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	co := &dns.Conn{Conn: c}
	qq := append([]byte(nil), q...)
	id := uint16(rand.Uint32())
	binary.BigEndian.PutUint16(qq, id)
	if _, err := co.Write(qq); err != nil {
		return nil, fmt.Errorf("TCP to %s: %w", u.addr, err)
	}
	buf := make([]byte, 65535)
	n, err := co.Read(buf)
	if err != nil {
		return nil, fmt.Errorf("TCP answer from %s: %w", u.addr, err)
	}
	resp := buf[:n]
	if n < headerLen || binary.BigEndian.Uint16(resp) != id || !sameQuestion(resp, d.QEnd, d.QName, d.QType, d.QClass) {
		return nil, fmt.Errorf("TCP answer from %s does not match the query", u.addr)
	}
	return resp, nil
}
