package resolvconf_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/onramp-mesh/onramp/agent/resolvconf"
)

func ExampleParse() {
	cfg, err := resolvconf.Parse(strings.NewReader(`# written by the cloud's DHCP client
nameserver 10.0.0.2
nameserver fe80::1%eth0
domain old.example
search ns1.svc.cluster.local svc.cluster.local cluster.local
options ndots:5 timeout:2 edns0
`))
	if err != nil {
		panic(err)
	}
	fmt.Println(cfg.Servers)
	fmt.Println(cfg.Search)
	fmt.Println(cfg.Ndots, cfg.Options.Timeout, cfg.Options.EDNS0)
	// Output:
	// [10.0.0.2:53 [fe80::1%eth0]:53]
	// [ns1.svc.cluster.local svc.cluster.local cluster.local]
	// 5 2s true
}

// One Watcher serves every part of the agent that follows the host's
// resolver: the DNS proxy takes the upstreams (dnsproxy.Config.Host), the
// name table the search list and ndots. Read gives the state at start;
// Run (not shown) follows it.
func ExampleWatcher() {
	dir, err := os.MkdirTemp("", "resolvconf-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	conf := filepath.Join(dir, "resolv.conf")
	os.WriteFile(conf, []byte("nameserver 10.0.0.2\nsearch ns1.svc.cluster.local svc.cluster.local\noptions ndots:5\n"), 0o644)

	w := &resolvconf.Watcher{Paths: resolvconf.Paths{ResolvConf: conf, ResolvedUpstream: filepath.Join(dir, "absent")}}
	w.Subscribe(func(h resolvconf.Host) {
		if h.UpstreamErr == nil {
			fmt.Println("upstreams:", h.Upstreams)
		}
	})
	w.Subscribe(func(h resolvconf.Host) {
		if h.ResolvErr == nil {
			fmt.Println("search:", h.Search, "ndots:", h.Ndots)
		}
	})
	w.Read()
	// Output:
	// upstreams: [10.0.0.2:53]
	// search: [ns1.svc.cluster.local svc.cluster.local] ndots: 5
}
