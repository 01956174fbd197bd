package dnsproxy

import (
	"bytes"
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/onramp-mesh/onramp/agent/resolvconf"
)

var meshNames = map[string][]string{
	"productpage.ns1.svc.cluster.local": {"10.96.0.10"},
	"reviews.ns1.svc.cluster.local":     {"10.96.0.11", "fd00::11"},
}

func TestMeshHitAndNODATA(t *testing.T) {
	up := startUpstream(t, answerA("192.0.2.1", 60))
	p, addr := startProxy(t, Config{Upstreams: []string{up.addr}})

	// Before a table is installed, mesh names are forwarded.
	r := ask(t, addr, "productpage.ns1.svc.cluster.local", dns.TypeA)
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
		t.Fatalf("before the table: want the upstream's answer, got %v", r.Answer)
	}

	p.mesh.SetTable(newTestTable(meshNames))
	r = ask(t, addr, "ProductPage.NS1.svc.cluster.local", dns.TypeA)
	if !r.Authoritative || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Fatalf("mesh hit: %v", r)
	}
	if a := r.Answer[0].(*dns.A); a.A.String() != "10.96.0.10" || a.Hdr.Name != "ProductPage.NS1.svc.cluster.local." {
		t.Fatalf("mesh hit answer %v", a)
	}
	r = ask(t, addr, "productpage.ns1.svc.cluster.local", dns.TypeAAAA)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || !r.Authoritative {
		t.Fatalf("mesh NODATA: %v", r)
	}
	before := up.queries.Load()
	ask(t, addr, "reviews.ns1.svc.cluster.local", dns.TypeAAAA)
	if up.queries.Load() != before {
		t.Fatal("a mesh name went upstream")
	}
	if p.mesh.hits.load() != 3 {
		t.Fatalf("mesh hits = %d, want 3", p.mesh.hits.load())
	}
}

func TestCacheHitDecrementsTTL(t *testing.T) {
	up := startUpstream(t, answerA("192.0.2.7", 100))
	clk := newClock()
	_, addr := startProxy(t, Config{Upstreams: []string{up.addr}}, clk.use)
	r := ask(t, addr, "www.example.org", dns.TypeA)
	if len(r.Answer) != 1 || r.Answer[0].Header().Ttl != 100 {
		t.Fatalf("first answer %v", r.Answer)
	}
	clk.advance(3500 * time.Millisecond)
	r = ask(t, addr, "WWW.example.ORG", dns.TypeA)
	if len(r.Answer) != 1 {
		t.Fatalf("cached answer %v", r)
	}
	if ttl := r.Answer[0].Header().Ttl; ttl != 97 {
		t.Fatalf("cached TTL %d after 3.5s, want 97", ttl)
	}
	if r.Question[0].Name != "WWW.example.ORG." {
		t.Fatalf("question not echoed as asked: %q", r.Question[0].Name)
	}
	if n := up.queries.Load(); n != 1 {
		t.Fatalf("upstream saw %d queries, want 1", n)
	}
}

func nxdomain(minimum uint32) func(dns.ResponseWriter, *dns.Msg) *dns.Msg {
	return func(_ dns.ResponseWriter, q *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetRcode(q, dns.RcodeNameError)
		soa, _ := dns.NewRR("example.org. 3600 IN SOA ns.example.org. host.example.org. 1 7200 900 1209600 " + itoa(minimum))
		m.Ns = append(m.Ns, soa)
		return m
	}
}

func TestNegativeCaching(t *testing.T) {
	up := startUpstream(t, nxdomain(60))
	_, addr := startProxy(t, Config{Upstreams: []string{up.addr}})
	for i := range 3 {
		r := ask(t, addr, "nope.example.org", dns.TypeA)
		if r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 {
			t.Fatalf("try %d: want NXDOMAIN with SOA, got %v", i, r)
		}
		if ttl := r.Ns[0].Header().Ttl; ttl > 60 {
			t.Fatalf("negative TTL %d exceeds SOA minimum 60", ttl)
		}
	}
	if n := up.queries.Load(); n != 1 {
		t.Fatalf("upstream saw %d queries, want 1 (negative answer cached)", n)
	}
	// NODATA is cached the same way.
	up.mu.Lock()
	up.handle = func(_ dns.ResponseWriter, q *dns.Msg) *dns.Msg {
		m := nxdomain(30)(nil, q)
		m.Rcode = dns.RcodeSuccess
		return m
	}
	up.mu.Unlock()
	ask(t, addr, "nodata.example.org", dns.TypeAAAA)
	r := ask(t, addr, "nodata.example.org", dns.TypeAAAA)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || up.queries.Load() != 2 {
		t.Fatalf("NODATA not cached: %v, upstream queries %d", r, up.queries.Load())
	}
}

func TestCoalescing(t *testing.T) {
	release := make(chan struct{})
	up := startUpstream(t, func(w dns.ResponseWriter, q *dns.Msg) *dns.Msg {
		<-release
		return answerA("192.0.2.9", 60)(w, q)
	})
	p, addr := startProxy(t, Config{Upstreams: []string{up.addr}, Timeout: 10 * time.Second})
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := ask(t, addr, "slow.example.org", dns.TypeA)
			if len(r.Answer) != 1 {
				t.Errorf("coalesced answer %v", r)
			}
		}()
	}
	// The upstream answers once all 20 are waiting: one asked, 19 joined.
	deadline := time.Now().Add(5 * time.Second)
	for p.cache.coalesced.load() != 19 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if n := up.queries.Load(); n != 1 {
		t.Fatalf("upstream saw %d queries for 20 identical misses, want 1", n)
	}
	if n := p.cache.coalesced.load(); n != 19 {
		t.Fatalf("coalesced %d, want 19", n)
	}
}

func TestServeStale(t *testing.T) {
	up := startUpstream(t, answerA("192.0.2.33", 1))
	clk := newClock()
	p, addr := startProxy(t, Config{Upstreams: []string{up.addr}, Timeout: 200 * time.Millisecond}, clk.use)
	ask(t, addr, "stale.example.org", dns.TypeA)
	clk.advance(2 * time.Second)
	up.stop()
	r := ask(t, addr, "stale.example.org", dns.TypeA)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.33" {
		t.Fatalf("want the stale answer, got %v", r)
	}
	if ttl := r.Answer[0].Header().Ttl; ttl != 30 {
		t.Fatalf("stale TTL %d, want 30", ttl)
	}
	if p.cache.stale.load() != 1 {
		t.Fatalf("stale counter %d", p.cache.stale.load())
	}
	// A name never seen gets SERVFAIL.
	r = ask(t, addr, "other.example.org", dns.TypeA)
	if r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("want SERVFAIL, got %v", r)
	}
}

// bigAnswer answers with 30 A records; over UDP it sets TC with no records.
func bigAnswer(w dns.ResponseWriter, q *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(q)
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		m.Truncated = true
		return m
	}
	for i := range 30 {
		rr, _ := dns.NewRR(q.Question[0].Name + " 300 IN A 198.51.100." + itoa(uint32(i+1)))
		m.Answer = append(m.Answer, rr)
	}
	return m
}

func TestTruncatedUpstreamRetriedOverTCPAndEDNSTruncation(t *testing.T) {
	up := startUpstream(t, bigAnswer)
	_, addr := startProxy(t, Config{Upstreams: []string{up.addr}})
	// Over TCP the client gets all 30 records, fetched upstream over TCP.
	r := ask(t, addr, "big.example.org", dns.TypeA, overTCP)
	if len(r.Answer) != 30 || r.Truncated {
		t.Fatalf("TCP: %d answers, TC=%v", len(r.Answer), r.Truncated)
	}
	// 30 uncompressed A records take ~960 bytes: too much for 512, fit 1232.
	r = ask(t, addr, "big.example.org", dns.TypeA)
	if !r.Truncated || len(r.Answer) != 0 {
		t.Fatalf("plain UDP: want TC and no records, got TC=%v %d answers", r.Truncated, len(r.Answer))
	}
	r = ask(t, addr, "big.example.org", dns.TypeA, withEDNS(4096))
	if r.Truncated || len(r.Answer) != 30 || r.IsEdns0() == nil {
		t.Fatalf("EDNS 4096: TC=%v %d answers OPT=%v", r.Truncated, len(r.Answer), r.IsEdns0())
	}
	if r.IsEdns0().UDPSize() != 1232 {
		t.Fatalf("OPT advertises %d, want 1232", r.IsEdns0().UDPSize())
	}
	r = ask(t, addr, "big.example.org", dns.TypeA, withEDNS(600))
	if !r.Truncated || r.IsEdns0() == nil {
		t.Fatalf("EDNS 600: want TC with OPT, got TC=%v OPT=%v", r.Truncated, r.IsEdns0())
	}
}

func TestFailoverAndSERVFAIL(t *testing.T) {
	// A socket that never answers.
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	good := startUpstream(t, answerA("192.0.2.44", 60))
	_, addr := startProxy(t, Config{Upstreams: []string{dead.LocalAddr().String(), good.addr}, Timeout: 200 * time.Millisecond})
	r := ask(t, addr, "failover.example.org", dns.TypeA)
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.44" {
		t.Fatalf("failover: %v", r)
	}
	// The good server is now preferred: the next miss is fast.
	start := time.Now()
	ask(t, addr, "failover2.example.org", dns.TypeA)
	if d := time.Since(start); d > 150*time.Millisecond {
		t.Fatalf("second miss took %s; the failed server is still tried first", d)
	}

	_, addr2 := startProxy(t, Config{Upstreams: []string{dead.LocalAddr().String()}, Timeout: 100 * time.Millisecond})
	r = ask(t, addr2, "servfail.example.org", dns.TypeA)
	if r.Rcode != dns.RcodeServerFailure || r.Question[0].Name != "servfail.example.org." {
		t.Fatalf("want SERVFAIL with the question, got %v", r)
	}
}

func TestStubZones(t *testing.T) {
	def := startUpstream(t, answerA("192.0.2.1", 60))
	stub := startUpstream(t, answerA("10.1.2.3", 60))
	_, addr := startProxy(t, Config{Upstreams: []string{def.addr}, Stubs: map[string][]string{"internal.": {stub.addr}}})
	if r := ask(t, addr, "thebar.Internal", dns.TypeA); r.Answer[0].(*dns.A).A.String() != "10.1.2.3" {
		t.Fatalf("stub zone answer %v", r.Answer)
	}
	if r := ask(t, addr, "notinternal", dns.TypeA); r.Answer[0].(*dns.A).A.String() != "192.0.2.1" {
		t.Fatalf("name outside the zone %v", r.Answer)
	}
	if def.queries.Load() != 1 || stub.queries.Load() != 1 {
		t.Fatalf("queries: default %d stub %d", def.queries.Load(), stub.queries.Load())
	}
}

func TestIPv6Listener(t *testing.T) {
	if c, err := net.ListenPacket("udp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	} else {
		c.Close()
	}
	up := startUpstream(t, answerA("192.0.2.66", 60))
	p, addr := startProxy(t, Config{Listen: []string{"[::1]:0"}, Upstreams: []string{up.addr}})
	p.mesh.SetTable(newTestTable(meshNames))
	r := ask(t, addr, "reviews.ns1.svc.cluster.local", dns.TypeAAAA)
	if len(r.Answer) != 1 || r.Answer[0].(*dns.AAAA).AAAA.String() != "fd00::11" {
		t.Fatalf("IPv6 listener mesh answer %v", r)
	}
	r = ask(t, addr, "v6.example.org", dns.TypeA, overTCP)
	if len(r.Answer) != 1 {
		t.Fatalf("IPv6 TCP forwarded answer %v", r)
	}
}

func TestMalformedGetsFORMERR(t *testing.T) {
	up := startUpstream(t, answerA("192.0.2.1", 60))
	p, addr := startProxy(t, Config{Upstreams: []string{up.addr}})
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Header says 2 questions.
	bad := []byte{0xAB, 0xCD, 0x01, 0x00, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1}
	c.Write(bad)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	if err := m.Unpack(buf[:n]); err != nil {
		t.Fatal(err)
	}
	if m.Id != 0xABCD || m.Rcode != dns.RcodeFormatError {
		t.Fatalf("want FORMERR for id abcd, got %v", m)
	}
	// A short packet is dropped, and the server keeps answering.
	c.Write([]byte{1, 2, 3})
	if r := ask(t, addr, "still.example.org", dns.TypeA); len(r.Answer) != 1 {
		t.Fatalf("after bad input: %v", r)
	}
	if p.metrics.formerr.load() != 2 {
		t.Fatalf("formerr count %d", p.metrics.formerr.load())
	}
}

func TestWritePrometheus(t *testing.T) {
	up := startUpstream(t, answerA("192.0.2.1", 60))
	p, addr := startProxy(t, Config{Upstreams: []string{up.addr}})
	p.mesh.SetTable(newTestTable(meshNames))
	ask(t, addr, "productpage.ns1.svc.cluster.local", dns.TypeA)
	ask(t, addr, "a.example.org", dns.TypeA)
	ask(t, addr, "a.example.org", dns.TypeA)
	var b bytes.Buffer
	p.WritePrometheus(&b)
	out := b.String()
	for _, want := range []string{
		`onramp_dns_queries_total{source="mesh"} 1`,
		`onramp_dns_queries_total{source="cache"} 1`,
		`onramp_dns_queries_total{source="upstream"} 1`,
		`onramp_dns_requests_total 3`,
		`onramp_dns_cache_entries 1`,
		`onramp_dns_cache_hit_ratio 0.5`,
		`onramp_dns_upstream_latency_seconds_count 1`,
		`# TYPE onramp_dns_upstream_latency_seconds histogram`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
}

func TestFollowsHostResolvConf(t *testing.T) {
	first := startUpstream(t, answerA("192.0.2.101", 0))
	second := startUpstream(t, answerA("192.0.2.102", 0))
	dir := t.TempDir()
	conf := dir + "/resolv.conf"
	write := func(server string) {
		tmp := conf + ".new"
		if err := os.WriteFile(tmp, []byte("nameserver "+server+"\nsearch corp.example\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, conf); err != nil {
			t.Fatal(err)
		}
	}
	write(first.addr)
	// One watcher of the host's resolver, shared: the proxy follows its
	// upstreams, another part of the agent its search list.
	w := &resolvconf.Watcher{Paths: resolvconf.Paths{ResolvConf: conf, ResolvedUpstream: dir + "/none"}, Debounce: 20 * time.Millisecond}
	search := make(chan []string, 8)
	w.Subscribe(func(h resolvconf.Host) { search <- h.Search })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	_, addr := startProxy(t, Config{Host: w})
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			r := ask(t, addr, "host.example.org", dns.TypeA)
			if len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("want the answer %s of the upstream in resolv.conf, got %v", want, r.Answer)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("192.0.2.101")
	write(second.addr)
	waitFor("192.0.2.102")
	if s := <-search; len(s) != 1 || s[0] != "corp.example" {
		t.Fatalf("search list %v", s)
	}
}
