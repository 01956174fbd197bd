package dnsproxy

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// FuzzServe feeds arbitrary datagrams through what the UDP loop runs:
// parse, access check and the mesh/cache chain. It must never panic, must
// answer synchronously or not at all, and every answer must carry the
// query's ID and parse as a DNS message that fits the client's size.
func FuzzServe(f *testing.F) {
	for _, q := range []struct {
		name string
		t    uint16
		edns bool
	}{
		{"productpage.ns1.svc.cluster.local.", dns.TypeA, false},
		{"reviews.ns1.svc.cluster.local.", dns.TypeAAAA, true},
		{"cached.example.org.", dns.TypeA, true},
		{".", dns.TypeNS, false},
	} {
		f.Add(packQuery(f, q.name, q.t, q.edns))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	f.Add([]byte{0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1})
	f.Add([]byte{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 3, 'f', 'o', 'o', 0, 0, 1, 0, 1, 0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 5, 0, 1, 0, 9})
	f.Add([]byte{0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1})

	p := newProxy(f, Config{Upstreams: []string{"192.0.2.1"}})
	p.mesh.SetTable(newTestTable(meshNames, "ns1.svc.cluster.local"))
	cached := packQuery(f, "cached.example.org.", dns.TypeA, false)
	var cr Request
	parseQuery(cached, &cr)
	cm := new(dns.Msg)
	cm.Unpack(cached)
	resp, _ := answerA("192.0.2.7", 300)(nil, cm).Pack()
	p.cache.store(&cr, resp, time.Now())
	// The forwarder is replaced by a link that only records the hand-off,
	// so the fuzzer stays off the network.
	forwarded := 0
	p.chain = Chain(p.mesh, HandlerFunc(func(r *Request, next Next) {
		h := p.cache.hash(r.QName, r.QType, r.QClass, r.cacheFlags())
		if e := p.cache.lookup(h, r); e != nil {
			p.cache.ServeDNS(r, next)
			return
		}
		forwarded++
	}))

	f.Fuzz(func(t *testing.T, msg []byte) {
		sink := &sinkResponder{}
		r := &Request{w: sink, Buf: make([]byte, 0, 512)}
		before := forwarded
		if p.admit(msg, r, netip.MustParseAddr("127.0.0.1")) {
			r.Now = time.Now()
			p.chain(r)
		}
		if sink.out == nil {
			return
		}
		if forwarded != before {
			t.Fatal("answered and forwarded")
		}
		if len(sink.out) < headerLen || binary.BigEndian.Uint16(sink.out) != binary.BigEndian.Uint16(msg) {
			t.Fatalf("answer %x does not carry the query ID", sink.out)
		}
		limit := 512
		if r.EDNS {
			limit = min(max(int(r.UDPSize), 512), 1232)
		}
		if len(sink.out) > limit {
			t.Fatalf("answer of %d bytes exceeds the client's %d", len(sink.out), limit)
		}
		m := new(dns.Msg)
		if err := m.Unpack(sink.out); err != nil {
			t.Fatalf("answer does not parse: %v\n%x", err, sink.out)
		}
	})
}

// FuzzStore feeds arbitrary upstream responses to the cache: storing and
// serving them must never panic nor read out of bounds.
func FuzzStore(f *testing.F) {
	q := packQuery(f, "www.example.org.", dns.TypeA, false)
	m := new(dns.Msg)
	m.Unpack(q)
	ok, _ := answerA("192.0.2.7", 300)(nil, m).Pack()
	f.Add(ok)
	nx, _ := nxdomain(60)(nil, m).Pack()
	f.Add(nx)
	c, err := NewCache(CacheConfig{MaxEntries: 64, MaxBytes: 1 << 16, MaxTTL: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, resp []byte) {
		var r Request
		if res, _ := parseQuery(q, &r); res != parseOK {
			t.Fatal("query does not parse")
		}
		r.w = &sinkResponder{}
		resp, err := stripOPT(append([]byte(nil), resp...), r.QEnd)
		if err != nil {
			return
		}
		if e := c.store(&r, resp, time.Now()); e != nil {
			out := e.appendTo(nil, &r, 1, 0)
			if len(out) != len(resp) {
				t.Fatalf("served %d bytes for a %d-byte answer", len(out), len(resp))
			}
		}
	})
}
