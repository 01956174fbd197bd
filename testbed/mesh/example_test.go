package mesh_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"

	"github.com/onramp-mesh/onramp/testbed/mesh"
)

func Example() {
	state, _ := os.MkdirTemp("", "mesh-example")
	defer os.RemoveAll(state)

	store, err := mesh.Load("testdata/demo", mesh.Options{StatePath: filepath.Join(state, "vips.json")}, hclog.NewNullLogger())
	if err != nil {
		fmt.Println(err)
		return
	}
	vm := mesh.Proxy{Namespace: "vm", ClusterID: "Kubernetes", IPs: []netip.Addr{netip.MustParseAddr("10.0.0.5")}, DNSCapture: true}
	table := store.NameTable(vm)
	for _, host := range []string{"productpage.ns1.svc.cluster.local", "my-fruits.internal", "istio.io"} {
		info := table.Table[host]
		fmt.Println(host, info.Ips, info.Registry)
	}
	g, _ := store.WorkloadGroup("vm", "vm-group")
	fmt.Println(g.Name, g.Spec.Probe.GetHttpGet().GetPath())
	// Output:
	// productpage.ns1.svc.cluster.local [10.96.10.20] Kubernetes
	// my-fruits.internal [10.103.1.1] External
	// istio.io [240.240.0.2] External
	// vm-group /ready
}
