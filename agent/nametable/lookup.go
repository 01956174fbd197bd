package nametable

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Lookup answers name (presentation format, any case, trailing dot optional)
// for qtype as a DNS client would see it, for humans and debugging. found is
// false when the index does not answer the query (the proxy would forward
// it). A found name lacking the type returns no records and true.
func (ix *Index) Lookup(name string, qtype uint16) (rrs []dns.RR, found bool) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	q, err := m.Pack()
	if err != nil {
		return nil, false
	}
	qend := len(q)
	qname := []byte(strings.ToLower(string(q[headerLen : qend-4])))
	resp, ok := ix.AppendResponse(nil, q, qend, qname, qtype)
	if !ok {
		return nil, false
	}
	r := new(dns.Msg)
	if err := r.Unpack(resp); err != nil {
		return nil, false
	}
	return r.Answer, true
}

// Len returns the number of names the index answers directly: hosts, their
// Kubernetes short forms, and wildcards. Search-list expansions and reverse
// names are not counted.
func (ix *Index) Len() int {
	if ix == nil {
		return 0
	}
	return len(ix.names) + len(ix.wild)
}

// Hosts returns the number of entries of the table the index was built from.
func (ix *Index) Hosts() int {
	if ix == nil {
		return 0
	}
	return ix.hosts
}

// Names returns every name the index answers directly (see Len), in
// presentation format with a trailing dot, sorted. Wildcards appear as
// "*.suffix.".
func (ix *Index) Names() []string {
	if ix == nil {
		return nil
	}
	out := make([]string, 0, ix.Len())
	for k := range ix.names {
		out = append(out, wireToText(k))
	}
	for k := range ix.wild {
		out = append(out, "*."+wireToText(k))
	}
	slices.Sort(out)
	return out
}

// Entry is one host of the index as the debug endpoint shows it.
type Entry struct {
	Name     string   `json:"name"`              // the host, with a trailing dot
	Registry string   `json:"registry"`          // Kubernetes or External
	IPs      []string `json:"ips"`               // addresses, IPv4 first
	Aliases  []string `json:"aliases,omitempty"` // other names answering the same
}

// Snapshot is the content of an index for /debug/nametable.
type Snapshot struct {
	Namespace     string   `json:"namespace"`
	ClusterDomain string   `json:"clusterDomain"`
	Search        []string `json:"search"`
	Ndots         int      `json:"ndots"`
	TTLSeconds    uint32   `json:"ttlSeconds"`
	Names         int      `json:"names"`
	DataPlane     string   `json:"dataPlane"`
	Entries       []Entry  `json:"entries"`
	// Skipped is what of the table is not served, and why (see Index.Skipped).
	Skipped []Skip `json:"skipped"`
	// Withheld are the names not answered for want of a data plane (see Index.Withheld).
	Withheld []Withheld `json:"withheld"`
}

// Snapshot returns the whole index in a JSON-friendly form, entries sorted by
// name. It is meant for debugging and costs time and memory proportional to
// the table.
func (ix *Index) Snapshot() Snapshot {
	if ix == nil {
		return Snapshot{}
	}
	s := Snapshot{
		Namespace: ix.hc.Namespace, ClusterDomain: ix.hc.ClusterDomain, Search: ix.hc.Search, Ndots: ix.hc.Ndots,
		TTLSeconds: uint32(ix.ttl[0])<<24 | uint32(ix.ttl[1])<<16 | uint32(ix.ttl[2])<<8 | uint32(ix.ttl[3]),
		Names:      ix.Len(), DataPlane: string(ix.dataPlane),
		Skipped: ix.Skipped(), Withheld: ix.Withheld(),
	}
	if s.Skipped == nil {
		s.Skipped = []Skip{}
	}
	if s.Withheld == nil {
		s.Withheld = []Withheld{}
	}
	aliases := map[*node][]string{}
	nodes := make([]*node, 0, len(ix.names)+len(ix.wild))
	for k, n := range ix.names {
		if k == n.fqdn {
			nodes = append(nodes, n)
		} else {
			aliases[n] = append(aliases[n], wireToText(k))
		}
	}
	for _, n := range ix.wild {
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		e := Entry{Name: wireToText(n.fqdn), Registry: "External", Aliases: aliases[n], IPs: []string{}}
		if n.wild {
			e.Name = "*." + e.Name
		}
		if n.reg == regKubernetes {
			e.Registry = "Kubernetes"
		}
		slices.Sort(e.Aliases)
		off := int(n.off)
		for range int(n.n4) {
			e.IPs = append(e.IPs, netip.AddrFrom4([4]byte(ix.recs[off+10:off+14])).String())
			off += bodyA
		}
		for range int(n.n6) {
			e.IPs = append(e.IPs, netip.AddrFrom16([16]byte(ix.recs[off+10:off+26])).String())
			off += bodyAAAA
		}
		s.Entries = append(s.Entries, e)
	}
	slices.SortFunc(s.Entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return s
}
