package nametable

import (
	"bytes"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
	"google.golang.org/protobuf/proto"
)

// FuzzBuild feeds arbitrary NameTable bytes (as they arrive on the ADS
// stream) to Build: every table that decodes builds, and every entry it
// does not report as skipped answers its host with a well-formed response.
func FuzzBuild(f *testing.F) {
	for _, t := range []*ndspb.NameTable{testTable(), Synthetic(30), {Table: map[string]*ndspb.NameInfo{
		"*.a.b": {Ips: []string{"1.2.3.4", "::1"}}, "x..y": {Ips: []string{"1.2.3"}}, "": nil,
		"q.n.svc.cluster.local": {Registry: "Kubernetes", Shortname: "q", Namespace: "n"},
		"m.x":                   {Ips: []string{"::ffff:1.2.3.4", "fe80::1%eth0", "::", "10.0.0.0/8"}},
	}}} {
		b, _ := proto.Marshal(t)
		f.Add(b, false)
	}
	f.Fuzz(func(t *testing.T, data []byte, none bool) {
		tab := new(ndspb.NameTable)
		if proto.Unmarshal(data, tab) != nil {
			return
		}
		opt := Options{DataPlane: DataPlaneProxy}
		if none {
			opt.DataPlane = DataPlaneNone
		}
		ix, err := Build(tab, HostContext{Namespace: "n", Search: []string{"n.svc.cluster.local", "corp.example"}}, opt)
		if err != nil {
			t.Fatalf("a decoded table was refused: %v", err)
		}
		_ = ix.Snapshot()
		_ = ix.Names()
		notServed := map[string]bool{}
		for _, s := range ix.Skipped() {
			if s.Entry {
				notServed[normName(s.Host)] = true
			}
		}
		for _, w := range ix.Withheld() {
			notServed[strings.TrimSuffix(w.Host, ".")] = true
		}
		i := 0
		for k := range tab.Table {
			if i++; i > 20 {
				break
			}
			if notServed[normName(k)] {
				continue
			}
			name := strings.Replace(normName(k), "*", "w", 1)
			for _, q := range []string{name, name + ".corp.example"} {
				for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
					m := new(dns.Msg)
					m.SetQuestion(dns.Fqdn(q), qt)
					b, err := m.Pack()
					if err != nil {
						continue // a valid host plus a suffix can exceed 255 bytes
					}
					qname := []byte(strings.ToLower(string(b[12 : len(b)-4])))
					resp, ok := ix.AppendResponse(nil, b, len(b), qname, qt)
					if !ok {
						t.Fatalf("host %q (%v) not answered for %s", k, tab.Table[k], q)
					}
					r := new(dns.Msg)
					if err := r.Unpack(resp); err != nil {
						t.Fatalf("response for %s does not unpack: %v", q, err)
					}
				}
			}
		}
	})
}

// FuzzAppendResponse fuzzes the exported contract of AppendResponse with
// arbitrary bytes for every argument: it never panics, a miss leaves dst
// unchanged, a hit appends to dst without touching what was there, and a
// hit for a consistent query (qname is the lowercased question name of
// query) unpacks.
func FuzzAppendResponse(f *testing.F) {
	ix, err := Build(testTable(), testHost, Options{})
	if err != nil {
		f.Fatal(err)
	}
	for _, n := range []string{"productpage.", "a.b.example.com.", "1.0.96.10.in-addr.arpa.", "hl.ns1.corp.example.", "x."} {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypePTR} {
			m := new(dns.Msg)
			m.SetQuestion(n, qt)
			b, _ := m.Pack()
			f.Add(b, len(b), []byte(strings.ToLower(string(b[12:len(b)-4]))), qt)
		}
	}
	// Empty interior labels: once a panic.
	odd := append(append([]byte{1, 'a'}, make([]byte, 250)...), 0)
	q := append(append(make([]byte, 12), odd...), 0, 1, 0, 1)
	f.Add(q, len(q), odd, uint16(dns.TypeA))
	f.Fuzz(func(t *testing.T, msg []byte, qend int, qname []byte, qtype uint16) {
		dst := []byte("keep")
		resp, ok := ix.AppendResponse(dst, msg, qend, qname, qtype)
		if !ok {
			if string(resp) != "keep" {
				t.Fatal("dst changed on a miss")
			}
			return
		}
		if !bytes.HasPrefix(resp, []byte("keep")) {
			t.Fatal("a hit changed the bytes already in dst")
		}
		if qend < 16 || qend > len(msg) || !bytes.Equal(bytes.ToLower(msg[12:qend-4]), qname) {
			return // inconsistent input: only safety is promised
		}
		r := new(dns.Msg)
		if err := r.Unpack(resp[4:]); err != nil {
			t.Fatalf("answer does not unpack: %v\n% x", err, resp[4:])
		}
	})
}
