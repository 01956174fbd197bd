package nametable

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
)

// mixedTable mixes auto-allocated VIPs with real addresses: ServiceEntries
// with VIPs only, with their own addresses, with both (two entries merged),
// a Kubernetes ClusterIP service and a headless one, and a gateway address.
func mixedTable() *ndspb.NameTable {
	t := &ndspb.NameTable{Table: map[string]*ndspb.NameInfo{}}
	ext := func(host string, ips ...string) {
		t.Table[host] = &ndspb.NameInfo{Ips: ips, Registry: ndspb.RegistryExternal}
	}
	ext("istio.io", "240.240.0.1")
	ext("api.stripe.com", "240.240.0.7", "2001:2::7")
	ext("my-fruits.internal", "10.103.1.1")
	ext("gateway.corp.example", "192.0.2.10")
	ext("both.example.com", "240.240.0.9")
	ext("Both.Example.com.", "10.200.0.9") // merges with the line above
	ext("v6vip.example.com", "10.200.0.8", "2001:2::8")
	add := func(k string, v *ndspb.NameInfo) { t.Table[k] = v }
	add(k8s("productpage", "ns1", "cluster.local", "10.96.0.12"))
	add(k8s("vipsvc", "ns1", "cluster.local", "240.240.3.3"))
	add(k8s("mysql", "ns1", "cluster.local", "10.244.1.10", "10.244.2.11"))
	return t
}

// TestDataPlaneModes: with a proxy every name is answered as Istio's agent
// answers it, VIPs included; without one, names known only by VIPs are
// not answered (the proxy forwards them), VIPs are dropped from names that
// have real addresses, and every other name is answered as with a proxy.
func TestDataPlaneModes(t *testing.T) {
	type q struct {
		name  string
		qtype uint16
	}
	common := map[q][]string{
		{"my-fruits.internal", dns.TypeA}:                []string{"my-fruits.internal. A 10.103.1.1"},
		{"gateway.corp.example", dns.TypeA}:              []string{"gateway.corp.example. A 192.0.2.10"},
		{"productpage", dns.TypeA}:                       []string{"productpage. A 10.96.0.12"},
		{"productpage.ns1.svc.cluster.local", dns.TypeA}: []string{"productpage.ns1.svc.cluster.local. A 10.96.0.12"},
		{"unknown.example.net", dns.TypeA}:               nil,
	}
	proxy := map[q][]string{
		{"istio.io", dns.TypeA}:                   []string{"istio.io. A 240.240.0.1"},
		{"istio.io", dns.TypeAAAA}:                []string{},
		{"api.stripe.com", dns.TypeA}:             []string{"api.stripe.com. A 240.240.0.7"},
		{"api.stripe.com", dns.TypeAAAA}:          []string{"api.stripe.com. AAAA 2001:2::7"},
		{"both.example.com", dns.TypeA}:           []string{"both.example.com. A 10.200.0.9", "both.example.com. A 240.240.0.9"},
		{"v6vip.example.com", dns.TypeAAAA}:       []string{"v6vip.example.com. AAAA 2001:2::8"},
		{"vipsvc.ns1", dns.TypeA}:                 []string{"vipsvc.ns1. A 240.240.3.3"},
		{"1.0.240.240.in-addr.arpa", dns.TypePTR}: []string{"1.0.240.240.in-addr.arpa. PTR istio.io."},
	}
	none := map[q][]string{
		{"istio.io", dns.TypeA}:                       nil,
		{"istio.io", dns.TypeAAAA}:                    nil,
		{"istio.io.ns1.svc.cluster.local", dns.TypeA}: nil,
		{"api.stripe.com", dns.TypeA}:                 nil,
		{"api.stripe.com", dns.TypeAAAA}:              nil,
		{"both.example.com", dns.TypeA}:               []string{"both.example.com. A 10.200.0.9"},
		{"v6vip.example.com", dns.TypeA}:              []string{"v6vip.example.com. A 10.200.0.8"},
		{"v6vip.example.com", dns.TypeAAAA}:           []string{},
		{"vipsvc.ns1", dns.TypeA}:                     nil,
		{"vipsvc", dns.TypeA}:                         nil,
		{"1.0.240.240.in-addr.arpa", dns.TypePTR}:     nil,
	}
	for mode, want := range map[DataPlane]map[q][]string{DataPlaneProxy: proxy, DataPlaneNone: none, "": proxy} {
		ix := mustBuild(t, mixedTable(), testHost, Options{DataPlane: mode})
		for k, v := range common {
			want[k] = v
		}
		for k, w := range want {
			r := ask(t, ix, k.name, k.qtype)
			var got []string
			if r != nil {
				got = summarize(r)
				slices.Sort(got)
				if got == nil {
					got = []string{}
				}
			}
			if (got == nil) != (w == nil) || !slices.Equal(got, w) {
				t.Errorf("%q: %s %s = %q, want %q", mode, k.name, dns.TypeToString[k.qtype], got, w)
			}
		}
		if len(ix.Skipped()) != 0 {
			t.Errorf("%q: withheld names reported as skipped: %v", mode, ix.Skipped())
		}
	}

	// What none withholds, and the lookups of it, carried across tables.
	lookups := new(Lookups)
	ix := mustBuild(t, mixedTable(), testHost, Options{DataPlane: DataPlaneNone, Lookups: lookups})
	for _, n := range []string{"istio.io", "ISTIO.IO", "api.stripe.com", "vipsvc.ns1", "vipsvc", "istio.io.corp.example"} {
		ask(t, ix, n, dns.TypeA)
	}
	ask(t, ix, "istio.io", dns.TypeAAAA)
	want := []Withheld{
		{Host: "api.stripe.com.", VIPs: []string{"240.240.0.7", "2001:2::7"}, Lookups: 1},
		{Host: "istio.io.", VIPs: []string{"240.240.0.1"}, Lookups: 3},
		{Host: "vipsvc.ns1.svc.cluster.local.", VIPs: []string{"240.240.3.3"}, Lookups: 2},
	}
	if got := ix.Withheld(); !slices.EqualFunc(got, want, func(a, b Withheld) bool {
		return a.Host == b.Host && a.Lookups == b.Lookups && slices.Equal(a.VIPs, b.VIPs)
	}) {
		t.Fatalf("Withheld = %+v\nwant %+v", got, want)
	}
	next := mixedTable()
	delete(next.Table, "api.stripe.com")
	ix = mustBuild(t, next, testHost, Options{DataPlane: DataPlaneNone, Lookups: lookups})
	ask(t, ix, "istio.io", dns.TypeA)
	if w := ix.Withheld(); len(w) != 2 || w[0].Host != "istio.io." || w[0].Lookups != 4 {
		t.Fatalf("after the next table: %+v", w)
	}
	var m bytes.Buffer
	ix.WritePrometheus(&m)
	for _, line := range []string{"onramp_nametable_withheld_names 2\n", "onramp_nametable_withheld_lookups_total 7\n"} {
		if !strings.Contains(m.String(), line) {
			t.Errorf("metrics lack %q:\n%s", line, m.String())
		}
	}
	s := ix.Snapshot()
	if s.DataPlane != "none" || len(s.Withheld) != 2 || slices.ContainsFunc(s.Entries, func(e Entry) bool { return e.Name == "istio.io." }) {
		t.Errorf("snapshot: data plane %q, withheld %v", s.DataPlane, s.Withheld)
	}
	// Withheld names still route to the proxy (which forwards and counts them).
	if d := ix.Domains(); !slices.Contains(d, "istio.io") {
		t.Errorf("Domains() lacks the withheld istio.io: %v", d)
	}
	if ix.DataPlane() != DataPlaneNone || mustBuild(t, nil, HostContext{}, Options{}).DataPlane() != DataPlaneProxy {
		t.Error("DataPlane()")
	}
}

// TestWithheldLookupsDoNotAllocate: counting a withheld name stays off the
// allocator, as the rest of the query path.
func TestWithheldLookupsDoNotAllocate(t *testing.T) {
	ix := mustBuild(t, mixedTable(), testHost, Options{DataPlane: DataPlaneNone})
	q, qend, qname := query(t, "istio.io", dns.TypeA, false)
	buf := make([]byte, 0, 512)
	if n := testing.AllocsPerRun(100, func() { ix.AppendResponse(buf, q, qend, qname, dns.TypeA) }); n != 0 {
		t.Fatalf("%v allocations per withheld lookup", n)
	}
	if ix.Withheld()[1].Lookups < 100 {
		t.Fatal("lookups not counted")
	}
}

func TestParseDataPlane(t *testing.T) {
	for _, s := range []string{"none", "proxy"} {
		if d, err := ParseDataPlane(s); err != nil || string(d) != s {
			t.Errorf("%s: %v %v", s, d, err)
		}
	}
	if _, err := ParseDataPlane("envoy"); err == nil || !strings.Contains(err.Error(), "want none") {
		t.Errorf("envoy: %v", err)
	}
}
