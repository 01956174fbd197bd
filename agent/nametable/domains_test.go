package nametable

import (
	"fmt"
	"slices"
	"testing"

	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
)

func TestDomains(t *testing.T) {
	tbl := &ndspb.NameTable{Table: map[string]*ndspb.NameInfo{
		"productpage.ns1.svc.cluster.local": {Ips: []string{"10.96.0.10"}, Registry: "Kubernetes", Shortname: "productpage", Namespace: "ns1"},
		"api.example.com":                   {Ips: []string{"240.240.0.1", "2001:db8::1"}, Registry: "External"},
		"*.wild.example.org":                {Ips: []string{"240.240.0.2"}, Registry: "External"},
		"API.Example.com.":                  {Ips: []string{"240.240.0.3"}, Registry: "External"},
	}}
	ix, err := Build(tbl, HostContext{Namespace: "ns1"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := ix.Domains()
	want := []string{
		"0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
		"0.240.240.in-addr.arpa",
		"0.96.10.in-addr.arpa",
		"api.example.com",
		"cluster.local",
		"productpage.ns1",
		"productpage.ns1.svc",
		"wild.example.org",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Domains() =\n%q\nwant\n%q", got, want)
	}
	if got := (*Index)(nil).Domains(); !slices.Equal(got, []string{"cluster.local"}) {
		t.Errorf("nil index: %q", got)
	}
}

func TestDomainsFit(t *testing.T) {
	tbl := &ndspb.NameTable{Table: map[string]*ndspb.NameInfo{}}
	for i := range 2000 {
		tbl.Table[fmt.Sprintf("svc%d.team%d.example.com", i, i%7)] = &ndspb.NameInfo{Ips: []string{fmt.Sprintf("10.%d.%d.1", i/250, i%250)}, Registry: "External"}
		tbl.Table[fmt.Sprintf("s%d.ns%d.svc.cluster.local", i, i%3)] = &ndspb.NameInfo{Ips: []string{"10.200.0.1"}, Registry: "Kubernetes", Shortname: fmt.Sprintf("s%d", i), Namespace: fmt.Sprintf("ns%d", i%3)}
	}
	ix, err := Build(tbl, HostContext{Namespace: "default"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := ix.Domains()
	if len(got) > MaxDomains || !slices.Contains(got, "cluster.local") || !slices.Contains(got, "example.com") {
		t.Fatalf("Domains() = %d zones: %q", len(got), got)
	}
	for _, z := range []string{"com", "in-addr.arpa"} {
		if slices.Contains(got, z) {
			t.Errorf("Domains() collapsed too far: has %q", z)
		}
	}
}
