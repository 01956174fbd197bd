package nametable

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
)

// DefaultTTL is the TTL of mesh answers when Options.TTL is zero; it is the
// fixed TTL of Istio's agent.
const DefaultTTL = 30 * time.Second

// DefaultClusterDomain is the Kubernetes cluster domain when
// HostContext.ClusterDomain is empty.
const DefaultClusterDomain = "cluster.local"

// HostContext is what the host contributes to the index.
type HostContext struct {
	Namespace     string   // the proxy's namespace (short names only for it)
	ClusterDomain string   // default "cluster.local"
	Search        []string // resolv.conf search list, in order
	Ndots         int      // resolv.conf ndots; kept for diagnostics
}

// Options tune the answers of an Index.
type Options struct {
	// TTL of every mesh record; DefaultTTL when zero. It must be at least
	// one second; sub-second parts are dropped.
	TTL time.Duration
}

// registry kinds kept per node.
const (
	regExternal uint8 = iota
	regKubernetes
)

// node is one host of the table with its precomputed records.
type node struct {
	fqdn   string // wire name without the final zero
	off    uint32 // offset of the A bodies in Index.recs; AAAA bodies follow
	n4, n6 uint16
	reg    uint8
	wild   bool
}

// Sizes of the precomputed record bodies (everything after the owner name).
const (
	bodyA    = 10 + 4
	bodyAAAA = 10 + 16
)

// Index is an immutable lookup index built from one name table. It is safe
// for concurrent use; replace it as a whole when a new table arrives (the
// agent's tablestate.Tables does).
type Index struct {
	names  map[string]*node   // wire name (no final zero) -> node
	wild   map[string]*node   // wire suffix after "*." (no final zero) -> node
	wildLn [4]uint64          // set of the byte lengths of the wild keys
	ptr    map[[16]byte]*node // IP (IPv4 as ::ffff:a.b.c.d) -> primary node
	search []string           // wire search domains, no final zero, in order
	recs   []byte             // record bodies of all nodes
	ttl    [4]byte            // big-endian TTL seconds
	hc     HostContext        // normalized host context
	hosts  int                // entries of the table
	rr     roundRobin         // rotation counter
}

// tableError names the first bad entries of a table.
type tableError struct {
	problems []string
	more     int
}

func (e *tableError) Error() string {
	s := "nametable: bad name table: " + strings.Join(e.problems, "; ")
	if e.more > 0 {
		s += fmt.Sprintf("; and %d more", e.more)
	}
	return s + "; the table is rejected and the previous one stays in use"
}

func (e *tableError) add(host, format string, args ...any) {
	if len(e.problems) >= 5 {
		e.more++
		return
	}
	e.problems = append(e.problems, fmt.Sprintf("entry %q: ", host)+fmt.Sprintf(format, args...))
}

// parsedEntry is a validated entry before the index is laid out.
type parsedEntry struct {
	name    string // normalized presentation name (wildcards keep "*.")
	wild    bool
	reg     uint8
	v4, v6  []netip.Addr
	aliases []string // normalized alias names (Kubernetes only)
}

// Build validates t and builds its index for the host described by hc. A bad
// table (empty or invalid hostname, unparsable or malformed IP, Kubernetes
// entry without shortname or namespace, ...) returns an error that names the
// entries and the problems; the caller keeps its previous index. A nil t
// builds an empty index.
//
// Keys that differ only in case or a trailing dot are merged (their IPs are
// combined). When an alias (for example "name.ns.") of one entry is also
// the host of another entry, the host wins; between aliases, the entry whose
// key sorts first wins.
func Build(t *ndspb.NameTable, hc HostContext, opt Options) (*Index, error) {
	ttl := opt.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < time.Second || ttl/time.Second > math.MaxInt32 {
		return nil, fmt.Errorf("nametable: mesh TTL %v is out of range; use between 1s and %ds", opt.TTL, math.MaxInt32)
	}
	hc, err := normHost(hc)
	if err != nil {
		return nil, err
	}
	table := t.GetTable()
	keys := make([]string, 0, len(table))
	for k := range table {
		keys = append(keys, k)
	}
	slices.Sort(keys)

	var bad tableError
	entries := make([]parsedEntry, 0, len(keys))
	byName := make(map[string]int, len(keys))
	k8sSuffix := ".svc." + hc.ClusterDomain
	for _, key := range keys {
		info := table[key]
		name := normName(key)
		wild, err := checkName(name, true)
		if err != nil {
			bad.add(key, "invalid hostname: %v", err)
			continue
		}
		var v4, v6 []netip.Addr
		ok := true
		for i, s := range info.GetIps() {
			a, err := parseIP(s)
			if err != nil {
				bad.add(key, "ips[%d]: %v", i, err)
				ok = false
				continue
			}
			if a.Is4() {
				v4 = append(v4, a)
			} else {
				v6 = append(v6, a)
			}
		}
		if !ok {
			continue
		}
		reg := regExternal
		var aliases []string
		if info.GetRegistry() == ndspb.RegistryKubernetes && !wild {
			reg = regKubernetes
			if strings.HasSuffix(name, k8sSuffix) {
				short, ns := normName(info.GetShortname()), normName(info.GetNamespace())
				if short == "" || ns == "" {
					bad.add(key, "Kubernetes service under %s without shortname or namespace (shortname %q, namespace %q)", k8sSuffix[1:], info.GetShortname(), info.GetNamespace())
					continue
				}
				if _, err := checkName(short+"."+ns+".svc", false); err != nil {
					bad.add(key, "shortname %q / namespace %q: %v", info.GetShortname(), info.GetNamespace(), err)
					continue
				}
				aliases = append(aliases, short+"."+ns, short+"."+ns+".svc")
				if ns == hc.Namespace {
					aliases = append(aliases, short)
				}
			}
		}
		if i, dup := byName[name]; dup {
			e := &entries[i]
			e.v4 = append(e.v4, v4...)
			e.v6 = append(e.v6, v6...)
			if reg == regKubernetes {
				e.reg = regKubernetes
			}
			e.aliases = append(e.aliases, aliases...)
			continue
		}
		byName[name] = len(entries)
		entries = append(entries, parsedEntry{name: name, wild: wild, reg: reg, v4: v4, v6: v6, aliases: aliases})
	}
	if len(bad.problems) > 0 {
		return nil, &bad
	}
	ix := &Index{hc: hc, hosts: len(table)}
	secs := uint32(ttl / time.Second)
	ix.ttl = [4]byte{byte(secs >> 24), byte(secs >> 16), byte(secs >> 8), byte(secs)}
	ix.layout(entries)
	return ix, nil
}

// parseIP parses one IP of an entry, refusing forms a DNS answer cannot carry.
func parseIP(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return a, fmt.Errorf("%q is not an IP address", s)
	case a.Zone() != "":
		return a, fmt.Errorf("%q has a zone; mesh addresses cannot be link-scoped", s)
	case a.Is4In6():
		return a, fmt.Errorf("%q is an IPv4-mapped IPv6 address; send %s", s, a.Unmap())
	case a.IsUnspecified():
		return a, fmt.Errorf("%q is the unspecified address", s)
	}
	return a, nil
}

func normHost(hc HostContext) (HostContext, error) {
	out := HostContext{Namespace: normName(hc.Namespace), ClusterDomain: normName(hc.ClusterDomain), Ndots: hc.Ndots}
	if out.ClusterDomain == "" {
		out.ClusterDomain = DefaultClusterDomain
	}
	if _, err := checkName(out.ClusterDomain, false); err != nil {
		return out, fmt.Errorf("nametable: cluster domain %q: %v", hc.ClusterDomain, err)
	}
	for _, s := range hc.Search {
		d := normName(s)
		// Unusable search domains (root, bad syntax) cannot produce a
		// lookup the index could answer; they are skipped.
		if _, err := checkName(d, false); err != nil || slices.Contains(out.Search, d) {
			continue
		}
		out.Search = append(out.Search, d)
	}
	return out, nil
}

// layout builds the maps and the record arena from validated entries.
func (ix *Index) layout(entries []parsedEntry) {
	// One string holds every wire name; keys are substrings of it.
	var wire []byte
	type span struct{ a, b int }
	spans := make([]span, len(entries))
	aliasSpans := make([][]span, len(entries))
	nrec := 0
	for i, e := range entries {
		e.v4 = dedupe(e.v4)
		e.v6 = dedupe(e.v6)
		entries[i] = e
		nrec += len(e.v4)*bodyA + len(e.v6)*bodyAAAA
		name := e.name
		if e.wild {
			name = name[2:]
		}
		a := len(wire)
		wire = appendWire(wire, name)
		spans[i] = span{a, len(wire)}
		for _, al := range e.aliases {
			// "name.ns" and "name.ns.svc" (and "name") are usually
			// prefixes of the host's wire form; reuse them when so.
			w := appendWire(nil, al)
			if len(w) <= spans[i].b-a && string(wire[a:a+len(w)]) == string(w) {
				aliasSpans[i] = append(aliasSpans[i], span{a, a + len(w)})
				continue
			}
			b := len(wire)
			wire = append(wire, w...)
			aliasSpans[i] = append(aliasSpans[i], span{b, len(wire)})
		}
	}
	all := string(wire)
	nodes := make([]node, len(entries))
	ix.recs = make([]byte, 0, nrec)
	nnames, nwild, nip := 0, 0, 0
	for _, e := range entries {
		if e.wild {
			nwild++
		} else {
			nnames += 1 + len(e.aliases)
			nip += len(e.v4) + len(e.v6)
		}
	}
	ix.names = make(map[string]*node, nnames)
	ix.wild = make(map[string]*node, nwild)
	ix.ptr = make(map[[16]byte]*node, nip)
	for i, e := range entries {
		n := &nodes[i]
		n.fqdn = all[spans[i].a:spans[i].b]
		n.reg, n.wild = e.reg, e.wild
		n.off = uint32(len(ix.recs))
		n.n4, n.n6 = uint16(min(len(e.v4), math.MaxUint16)), uint16(min(len(e.v6), math.MaxUint16))
		for _, a := range e.v4[:n.n4] {
			ix.recs = appendBody(ix.recs, 1, ix.ttl, a.AsSlice())
		}
		for _, a := range e.v6[:n.n6] {
			ix.recs = appendBody(ix.recs, 28, ix.ttl, a.AsSlice())
		}
		if e.wild {
			ix.wild[n.fqdn] = n
			ix.wildLn[len(n.fqdn)>>6] |= 1 << (len(n.fqdn) & 63)
			continue
		}
		ix.names[n.fqdn] = n
		for _, a := range slices.Concat(e.v4, e.v6) {
			k := a.As16()
			if cur := ix.ptr[k]; cur == nil || betterPrimary(n, cur) {
				ix.ptr[k] = n
			}
		}
	}
	// Aliases after hosts, so that a host always wins over an alias.
	for i := range entries {
		for _, sp := range aliasSpans[i] {
			k := all[sp.a:sp.b]
			if _, taken := ix.names[k]; !taken {
				ix.names[k] = &nodes[i]
			}
		}
	}
	for _, s := range ix.hc.Search {
		ix.search = append(ix.search, string(appendWire(nil, s)))
	}
}

// betterPrimary orders candidates for the PTR name of an IP: a name with
// fewer addresses is more specific (a headless pod's own name beats the
// service), then Kubernetes before External, then the shorter name, then
// the name that sorts first.
func betterPrimary(a, b *node) bool {
	na, nb := int(a.n4)+int(a.n6), int(b.n4)+int(b.n6)
	if na != nb {
		return na < nb
	}
	if a.reg != b.reg {
		return a.reg == regKubernetes
	}
	if len(a.fqdn) != len(b.fqdn) {
		return len(a.fqdn) < len(b.fqdn)
	}
	return a.fqdn < b.fqdn
}

func appendBody(dst []byte, typ uint16, ttl [4]byte, rdata []byte) []byte {
	dst = append(dst, byte(typ>>8), byte(typ), 0, 1)
	dst = append(dst, ttl[:]...)
	dst = append(dst, byte(len(rdata)>>8), byte(len(rdata)))
	return append(dst, rdata...)
}

func dedupe(a []netip.Addr) []netip.Addr {
	out := a[:0]
	for _, x := range a {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}
