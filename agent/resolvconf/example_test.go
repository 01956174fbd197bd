package resolvconf_test

import (
	"fmt"
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
