package xds

import (
	"fmt"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/proto"

	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
)

// HealthInfoTypeURL is the type URL of the health reports the agent sends to
// istiod on the ADS stream (Istio's HealthInformation).
const HealthInfoTypeURL = "type.googleapis.com/istio.v1.HealthInformation"

// nackCode is the google.rpc code (INTERNAL) carried in a NACK's and in an
// unhealthy report's error_detail, as Istio's agent sends it.
const nackCode = 13

// DecodeNameTable checks that an NDS DiscoveryResponse holds exactly one
// resource of type ndspb.TypeURL and returns it unpacked. A response that fails
// here must be NACKed; the error says why.
func DecodeNameTable(resp *discoveryv3.DiscoveryResponse) (*ndspb.NameTable, error) {
	if resp == nil {
		return nil, fmt.Errorf("nds: empty response")
	}
	if resp.GetTypeUrl() != ndspb.TypeURL {
		return nil, fmt.Errorf("nds: response type %q, want %q", resp.GetTypeUrl(), ndspb.TypeURL)
	}
	if n := len(resp.GetResources()); n != 1 {
		return nil, fmt.Errorf("nds: response version %q carries %d resources, want exactly 1 NameTable", resp.GetVersionInfo(), n)
	}
	res := resp.GetResources()[0]
	if res.GetTypeUrl() != ndspb.TypeURL {
		return nil, fmt.Errorf("nds: response version %q carries a resource of type %q, want %q", resp.GetVersionInfo(), res.GetTypeUrl(), ndspb.TypeURL)
	}
	t := &ndspb.NameTable{}
	if err := proto.Unmarshal(res.GetValue(), t); err != nil {
		return nil, fmt.Errorf("nds: response version %q: NameTable does not decode: %v", resp.GetVersionInfo(), err)
	}
	return t, nil
}
