package dnsproxy

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/miekg/dns"
	"github.com/onramp-mesh/onramp/agent/resolvconf"
)

// testUpstream is a real DNS server on loopback that counts the queries it
// gets and answers with handle.
type testUpstream struct {
	addr    string
	queries atomic.Int64
	udp     *dns.Server
	tcp     *dns.Server
	mu      sync.Mutex
	handle  func(w dns.ResponseWriter, q *dns.Msg) *dns.Msg
}

func startUpstream(t *testing.T, handle func(w dns.ResponseWriter, q *dns.Msg) *dns.Msg) *testUpstream {
	t.Helper()
	u := &testUpstream{handle: handle}
	pcs, ls, err := Listen([]string{"127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	pc, l := pcs[0], ls[0]
	u.addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		u.queries.Add(1)
		u.mu.Lock()
		hf := u.handle
		u.mu.Unlock()
		if resp := hf(w, q); resp != nil {
			w.WriteMsg(resp)
		}
	})
	u.udp = &dns.Server{PacketConn: pc, Handler: h}
	u.tcp = &dns.Server{Listener: l, Handler: h}
	go u.udp.ActivateAndServe()
	go u.tcp.ActivateAndServe()
	t.Cleanup(u.stop)
	return u
}

func (u *testUpstream) stop() {
	u.udp.Shutdown()
	u.tcp.Shutdown()
}

// answerA answers every A query with ip and the given TTL.
func answerA(ip string, ttl uint32) func(dns.ResponseWriter, *dns.Msg) *dns.Msg {
	return func(_ dns.ResponseWriter, q *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(q)
		m.RecursionAvailable = true
		if q.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR(q.Question[0].Name + " " + itoa(ttl) + " IN A " + ip)
			m.Answer = append(m.Answer, rr)
		}
		return m
	}
}

func itoa(n uint32) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

// testCache is the cache configuration of tests that set none.
var testCache = CacheConfig{MaxEntries: 100000, MaxBytes: 8 << 20, MaxTTL: time.Hour, StaleWindow: 24 * time.Hour}

// complete fills the fields a test left zero with the values onramp runs
// with, as agent/config would.
func complete(cfg Config) Config {
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.UDPSize == 0 {
		cfg.UDPSize = 1232
	}
	if cfg.Cache == (CacheConfig{}) {
		cfg.Cache = testCache
	}
	return cfg
}

// newProxy is New on a completed cfg, logging warnings to the test.
func newProxy(t testing.TB, cfg Config) *Proxy {
	t.Helper()
	var log hclog.Logger = hclog.NewNullLogger()
	if tt, ok := t.(*testing.T); ok {
		log = hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: testWriter{tt}})
	}
	p, err := New(complete(cfg), log)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startProxy runs a proxy on an ephemeral loopback port and returns it and
// its address. Options change the proxy before it serves.
func startProxy(t *testing.T, cfg Config, opts ...func(*Proxy)) (*Proxy, string) {
	t.Helper()
	if cfg.Listen == nil {
		cfg.Listen = []string{"127.0.0.1:0"}
	}
	p := newProxy(t, cfg)
	for _, o := range opts {
		o(p)
	}
	pcs, ls, err := Listen(cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.ServeConns(ctx, pcs, ls); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	select {
	case <-p.serving:
	case <-done:
	}
	return p, pcs[0].LocalAddr().String()
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}

// ask sends one query and fails the test on a transport error.
func ask(t *testing.T, addr, name string, qtype uint16, opts ...func(*dns.Msg, *dns.Client)) *dns.Msg {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Timeout: 3 * time.Second}
	for _, o := range opts {
		o(q, c)
	}
	r, _, err := c.Exchange(q, addr)
	if err != nil {
		t.Fatalf("query %s %s to %s: %v", name, dns.TypeToString[qtype], addr, err)
	}
	return r
}

func withEDNS(size uint16) func(*dns.Msg, *dns.Client) {
	return func(m *dns.Msg, _ *dns.Client) { m.SetEdns0(size, false) }
}

func overTCP(_ *dns.Msg, c *dns.Client) { c.Net = "tcp" }

// clock is a settable clock for the proxy and its cache.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// use makes p read c; an option of startProxy.
func (c *clock) use(p *Proxy) {
	p.now = c.now
	p.cache.now = c.now
}

// hostWith is a host resolver state listing servers.
func hostWith(servers ...string) resolvconf.Host {
	h := resolvconf.Host{UpstreamsFrom: "/etc/resolv.conf"}
	for _, s := range servers {
		h.Upstreams = append(h.Upstreams, netip.MustParseAddrPort(s))
	}
	return h
}
