package dnsproxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

func addrs(s ...string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, x := range s {
		out = append(out, netip.MustParseAddrPort(x))
	}
	return out
}

// The forwarder never uses the proxy's own listen addresses nor
// systemd-resolved's stubs, whichever source the upstreams come from.
func TestLoopGuard(t *testing.T) {
	p, addr := startProxy(t, Config{Upstreams: []string{"127.0.0.53", "192.0.2.1"}})
	if got := p.Upstreams(); !slices.Equal(got, addrs("192.0.2.1:53")) {
		t.Fatalf("configured upstreams after the loop guard: %v", got)
	}
	self := netip.MustParseAddrPort(addr)
	p.SetUpstreams([]netip.AddrPort{self, netip.MustParseAddrPort("127.0.0.54:53"), netip.MustParseAddrPort("[::ffff:192.0.2.2]:53")})
	if got := p.Upstreams(); !slices.Equal(got, addrs("192.0.2.2:53")) {
		t.Fatalf("set upstreams after the loop guard: %v", got)
	}

	// Listening on every address, the same port on loopback is the proxy.
	p, addr = startProxy(t, Config{Listen: []string{"0.0.0.0:0"}, Upstreams: []string{"192.0.2.1"}})
	port := netip.MustParseAddrPort(addr).Port()
	p.SetUpstreams([]netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), netip.MustParseAddrPort("127.0.0.1:53")})
	if got := p.Upstreams(); !slices.Equal(got, addrs("127.0.0.1:53")) {
		t.Fatalf("upstreams of a proxy on 0.0.0.0:%d: %v", port, got)
	}
}

// SetUpstreams takes over from the configured or the host's upstreams
// until it is given none.
func TestSetUpstreams(t *testing.T) {
	a := startUpstream(t, answerA("192.0.2.10", 0))
	b := startUpstream(t, answerA("192.0.2.20", 0))
	p, addr := startProxy(t, Config{Upstreams: []string{a.addr}})
	answer := func() string {
		t.Helper()
		r := ask(t, addr, "which.example.org", dns.TypeA)
		if len(r.Answer) != 1 {
			t.Fatalf("no answer: %v", r)
		}
		return r.Answer[0].(*dns.A).A.String()
	}
	if got := answer(); got != "192.0.2.10" {
		t.Fatalf("configured upstream answered %s", got)
	}
	p.SetUpstreams(addrs(b.addr))
	if got := answer(); got != "192.0.2.20" {
		t.Fatalf("after SetUpstreams: %s", got)
	}
	// The host's upstreams do not displace the ones set.
	p.hostChanged(hostWith(a.addr))
	if got := answer(); got != "192.0.2.20" {
		t.Fatalf("after a host change: %s", got)
	}
	p.SetUpstreams(nil)
	if got := answer(); got != "192.0.2.10" {
		t.Fatalf("after SetUpstreams(nil): %s, want the configured upstream again", got)
	}
}

func TestSocketMark(t *testing.T) {
	up := startUpstream(t, bigAnswer) // truncated over UDP: asked again over TCP
	var mu sync.Mutex
	marked := map[string]uint32{}
	p, addr := startProxy(t, Config{Upstreams: []string{up.addr}, SocketMark: 0x6f6e}, func(p *Proxy) {
		p.fwd.setMark = func(network string, fd uintptr, mark uint32) error {
			mu.Lock()
			marked[network[:3]] = mark
			mu.Unlock()
			return setSocketMark(network, fd, mark)
		}
	})
	if r := ask(t, addr, "marked.example.org", dns.TypeA, withEDNS(4096)); len(r.Answer) != 30 {
		t.Fatalf("answer through marked sockets: %d records", len(r.Answer))
	}
	mu.Lock()
	if marked["udp"] != 0x6f6e || marked["tcp"] != 0x6f6e {
		t.Fatalf("marks set: %v; want 0x6f6e on the UDP and the TCP socket", marked)
	}
	mu.Unlock()
	// The kernel has the mark on the pooled UDP socket (when this process
	// may set marks at all).
	var s *upSocket
	p.fwd.mu.Lock()
	u := p.fwd.pool[mustServer(t, up.addr)]
	p.fwd.mu.Unlock()
	u.mu.Lock()
	for _, x := range u.socks {
		if x != nil {
			s = x
		}
	}
	u.mu.Unlock()
	rc, err := s.conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var mark int
	var gerr error
	rc.Control(func(fd uintptr) { mark, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK) })
	switch {
	case errors.Is(gerr, unix.EPERM) || (gerr == nil && mark == 0):
		t.Logf("this process may not set socket marks (mark %d, %v); checked the calls only", mark, gerr)
	case gerr != nil:
		t.Fatal(gerr)
	case mark != 0x6f6e:
		t.Fatalf("SO_MARK on the upstream socket is %#x, want 0x6f6e", mark)
	}
}

// Without CAP_NET_ADMIN the forwarder says so once and sends unmarked.
func TestSocketMarkWithoutPrivilege(t *testing.T) {
	up := startUpstream(t, bigAnswer)
	var logs bytes.Buffer
	var mu sync.Mutex
	_, addr := startProxy(t, Config{Upstreams: []string{up.addr}, SocketMark: 7}, func(p *Proxy) {
		p.fwd.log = hclog.New(&hclog.LoggerOptions{Output: lockedWriter{&mu, &logs}, Level: hclog.Warn})
		p.fwd.setMark = func(string, uintptr, uint32) error { return unix.EPERM }
	})
	for _, name := range []string{"a.example.org", "b.example.org"} {
		if r := ask(t, addr, name, dns.TypeA, withEDNS(4096)); len(r.Answer) != 30 {
			t.Fatalf("%s unmarked: %d records", name, len(r.Answer))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logs.String(), "cannot mark upstream sockets"); n != 1 {
		t.Fatalf("logged the missing privilege %d times, want once:\n%s", n, logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func TestNewRefusesIncompleteConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no timeout", func(c *Config) { c.Timeout = 0 }, "upstream timeout 0s must be positive"},
		{"no in-flight bound", func(c *Config) { c.MaxInFlight = 0 }, "queries in flight"},
		{"UDP size", func(c *Config) { c.UDPSize = 100 }, "UDP size 100 is out of range"},
		{"cache entries", func(c *Config) { c.Cache.MaxEntries = 0 }, "cache bounds of 0 entries"},
		{"cache bytes", func(c *Config) { c.Cache.MaxBytes = -1 }, "and -1 bytes must be positive"},
		{"max TTL", func(c *Config) { c.Cache.MaxTTL = 0 }, "maximum TTL 0s is below one second"},
		{"min above max TTL", func(c *Config) { c.Cache.MinTTL = 2 * time.Hour }, "minimum TTL 2h0m0s is not between 0 and the maximum TTL 1h0m0s"},
		{"negative stale window", func(c *Config) { c.Cache.StaleWindow = -time.Second }, "stale window -1s is negative"},
		{"bad upstream", func(c *Config) { c.Upstreams = []string{"dns.example"} }, `upstreams: server "dns.example" is not IP`},
		{"empty stub zone", func(c *Config) { c.Stubs = map[string][]string{"corp.": nil} }, `stub zone "corp." has no servers`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := complete(Config{})
			tt.mod(&cfg)
			if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tt.want)
			}
		})
	}
	// The stale window 0 is valid and turns serve-stale off.
	cfg := complete(Config{})
	cfg.Cache.StaleWindow = 0
	if _, err := New(cfg, nil); err != nil {
		t.Fatalf("stale window 0: %v", err)
	}
	p := newProxy(t, Config{})
	if err := p.Serve(context.Background()); err == nil || !strings.Contains(err.Error(), "nothing to serve") {
		t.Fatalf("Serve without addresses or sockets: %v", err)
	}
}

// With the stale window 0, an expired answer is not served when the
// upstream fails.
func TestStaleWindowZeroIsOff(t *testing.T) {
	up := startUpstream(t, answerA("192.0.2.33", 1))
	clk := newClock()
	cache := testCache
	cache.StaleWindow = 0
	_, addr := startProxy(t, Config{Upstreams: []string{up.addr}, Timeout: 200 * time.Millisecond, Cache: cache}, clk.use)
	ask(t, addr, "stale.example.org", dns.TypeA)
	clk.advance(2 * time.Second)
	up.stop()
	if r := ask(t, addr, "stale.example.org", dns.TypeA); r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("with serve-stale off: %v, want SERVFAIL", r)
	}
}

// A TCP client that pipelines queries and never reads its answers holds
// up nobody: the forwarder's goroutines finish, and Serve returns when
// cancelled with the client still connected.
func TestTCPClientThatDoesNotRead(t *testing.T) {
	up := startUpstream(t, bigAnswer)
	p := newProxy(t, Config{Upstreams: []string{up.addr}})
	pcs, ls, err := Listen([]string{"127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { defer close(served); p.ServeConns(ctx, pcs, ls) }()

	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 2048) })
	}}
	c, err := d.Dial("tcp", ls[0].Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const queries = 400
	for i := range queries {
		q := packQuery(t, "n"+itoa(uint32(i))+".big.example.", dns.TypeA, false)
		f := binary.BigEndian.AppendUint16(nil, uint16(len(q)))
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(append(f, q...)); err != nil {
			break // the proxy stopped reading from a client that does not read
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for up.queries.Load() == 0 || p.fwd.InFlight() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d queries still in flight for a client that does not read (upstream saw %d)", p.fwd.InFlight(), up.queries.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-served:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return with a TCP client connected")
	}
	p.mu.Lock()
	n := len(p.tcpConns)
	p.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d TCP connections left after Serve returned", n)
	}
}
