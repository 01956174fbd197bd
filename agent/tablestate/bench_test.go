package tablestate

import (
	"runtime"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"google.golang.org/protobuf/proto"

	"github.com/onramp-mesh/onramp/agent/nametable"
)

// BenchmarkAppendResponse compares a mesh answer through Tables (what the
// proxy calls) with one straight from the index.
func BenchmarkAppendResponse(b *testing.B) {
	s := newTables(nil)
	if err := s.Push("v1", nametable.Synthetic(10000)); err != nil {
		b.Fatal(err)
	}
	m := new(dns.Msg)
	m.SetQuestion("svc-42.ns-42.svc.cluster.local.", dns.TypeA)
	q, _ := m.Pack()
	qend := len(q)
	qname := []byte(strings.ToLower(string(q[12 : qend-4])))
	buf := make([]byte, 0, 512)
	if _, ok := s.AppendResponse(buf, q, qend, qname, dns.TypeA); !ok {
		b.Skip("the synthetic table has no svc-42.ns-42")
	}
	b.Run("tables", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			s.AppendResponse(buf[:0], q, qend, qname, dns.TypeA)
		}
	})
	b.Run("index", func(b *testing.B) {
		ix := s.Index()
		b.ReportAllocs()
		for b.Loop() {
			ix.AppendResponse(buf[:0], q, qend, qname, dns.TypeA)
		}
	})
}

// TestKeptTableSize reports what keeping the newest table costs: its
// encoded size against the heap of the decoded table.
func TestKeptTableSize(t *testing.T) {
	if testing.Short() {
		t.Skip("measures memory")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tab := nametable.Synthetic(10000)
	runtime.GC()
	runtime.ReadMemStats(&after)
	enc, err := proto.MarshalOptions{Deterministic: true}.Marshal(tab)
	if err != nil {
		t.Fatal(err)
	}
	decoded := after.HeapAlloc - before.HeapAlloc
	t.Logf("%d hosts: kept encoded %d KiB; decoded it takes %d KiB of heap", len(tab.GetTable()), len(enc)>>10, decoded>>10)
	if uint64(len(enc)) > decoded {
		t.Errorf("the encoded table (%d bytes) is larger than the decoded one (%d bytes)", len(enc), decoded)
	}
	runtime.KeepAlive(tab)
}

// BenchmarkSearchListRebuild is a rebuild from the kept table: decoding it
// and building the index (what a resolv.conf change costs).
func BenchmarkSearchListRebuild(b *testing.B) {
	s := newTables(nil, "a.example")
	if err := s.Push("v1", nametable.Synthetic(10000)); err != nil {
		b.Fatal(err)
	}
	search := [][]string{{"b.example"}, {"a.example"}}
	i := 0
	for b.Loop() {
		s.SetSearch(search[i%2], 1)
		i++
	}
}
