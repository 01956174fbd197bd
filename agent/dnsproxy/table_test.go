package dnsproxy

import (
	"encoding/binary"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// testTable is a small mesh table for tests, answering as nametable.Index
// does: AA set, answers compressed against the question, ARCOUNT 0, and
// names under one of its search domains answered with a CNAME to the mesh
// name.
type testTable struct {
	names  map[string][]netip.Addr // lowercased wire name -> IPs
	search [][]byte                // wire-format search suffixes, without root label
}

func newTestTable(names map[string][]string, search ...string) *testTable {
	t := &testTable{names: map[string][]netip.Addr{}}
	for n, ips := range names {
		w := wireName(n)
		for _, ip := range ips {
			t.names[string(w)] = append(t.names[string(w)], netip.MustParseAddr(ip))
		}
	}
	for _, s := range search {
		w := wireName(s)
		t.search = append(t.search, w[:len(w)-1])
	}
	return t
}

func wireName(n string) []byte {
	buf := make([]byte, 256)
	k, err := dns.PackDomainName(dns.Fqdn(strings.ToLower(n)), buf, 0, nil, false)
	if err != nil {
		panic(err)
	}
	return buf[:k]
}

func (t *testTable) AppendResponse(dst, query []byte, qend int, qname []byte, qtype uint16) ([]byte, bool) {
	ips, ok := t.names[string(qname)]
	target := -1 // offset in the response of the name the records belong to
	if !ok {
		for _, s := range t.search {
			if len(qname) > len(s)+1 && string(qname[len(qname)-len(s)-1:len(qname)-1]) == string(s) {
				base := qname[:len(qname)-len(s)-1]
				base = append(append([]byte(nil), base...), 0)
				if ips, ok = t.names[string(base)]; ok {
					target = len(base)
					break
				}
			}
		}
		if !ok {
			return dst, false
		}
	}
	start := len(dst)
	dst = append(dst, query[:qend]...)
	m := dst[start:]
	binary.BigEndian.PutUint16(m[2:], flagQR|flagAA|flagRA|binary.BigEndian.Uint16(query[2:])&flagRD)
	binary.BigEndian.PutUint16(m[6:], 0)
	binary.BigEndian.PutUint16(m[8:], 0)
	binary.BigEndian.PutUint16(m[10:], 0)
	an := 0
	owner := []byte{0xC0, 12}
	if target >= 0 {
		// CNAME from the search expansion to the mesh name, whose wire form
		// is the question's prefix followed by the root label.
		dst = append(dst, 0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 30)
		dst = binary.BigEndian.AppendUint16(dst, uint16(target))
		dst = append(dst, query[12:12+target-1]...)
		dst = append(dst, 0)
		an++
		owner = []byte{0xC0 | byte((qend+12)>>8), byte(qend + 12)}
	}
	for _, ip := range ips {
		if (qtype == dns.TypeA && ip.Is4()) || (qtype == dns.TypeAAAA && ip.Is6()) {
			dst = append(dst, owner...)
			dst = binary.BigEndian.AppendUint16(dst, qtype)
			dst = append(dst, 0, 1, 0, 0, 0, 30)
			b := ip.AsSlice()
			dst = binary.BigEndian.AppendUint16(dst, uint16(len(b)))
			dst = append(dst, b...)
			an++
		}
	}
	binary.BigEndian.PutUint16(dst[start+6:], uint16(an))
	return dst, true
}
