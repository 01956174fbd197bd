package nametable

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
)

// TestOddEntriesAgainstIstio adds, one at a time, each shape of entry that
// Istio's validation lets into a NameTable, to a table of good entries. The
// table always builds, the good entries keep answering, and the odd one
// answers as Istio's agent does (pkg/dns/client: netutil.ParseIPsSplitToV4V6
// sorts each address into IPv4 or IPv6, dropping what netip.ParseAddr
// refuses; an entry with no address left is skipped) unless differs says
// why onramp answers otherwise.
func TestOddEntriesAgainstIstio(t *testing.T) {
	ext := func(ips ...string) *ndspb.NameInfo {
		return &ndspb.NameInfo{Ips: ips, Registry: ndspb.RegistryExternal}
	}
	nodata := []string{}
	tests := []struct {
		key   string
		info  *ndspb.NameInfo
		q     string
		qtype uint16
		want  []string // onramp's answer; nil: not answered (forwarded upstream), empty: NODATA
		istio []string // Istio's agent's answer, same notation
		// differs says why want is not istio; required when they differ.
		differs string
		skip    string // a reason Skipped must give for the entry; "" for none
	}{
		{"mapped.internal", ext("::ffff:10.105.0.1"), "mapped.internal", dns.TypeA, []string{"mapped.internal. A 10.105.0.1"}, nodata,
			"an IPv4-mapped address names an IPv4 host: answered as A (see parseAddr)", ""},
		{"mapped.internal", ext("::ffff:10.105.0.1"), "mapped.internal", dns.TypeAAAA, nodata, []string{"mapped.internal. AAAA ::ffff:10.105.0.1"},
			"an IPv4-mapped address names an IPv4 host: no AAAA (see parseAddr)", ""},
		{"zoned.internal", ext("fe80::1%eth0"), "zoned.internal", dns.TypeAAAA, nil, []string{"zoned.internal. AAAA fe80::1"},
			"the zone cannot travel in DNS, and fe80::1 without it cannot be connected to", "has a zone"},
		{"zoned2.internal", ext("fe80::1%eth0", "10.1.0.2"), "zoned2.internal", dns.TypeA, []string{"zoned2.internal. A 10.1.0.2"}, []string{"zoned2.internal. A 10.1.0.2"}, "", "has a zone"},
		{"zoned2.internal", ext("fe80::1%eth0", "10.1.0.2"), "zoned2.internal", dns.TypeAAAA, nodata, []string{"zoned2.internal. AAAA fe80::1"},
			"the zoned address is dropped, the entry stays", "has a zone"},
		{"unspec6.internal", ext("::"), "unspec6.internal", dns.TypeAAAA, nil, []string{"unspec6.internal. AAAA ::"},
			"connecting to :: reaches this host, not the service", "unspecified"},
		{"unspec4.internal", ext("0.0.0.0"), "unspec4.internal", dns.TypeA, nil, []string{"unspec4.internal. A 0.0.0.0"},
			"connecting to 0.0.0.0 reaches this host, not the service", "unspecified"},
		{"Upper.Example.COM", ext("10.1.0.3"), "upper.example.com", dns.TypeA, []string{"upper.example.com. A 10.1.0.3"}, []string{"upper.example.com. A 10.1.0.3"}, "", ""},
		{"Upper.Example.COM", ext("10.1.0.3"), "UPPER.example.com", dns.TypeA, []string{"UPPER.example.com. A 10.1.0.3"}, []string{"upper.example.com. A 10.1.0.3"},
			"the question's case is kept (0x20); Istio's agent lowercases the owner", ""},
		{"dot.example.com.", ext("10.1.0.4"), "dot.example.com", dns.TypeA, []string{"dot.example.com. A 10.1.0.4"}, []string{"dot.example.com. A 10.1.0.4"}, "", ""},
		{"k.ns1.svc.cluster.local.", &ndspb.NameInfo{Ips: []string{"10.1.0.5"}, Registry: ndspb.RegistryKubernetes, Shortname: "k", Namespace: "ns1"},
			"k.ns1", dns.TypeA, []string{"k.ns1. A 10.1.0.5"}, nil,
			"Istio's agent derives no names at all from a Kubernetes key with a trailing dot; the dot is not part of the name", ""},
		{"*.wild.example", ext("10.1.0.6"), "a.b.wild.example", dns.TypeA, []string{"a.b.wild.example. A 10.1.0.6"}, []string{"a.b.wild.example. A 10.1.0.6"}, "", ""},
		{"*.wild.example", ext("10.1.0.6"), "wild.example", dns.TypeA, nil, nil, "", ""},
		{"cidr.internal", ext("10.2.0.0/24"), "cidr.internal", dns.TypeA, nil, nil, "", "CIDR"},
		{"cidr32.internal", ext("10.2.0.9/32"), "cidr32.internal", dns.TypeA, nil, nil, "", "CIDR"},
		{"cidr2.internal", ext("10.2.0.0/24", "10.2.0.7"), "cidr2.internal", dns.TypeA, []string{"cidr2.internal. A 10.2.0.7"}, []string{"cidr2.internal. A 10.2.0.7"}, "", "CIDR"},
		{"v6.internal", ext("2001:db8::7"), "v6.internal", dns.TypeA, nodata, nodata, "", ""},
		{"v6.internal", ext("2001:db8::7"), "v6.internal", dns.TypeAAAA, []string{"v6.internal. AAAA 2001:db8::7"}, []string{"v6.internal. AAAA 2001:db8::7"}, "", ""},
		{"bad.internal", ext("not-an-ip"), "bad.internal", dns.TypeA, nil, nil, "", "not an IP address"},
		{"lead0.internal", ext("01.2.3.4", "1.2.3"), "lead0.internal", dns.TypeA, nil, nil, "", "not an IP address"},
		{"empty.internal", ext(), "empty.internal", dns.TypeA, nil, nil, "", "no addresses"},
		{"a..b.internal", ext("10.1.0.9"), "b.internal", dns.TypeA, nil, nil, "", "not a DNS name"},
		{"bad host.internal", ext("10.1.0.9"), "host.internal", dns.TypeA, nil, nil, "", "not a DNS name"},
		{"x.ns1.svc.cluster.local", &ndspb.NameInfo{Ips: []string{"10.1.0.8"}, Registry: ndspb.RegistryKubernetes},
			"x.ns1.svc.cluster.local", dns.TypeA, []string{"x.ns1.svc.cluster.local. A 10.1.0.8"}, []string{"x.ns1.svc.cluster.local. A 10.1.0.8"}, "", "without shortname"},
		{"x.ns1.svc.cluster.local", &ndspb.NameInfo{Ips: []string{"10.1.0.8"}, Registry: ndspb.RegistryKubernetes},
			"x.ns1", dns.TypeA, nil, nil, "", "without shortname"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s/%s", tt.key, tt.q, dns.TypeToString[tt.qtype]), func(t *testing.T) {
			same := slices.Equal(tt.want, tt.istio) && (tt.want == nil) == (tt.istio == nil)
			if !same && tt.differs == "" {
				t.Fatal("onramp's answer differs from Istio's agent's without a reason")
			}
			if same && tt.differs != "" {
				t.Fatal("a reason for a difference that is not one")
			}
			tab := testTable()
			tab.Table[tt.key] = tt.info
			ix, err := Build(tab, testHost, Options{})
			if err != nil {
				t.Fatalf("a table with one odd entry was refused: %v", err)
			}
			for _, good := range []string{"productpage", "api.example.com", "web-0.hl.ns1"} {
				if r := ask(t, ix, good, dns.TypeA); r == nil || len(r.Answer) == 0 {
					t.Fatalf("good entry %s no longer answered", good)
				}
			}
			r := ask(t, ix, tt.q, tt.qtype)
			switch {
			case tt.want == nil && r != nil:
				t.Fatalf("answered %q, want forwarded", summarize(r))
			case tt.want != nil && r == nil:
				t.Fatalf("not answered, want %q", tt.want)
			case r != nil && !slices.Equal(summarize(r), tt.want) && len(r.Answer)+len(tt.want) > 0:
				t.Fatalf("answer %q, want %q", summarize(r), tt.want)
			}
			var reasons []string
			for _, s := range ix.Skipped() {
				if s.Host == tt.key {
					reasons = append(reasons, s.String())
				} else if s.Host != "noips.example.com" {
					t.Errorf("skipped a good entry: %v", s)
				}
			}
			if got := strings.Join(reasons, "; "); (tt.skip == "") != (got == "") || !strings.Contains(got, tt.skip) {
				t.Fatalf("Skipped says %q, want %q", got, tt.skip)
			}
		})
	}
}

// TestSkippedReport checks what a table with several odd entries reports:
// each dropped address once, with the entry and the reason, in host order,
// and the metrics.
func TestSkippedReport(t *testing.T) {
	tab := &ndspb.NameTable{Table: map[string]*ndspb.NameInfo{
		"good.internal":   {Ips: []string{"10.0.0.1"}},
		"zoned.internal":  {Ips: []string{"fe80::1%eth0"}},
		"mixed.internal":  {Ips: []string{"10.0.0.2", "::", "10.0.0.0/8"}},
		"mapped.internal": {Ips: []string{"::ffff:10.105.0.1"}},
	}}
	ix := mustBuild(t, tab, HostContext{}, Options{})
	var got []string
	for _, s := range ix.Skipped() {
		got = append(got, s.String())
	}
	want := []string{
		`entry "mixed.internal": address "::" dropped: "::" is the unspecified address; connecting to it reaches this host, not the service`,
		`entry "mixed.internal": address "10.0.0.0/8" dropped: "10.0.0.0/8" is a CIDR range, not an address; a DNS answer carries single addresses`,
		`entry "zoned.internal": address "fe80::1%eth0" dropped: "fe80::1%eth0" has a zone (%eth0); a DNS answer cannot carry it, and the address is unusable without it`,
		`entry "zoned.internal" skipped: no usable address left`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Skipped:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var m bytes.Buffer
	ix.WritePrometheus(&m)
	for _, line := range []string{"onramp_nametable_dropped_addresses 3\n", "onramp_nametable_skipped_entries 1\n", "onramp_nametable_withheld_names 0\n"} {
		if !strings.Contains(m.String(), line) {
			t.Errorf("metrics lack %q:\n%s", line, m.String())
		}
	}
	if got := summarize(ask(t, ix, "mapped.internal", dns.TypeA)); !slices.Equal(got, []string{"mapped.internal. A 10.105.0.1"}) {
		t.Errorf("mapped: %v", got)
	}
	if got := summarize(ask(t, ix, "1.0.105.10.in-addr.arpa", dns.TypePTR)); !slices.Equal(got, []string{"1.0.105.10.in-addr.arpa. PTR mapped.internal."}) {
		t.Errorf("mapped PTR: %v", got)
	}
	// The next table without them reports nothing.
	delete(tab.Table, "zoned.internal")
	tab.Table["mixed.internal"].Ips = []string{"10.0.0.2"}
	if s := mustBuild(t, tab, HostContext{}, Options{}).Skipped(); len(s) != 0 {
		t.Fatalf("clean table still reports %v", s)
	}
	var nilIx *Index
	m.Reset()
	nilIx.WritePrometheus(&m)
	if !strings.Contains(m.String(), "onramp_nametable_dropped_addresses 0\n") || nilIx.Skipped() != nil {
		t.Fatal("nil index")
	}
}

// TestBuildRefusesBadOptions: only what the host gives can fail a build.
func TestBuildRefusesBadOptions(t *testing.T) {
	for _, tt := range []struct {
		hc   HostContext
		opt  Options
		want string
	}{
		{HostContext{ClusterDomain: "bad..domain"}, Options{}, "cluster domain"},
		{HostContext{}, Options{TTL: 1}, "out of range"},
		{HostContext{}, Options{DataPlane: "envoy"}, `data plane "envoy"`},
	} {
		ix, err := Build(testTable(), tt.hc, tt.opt)
		if err == nil || ix != nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v %+v: %v %v, want an error with %q", tt.hc, tt.opt, ix, err, tt.want)
		}
	}
}

// TestAppendResponseOddNames: question names the proxy would never build
// (empty interior labels, compression bytes, too many labels) are refused,
// not a panic.
func TestAppendResponseOddNames(t *testing.T) {
	ix := mustBuild(t, testTable(), testHost, Options{})
	for _, qname := range [][]byte{
		append(append([]byte{1, 'a'}, make([]byte, 250)...), 0), // 250 empty labels
		append(bytes.Repeat([]byte{0}, 254), 0),
		{1, 'a', 0, 1, 'b', 0},
		{0xc0, 12, 0},
		append(bytes.Repeat([]byte{1, 'x'}, 127), 0),
		append(bytes.Repeat([]byte{63}, 254), 0),
	} {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypePTR} {
			q := make([]byte, 12, 12+len(qname)+4)
			q = append(append(q, qname...), byte(qt>>8), byte(qt), 0, 1)
			if resp, ok := ix.AppendResponse(nil, q, len(q), qname, qt); ok || len(resp) != 0 {
				t.Errorf("% x: answered", qname)
			}
		}
	}
}
