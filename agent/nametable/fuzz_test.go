package nametable

import (
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
	"google.golang.org/protobuf/proto"
)

// FuzzBuild feeds arbitrary NameTable bytes (as they arrive on the ADS
// stream) to Build: it must never panic, and every table it accepts must
// answer its own hosts with well-formed responses.
func FuzzBuild(f *testing.F) {
	for _, t := range []*ndspb.NameTable{testTable(), Synthetic(30), {Table: map[string]*ndspb.NameInfo{
		"*.a.b": {Ips: []string{"1.2.3.4", "::1"}}, "x..y": {Ips: []string{"1.2.3"}}, "": nil,
		"q.n.svc.cluster.local": {Registry: "Kubernetes", Shortname: "q", Namespace: "n"},
	}}} {
		b, _ := proto.Marshal(t)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tab := new(ndspb.NameTable)
		if proto.Unmarshal(data, tab) != nil {
			return
		}
		ix, err := Build(tab, HostContext{Namespace: "n", Search: []string{"n.svc.cluster.local", "corp.example"}}, Options{})
		if err != nil {
			if ix != nil {
				t.Fatal("index returned with an error")
			}
			return
		}
		_ = ix.Snapshot()
		_ = ix.Names()
		i := 0
		for k, info := range tab.Table {
			if i++; i > 20 {
				break
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
						t.Fatalf("host %q (%v) not answered for %s", k, info, q)
					}
					r := new(dns.Msg)
					if err := r.Unpack(resp); err != nil {
						t.Fatalf("response for %s does not unpack: %v", q, err)
					}
				}
			}
			for _, ip := range info.GetIps() {
				rev, err := dns.ReverseAddr(ip)
				if err != nil {
					continue
				}
				if _, found := ix.Lookup(rev, dns.TypePTR); !found && !strings.HasPrefix(normName(k), "*.") {
					t.Fatalf("no PTR for %s of %q", ip, k)
				}
			}
		}
	})
}

// FuzzAppendResponse checks that arbitrary query bytes never make the
// query path panic, and that whatever it answers unpacks.
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
			f.Add(b, qt, 0)
		}
	}
	f.Fuzz(func(t *testing.T, msg []byte, qtype uint16, skew int) {
		// Derive qname and qend as the proxy does, then optionally skew
		// them to check inconsistent input is refused safely.
		var qname []byte
		off := 12
		for off < len(msg) && len(qname) < 256 {
			l := int(msg[off])
			if l == 0 || l > 63 || off+1+l > len(msg) {
				break
			}
			qname = append(qname, byte(l))
			qname = append(qname, strings.ToLower(string(msg[off+1:off+1+l]))...)
			off += 1 + l
		}
		qname = append(qname, 0)
		qend := off + 5
		if skew%7 == 1 {
			qend += skew
		}
		if skew%7 == 2 && len(qname) > 1 {
			qname = qname[1:]
		}
		resp, ok := ix.AppendResponse(nil, msg, qend, qname, qtype)
		if !ok {
			if len(resp) != 0 {
				t.Fatal("dst changed on a miss")
			}
			return
		}
		r := new(dns.Msg)
		if err := r.Unpack(resp); err != nil {
			t.Fatalf("answer does not unpack: %v\n% x", err, resp)
		}
	})
}
