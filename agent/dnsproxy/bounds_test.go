package dnsproxy

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// recorder is a responder that records the rcode of every answer, from
// any goroutine.
type recorder struct {
	mu     sync.Mutex
	rcodes []int
	got    chan struct{}
}

func newRecorder() *recorder { return &recorder{got: make(chan struct{}, 1<<16)} }

func (k *recorder) reply(_ *Request, resp []byte) {
	k.mu.Lock()
	k.rcodes = append(k.rcodes, int(resp[3]&0xF))
	k.mu.Unlock()
	k.got <- struct{}{}
}

func (k *recorder) detach(*Request) responder { return k }

func (k *recorder) count(rcode int) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, rc := range k.rcodes {
		if rc == rcode {
			n++
		}
	}
	return n
}

func (k *recorder) total() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.rcodes)
}

// request parses a query for name as the UDP loop does.
func request(t testing.TB, name string, w responder) *Request {
	r := &Request{w: w, Buf: make([]byte, 0, 512), Now: time.Now()}
	if res, err := parseQuery(packQuery(t, dns.Fqdn(name), dns.TypeA, false), r); res != parseOK {
		t.Fatal(err)
	}
	return r
}

// deadUpstream is a UDP socket on loopback that reads queries and never
// answers; it returns its address and a count of queries read.
func deadUpstream(t testing.TB) (string, func() int) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	n := 0
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String(), func() int { mu.Lock(); defer mu.Unlock(); return n }
}

func TestForwarderRejectsBeyondMaxInFlight(t *testing.T) {
	dead, _ := deadUpstream(t)
	p := newProxy(t, Config{Upstreams: []string{dead}, Timeout: 5 * time.Second, MaxInFlight: 4})
	rec := newRecorder()
	for i := range 10 {
		p.chain(request(t, "n"+itoa(uint32(i))+".example.org", rec))
	}
	// The first four wait on the dead server; the other six were answered
	// SERVFAIL in place, before ServeDNS returned.
	if got := rec.count(rcodeServFail); got != 6 || rec.total() != 6 {
		t.Fatalf("%d answers, %d SERVFAIL; want 6 SERVFAIL at once", rec.total(), got)
	}
	if got := p.fwd.rejected.load(); got != 6 {
		t.Fatalf("rejected = %d, want 6", got)
	}
	if got := p.fwd.InFlight(); got != 4 {
		t.Fatalf("in flight = %d, want 4", got)
	}
	// Closing the forwarder ends the four: their slots are given back.
	p.fwd.Close()
	for range 10 {
		<-rec.got
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.fwd.InFlight() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("in flight = %d after close, want 0", p.fwd.InFlight())
		}
		time.Sleep(time.Millisecond)
	}
	if got := rec.count(rcodeServFail); got != 10 {
		t.Fatalf("%d SERVFAIL, want 10", got)
	}
}

func TestFlightWaitersBounded(t *testing.T) {
	c, _ := NewCache(testCache)
	var lead *Request
	next := func(u *Request) { lead = u.Detach() } // never answers until told
	rec := newRecorder()
	const clients = MaxFlightWaiters + 1 + 40
	for range clients {
		c.ServeDNS(request(t, "popular.example.org", rec), next)
	}
	if got := rec.count(rcodeServFail); got != 40 || rec.total() != 40 {
		t.Fatalf("%d answers, %d SERVFAIL before the upstream answered; want 40 SERVFAIL", rec.total(), got)
	}
	if c.rejected.load() != 40 || c.coalesced.load() != MaxFlightWaiters {
		t.Fatalf("rejected %d coalesced %d; want 40 and %d", c.rejected.load(), c.coalesced.load(), MaxFlightWaiters)
	}
	m := new(dns.Msg)
	m.Unpack(lead.Msg)
	resp, _ := answerA("192.0.2.5", 60)(nil, m).Pack()
	lead.Reply(resp)
	if got := rec.count(rcodeSuccess); got != MaxFlightWaiters+1 {
		t.Fatalf("%d answered NOERROR, want %d (the first and every waiter)", got, MaxFlightWaiters+1)
	}
	if len(c.flights) != 0 {
		t.Fatalf("%d flights left", len(c.flights))
	}
}

// An answer the next link gives at once goes to the query that started
// the flight in place.
func TestFlightAnsweredInPlace(t *testing.T) {
	c, _ := NewCache(testCache)
	sink := &sinkResponder{}
	r := request(t, "refused.example.org", sink)
	c.ServeDNS(r, func(u *Request) { u.Reply(appendHeaderOnly(u.Buf[:0], u, rcodeServFail)) })
	if len(sink.out) < headerLen || sink.out[3]&0xF != rcodeServFail {
		t.Fatalf("answer %x, want SERVFAIL in place", sink.out)
	}
	if len(c.flights) != 0 {
		t.Fatalf("%d flights left", len(c.flights))
	}
}

func TestQueryIDSearchBounded(t *testing.T) {
	s := &upSocket{pending: make(map[uint16]*pendingQuery, 1<<16)}
	for id := range 1 << 16 {
		s.pending[uint16(id)] = &pendingQuery{}
	}
	done := make(chan error)
	go func() { _, err := s.register(&pendingQuery{}); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, errSocketBusy) {
			t.Fatalf("register on a full socket: %v, want errSocketBusy", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("register on a full socket did not return")
	}
	// The search is bounded too, not only the table: with every ID but one
	// taken, it gives up rather than spin.
	s.pending = make(map[uint16]*pendingQuery)
	for id := range maxPendingPerSocket {
		s.pending[uint16(id)] = &pendingQuery{}
	}
	if _, err := s.register(&pendingQuery{}); !errors.Is(err, errSocketBusy) {
		t.Fatalf("register at the pending bound: %v, want errSocketBusy", err)
	}
	delete(s.pending, 0)
	if _, err := s.register(&pendingQuery{}); err != nil && !errors.Is(err, errSocketBusy) {
		t.Fatalf("register below the bound: %v", err)
	}
}

// A query waiting on a socket that is closed learns that, not "port
// unreachable"; a closed port is reported as unreachable.
func TestUpstreamSocketErrors(t *testing.T) {
	dead, _ := deadUpstream(t)
	f, err := NewForwarder(ForwarderConfig{Timeout: 5 * time.Second, MaxInFlight: 8}, nil)
	if err != nil {
		t.Fatal(err)
	}
	u := newUpstream(mustServer(t, dead), f)
	d := request(t, "closed.example.org", &sinkResponder{})
	errc := make(chan error, 1)
	go func() { _, err := u.exchangeUDP(buildQuery(d), d); errc <- err }()
	s := waitPending(t, u)
	u.close()
	err = <-errc
	if !errors.Is(err, errSocketClosed) || errors.Is(err, errPortUnreachable) {
		t.Fatalf("query on a closed socket: %v, want errSocketClosed", err)
	}
	if _, err := s.conn.Write([]byte{0}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("socket still open after its read loop ended: write gave %v", err)
	}
	if _, err := u.exchangeUDP(buildQuery(d), d); !errors.Is(err, errRemoved) {
		t.Fatalf("query to a removed upstream: %v, want errRemoved", err)
	}

	// A port nobody listens on: the kernel's ICMP error fails the query at
	// once.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := pc.LocalAddr().String()
	pc.Close()
	u = newUpstream(mustServer(t, closed), f)
	defer u.close()
	start := time.Now()
	if _, err := u.exchangeUDP(buildQuery(d), d); !errors.Is(err, errPortUnreachable) {
		t.Fatalf("query to a closed port: %v, want errPortUnreachable", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("closed port took %s to fail", el)
	}
}

// waitPending returns the socket of u on which a query is pending.
func waitPending(t *testing.T, u *upstream) *upSocket {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		u.mu.Lock()
		for _, s := range u.socks {
			if s == nil {
				continue
			}
			s.mu.Lock()
			n := len(s.pending)
			s.mu.Unlock()
			if n > 0 {
				u.mu.Unlock()
				return s
			}
		}
		u.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("the query never became pending")
		}
		time.Sleep(time.Millisecond)
	}
}

func mustServer(t testing.TB, s string) netip.AddrPort {
	aps, err := parseServers([]string{s}, "test")
	if err != nil {
		t.Fatal(err)
	}
	return aps[0]
}
