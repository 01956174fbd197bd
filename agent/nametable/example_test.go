package nametable_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/onramp-mesh/onramp/agent/nametable"
	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
)

func exampleTable() *ndspb.NameTable {
	return &ndspb.NameTable{Table: map[string]*ndspb.NameInfo{
		"productpage.ns1.svc.cluster.local": {
			Ips: []string{"10.96.0.10"}, Registry: ndspb.RegistryKubernetes, Shortname: "productpage", Namespace: "ns1",
		},
		"api.example.com": {Ips: []string{"240.240.0.1", "2001:2::1"}, Registry: ndspb.RegistryExternal},
	}}
}

func ExampleBuild() {
	ix, err := nametable.Build(exampleTable(), nametable.HostContext{
		Namespace: "ns1",
		Search:    []string{"ns1.svc.cluster.local", "svc.cluster.local", "cluster.local"},
	}, nametable.Options{})
	if err != nil {
		panic(err)
	}
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"productpage", dns.TypeA},
		{"productpage.ns1.svc.cluster.local.svc.cluster.local", dns.TypeA}, // a search-list try
		{"productpage.ns1", dns.TypeAAAA},                                  // NODATA
		{"api.example.com", dns.TypeAAAA},
		{"10.0.96.10.in-addr.arpa", dns.TypePTR},
		{"www.example.net", dns.TypeA}, // not in the mesh: forwarded
	} {
		rrs, found := ix.Lookup(q.name, q.qtype)
		fmt.Printf("%s %s found=%v\n", q.name, dns.TypeToString[q.qtype], found)
		for _, rr := range rrs {
			fmt.Println("  ", strings.ReplaceAll(rr.String(), "\t", " "))
		}
	}
	// Output:
	// productpage A found=true
	//    productpage. 30 IN A 10.96.0.10
	// productpage.ns1.svc.cluster.local.svc.cluster.local A found=true
	//    productpage.ns1.svc.cluster.local.svc.cluster.local. 30 IN CNAME productpage.ns1.svc.cluster.local.
	//    productpage.ns1.svc.cluster.local. 30 IN A 10.96.0.10
	// productpage.ns1 AAAA found=true
	// api.example.com AAAA found=true
	//    api.example.com. 30 IN AAAA 2001:2::1
	// 10.0.96.10.in-addr.arpa PTR found=true
	//    10.0.96.10.in-addr.arpa. 30 IN PTR productpage.ns1.svc.cluster.local.
	// www.example.net A found=false
}

func ExampleIndex_AppendResponse() {
	ix, err := nametable.Build(exampleTable(), nametable.HostContext{Namespace: "ns1"}, nametable.Options{})
	if err != nil {
		panic(err)
	}
	// What the DNS proxy has after parsing a query: the bytes, the end of
	// the question, the lowercased wire qname and the type.
	q := new(dns.Msg)
	q.SetQuestion("ProductPage.NS1.", dns.TypeA)
	query, _ := q.Pack()
	qend := len(query)
	qname := []byte(strings.ToLower(string(query[12 : qend-4])))

	buf := make([]byte, 0, 512) // reused across queries: no allocation
	resp, ok := ix.AppendResponse(buf, query, qend, qname, dns.TypeA)
	fmt.Println("answered:", ok)
	r := new(dns.Msg)
	if err := r.Unpack(resp); err != nil {
		panic(err)
	}
	fmt.Println(r.Authoritative, r.Answer[0].Header().Name, r.Answer[0].(*dns.A).A)
	// Output:
	// answered: true
	// true ProductPage.NS1. 10.96.0.10
}

func ExampleStore() {
	dir, _ := os.MkdirTemp("", "onramp-example")
	defer os.RemoveAll(dir)
	s := &nametable.Store{Dir: dir}
	if err := s.Save(nametable.Stored{Table: exampleTable(), Version: "v7", Pushed: time.Now()}); err != nil {
		panic(err)
	}
	st, err := s.Load()
	if err != nil {
		panic(err)
	}
	fmt.Println(filepath.Base(s.Path()), st.Version, len(st.Table.GetTable()))
	// Output: nametable.bin v7 2
}
