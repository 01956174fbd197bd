package dnsproxy

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/onramp-mesh/onramp/agent/nametable"
)

// TestServeForLoad runs the proxy with a 10k-name synthetic mesh table for
// an external load generator (dnsperf), when DNSPROXY_LOAD_LISTEN is set:
//
//	DNSPROXY_LOAD_LISTEN=127.0.0.1:25353 DNSPROXY_LOAD_UPSTREAM=127.0.0.1:20053 \
//	DNSPROXY_LOAD_SECONDS=20 ./dnsproxy.test -test.run TestServeForLoad -test.v
func TestServeForLoad(t *testing.T) {
	listen := os.Getenv("DNSPROXY_LOAD_LISTEN")
	if listen == "" {
		t.Skip("set DNSPROXY_LOAD_LISTEN (and DNSPROXY_LOAD_UPSTREAM, DNSPROXY_LOAD_SECONDS) to serve for a load test")
	}
	secs, _ := strconv.Atoi(os.Getenv("DNSPROXY_LOAD_SECONDS"))
	if secs <= 0 || secs > 600 {
		secs = 20
	}
	up := os.Getenv("DNSPROXY_LOAD_UPSTREAM")
	if up == "" {
		up = "127.0.0.1:20053"
	}
	p, err := New(Config{Listen: []string{listen}, Upstreams: []string{up}}, hclog.New(&hclog.LoggerOptions{Level: hclog.Info}))
	if err != nil {
		t.Fatal(err)
	}
	ix, err := nametable.Build(nametable.Synthetic(10000), nametable.HostContext{
		Namespace: "ns1", Search: []string{"ns1.svc.cluster.local", "svc.cluster.local", "cluster.local"}, Ndots: 5,
	}, nametable.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p.SetTable(ix)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second)
	defer cancel()
	if err := p.Serve(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("requests %d", p.Requests())
}
