package controlplane

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

func node(id string, md map[string]any) *corev3.Node {
	s, err := structpb.NewStruct(md)
	if err != nil {
		panic(err)
	}
	return &corev3.Node{Id: id, Metadata: s}
}

func TestParseNode(t *testing.T) {
	full := node("sidecar~10.0.0.5~vm1.vm~vm.svc.cluster.local", map[string]any{
		"NAMESPACE":           "vm",
		"SERVICE_ACCOUNT":     "vm-sa",
		"INSTANCE_IPS":        "10.0.0.5, fd00::5",
		"CLUSTER_ID":          "cluster2",
		"NETWORK":             "net1",
		"LABELS":              map[string]any{"app": "a"},
		"DNS_CAPTURE":         "true",
		"AUTO_REGISTER_GROUP": "vm-group",
		"PROXY_CONFIG":        map[string]any{"readinessProbe": map[string]any{"tcpSocket": map[string]any{"port": 80}}},
		"ISTIO_VERSION":       "1.28.0",
	})
	got, err := ParseNode(full)
	if err != nil {
		t.Fatal(err)
	}
	if got.Namespace != "vm" || got.ServiceAccount != "vm-sa" || got.ClusterID != "cluster2" || got.Network != "net1" ||
		!got.DNSCapture || got.AutoRegisterGroup != "vm-group" || !got.HealthChecks || got.Labels["app"] != "a" ||
		!slices.Equal(got.IPs, []netip.Addr{netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("fd00::5")}) {
		t.Fatalf("parsed %+v", got)
	}

	// Defaults: namespace from the ID, IP from the ID, cluster Kubernetes,
	// DNS capture off unless "true", no health checks without a probe.
	min, err := ParseNode(node("sidecar~10.1.1.1~vm2.ns2~ns2.svc.cluster.local", map[string]any{"DNS_CAPTURE": "false", "PROXY_CONFIG": map[string]any{}}))
	if err != nil {
		t.Fatal(err)
	}
	if min.Namespace != "ns2" || min.ClusterID != DefaultClusterID || min.DNSCapture || min.HealthChecks ||
		len(min.IPs) != 1 || min.IPs[0] != netip.MustParseAddr("10.1.1.1") {
		t.Fatalf("defaults %+v", min)
	}

	for name, tc := range map[string]struct {
		n    *corev3.Node
		want string
	}{
		"nil node":       {nil, "missing node"},
		"empty id":       {&corev3.Node{}, "missing node"},
		"three parts":    {node("sidecar~1.2.3.4~x.ns", nil), "4"},
		"bad type":       {node("pod~1.2.3.4~x.ns~ns.svc.cluster.local", nil), "type"},
		"bad ip":         {node("sidecar~1.2.3.4~x.ns~ns.svc.cluster.local", map[string]any{"INSTANCE_IPS": "1.2.3.4,nope"}), "INSTANCE_IPS"},
		"number meta":    {node("sidecar~1.2.3.4~x.ns~ns.svc.cluster.local", map[string]any{"NAMESPACE": 3}), "NAMESPACE"},
		"labels not map": {node("sidecar~1.2.3.4~x.ns~ns.svc.cluster.local", map[string]any{"LABELS": "a=b"}), "LABELS"},
		"label not str":  {node("sidecar~1.2.3.4~x.ns~ns.svc.cluster.local", map[string]any{"LABELS": map[string]any{"a": 1}}), "LABELS"},
		"proxy config":   {node("sidecar~1.2.3.4~x.ns~ns.svc.cluster.local", map[string]any{"PROXY_CONFIG": "x"}), "PROXY_CONFIG"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseNode(tc.n)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func FuzzParseNode(f *testing.F) {
	seed, _ := proto.Marshal(node("sidecar~10.0.0.5~vm1.vm~vm.svc.cluster.local", map[string]any{
		"NAMESPACE": "vm", "INSTANCE_IPS": "10.0.0.5,fd00::5", "LABELS": map[string]any{"a": "b"},
		"PROXY_CONFIG": map[string]any{"readinessProbe": map[string]any{}},
	}))
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		n := &corev3.Node{}
		if proto.Unmarshal(b, n) != nil {
			return
		}
		info, err := ParseNode(n)
		if err != nil {
			return
		}
		if info.ID == "" || info.ClusterID == "" || len(strings.Split(info.ID, "~")) != 4 {
			t.Fatalf("accepted node %v as %+v", n, info)
		}
		for _, ip := range info.IPs {
			if !ip.IsValid() || ip.Is4In6() {
				t.Fatalf("bad IP %v from %v", ip, n)
			}
		}
	})
}
