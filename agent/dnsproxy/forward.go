package dnsproxy

import (
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

	"github.com/onramp-mesh/onramp/agent/resolvconf"
)

// upstreamUDPSize is the EDNS payload size the forwarder advertises.
const upstreamUDPSize = 1232

// socketsPerUpstream is how many long-lived UDP sockets the forwarder keeps
// per upstream server; queries are spread over them and told apart by ID.
const socketsPerUpstream = 4

// Forwarder is the last link of the chain: it sends queries to upstream
// servers over pooled UDP sockets, retries over TCP when an answer is
// truncated, fails over across servers and answers SERVFAIL when all of
// them fail. Zones with stub servers go to those servers instead.
// It never blocks the caller: every query is answered from a goroutine.
type Forwarder struct {
	log     hclog.Logger
	timeout time.Duration

	groups atomic.Pointer[forwardGroups]

	mu   sync.Mutex
	pool map[netip.AddrPort]*upstream
	self []netip.AddrPort

	answered, servfail, failures, spoofed counter
	latency                               histogram

	closed atomic.Bool
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

// NewForwarder returns a forwarder with no servers; timeout bounds one try
// against one server.
func NewForwarder(timeout time.Duration, log hclog.Logger) *Forwarder {
	f := &Forwarder{log: log, timeout: timeout, pool: make(map[netip.AddrPort]*upstream)}
	f.groups.Store(&forwardGroups{def: &serverGroup{}})
	return f
}

// ParseServer parses an upstream given as IP or IP:port; the port defaults
// to 53.
func ParseServer(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("dnsproxy: server %q is not IP or IP:port (e.g. 10.0.0.2 or [fd00::2]:53)", s)
	}
	return netip.AddrPortFrom(a.Unmap(), 53), nil
}

// setSelf records the proxy's own listen addresses, which are never used
// as upstreams.
func (f *Forwarder) setSelf(self []netip.AddrPort) {
	f.mu.Lock()
	f.self = self
	f.mu.Unlock()
}

// isSelf reports whether ap would send queries back to the proxy (or to
// the systemd-resolved stub, which may route them back to it).
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
// period for the queries in flight.
func (f *Forwarder) SetUpstreams(servers []netip.AddrPort, stubs map[string][]netip.AddrPort) error {
	zones := make([]stubZone, 0, len(stubs))
	for z := range stubs {
		wire, err := zoneWire(z)
		if err != nil {
			return err
		}
		zones = append(zones, stubZone{zone: wire})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.pool
	f.pool = make(map[netip.AddrPort]*upstream, len(old))
	for k, v := range old {
		f.pool[k] = v
	}
	ng := &forwardGroups{def: f.groupLocked(servers, "default")}
	i := 0
	for z, s := range stubs {
		zones[i].group = f.groupLocked(s, z)
		i++
	}
	sort.Slice(zones, func(a, b int) bool { return len(zones[a].zone) > len(zones[b].zone) })
	ng.stubs = zones
	used := map[*upstream]bool{}
	for _, u := range ng.def.servers {
		used[u] = true
	}
	for _, z := range ng.stubs {
		for _, u := range z.group.servers {
			used[u] = true
		}
	}
	for k, u := range f.pool {
		if !used[u] {
			delete(f.pool, k)
			time.AfterFunc(2*f.timeout+time.Second, u.close)
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

// ServeDNS forwards r; it returns at once and answers from a goroutine.
func (f *Forwarder) ServeDNS(r *Request, _ Next) {
	d := r.Detach()
	go f.exchange(d)
}

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

var errAllFailed = errors.New("every upstream failed")

func (f *Forwarder) exchange(d *Request) {
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
	f.closed.Store(true)
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
		return nil, fmt.Errorf("upstream %s was removed", u.addr)
	}
	if s := u.socks[i]; s != nil && !s.dead.Load() {
		return s, nil
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(u.addr))
	if err != nil {
		return nil, fmt.Errorf("open UDP socket to %s: %w", u.addr, err)
	}
	s := &upSocket{conn: c, pending: make(map[uint16]*pendingQuery), f: u.f}
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
	pending map[uint16]*pendingQuery
}

type pendingQuery struct {
	qname         []byte
	qtype, qclass uint16
	qend          int
	ch            chan []byte
}

var errRefused = errors.New("port unreachable")

func (s *upSocket) readLoop() {
	buf := make([]byte, 65535)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				// The server's port is closed: fail the queries waiting
				// on this socket now instead of at their timeout.
				s.mu.Lock()
				for id, p := range s.pending {
					delete(s.pending, id)
					p.ch <- nil
				}
				s.mu.Unlock()
				continue
			}
			s.dead.Store(true)
			s.mu.Lock()
			for id, p := range s.pending {
				delete(s.pending, id)
				p.ch <- nil
			}
			s.mu.Unlock()
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

func (u *upstream) exchangeUDP(q []byte, d *Request) ([]byte, error) {
	s, err := u.socket()
	if err != nil {
		return nil, err
	}
	p := &pendingQuery{qname: d.QName, qtype: d.QType, qclass: d.QClass, qend: d.QEnd, ch: make(chan []byte, 1)}
	var id uint16
	s.mu.Lock()
	for {
		id = uint16(rand.Uint32())
		if s.pending[id] == nil {
			break
		}
	}
	s.pending[id] = p
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.pending[id] == p {
			delete(s.pending, id)
		}
		s.mu.Unlock()
	}()
	qq := append([]byte(nil), q...)
	binary.BigEndian.PutUint16(qq, id)
	if _, err := s.conn.Write(qq); err != nil {
		return nil, fmt.Errorf("send to %s: %w", u.addr, err)
	}
	t := time.NewTimer(u.f.timeout)
	defer t.Stop()
	select {
	case resp := <-p.ch:
		if resp == nil {
			return nil, fmt.Errorf("%s: %w", u.addr, errRefused)
		}
		return resp, nil
	case <-t.C:
		return nil, fmt.Errorf("%s: no answer within %s", u.addr, u.f.timeout)
	}
}

// exchangeTCP asks the server again over TCP, for answers too large for UDP.
func (u *upstream) exchangeTCP(q []byte, d *Request) ([]byte, error) {
	deadline := time.Now().Add(u.f.timeout)
	c, err := net.DialTimeout("tcp", u.addr.String(), u.f.timeout)
	if err != nil {
		return nil, fmt.Errorf("TCP to %s: %w", u.addr, err)
	}
	defer c.Close()
	c.SetDeadline(deadline)
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
