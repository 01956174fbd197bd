package dnsproxy

import (
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/onramp-mesh/onramp/agent/nametable"
)

// sinkResponder keeps the last answer, as the UDP batch slot does.
type sinkResponder struct{ out []byte }

func (s *sinkResponder) reply(r *Request, resp []byte) { s.out = finalize(r, resp, 1232) }
func (s *sinkResponder) detach(*Request) responder     { return s }

func packQuery(b testing.TB, name string, qtype uint16, edns bool) []byte {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	if edns {
		q.SetEdns0(1232, false)
	}
	m, err := q.Pack()
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// benchServe runs what the UDP loop runs for one datagram.
func benchServe(b *testing.B, p *Proxy, msg []byte) {
	sink := &sinkResponder{}
	r := &Request{w: sink}
	buf := make([]byte, 0, udpOutSize)
	src := netip.MustParseAddr("127.0.0.1")
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		r.Buf = buf[:0]
		if !p.admit(msg, r, src) {
			b.Fatal("not admitted")
		}
		r.Now = now
		p.chain(r)
	}
	b.StopTimer()
	if len(sink.out) == 0 {
		b.Fatal("no answer")
	}
}

func BenchmarkMeshHit(b *testing.B) {
	p := newProxy(b, Config{Upstreams: []string{"192.0.2.1"}})
	ix, err := nametable.Build(nametable.Synthetic(10000), nametable.HostContext{
		Namespace: "ns1", Search: []string{"ns1.svc.cluster.local", "svc.cluster.local", "cluster.local"}, Ndots: 5,
	}, nametable.Options{})
	if err != nil {
		b.Fatal(err)
	}
	p.SetTable(ix)
	benchServe(b, p, packQuery(b, "productpage.ns1.svc.cluster.local.", dns.TypeA, true))
}

func BenchmarkCacheHit(b *testing.B) {
	p := newProxy(b, Config{Upstreams: []string{"192.0.2.1"}})
	msg := packQuery(b, "www.example.org.", dns.TypeA, true)
	var r Request
	if res, err := parseQuery(msg, &r); res != parseOK {
		b.Fatal(err)
	}
	q := new(dns.Msg)
	q.Unpack(msg)
	resp := answerA("192.0.2.7", 300)(nil, q)
	resp.Extra = nil
	wire, _ := resp.Pack()
	if p.cache.store(&r, wire, time.Now()) == nil {
		b.Fatal("not stored")
	}
	benchServe(b, p, msg)
}

// BenchmarkRejectedMiss is a miss while MaxInFlight queries are in
// flight: what a flood of new names costs the read loop per query.
func BenchmarkRejectedMiss(b *testing.B) {
	p := newProxy(b, Config{Upstreams: []string{"192.0.2.1"}})
	p.fwd.inFlight.Store(int64(p.cfg.MaxInFlight))
	benchServe(b, p, packQuery(b, "new.example.org.", dns.TypeA, true))
	if p.fwd.rejected.load() == 0 {
		b.Fatal("nothing rejected")
	}
}
