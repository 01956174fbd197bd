package nametable

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func benchIndex(b *testing.B, n int) *Index {
	b.Helper()
	ix, err := Build(Synthetic(n), testHost, Options{})
	if err != nil {
		b.Fatal(err)
	}
	return ix
}

func benchAppend(b *testing.B, ix *Index, name string, qtype uint16, wantHit bool) {
	q, qend, qname := query(b, name, qtype, true)
	buf := make([]byte, 0, 1232)
	if _, ok := ix.AppendResponse(buf, q, qend, qname, qtype); ok != wantHit {
		b.Fatalf("%s: hit=%v, want %v", name, ok, wantHit)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		buf, _ = ix.AppendResponse(buf[:0], q, qend, qname, qtype)
	}
}

func BenchmarkAppendResponse(b *testing.B) {
	ix := benchIndex(b, 100_000)
	cases := []struct {
		name, q string
		qtype   uint16
		hit     bool
	}{
		{"hit/A", "productpage.ns1.svc.cluster.local", dns.TypeA, true},
		{"hit/short", "productpage", dns.TypeA, true},
		{"hit/AAAA", "productpage.ns1.svc.cluster.local", dns.TypeAAAA, true},
		{"hit/roundrobin3", "hl-14.ns-14.svc.cluster.local", dns.TypeA, true},
		{"hit/nodata", "svc-4.ns-4.svc.cluster.local", dns.TypeAAAA, true},
		{"hit/search-cname", "productpage.ns1.svc.cluster.local.ns1.svc.cluster.local", dns.TypeA, true},
		{"hit/search-cname-last", "productpage.ns1.svc.cluster.local.corp.example", dns.TypeA, true},
		{"hit/wildcard", "a.b.wild-19.example.org", dns.TypeA, true},
		{"hit/ptr4", "1.0.96.10.in-addr.arpa", dns.TypePTR, true},
		{"miss/external", "www.example.net", dns.TypeA, false},
		{"miss/search", "www.example.net.ns1.svc.cluster.local", dns.TypeA, false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) { benchAppend(b, ix, c.q, c.qtype, c.hit) })
	}
}

func BenchmarkAppendResponseParallel(b *testing.B) {
	ix := benchIndex(b, 100_000)
	q, qend, qname := query(b, "hl-14.ns-14.svc.cluster.local", dns.TypeA, true)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 0, 1232)
		for pb.Next() {
			buf, _ = ix.AppendResponse(buf[:0], q, qend, qname, dns.TypeA)
		}
	})
}

func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			tab := Synthetic(n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Build(tab, testHost, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestIndexSize reports build time and the heap the index keeps, for 10k and
// 100k entries, and fails if it grows past budgets that keep the whole proxy
// within its RSS targets (25 MiB at 10k, 80 MiB at 100k).
func TestIndexSize(t *testing.T) {
	if testing.Short() {
		t.Skip("measures a 100k-entry table")
	}
	for _, c := range []struct {
		n      int
		budget uint64
	}{{10_000, 6 << 20}, {100_000, 48 << 20}} {
		tab := Synthetic(c.n)
		heap := func() uint64 {
			runtime.GC()
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			return m.HeapAlloc
		}
		before := heap()
		start := time.Now()
		ix, err := Build(tab, testHost, Options{})
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		after := heap()
		size := after - before
		if after < before {
			size = 0
		}
		t.Logf("%d entries: %d names, build %v, index heap %.1f MiB", c.n, ix.Len(), took.Round(time.Millisecond), float64(size)/(1<<20))
		if size > c.budget {
			t.Errorf("%d entries: index takes %.1f MiB, budget %.1f MiB", c.n, float64(size)/(1<<20), float64(c.budget)/(1<<20))
		}
		runtime.KeepAlive(ix)
		runtime.KeepAlive(tab)
	}
}

func TestAppendResponseDoesNotAllocate(t *testing.T) {
	ix := mustBuild(t, testTable(), testHost, Options{})
	for _, c := range []struct {
		name  string
		qtype uint16
	}{
		{"productpage", dns.TypeA}, {"hl.ns1", dns.TypeA}, {"productpage.ns1.svc.cluster.local.corp.example", dns.TypeAAAA},
		{"q.a.b.example.com", dns.TypeA}, {"q.example.com.corp.example", dns.TypeA}, {"1.0.96.10.in-addr.arpa", dns.TypePTR},
		{"nowhere.example.net.ns1.svc.cluster.local", dns.TypeA},
	} {
		q, qend, qname := query(t, c.name, c.qtype, true)
		buf := make([]byte, 0, 1232)
		if n := testing.AllocsPerRun(200, func() { buf, _ = ix.AppendResponse(buf[:0], q, qend, qname, c.qtype) }); n != 0 {
			t.Errorf("%s: %v allocations per query", c.name, n)
		}
	}
}
