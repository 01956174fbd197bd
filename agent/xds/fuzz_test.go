package xds

import (
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
)

// FuzzDecodeNameTable feeds arbitrary DiscoveryResponse bytes, as they could
// arrive from a control plane, through the NDS validation.
func FuzzDecodeNameTable(f *testing.F) {
	good := &ndspb.NameTable{Table: map[string]*ndspb.NameInfo{
		"cart.shop.svc.cluster.local": {Ips: []string{"10.96.0.10"}, Registry: ndspb.RegistryKubernetes, Shortname: "cart", Namespace: "shop"},
		"api.example.com":             {Ips: []string{"240.240.0.1", "2001:2::1"}, Registry: ndspb.RegistryExternal},
	}}
	a, _ := anypb.New(good)
	for _, resp := range []*discoveryv3.DiscoveryResponse{
		{VersionInfo: "v1", Nonce: "n", TypeUrl: ndspb.TypeURL, Resources: []*anypb.Any{a}},
		{VersionInfo: "v2", TypeUrl: ndspb.TypeURL, Resources: []*anypb.Any{a, a}},
		{TypeUrl: ndspb.TypeURL},
		{TypeUrl: "type.googleapis.com/envoy.config.cluster.v3.Cluster", Resources: []*anypb.Any{a}},
	} {
		b, _ := proto.Marshal(resp)
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		var resp discoveryv3.DiscoveryResponse
		if err := proto.Unmarshal(data, &resp); err != nil {
			return
		}
		nt, err := DecodeNameTable(&resp)
		if err != nil {
			if nt != nil {
				t.Fatalf("error %v with a table", err)
			}
			return
		}
		if nt == nil || len(resp.GetResources()) != 1 || resp.GetResources()[0].GetTypeUrl() != ndspb.TypeURL {
			t.Fatalf("accepted a response that is not exactly one NameTable: %v", &resp)
		}
		// What was accepted survives a round trip unchanged.
		b, err := proto.Marshal(nt)
		if err != nil {
			t.Fatal(err)
		}
		var again ndspb.NameTable
		if err := proto.Unmarshal(b, &again); err != nil || !proto.Equal(nt, &again) {
			t.Fatalf("round trip changed the table: %v", err)
		}
	})
}
