package dnsproxy

import (
	"encoding/binary"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestFloodAtDeadUpstream sends 20,000 distinct names at an upstream that
// never answers while a local client keeps asking mesh names. The bound on
// queries in flight keeps goroutines and memory flat, the excess is
// answered SERVFAIL at once and counted, and mesh answers keep their
// latency.
func TestFloodAtDeadUpstream(t *testing.T) {
	if testing.Short() {
		t.Skip("flood test skipped in -short mode")
	}
	const (
		names       = 20000
		maxInFlight = 256
		burst       = 100 // names sent every pace
		pace        = 10 * time.Millisecond
		timeout     = 300 * time.Millisecond
	)
	dead, upstreamSaw := deadUpstream(t)
	p, addr := startProxy(t, Config{Upstreams: []string{dead}, Timeout: timeout, MaxInFlight: maxInFlight})
	p.mesh.SetTable(newTestTable(meshNames))

	// The local client asks a mesh name and a name in the cache, in turn.
	meshQuery := packQuery(t, "productpage.ns1.svc.cluster.local.", dns.TypeA, false)
	cachedQuery := packQuery(t, "cached.example.org.", dns.TypeA, false)
	var cr Request
	parseQuery(cachedQuery, &cr)
	cm := new(dns.Msg)
	cm.Unpack(cachedQuery)
	cresp, _ := answerA("192.0.2.7", 3600)(nil, cm).Pack()
	if p.cache.store(&cr, cresp, time.Now()) == nil {
		t.Fatal("answer not cached")
	}
	mc, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	var lost atomic.Int64
	ask := func(q []byte) time.Duration {
		buf := make([]byte, 512)
		t0 := time.Now()
		mc.Write(q)
		mc.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := mc.Read(buf)
		if err != nil || n < headerLen || buf[3]&0xF != rcodeSuccess || binary.BigEndian.Uint16(buf[6:]) != 1 {
			// Lost (a full socket buffer on a busy machine): counted at
			// the timeout, so that p99 shows it.
			lost.Add(1)
			return 2 * time.Second
		}
		return time.Since(t0)
	}
	var before, cacheBefore []time.Duration
	for range 500 {
		before = append(before, ask(meshQuery))
		cacheBefore = append(cacheBefore, ask(cachedQuery))
	}

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseGoroutines, baseHeap, baseRSS := runtime.NumGoroutine(), ms.HeapInuse, rss(t)

	// The flooder: one socket, names sent in paced bursts, answers counted
	// by rcode.
	fc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	fc.SetReadBuffer(4 << 20)
	to := net.UDPAddrFromAddrPort(mustServer(t, addr))
	var servfail, other atomic.Int64
	go func() {
		buf := make([]byte, 512)
		for {
			n, err := fc.Read(buf)
			if err != nil {
				return
			}
			if n >= headerLen && buf[3]&0xF == rcodeServFail {
				servfail.Add(1)
			} else {
				other.Add(1)
			}
		}
	}()
	floodDone := make(chan struct{})
	go func() {
		defer close(floodDone)
		tick := time.NewTicker(pace)
		defer tick.Stop()
		for i := 0; i < names; {
			for range burst {
				q := packQuery(t, "n"+strconv.Itoa(i)+".flood.example.", dns.TypeA, false)
				binary.BigEndian.PutUint16(q, uint16(i))
				fc.WriteToUDP(q, to)
				i++
			}
			<-tick.C
		}
	}()

	// During the flood: mesh queries one after another, and the peaks of
	// goroutines, heap and RSS sampled between them.
	var during, cacheDuring []time.Duration
	maxG, maxHeap, maxRSS := 0, uint64(0), 0
	sample := func() {
		maxG = max(maxG, runtime.NumGoroutine())
		runtime.ReadMemStats(&ms)
		maxHeap = max(maxHeap, ms.HeapInuse)
		maxRSS = max(maxRSS, rss(t))
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				sample()
			}
		}
	}()
	floodStart := time.Now()
	for {
		select {
		case <-floodDone:
		default:
			during = append(during, ask(meshQuery))
			cacheDuring = append(cacheDuring, ask(cachedQuery))
			time.Sleep(500 * time.Microsecond) // a client's pace, not a spin
			continue
		}
		break
	}
	floodTime := time.Since(floodStart)
	// The forwarded names fail after two tries of the timeout; wait for
	// them, bounded.
	deadline := time.Now().Add(10 * time.Second)
	for p.fwd.InFlight() > 0 || servfail.Load()+other.Load() < int64(p.fwd.rejected.load()+p.fwd.servfail.load()) {
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	sample()

	rejected := p.fwd.rejected.load()
	p99b, p99d := p99(before), p99(during)
	t.Logf("flood of %d names in %s at a dead upstream (MaxInFlight %d): goroutines %d -> peak %d; heap in use %.1f -> peak %.1f MiB; RSS %.1f -> peak %.1f MiB",
		names, floodTime.Round(time.Millisecond), maxInFlight, baseGoroutines, maxG, mib(baseHeap), mib(maxHeap), mib(uint64(baseRSS)), mib(uint64(maxRSS)))
	cp99b, cp99d := p99(cacheBefore), p99(cacheDuring)
	t.Logf("mesh answers: p99 %s before (%d queries), %s during (%d queries); cache hits: p99 %s before, %s during; %d lost",
		p99b, len(before), p99d, len(during), cp99b, cp99d, lost.Load())
	t.Logf("flood answers: %d SERVFAIL, %d other; rejected %d; upstream saw %d queries", servfail.Load(), other.Load(), rejected, upstreamSaw())

	if limit := baseGoroutines + maxInFlight + 64; maxG > limit {
		t.Errorf("peak of %d goroutines, want at most %d (base + MaxInFlight + 64)", maxG, limit)
	}
	if growth := int64(maxHeap) - int64(baseHeap); growth > 64<<20 {
		t.Errorf("heap in use grew by %.1f MiB, want at most 64", mib(uint64(growth)))
	}
	if growth := maxRSS - baseRSS; growth > 128<<20 {
		t.Errorf("RSS grew by %.1f MiB, want at most 128", mib(uint64(growth)))
	}
	if limit := max(20*p99b, 50*time.Millisecond); p99d > limit {
		t.Errorf("mesh p99 during the flood %s, want at most %s", p99d, limit)
	}
	if limit := max(20*cp99b, 50*time.Millisecond); cp99d > limit {
		t.Errorf("cache-hit p99 during the flood %s, want at most %s", cp99d, limit)
	}
	if len(during) < 50 {
		t.Errorf("only %d mesh queries answered during the flood", len(during))
	}
	// Every flood query that reached the proxy was either rejected or
	// forwarded, and only what fits in flight was forwarded: each holds
	// its slot for two tries of the timeout.
	answers := servfail.Load() + other.Load()
	forwarded := p.fwd.servfail.load()
	if got := int64(rejected + forwarded); got != answers {
		t.Errorf("rejected %d + forwarded %d = %d, but the flooder got %d answers", rejected, forwarded, got, answers)
	}
	if limit := uint64(maxInFlight * (int(floodTime/(2*timeout)) + 3)); forwarded > limit {
		t.Errorf("forwarded %d of the flood in %s, want at most %d", forwarded, floodTime, limit)
	}
	if servfail.Load() != answers {
		t.Errorf("%d answers were not SERVFAIL", other.Load())
	}
	// Datagrams the proxy could not read in time are lost at its socket
	// on a busy machine; most must get through.
	if answers < names*80/100 {
		t.Errorf("the flooder got %d answers for %d names", answers, names)
	}
	var b strings.Builder
	p.WritePrometheus(&b)
	if want := "onramp_dns_rejected_total{limit=\"in_flight\"} " + strconv.FormatUint(rejected, 10); !strings.Contains(b.String(), want) {
		t.Errorf("metrics lack %q", want)
	}
}

func p99(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)*99/100]
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// rss returns the resident set size of the test process in bytes.
func rss(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("no /proc/self/statm: %v", err)
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.Atoi(f[1])
	return pages * os.Getpagesize()
}
