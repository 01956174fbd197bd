package controlplane_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
	"github.com/onramp-mesh/onramp/testbed/ca"
	"github.com/onramp-mesh/onramp/testbed/controlplane"
	"github.com/onramp-mesh/onramp/testbed/mesh"
)

// Start a control plane on loopback and read the name table of a node over
// plaintext ADS.
func Example() {
	config, _ := os.MkdirTemp("", "mesh")
	defer os.RemoveAll(config)
	os.WriteFile(filepath.Join(config, "svc.yaml"), []byte(`apiVersion: v1
kind: Service
metadata: {name: productpage, namespace: ns1}
spec: {clusterIP: 10.96.0.20, ports: [{name: http, port: 9080}]}
`), 0o644)

	authority, _ := ca.New(ca.Options{}, nil)
	store, err := mesh.Load(config, mesh.Options{}, nil)
	if err != nil {
		panic(err)
	}
	srv, err := controlplane.Start(controlplane.Options{Authority: authority, Mesh: store, PlaintextAddr: "127.0.0.1:0"})
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	cc, _ := grpc.NewClient(srv.PlaintextAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, _ := discoveryv3.NewAggregatedDiscoveryServiceClient(cc).StreamAggregatedResources(ctx)
	md, _ := structpb.NewStruct(map[string]any{"NAMESPACE": "ns1", "INSTANCE_IPS": "10.0.0.5"})
	stream.Send(&discoveryv3.DiscoveryRequest{
		Node:    &corev3.Node{Id: "sidecar~10.0.0.5~vm1.ns1~ns1.svc.cluster.local", Metadata: md},
		TypeUrl: ndspb.TypeURL,
	})
	resp, err := stream.Recv()
	if err != nil {
		panic(err)
	}
	table := &ndspb.NameTable{}
	resp.GetResources()[0].UnmarshalTo(table)
	fmt.Println(table.GetTable()["productpage.ns1.svc.cluster.local"].GetIps())
	// Output: [10.96.0.20]
}
