package controlplane

import (
	"fmt"
	"net/netip"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// Node metadata keys istiod reads (ISTIO-WIRE §3).
const (
	metaNamespace      = "NAMESPACE"
	metaServiceAccount = "SERVICE_ACCOUNT"
	metaInstanceIPs    = "INSTANCE_IPS"
	metaClusterID      = "CLUSTER_ID"
	metaNetwork        = "NETWORK"
	metaLabels         = "LABELS"
	metaDNSCapture     = "DNS_CAPTURE"
	metaAutoRegister   = "AUTO_REGISTER_GROUP"
	metaProxyConfig    = "PROXY_CONFIG"
	metaIstioVersion   = "ISTIO_VERSION"
	metaWorkloadName   = "WORKLOAD_NAME"
)

// DefaultClusterID is the cluster istiod assumes for a node that names none.
const DefaultClusterID = "Kubernetes"

// NodeInfo is what the control plane learns from an ADS node.
type NodeInfo struct {
	// ID is node.id: sidecar~<ip>~<name>.<namespace>~<namespace>.svc.<domain>.
	ID string
	// Type is the first part of the ID (sidecar, router).
	Type string
	// Namespace is NAMESPACE, else the namespace part of the ID.
	Namespace string
	// ServiceAccount is SERVICE_ACCOUNT (may be empty).
	ServiceAccount string
	// IPs are INSTANCE_IPS in order, else the IP of the ID.
	IPs []netip.Addr
	// ClusterID is CLUSTER_ID, default DefaultClusterID.
	ClusterID string
	// Network is NETWORK.
	Network string
	// Labels is LABELS.
	Labels map[string]string
	// DNSCapture is DNS_CAPTURE == "true".
	DNSCapture bool
	// AutoRegisterGroup is AUTO_REGISTER_GROUP.
	AutoRegisterGroup string
	// HealthChecks is true when PROXY_CONFIG carries a readinessProbe.
	HealthChecks bool
	// IstioVersion is ISTIO_VERSION.
	IstioVersion string
	// WorkloadName is WORKLOAD_NAME.
	WorkloadName string
}

// ParseNode reads an ADS node as istiod does: the four-part ID and the
// string-valued metadata (booleans are the strings "true"/"false",
// INSTANCE_IPS one comma-separated string, LABELS a map, PROXY_CONFIG an
// object).
func ParseNode(n *corev3.Node) (*NodeInfo, error) {
	if n == nil || n.GetId() == "" {
		return nil, fmt.Errorf("missing node information: the first DiscoveryRequest must carry node.id")
	}
	parts := strings.Split(n.GetId(), "~")
	if len(parts) != 4 {
		return nil, fmt.Errorf("node id %q has %d '~'-separated parts, want 4 (sidecar~<ip>~<name>.<namespace>~<namespace>.svc.cluster.local)", n.GetId(), len(parts))
	}
	switch parts[0] {
	case "sidecar", "router", "waypoint", "ztunnel":
	default:
		return nil, fmt.Errorf("node id %q has type %q, want sidecar or router", n.GetId(), parts[0])
	}
	info := &NodeInfo{ID: n.GetId(), Type: parts[0], ClusterID: DefaultClusterID}
	md := n.GetMetadata().GetFields()
	str := func(key string) (string, error) {
		v, ok := md[key]
		if !ok {
			return "", nil
		}
		switch k := v.GetKind().(type) {
		case *structpb.Value_StringValue:
			return k.StringValue, nil
		case *structpb.Value_BoolValue:
			if k.BoolValue {
				return "true", nil
			}
			return "false", nil
		default:
			return "", fmt.Errorf("node metadata %s must be a string, got %T", key, v.GetKind())
		}
	}
	var err error
	get := func(key string, dst *string) {
		if err != nil {
			return
		}
		var s string
		if s, err = str(key); err == nil && s != "" {
			*dst = s
		}
	}
	var ips, dns string
	get(metaNamespace, &info.Namespace)
	get(metaServiceAccount, &info.ServiceAccount)
	get(metaInstanceIPs, &ips)
	get(metaClusterID, &info.ClusterID)
	get(metaNetwork, &info.Network)
	get(metaDNSCapture, &dns)
	get(metaAutoRegister, &info.AutoRegisterGroup)
	get(metaIstioVersion, &info.IstioVersion)
	get(metaWorkloadName, &info.WorkloadName)
	if err != nil {
		return nil, err
	}
	info.DNSCapture = dns == "true"

	if ips != "" {
		for _, s := range strings.Split(ips, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			ip, perr := netip.ParseAddr(s)
			if perr != nil {
				return nil, fmt.Errorf("node metadata INSTANCE_IPS %q: %q is not an IP address", ips, s)
			}
			info.IPs = append(info.IPs, ip.Unmap())
		}
	} else if ip, perr := netip.ParseAddr(parts[1]); perr == nil {
		info.IPs = []netip.Addr{ip.Unmap()}
	}
	if info.Namespace == "" {
		// <name>.<namespace> in the third part
		if i := strings.LastIndex(parts[2], "."); i >= 0 && i < len(parts[2])-1 {
			info.Namespace = parts[2][i+1:]
		}
	}
	if lv, ok := md[metaLabels]; ok {
		ls := lv.GetStructValue()
		if ls == nil {
			return nil, fmt.Errorf("node metadata LABELS must be a map of strings")
		}
		info.Labels = map[string]string{}
		for k, v := range ls.GetFields() {
			sv, ok := v.GetKind().(*structpb.Value_StringValue)
			if !ok {
				return nil, fmt.Errorf("node metadata LABELS[%q] must be a string", k)
			}
			info.Labels[k] = sv.StringValue
		}
	}
	if pv, ok := md[metaProxyConfig]; ok {
		pc := pv.GetStructValue()
		if pc == nil {
			return nil, fmt.Errorf("node metadata PROXY_CONFIG must be an object")
		}
		if rp, ok := pc.GetFields()["readinessProbe"]; ok && rp.GetStructValue() != nil {
			info.HealthChecks = true
		}
	}
	return info, nil
}
