package nametable

import (
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
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

	// DataPlane says whether a proxy on this host carries traffic to
	// auto-allocated VIPs. With DataPlaneNone, VIPs are removed from every
	// entry and a name left without addresses is withheld: the index does
	// not answer it, so the proxy forwards it upstream, and Withheld lists
	// it. The zero value answers as Istio's agent does (DataPlaneProxy).
	DataPlane DataPlane
	// VIPRanges are the ranges istiod auto-allocates from; DefaultVIPRanges
	// when empty (istiod's PILOT_IP_AUTOALLOCATE_IPV4_PREFIX and _IPV6_PREFIX).
	VIPRanges []netip.Prefix
	// Lookups counts lookups of withheld names. Pass the same one to every
	// Build so that the counts survive new tables; nil counts per index.
	Lookups *Lookups
}

// DataPlane is what carries the host's traffic to mesh addresses.
type DataPlane string

// The data planes.
const (
	// DataPlaneNone: applications connect directly; nothing on the host
	// captures traffic to auto-allocated VIPs, so they are never answered.
	DataPlaneNone DataPlane = "none"
	// DataPlaneProxy: a proxy on the host (Envoy as Istio's sidecar, or
	// ztunnel) captures traffic to VIPs; every address is answered, as
	// Istio's agent does.
	DataPlaneProxy DataPlane = "proxy"
)

// ParseDataPlane parses "none" or "proxy".
func ParseDataPlane(s string) (DataPlane, error) {
	switch d := DataPlane(s); d {
	case DataPlaneNone, DataPlaneProxy:
		return d, nil
	}
	return "", fmt.Errorf("data plane %q: want none (no Envoy or ztunnel on this host: auto-allocated VIPs are not answered) or proxy (one captures traffic to VIPs)", s)
}

// DefaultVIPRanges are the ranges istiod auto-allocates ServiceEntry VIPs
// from by default.
var DefaultVIPRanges = []netip.Prefix{netip.MustParsePrefix("240.240.0.0/16"), netip.MustParsePrefix("2001:2::/48")}

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

	dataPlane DataPlane
	skipped   []Skip                    // what of the table is not served, in key order
	withheld  []Withheld                // names not answered for want of a data plane
	held      map[string]*atomic.Uint64 // wire names of withheld entries -> lookup count
	lookups   *Lookups
}

// parsedEntry is one entry of the table, its addresses sorted out, before
// the index is laid out.
type parsedEntry struct {
	key     string // the table's key (the first, when keys merged)
	name    string // normalized presentation name (wildcards keep "*.")
	wild    bool
	reg     uint8
	v4, v6  []netip.Addr
	vips    []netip.Addr // auto-allocated VIPs held back (DataPlaneNone)
	given   int          // addresses the table listed, usable or not
	aliases []string     // normalized alias names (Kubernetes only)
}

// Build builds the index of t for the host described by hc.
//
// Like Istio's agent, Build applies whatever of a table it can serve, so
// that one odd ServiceEntry never stops the rest of the mesh's names from
// updating: an address that cannot be served is dropped from its entry
// (see parseAddr for the rules), and an entry left with no address, or
// whose hostname is not a DNS name, is skipped. Skipped lists each drop
// with its reason. With Options.DataPlane set to DataPlaneNone, names whose
// only addresses are auto-allocated VIPs are withheld (see Withheld).
//
// Build fails only for bad options or host context; the caller then keeps
// its previous index. A nil t builds an empty index.
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
	if opt.DataPlane != "" {
		if _, err := ParseDataPlane(string(opt.DataPlane)); err != nil {
			return nil, fmt.Errorf("nametable: %w", err)
		}
	}
	hc, err := normHost(hc)
	if err != nil {
		return nil, err
	}
	ix := &Index{hc: hc, dataPlane: opt.DataPlane, lookups: opt.Lookups}
	if ix.dataPlane == "" {
		ix.dataPlane = DataPlaneProxy
	}
	if ix.lookups == nil {
		ix.lookups = new(Lookups)
	}
	secs := uint32(ttl / time.Second)
	ix.ttl = [4]byte{byte(secs >> 24), byte(secs >> 16), byte(secs >> 8), byte(secs)}

	b := &builder{hc: hc, k8sSuffix: ".svc." + hc.ClusterDomain}
	if ix.dataPlane == DataPlaneNone {
		b.vipRanges = opt.VIPRanges
		if len(b.vipRanges) == 0 {
			b.vipRanges = DefaultVIPRanges
		}
	}
	table := t.GetTable()
	ix.hosts = len(table)
	b.byName = make(map[string]int, len(table))
	b.entries = make([]parsedEntry, 0, len(table))
	for _, key := range slices.Sorted(maps.Keys(table)) {
		b.add(key, table[key])
	}
	ix.layout(b.finish(ix))
	return ix, nil
}

// builder sorts the entries of one table into what the index serves,
// withholds and skips.
type builder struct {
	hc        HostContext
	k8sSuffix string         // ".svc.<cluster domain>"
	vipRanges []netip.Prefix // VIPs not answered; nil answers them
	entries   []parsedEntry
	byName    map[string]int // normalized name -> index in entries
	skipped   []Skip
}

func (b *builder) skip(key, addr string, entry bool, why string) {
	b.skipped = append(b.skipped, Skip{Host: key, Address: addr, Entry: entry, Reason: why})
}

// add sorts out one entry of the table.
func (b *builder) add(key string, info *ndspb.NameInfo) {
	name := normName(key)
	wild, err := checkName(name, true)
	if err != nil {
		b.skip(key, "", true, "not a DNS name: "+err.Error())
		return
	}
	e := parsedEntry{key: key, name: name, wild: wild, reg: regExternal, given: len(info.GetIps())}
	for _, s := range info.GetIps() {
		a, why := parseAddr(s)
		switch {
		case why != "":
			b.skip(key, s, false, why)
		case b.isVIP(a):
			e.vips = append(e.vips, a)
		case a.Is4():
			e.v4 = append(e.v4, a)
		default:
			e.v6 = append(e.v6, a)
		}
	}
	if info.GetRegistry() == ndspb.RegistryKubernetes && !wild {
		e.reg = regKubernetes
		e.aliases = b.aliases(key, name, info)
	}
	b.merge(e)
}

func (b *builder) isVIP(a netip.Addr) bool {
	for _, p := range b.vipRanges {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// aliases returns the short names of a Kubernetes entry in the cluster
// domain: "name.ns", "name.ns.svc", and "name" in the proxy's own namespace.
// An entry whose shortname or namespace is missing or not a DNS label loses
// its short names (reported), not its full name.
func (b *builder) aliases(key, name string, info *ndspb.NameInfo) []string {
	if !strings.HasSuffix(name, b.k8sSuffix) {
		return nil
	}
	short, ns := normName(info.GetShortname()), normName(info.GetNamespace())
	if short == "" || ns == "" {
		b.skip(key, "", false, fmt.Sprintf("Kubernetes service under %s without shortname or namespace (shortname %q, namespace %q): answered by its full name only", b.k8sSuffix[1:], info.GetShortname(), info.GetNamespace()))
		return nil
	}
	if _, err := checkName(short+"."+ns+".svc", false); err != nil {
		b.skip(key, "", false, fmt.Sprintf("shortname %q / namespace %q: %v: answered by its full name only", info.GetShortname(), info.GetNamespace(), err))
		return nil
	}
	out := []string{short + "." + ns, short + "." + ns + ".svc"}
	if ns == b.hc.Namespace {
		out = append(out, short)
	}
	return out
}

// merge adds e, combining it with an earlier entry of the same name.
func (b *builder) merge(e parsedEntry) {
	i, dup := b.byName[e.name]
	if !dup {
		b.byName[e.name] = len(b.entries)
		b.entries = append(b.entries, e)
		return
	}
	m := &b.entries[i]
	m.v4 = append(m.v4, e.v4...)
	m.v6 = append(m.v6, e.v6...)
	m.vips = append(m.vips, e.vips...)
	m.given += e.given
	if e.reg == regKubernetes {
		m.reg = regKubernetes
	}
	m.aliases = append(m.aliases, e.aliases...)
}

// finish sets aside the entries left without an address to serve —
// withheld when they had auto-allocated VIPs that nothing on the host
// carries, skipped otherwise — records both in ix, and returns the rest.
func (b *builder) finish(ix *Index) []parsedEntry {
	out := b.entries[:0]
	for _, e := range b.entries {
		switch {
		case len(e.v4)+len(e.v6) > 0:
			out = append(out, e)
		case len(e.vips) > 0:
			ix.withhold(e)
		case e.given == 0:
			b.skip(e.key, "", true, "no addresses")
		default:
			b.skip(e.key, "", true, "no usable address left")
		}
	}
	slices.SortStableFunc(b.skipped, func(x, y Skip) int { return strings.Compare(x.Host, y.Host) })
	ix.skipped = b.skipped
	return out
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
