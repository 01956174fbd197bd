package xds

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
)

var update = flag.Bool("update", false, "rewrite golden files")

// testInfo is what the daemon makes of a typical istioctl bundle on a host
// with a second interface, a docker bridge, and loopback and link-local addresses.
func testInfo() *NodeInfo {
	probe := &networkingv1alpha3.ReadinessProbe{
		PeriodSeconds:    5,
		FailureThreshold: 2,
		HealthCheckMethod: &networkingv1alpha3.ReadinessProbe_HttpGet{HttpGet: &networkingv1alpha3.HTTPHealthCheckConfig{
			Path: "/ready", Port: 8080,
		}},
	}
	return &NodeInfo{
		Namespace:         "shop",
		ServiceAccount:    "cart-sa",
		ClusterID:         "east",
		Network:           "vm-net",
		MeshID:            "mesh1",
		WorkloadName:      "cart",
		Labels:            map[string]string{"app": "cart", "version": "v2"},
		AutoRegisterGroup: "cart",
		IP:                netip.MustParseAddr("10.0.3.7"),
		HostIPs: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.0.3.7"), netip.MustParseAddr("192.168.5.5"),
			netip.MustParseAddr("fe80::1%eth0"), netip.MustParseAddr("::1"), netip.MustParseAddr("::ffff:172.17.0.1"), netip.MustParseAddr("fd00::7")},
		ProxyConfig: &meshv1alpha1.ProxyConfig{
			DiscoveryAddress: "istiod.istio-system.svc:15012",
			ProxyMetadata:    map[string]string{"ISTIO_META_DNS_CAPTURE": "true", "ISTIO_META_FROM_MESH": "m", "ISTIO_META_CUSTOM_FLAG": "overridden"},
			ReadinessProbe:   probe,
		},
		ReadinessProbe: probe,
		Meta: map[string]string{
			"CLUSTER_ID":          "east",
			"NETWORK":             "vm-net",
			"MESH_ID":             "mesh1",
			"WORKLOAD_NAME":       "cart",
			"AUTO_REGISTER_GROUP": "cart",
			"DNS_CAPTURE":         "true",
			"INSTANCE_IPS":        "10.0.3.7,fd00::7,10.0.3.7",
			"CUSTOM_FLAG":         "yes",
		},
		Env: map[string]string{
			"POD_NAMESPACE":                  "shop",
			"POD_NAME":                       "cart-vm-1",
			"SERVICE_ACCOUNT":                "cart-sa",
			"CANONICAL_SERVICE":              "cart",
			"ISTIO_META_CLUSTER_ID":          "east",
			"ISTIO_META_NETWORK":             "vm-net",
			"ISTIO_META_MESH_ID":             "mesh1",
			"ISTIO_META_WORKLOAD_NAME":       "cart",
			"ISTIO_META_AUTO_REGISTER_GROUP": "cart",
			"ISTIO_META_DNS_CAPTURE":         "true",
			"ISTIO_META_INSTANCE_IPS":        "10.0.3.7,fd00::7,10.0.3.7",
			"ISTIO_META_CUSTOM_FLAG":         "yes",
			"ISTIO_METAJSON_LABELS":          `{"app":"cart","version":"v2"}`,
			"ISTIO_METAJSON_ANNOTATIONS":     `{"sidecar.istio.io/interceptionMode":"NONE"}`,
			"ISTIO_METAJSON_EXTRA_BOOL":      `true`,
		},
	}
}

func TestNodeGolden(t *testing.T) {
	node, err := Node(*testInfo())
	if err != nil {
		t.Fatal(err)
	}
	if want := "sidecar~10.0.3.7~cart-vm-1.shop~shop.svc.cluster.local"; node.GetId() != want {
		t.Errorf("node id = %q, want %q", node.GetId(), want)
	}
	if node.GetCluster() != "cart.shop" {
		t.Errorf("node cluster = %q, want cart.shop", node.GetCluster())
	}
	raw, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(node.GetMetadata())
	if err != nil {
		t.Fatal(err)
	}
	// protojson output is deliberately unstable in whitespace; normalise it.
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	got, _ := json.MarshalIndent(v, "", "  ")
	got = append(got, '\n')
	golden := filepath.Join("testdata", "node_metadata.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run Golden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("node metadata differs from %s:\n--- got\n%s\n--- want\n%s", golden, got, want)
	}
}

// The shapes istiod's NodeMetadata parser insists on.
func TestNodeMetadataTypes(t *testing.T) {
	node, err := Node(*testInfo())
	if err != nil {
		t.Fatal(err)
	}
	f := node.GetMetadata().GetFields()
	for _, k := range []string{MetaNamespace, MetaServiceAccount, MetaInstanceIPs, MetaClusterID, MetaNetwork,
		MetaMeshID, MetaIstioVersion, MetaWorkloadName, MetaDNSCapture, MetaAutoRegisterGroup, "CUSTOM_FLAG", "EXTRA_BOOL"} {
		if f[k].GetStringValue() == "" {
			t.Errorf("%s = %v, want a non-empty string", k, f[k])
		}
	}
	if got := f[MetaDNSCapture].GetStringValue(); got != "true" {
		t.Errorf("DNS_CAPTURE = %q, want the string \"true\"", got)
	}
	if got := f["EXTRA_BOOL"].GetStringValue(); got != "true" {
		t.Errorf("EXTRA_BOOL = %v, want the string \"true\"", f["EXTRA_BOOL"])
	}
	if got := f[MetaInstanceIPs].GetStringValue(); got != "10.0.3.7,fd00::7,192.168.5.5,172.17.0.1" {
		t.Errorf("INSTANCE_IPS = %q, want the chosen IP first, then the host's addresses but loopback and link-local, deduplicated", got)
	}
	if f[MetaLabels].GetStructValue().GetFields()["version"].GetStringValue() != "v2" {
		t.Errorf("LABELS = %v, want a map with version=v2", f[MetaLabels])
	}
	probe := f[MetaProxyConfig].GetStructValue().GetFields()["readinessProbe"].GetStructValue()
	if probe.GetFields()["httpGet"].GetStructValue().GetFields()["port"].GetNumberValue() != 8080 {
		t.Errorf("PROXY_CONFIG.readinessProbe = %v, want the group's httpGet probe", probe)
	}
}

func TestNodeProbeWhenProxyConfigLacksIt(t *testing.T) {
	b := testInfo()
	b.ProxyConfig = &meshv1alpha1.ProxyConfig{DiscoveryAddress: "x:1"}
	node, err := Node(*b)
	if err != nil {
		t.Fatal(err)
	}
	f := node.GetMetadata().GetFields()
	if f[MetaProxyConfig].GetStructValue().GetFields()["readinessProbe"] == nil {
		t.Errorf("PROXY_CONFIG lacks readinessProbe: %v", f[MetaProxyConfig])
	}
	if got := f[MetaIstioVersion].GetStringValue(); got != DefaultIstioVersion || node.GetUserAgentVersion() != DefaultIstioVersion {
		t.Errorf("ISTIO_VERSION = %q, user agent %q; want the default %s when the bundle names none", got, node.GetUserAgentVersion(), DefaultIstioVersion)
	}
	if b.ProxyConfig.ReadinessProbe != nil {
		t.Errorf("Node modified the bundle's ProxyConfig")
	}
}

func TestNodeNameFallsBackToHostname(t *testing.T) {
	old := hostname
	t.Cleanup(func() { hostname = old })
	hostname = func() (string, error) { return "vm-17.example.internal", nil }
	b := testInfo()
	delete(b.Env, "POD_NAME")
	node, err := Node(*b)
	if err != nil {
		t.Fatal(err)
	}
	if want := "sidecar~10.0.3.7~vm-17.shop~shop.svc.cluster.local"; node.GetId() != want {
		t.Errorf("node id = %q, want %q", node.GetId(), want)
	}
	hostname = func() (string, error) { return "", os.ErrNotExist }
	node, err = Node(*b)
	if err != nil {
		t.Fatal(err)
	}
	if want := "sidecar~10.0.3.7~cart.shop~shop.svc.cluster.local"; node.GetId() != want {
		t.Errorf("without hostname: node id = %q, want %q", node.GetId(), want)
	}
}

func TestNodeErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(b *NodeInfo)
		want string
	}{
		"no ip":        {func(b *NodeInfo) { b.IP = netip.Addr{} }, "ISTIO_SVC_IP"},
		"no namespace": {func(b *NodeInfo) { b.Namespace = "" }, "POD_NAMESPACE"},
		"tilde":        {func(b *NodeInfo) { b.Env["POD_NAME"] = "a~b" }, "'~'"},
		"bad json":     {func(b *NodeInfo) { b.Env["ISTIO_METAJSON_X"] = "{" }, "ISTIO_METAJSON_X"},
		"labels array": {func(b *NodeInfo) { b.Labels = nil; b.Env["ISTIO_METAJSON_LABELS"] = "[1]" }, "LABELS"},
	} {
		t.Run(name, func(t *testing.T) {
			b := testInfo()
			tc.edit(b)
			_, err := Node(*b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// TestNodeIstioVersion: the bundle's ISTIO_META_ISTIO_VERSION (cluster.env
// or mesh.yaml proxyMetadata) wins over the build's default.
func TestNodeIstioVersion(t *testing.T) {
	b := testInfo()
	b.ProxyConfig.ProxyMetadata["ISTIO_META_ISTIO_VERSION"] = "1.27.3"
	node, err := Node(*b)
	if err != nil {
		t.Fatal(err)
	}
	if got := node.GetMetadata().GetFields()[MetaIstioVersion].GetStringValue(); got != "1.27.3" || node.GetUserAgentVersion() != "1.27.3" {
		t.Errorf("ISTIO_VERSION = %q, user agent %q; want mesh.yaml's 1.27.3", got, node.GetUserAgentVersion())
	}
	b.Env["ISTIO_META_ISTIO_VERSION"] = "1.28.1"
	b.Meta["ISTIO_VERSION"] = "1.28.1"
	if node, _ = Node(*b); node.GetMetadata().GetFields()[MetaIstioVersion].GetStringValue() != "1.28.1" {
		t.Errorf("cluster.env's ISTIO_VERSION does not win over mesh.yaml's")
	}
}

// TestNodeRefusesDiscoveredLoopback: a control plane reached over loopback
// would register the VM as <group>-127.0.0.1; that needs ISTIO_SVC_IP.
func TestNodeRefusesDiscoveredLoopback(t *testing.T) {
	b := testInfo()
	b.IP, b.IPReason = netip.MustParseAddr("127.0.0.1"), "no routable interface address; using loopback"
	_, err := Node(*b)
	if err == nil || !strings.Contains(err.Error(), "loopback address 127.0.0.1") || !strings.Contains(err.Error(), "Set ISTIO_SVC_IP in cluster.env") ||
		!strings.Contains(err.Error(), "no routable interface address") {
		t.Fatalf("err = %v, want the loopback refused with what to set", err)
	}
	b.IP = netip.MustParseAddr("::1")
	if _, err := Node(*b); err == nil {
		t.Fatal("::1 accepted")
	}
	b.IP, b.IPExplicit = netip.MustParseAddr("127.0.0.1"), true
	node, err := Node(*b)
	if err != nil {
		t.Fatalf("an explicit loopback IP: %v", err)
	}
	if ips := node.GetMetadata().GetFields()[MetaInstanceIPs].GetStringValue(); !strings.HasPrefix(ips, "127.0.0.1,") {
		t.Errorf("INSTANCE_IPS = %q, want the explicit IP first", ips)
	}
}
