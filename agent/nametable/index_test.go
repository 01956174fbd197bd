package nametable

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
)

// query packs a query as a client sends it and returns what the proxy hands
// to AppendResponse.
func query(t testing.TB, name string, qtype uint16, edns bool) (msg []byte, qend int, qname []byte) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.Id = 0xbeef
	if edns {
		m.SetEdns0(1232, false)
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	qend = headerLen + len(packName(t, name)) + 4
	return b, qend, packName(t, strings.ToLower(name))
}

func packName(t testing.TB, name string) []byte {
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(dns.Fqdn(name), buf, 0, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	return buf[:n]
}

// ask queries ix and returns the unpacked response, or nil when the index
// does not answer.
func ask(t testing.TB, ix *Index, name string, qtype uint16) *dns.Msg {
	t.Helper()
	q, qend, qname := query(t, name, qtype, true)
	prefix := []byte("keep")
	resp, ok := ix.AppendResponse(prefix, q, qend, qname, qtype)
	if !bytes.HasPrefix(resp, []byte("keep")) {
		t.Fatalf("%s: AppendResponse changed the bytes already in dst", name)
	}
	if !ok {
		if len(resp) != 4 {
			t.Fatalf("%s: not answered but dst grew to %d bytes", name, len(resp))
		}
		return nil
	}
	r := new(dns.Msg)
	if err := r.Unpack(resp[4:]); err != nil {
		t.Fatalf("%s: response does not unpack: %v\n% x", name, err, resp[4:])
	}
	if r.Id != 0xbeef || !r.Response || !r.Authoritative || !r.RecursionAvailable || !r.RecursionDesired ||
		r.Rcode != dns.RcodeSuccess || r.Opcode != dns.OpcodeQuery {
		t.Fatalf("%s: bad header: %+v", name, r.MsgHdr)
	}
	if len(r.Question) != 1 || r.Question[0].Name != dns.Fqdn(name) || r.Question[0].Qtype != qtype {
		t.Fatalf("%s: question not copied verbatim: %v", name, r.Question)
	}
	if len(r.Extra) != 0 || len(r.Ns) != 0 {
		t.Fatalf("%s: unexpected authority/additional records", name)
	}
	return r
}

// addrs returns the addresses of the A/AAAA records owned by owner, and the
// CNAME targets, as strings.
func summarize(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.Hdr.Name+" A "+rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.Hdr.Name+" AAAA "+rr.AAAA.String())
		case *dns.CNAME:
			out = append(out, rr.Hdr.Name+" CNAME "+rr.Target)
		case *dns.PTR:
			out = append(out, rr.Hdr.Name+" PTR "+rr.Ptr)
		default:
			out = append(out, rr.String())
		}
	}
	return out
}

func k8s(short, ns, domain string, ips ...string) (string, *ndspb.NameInfo) {
	return short + "." + ns + ".svc." + domain, &ndspb.NameInfo{Ips: ips, Registry: ndspb.RegistryKubernetes, Shortname: short, Namespace: ns}
}

func testTable() *ndspb.NameTable {
	t := &ndspb.NameTable{Table: map[string]*ndspb.NameInfo{}}
	add := func(k string, v *ndspb.NameInfo) { t.Table[k] = v }
	add(k8s("productpage", "ns1", "cluster.local", "10.96.0.1", "fd00::1"))
	add(k8s("reviews", "ns2", "cluster.local", "10.96.0.2"))
	add(k8s("remote", "ns1", "other.local", "10.97.0.1"))
	add(k8s("hl", "ns1", "cluster.local", "10.128.0.1", "10.128.0.2", "10.128.0.3"))
	add(k8s("web-0.hl", "ns1", "cluster.local", "10.128.0.2"))
	add("api.example.com", &ndspb.NameInfo{Ips: []string{"240.240.0.1", "2001:2::1"}, Registry: ndspb.RegistryExternal})
	add("v6only.example.com", &ndspb.NameInfo{Ips: []string{"2001:db8::6"}, Registry: ndspb.RegistryExternal})
	add("noips.example.com", &ndspb.NameInfo{Registry: ndspb.RegistryExternal})
	add("*.example.com", &ndspb.NameInfo{Ips: []string{"1.1.1.1"}, Registry: ndspb.RegistryExternal})
	add("*.b.example.com", &ndspb.NameInfo{Ips: []string{"2.2.2.2"}, Registry: ndspb.RegistryExternal})
	add("x.b.example.com", &ndspb.NameInfo{Ips: []string{"3.3.3.3"}, Registry: ndspb.RegistryExternal})
	return t
}

var testHost = HostContext{
	Namespace: "ns1",
	Search:    []string{"ns1.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example"},
	Ndots:     5,
}

func mustBuild(t testing.TB, tab *ndspb.NameTable, hc HostContext, opt Options) *Index {
	t.Helper()
	ix, err := Build(tab, hc, opt)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func TestNames(t *testing.T) {
	ix := mustBuild(t, testTable(), testHost, Options{})
	tests := []struct {
		name  string
		qtype uint16
		want  []string // nil: not answered
	}{
		// Kubernetes: fqdn, name.ns, name.ns.svc, and name only for our namespace.
		{"productpage.ns1.svc.cluster.local", dns.TypeA, []string{"productpage.ns1.svc.cluster.local. A 10.96.0.1"}},
		{"productpage.ns1", dns.TypeA, []string{"productpage.ns1. A 10.96.0.1"}},
		{"productpage.ns1.svc", dns.TypeAAAA, []string{"productpage.ns1.svc. AAAA fd00::1"}},
		{"productpage", dns.TypeA, []string{"productpage. A 10.96.0.1"}},
		{"reviews.ns2.svc.cluster.local", dns.TypeA, []string{"reviews.ns2.svc.cluster.local. A 10.96.0.2"}},
		{"reviews.ns2", dns.TypeA, []string{"reviews.ns2. A 10.96.0.2"}},
		{"reviews.ns2.svc", dns.TypeA, []string{"reviews.ns2.svc. A 10.96.0.2"}},
		{"reviews", dns.TypeA, nil}, // other namespace: no short name
		{"reviews.ns2.svc.cluster", dns.TypeA, nil},
		// Headless pod names.
		{"web-0.hl.ns1", dns.TypeA, []string{"web-0.hl.ns1. A 10.128.0.2"}},
		{"web-0.hl", dns.TypeA, []string{"web-0.hl. A 10.128.0.2"}},
		// Kubernetes service of another cluster domain: fqdn only.
		{"remote.ns1.svc.other.local", dns.TypeA, []string{"remote.ns1.svc.other.local. A 10.97.0.1"}},
		{"remote.ns1", dns.TypeA, nil},
		{"remote", dns.TypeA, nil},
		// External: host only.
		{"api.example.com", dns.TypeA, []string{"api.example.com. A 240.240.0.1"}},
		{"api.example.com", dns.TypeAAAA, []string{"api.example.com. AAAA 2001:2::1"}},
		{"API.Example.COM", dns.TypeA, []string{"API.Example.COM. A 240.240.0.1"}}, // 0x20 case kept in owner via pointer
		// Wildcards, most specific first; an exact name beats them.
		{"a.example.com", dns.TypeA, []string{"a.example.com. A 1.1.1.1"}},
		{"b.example.com", dns.TypeA, []string{"b.example.com. A 1.1.1.1"}},
		{"a.b.example.com", dns.TypeA, []string{"a.b.example.com. A 2.2.2.2"}},
		{"z.a.b.example.com", dns.TypeA, []string{"z.a.b.example.com. A 2.2.2.2"}},
		{"x.b.example.com", dns.TypeA, []string{"x.b.example.com. A 3.3.3.3"}},
		{"example.com", dns.TypeA, nil},
		{"a.example.org", dns.TypeA, nil},
		// NODATA: a known name lacking the family.
		{"reviews.ns2", dns.TypeAAAA, []string{}},
		{"v6only.example.com", dns.TypeA, []string{}},
		// An entry without addresses is skipped, as by Istio's agent: the
		// wildcard above it answers.
		{"noips.example.com", dns.TypeA, []string{"noips.example.com. A 1.1.1.1"}},
		{"noips.example.com", dns.TypeAAAA, []string{}},
		{"a.example.com", dns.TypeAAAA, []string{}},
		// Other types go upstream.
		{"api.example.com", dns.TypeMX, nil},
		{"api.example.com", dns.TypeTXT, nil},
		{"api.example.com", dns.TypeCNAME, nil},
		{"api.example.com", dns.TypeSRV, nil},
		{"unknown.example.net", dns.TypeA, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s", tt.name, dns.TypeToString[tt.qtype]), func(t *testing.T) {
			r := ask(t, ix, tt.name, tt.qtype)
			if tt.want == nil {
				if r != nil {
					t.Fatalf("answered %v, want not answered", summarize(r))
				}
				return
			}
			if r == nil {
				t.Fatal("not answered")
			}
			if got := summarize(r); !slices.Equal(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Fatalf("answer %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSearchExpansion(t *testing.T) {
	ix := mustBuild(t, testTable(), testHost, Options{})
	tests := []struct {
		name  string
		qtype uint16
		want  []string
	}{
		// glibc with ndots:5 tries the first search domain first.
		{"productpage.ns1.svc.cluster.local.ns1.svc.cluster.local", dns.TypeA, []string{
			"productpage.ns1.svc.cluster.local.ns1.svc.cluster.local. CNAME productpage.ns1.svc.cluster.local.",
			"productpage.ns1.svc.cluster.local. A 10.96.0.1"}},
		{"productpage.ns1.svc.cluster.local.ns1.svc.cluster.local", dns.TypeAAAA, []string{
			"productpage.ns1.svc.cluster.local.ns1.svc.cluster.local. CNAME productpage.ns1.svc.cluster.local.",
			"productpage.ns1.svc.cluster.local. AAAA fd00::1"}},
		// Every search domain, not only the first.
		{"reviews.ns2.svc.cluster.local.svc.cluster.local", dns.TypeA, []string{
			"reviews.ns2.svc.cluster.local.svc.cluster.local. CNAME reviews.ns2.svc.cluster.local.",
			"reviews.ns2.svc.cluster.local. A 10.96.0.2"}},
		{"reviews.ns2.svc.cluster.local.cluster.local", dns.TypeA, []string{
			"reviews.ns2.svc.cluster.local.cluster.local. CNAME reviews.ns2.svc.cluster.local.",
			"reviews.ns2.svc.cluster.local. A 10.96.0.2"}},
		{"api.example.com.corp.example", dns.TypeA, []string{
			"api.example.com.corp.example. CNAME api.example.com.",
			"api.example.com. A 240.240.0.1"}},
		{"reviews.ns2.ns1.svc.cluster.local", dns.TypeA, []string{
			"reviews.ns2.ns1.svc.cluster.local. CNAME reviews.ns2.",
			"reviews.ns2. A 10.96.0.2"}},
		// A name that lacks the family: the CNAME alone.
		{"reviews.ns2.svc.cluster.local.corp.example", dns.TypeAAAA, []string{
			"reviews.ns2.svc.cluster.local.corp.example. CNAME reviews.ns2.svc.cluster.local."}},
		// An expansion that is a real name is answered as itself.
		{"reviews.ns2.svc.cluster.local", dns.TypeA, []string{"reviews.ns2.svc.cluster.local. A 10.96.0.2"}},
		// Names under a wildcard expand too.
		{"q.example.com.corp.example", dns.TypeA, []string{
			"q.example.com.corp.example. CNAME q.example.com.",
			"q.example.com. A 1.1.1.1"}},
		// The suffix must be a whole search domain.
		{"api.example.com.xcorp.example", dns.TypeA, nil},
		{"api.example.com.example", dns.TypeA, nil},
		{"corp.example", dns.TypeA, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ask(t, ix, tt.name, tt.qtype)
			if tt.want == nil {
				if r != nil {
					t.Fatalf("answered %v", summarize(r))
				}
				return
			}
			if r == nil {
				t.Fatal("not answered")
			}
			if got := summarize(r); !slices.Equal(got, tt.want) {
				t.Fatalf("answer\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

// TestGlibcSearchTwoQueries walks the search list as glibc does for
// productpage.ns1.svc.cluster.local with ndots:5 and checks the very first
// pair of queries (A and AAAA, first search domain) already resolves.
func TestGlibcSearchTwoQueries(t *testing.T) {
	ix := mustBuild(t, testTable(), testHost, Options{})
	name := "productpage.ns1.svc.cluster.local"
	if strings.Count(name, ".") >= testHost.Ndots {
		t.Fatal("test assumes the name has fewer dots than ndots")
	}
	queries := 0
	var got []string
	for _, s := range append(slices.Clone(testHost.Search), "") {
		try := name
		if s != "" {
			try += "." + s
		}
		done := false
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			queries++
			r := ask(t, ix, try, qt)
			if r == nil {
				continue
			}
			for _, rr := range r.Answer {
				switch rr := rr.(type) {
				case *dns.A:
					got = append(got, rr.A.String())
					done = true
				case *dns.AAAA:
					got = append(got, rr.AAAA.String())
					done = true
				}
			}
		}
		if done {
			break
		}
	}
	if queries != 2 || !slices.Equal(got, []string{"10.96.0.1", "fd00::1"}) {
		t.Fatalf("%d queries, addresses %v; want 2 queries and [10.96.0.1 fd00::1]", queries, got)
	}
}

func TestRoundRobin(t *testing.T) {
	ix := mustBuild(t, testTable(), testHost, Options{})
	firsts := map[string]int{}
	for i := 0; i < 30; i++ {
		r := ask(t, ix, "hl.ns1", dns.TypeA)
		got := summarize(r)
		if len(got) != 3 {
			t.Fatalf("got %v, want 3 records", got)
		}
		sorted := slices.Sorted(slices.Values(got))
		if !slices.Equal(sorted, []string{"hl.ns1. A 10.128.0.1", "hl.ns1. A 10.128.0.2", "hl.ns1. A 10.128.0.3"}) {
			t.Fatalf("records %v", got)
		}
		firsts[got[0]]++
	}
	if len(firsts) != 3 {
		t.Fatalf("first record took only %d values over 30 queries: %v", len(firsts), firsts)
	}
	for k, n := range firsts {
		if n != 10 {
			t.Errorf("%s first %d times, want 10 (strict rotation)", k, n)
		}
	}
	// Rotation through a CNAME too.
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		r := ask(t, ix, "hl.ns1.corp.example", dns.TypeA)
		if len(r.Answer) != 4 {
			t.Fatalf("answer %v", summarize(r))
		}
		seen[summarize(r)[1]] = true
	}
	if len(seen) != 3 {
		t.Fatalf("CNAME answers did not rotate: %v", seen)
	}
}

func TestPTR(t *testing.T) {
	ix := mustBuild(t, testTable(), testHost, Options{})
	rev := func(ip string) string {
		s, err := dns.ReverseAddr(ip)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name string
		want string // "" = not answered
	}{
		{rev("10.96.0.1"), "productpage.ns1.svc.cluster.local."},
		{rev("fd00::1"), "productpage.ns1.svc.cluster.local."},
		{rev("240.240.0.1"), "api.example.com."},
		{rev("2001:2::1"), "api.example.com."},
		{rev("10.128.0.2"), "web-0.hl.ns1.svc.cluster.local."}, // the pod's own name beats the service
		{rev("10.128.0.1"), "hl.ns1.svc.cluster.local."},
		{rev("1.1.1.1"), ""}, // wildcard addresses have no name to give
		{rev("10.96.0.99"), ""},
		{rev("2001:db8::99"), ""},
		{"96.10.in-addr.arpa.", ""},
		{"1.0.96.010.in-addr.arpa.", ""},
		{"1.0.96.10.0.in-addr.arpa.", ""},
		{"x.0.96.10.in-addr.arpa.", ""},
		{"ip6.arpa.", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ask(t, ix, tt.name, dns.TypePTR)
			if tt.want == "" {
				if r != nil {
					t.Fatalf("answered %v", summarize(r))
				}
				return
			}
			if r == nil {
				t.Fatal("not answered")
			}
			if got := summarize(r); !slices.Equal(got, []string{tt.name + " PTR " + tt.want}) {
				t.Fatalf("got %q", got)
			}
		})
	}
	// Uppercase hex in ip6.arpa names is lowercased by the proxy.
	up := strings.ToUpper(rev("fd00::abcd"))
	ix2 := mustBuild(t, &ndspb.NameTable{Table: map[string]*ndspb.NameInfo{"h.example": {Ips: []string{"fd00::abcd"}}}}, HostContext{}, Options{})
	if r := ask(t, ix2, up, dns.TypePTR); r == nil || len(r.Answer) != 1 {
		t.Fatalf("uppercase ip6.arpa: %v", r)
	}
	// PTR asked with another type is not ours.
	if r := ask(t, ix, rev("10.96.0.1"), dns.TypeA); r != nil {
		t.Fatalf("A for a reverse name answered: %v", summarize(r))
	}
}

func TestTTL(t *testing.T) {
	for _, tc := range []struct {
		opt  Options
		want uint32
	}{{Options{}, 30}, {Options{TTL: 5 * time.Second}, 5}, {Options{TTL: 90*time.Second + 300*time.Millisecond}, 90}} {
		ix := mustBuild(t, testTable(), testHost, tc.opt)
		for _, q := range []struct {
			name  string
			qtype uint16
		}{{"productpage", dns.TypeA}, {"api.example.com", dns.TypeAAAA}, {"api.example.com.corp.example", dns.TypeA}, {"1.0.96.10.in-addr.arpa", dns.TypePTR}, {"a.example.com", dns.TypeA}} {
			r := ask(t, ix, q.name, q.qtype)
			if r == nil || len(r.Answer) == 0 {
				t.Fatalf("%s: no answer", q.name)
			}
			for _, rr := range r.Answer {
				if rr.Header().Ttl != tc.want {
					t.Errorf("TTL %v: %s has TTL %d, want %d", tc.opt.TTL, rr.Header().Name, rr.Header().Ttl, tc.want)
				}
			}
		}
		if got := ix.Snapshot().TTLSeconds; got != tc.want {
			t.Errorf("snapshot TTL %d, want %d", got, tc.want)
		}
	}
	for _, bad := range []time.Duration{-time.Second, 500 * time.Millisecond} {
		if _, err := Build(testTable(), testHost, Options{TTL: bad}); err == nil || !strings.Contains(err.Error(), "TTL") {
			t.Errorf("TTL %v: err = %v, want a TTL error", bad, err)
		}
	}
}

func TestHeader(t *testing.T) {
	ix := mustBuild(t, testTable(), testHost, Options{})
	m := new(dns.Msg)
	m.SetQuestion("PrOdUcTpAgE.nS1.", dns.TypeA)
	m.Id = 0x1234
	m.RecursionDesired = false
	m.CheckingDisabled = true
	m.SetEdns0(4096, true)
	q, _ := m.Pack()
	qname := packName(t, "productpage.ns1.")
	qend := headerLen + len(qname) + 4
	resp, ok := ix.AppendResponse(nil, q, qend, qname, dns.TypeA)
	if !ok {
		t.Fatal("not answered")
	}
	if !bytes.Equal(resp[12:qend], q[12:qend]) {
		t.Fatal("question not copied verbatim")
	}
	r := new(dns.Msg)
	if err := r.Unpack(resp); err != nil {
		t.Fatal(err)
	}
	if r.Id != 0x1234 || r.RecursionDesired || !r.CheckingDisabled || !r.Authoritative || !r.Response || !r.RecursionAvailable {
		t.Fatalf("header %+v", r.MsgHdr)
	}
	if r.Question[0].Name != "PrOdUcTpAgE.nS1." || r.Answer[0].Header().Name != "PrOdUcTpAgE.nS1." {
		t.Fatalf("0x20 case lost: %v", r)
	}
	if len(r.Extra) != 0 {
		t.Fatal("ARCOUNT not 0")
	}
	// Not a standard query, or not class IN: not ours.
	m.Opcode = dns.OpcodeNotify
	q2, _ := m.Pack()
	if _, ok := ix.AppendResponse(nil, q2, qend, qname, dns.TypeA); ok {
		t.Fatal("NOTIFY answered")
	}
	m.Opcode = dns.OpcodeQuery
	m.Question[0].Qclass = dns.ClassCHAOS
	q3, _ := m.Pack()
	if _, ok := ix.AppendResponse(nil, q3, qend, qname, dns.TypeA); ok {
		t.Fatal("class CH answered")
	}
	// Inconsistent arguments are refused, not trusted.
	if _, ok := ix.AppendResponse(nil, q, qend+1, qname, dns.TypeA); ok {
		t.Fatal("wrong qend answered")
	}
	if _, ok := ix.AppendResponse(nil, q[:qend-1], qend, qname, dns.TypeA); ok {
		t.Fatal("short query answered")
	}
	var nilIx *Index
	if _, ok := nilIx.AppendResponse(nil, q, qend, qname, dns.TypeA); ok {
		t.Fatal("nil index answered")
	}
}

func TestBuildMergesAndPrecedence(t *testing.T) {
	tab := &ndspb.NameTable{Table: map[string]*ndspb.NameInfo{
		"Foo.Example.com":       {Ips: []string{"1.0.0.1", "1.0.0.2"}},
		"foo.example.com.":      {Ips: []string{"1.0.0.2", "1.0.0.3"}},
		"a.b":                   {Ips: []string{"9.9.9.9"}, Registry: ndspb.RegistryExternal},
		"a.b.svc.cluster.local": {Ips: []string{"10.0.0.1"}, Registry: ndspb.RegistryKubernetes, Shortname: "a", Namespace: "b"},
		"nil.example.com":       nil,
		"odd.example.com":       {Ips: []string{"7.7.7.7"}, Registry: "Consul"},
	}}
	ix := mustBuild(t, tab, HostContext{Namespace: "b"}, Options{})
	r := ask(t, ix, "foo.example.com", dns.TypeA)
	if got := slices.Sorted(slices.Values(summarize(r))); !slices.Equal(got, []string{"foo.example.com. A 1.0.0.1", "foo.example.com. A 1.0.0.2", "foo.example.com. A 1.0.0.3"}) {
		t.Fatalf("merged: %v", got)
	}
	// The host "a.b" wins over the alias "a.b." of a.b.svc.cluster.local.
	if got := summarize(ask(t, ix, "a.b", dns.TypeA)); !slices.Equal(got, []string{"a.b. A 9.9.9.9"}) {
		t.Fatalf("a.b: %v", got)
	}
	if got := summarize(ask(t, ix, "a", dns.TypeA)); !slices.Equal(got, []string{"a. A 10.0.0.1"}) {
		t.Fatalf("a: %v", got)
	}
	if r := ask(t, ix, "nil.example.com", dns.TypeA); r != nil {
		t.Fatal("nil info (no addresses): want not answered")
	}
	if got := summarize(ask(t, ix, "odd.example.com", dns.TypeA)); len(got) != 1 {
		t.Fatalf("unknown registry: %v", got)
	}
	if r := ask(t, ix, "odd", dns.TypeA); r != nil {
		t.Fatal("unknown registry got Kubernetes short names")
	}
	ix, err := Build(nil, HostContext{}, Options{})
	if err != nil || ix.Len() != 0 {
		t.Fatalf("nil table: %v %v", ix, err)
	}
}

func TestDebugViews(t *testing.T) {
	ix := mustBuild(t, testTable(), testHost, Options{})
	names := ix.Names()
	for _, want := range []string{"productpage.", "productpage.ns1.", "productpage.ns1.svc.", "productpage.ns1.svc.cluster.local.", "*.example.com.", "api.example.com."} {
		if !slices.Contains(names, want) {
			t.Errorf("Names() lacks %s", want)
		}
	}
	if slices.Contains(names, "reviews.") {
		t.Error("Names() has reviews. (other namespace)")
	}
	if ix.Len() != len(names) || !slices.IsSorted(names) {
		t.Errorf("Len %d, Names %d, sorted %v", ix.Len(), len(names), slices.IsSorted(names))
	}
	if ix.Hosts() != len(testTable().Table) {
		t.Errorf("Hosts %d", ix.Hosts())
	}
	s := ix.Snapshot()
	if len(s.Entries) != len(testTable().Table)-1 { // noips.example.com is skipped
		t.Fatalf("snapshot has %d entries", len(s.Entries))
	}
	if len(s.Skipped) != 1 || s.Skipped[0].Host != "noips.example.com" || !s.Skipped[0].Entry || s.DataPlane != "proxy" {
		t.Fatalf("snapshot skipped %+v, data plane %q", s.Skipped, s.DataPlane)
	}
	i := slices.IndexFunc(s.Entries, func(e Entry) bool { return e.Name == "productpage.ns1.svc.cluster.local." })
	e := s.Entries[i]
	if e.Registry != "Kubernetes" || !slices.Equal(e.IPs, []string{"10.96.0.1", "fd00::1"}) ||
		!slices.Equal(e.Aliases, []string{"productpage.", "productpage.ns1.", "productpage.ns1.svc."}) {
		t.Fatalf("entry %+v", e)
	}
	rrs, found := ix.Lookup("ProductPage.NS1", dns.TypeA)
	if !found || len(rrs) != 1 || rrs[0].(*dns.A).A.String() != "10.96.0.1" {
		t.Fatalf("Lookup: %v %v", rrs, found)
	}
	if _, found := ix.Lookup("nowhere.example.net", dns.TypeA); found {
		t.Fatal("Lookup found an unknown name")
	}
	if rrs, found := ix.Lookup("reviews.ns2", dns.TypeAAAA); !found || len(rrs) != 0 {
		t.Fatal("Lookup NODATA")
	}
}

func TestSyntheticBuilds(t *testing.T) {
	tab := Synthetic(2000)
	if len(tab.Table) != 2000 {
		t.Fatalf("Synthetic(2000) has %d entries", len(tab.Table))
	}
	ix := mustBuild(t, tab, HostContext{Namespace: "ns1", Search: testHost.Search}, Options{})
	kinds := map[string]int{}
	for k, v := range tab.Table {
		switch {
		case strings.HasPrefix(k, "*."):
			kinds["wildcard"]++
		case v.Registry == ndspb.RegistryKubernetes:
			kinds["k8s"]++
		default:
			kinds["external"]++
		}
		// Every host answers A or AAAA with its addresses.
		name := strings.Replace(k, "*", "any", 1)
		r := ask(t, ix, name, dns.TypeA)
		if r == nil {
			t.Fatalf("%s not answered", name)
		}
		n := 0
		for _, ip := range v.Ips {
			if netip.MustParseAddr(ip).Is4() {
				n++
			}
		}
		if len(r.Answer) != n {
			t.Fatalf("%s: %d A records, want %d", name, len(r.Answer), n)
		}
	}
	if kinds["k8s"] < 1400 || kinds["external"] < 150 || kinds["wildcard"] == 0 {
		t.Fatalf("mix %v", kinds)
	}
	if r := ask(t, ix, "productpage", dns.TypeA); r == nil || len(r.Answer) != 1 {
		t.Fatal("synthetic table lacks productpage in ns1")
	}
}
