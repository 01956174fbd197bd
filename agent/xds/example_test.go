package xds_test

import (
	"context"
	"fmt"
	"net/netip"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/onramp-mesh/onramp/agent/xds"
	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
	"github.com/onramp-mesh/onramp/installer/bundle"
)

func ExampleNode() {
	in := xds.NodeInfo{
		Namespace:         "shop",
		ServiceAccount:    "cart-sa",
		ClusterID:         "Kubernetes",
		AutoRegisterGroup: "cart",
		IP:                netip.MustParseAddr("10.0.3.7"),
		Env:               map[string]string{"POD_NAME": "cart-vm-1"},
		HostIPs:           []netip.Addr{netip.MustParseAddr("10.0.3.7"), netip.MustParseAddr("192.168.5.5")},
	}
	node, err := xds.Node(in)
	if err != nil {
		panic(err)
	}
	md := node.GetMetadata().GetFields()
	fmt.Println(node.GetId())
	fmt.Println(md["INSTANCE_IPS"].GetStringValue(), md["DNS_CAPTURE"].GetStringValue(), md["AUTO_REGISTER_GROUP"].GetStringValue())
	// Output:
	// sidecar~10.0.3.7~cart-vm-1.shop~shop.svc.cluster.local
	// 10.0.3.7,192.168.5.5 true cart
}

func ExampleDecodeNameTable() {
	a, _ := anypb.New(&ndspb.NameTable{Table: map[string]*ndspb.NameInfo{
		"cart.shop.svc.cluster.local": {Ips: []string{"10.96.0.10"}, Registry: ndspb.RegistryKubernetes},
	}})
	nt, err := xds.DecodeNameTable(&discoveryv3.DiscoveryResponse{TypeUrl: ndspb.TypeURL, Resources: []*anypb.Any{a}})
	fmt.Println(nt.GetTable()["cart.shop.svc.cluster.local"].GetIps(), err)

	_, err = xds.DecodeNameTable(&discoveryv3.DiscoveryResponse{VersionInfo: "v9", TypeUrl: ndspb.TypeURL})
	fmt.Println(err)
	// Output:
	// [10.96.0.10] <nil>
	// nds: response version "v9" carries 0 resources, want exactly 1 NameTable
}

// A Client connects to istiod from the bundle and hands name tables to the
// DNS proxy; SetHealth forwards the readiness probe's transitions.
func ExampleNew() {
	var b *bundle.Bundle // from bundle.Load
	var in xds.NodeInfo  // from b and the host: daemon.NodeInfo(b, daemon.HostIPs())
	node, err := xds.Node(in)
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := xds.New(xds.Config{
		Address:     b.DiscoveryAddress,
		ServerName:  b.ServerName,
		Plaintext:   b.Plaintext,
		Roots:       b.Roots,
		Token:       func() (string, error) { return b.Token, nil },
		ClusterID:   b.ClusterID,
		Node:        node,
		OnNameTable: func(version string, t *ndspb.NameTable) error { return nil },
	}, hclog.Default())
	if err != nil {
		fmt.Println(err)
		return
	}
	go c.Run(context.Background())
	c.SetHealth(true, "")
	// Output: xds: node: no workload IP; set ISTIO_SVC_IP in cluster.env
}
