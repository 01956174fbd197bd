package dnsproxy_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/miekg/dns"
	"github.com/onramp-mesh/onramp/agent/dnsproxy"
	"github.com/onramp-mesh/onramp/agent/nametable"
	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
)

// A proxy on an ephemeral loopback port answering a mesh name from its
// table; other names would go to the upstream.
func Example() {
	// Every setting is given: agent/config owns the defaults.
	p, err := dnsproxy.New(dnsproxy.Config{
		Upstreams:   []string{"192.0.2.53"},
		Timeout:     2 * time.Second,
		MaxInFlight: dnsproxy.DefaultMaxInFlight,
		UDPSize:     1232,
		Cache:       dnsproxy.CacheConfig{MaxEntries: 10000, MaxBytes: 1 << 20, MaxTTL: time.Hour, StaleWindow: 24 * time.Hour},
	}, hclog.NewNullLogger())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	ix, err := nametable.Build(&ndspb.NameTable{Table: map[string]*ndspb.NameInfo{
		"productpage.ns1.svc.cluster.local": {Ips: []string{"10.96.0.10"}, Registry: ndspb.RegistryKubernetes, Shortname: "productpage", Namespace: "ns1"},
	}}, nametable.HostContext{Namespace: "ns1"}, nametable.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	p.SetTable(ix)

	pcs, ls, err := dnsproxy.Listen([]string{"127.0.0.1:0"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.ServeConns(ctx, pcs, ls)

	q := new(dns.Msg)
	q.SetQuestion("productpage.ns1.svc.cluster.local.", dns.TypeA)
	r, err := dns.Exchange(q, pcs[0].LocalAddr().String())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	fmt.Println(strings.Join(strings.Fields(r.Answer[0].String())[3:], " "))
	// Output: A 10.96.0.10
}
