package xds

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/onramp-mesh/onramp/agent/nametable"
	"github.com/onramp-mesh/onramp/installer/bundle"
)

// Node metadata keys istiod reads (Istio's NodeMetadata JSON names).
const (
	MetaNamespace         = "NAMESPACE"
	MetaServiceAccount    = "SERVICE_ACCOUNT"
	MetaInstanceIPs       = "INSTANCE_IPS"
	MetaClusterID         = "CLUSTER_ID"
	MetaNetwork           = "NETWORK"
	MetaMeshID            = "MESH_ID"
	MetaIstioVersion      = "ISTIO_VERSION"
	MetaLabels            = "LABELS"
	MetaWorkloadName      = "WORKLOAD_NAME"
	MetaDNSCapture        = "DNS_CAPTURE"
	MetaAutoRegisterGroup = "AUTO_REGISTER_GROUP"
	MetaProxyConfig       = "PROXY_CONFIG"
)

// cluster.env prefixes that become node metadata.
const (
	envMetaPrefix     = "ISTIO_META_"
	envMetaJSONPrefix = "ISTIO_METAJSON_"
)

// dnsDomainSuffix is the cluster domain in the node id's DNS domain part
// (<namespace>.svc.cluster.local), as Istio's agent writes it.
const dnsDomainSuffix = "svc." + nametable.DefaultClusterDomain

// UserAgentName is the node's user_agent_name.
const UserAgentName = "onramp"

// hostname is os.Hostname, replaceable in tests.
var hostname = os.Hostname

// NodeFromBundle builds the ADS node istiod expects from an Istio sidecar on a
// VM:
//
//	id       = sidecar~<ip>~<name>.<namespace>~<namespace>.svc.cluster.local
//	metadata = Istio NodeMetadata as a Struct
//
// <name> is POD_NAME from cluster.env when set, else the host's short name (as
// Istio's VM start script does), else WORKLOAD_NAME.
//
// Metadata starts from the agent's environment — mesh.yaml
// defaultConfig.proxyMetadata overridden by cluster.env: ISTIO_META_<KEY>=v
// gives <KEY>: "v" and ISTIO_METAJSON_<KEY>=<json> gives <KEY>: <json value>. The bundle's parsed
// fields then override: NAMESPACE (POD_NAMESPACE), SERVICE_ACCOUNT, CLUSTER_ID,
// NETWORK, MESH_ID, WORKLOAD_NAME, AUTO_REGISTER_GROUP, LABELS (a map),
// INSTANCE_IPS (one comma-joined string, the chosen IP first: it names the
// WorkloadEntry), ISTIO_VERSION (omitted when istioVersion is empty; istiod
// then assumes the newest proxy), PROXY_CONFIG (ProxyConfig as a JSON object,
// readinessProbe included) and DNS_CAPTURE: "true" — onramp always serves DNS,
// and istiod sends auto-allocated VIPs only to proxies that capture DNS.
// Booleans are JSON strings, as istiod's parser requires.
func NodeFromBundle(b *bundle.Bundle, istioVersion string) (*corev3.Node, error) {
	if b == nil {
		return nil, fmt.Errorf("xds: node: no bundle; load one with bundle.Load")
	}
	if !b.IP.IsValid() {
		return nil, fmt.Errorf("xds: node: bundle %q has no workload IP; set ISTIO_SVC_IP in %s", b.Dir, bundle.FileClusterEnv)
	}
	if b.Namespace == "" {
		return nil, fmt.Errorf("xds: node: bundle %q has no namespace; set POD_NAMESPACE in %s", b.Dir, bundle.FileClusterEnv)
	}
	if strings.Contains(b.Namespace, "~") {
		return nil, fmt.Errorf("xds: node: namespace %q contains '~', which cannot appear in a node id; fix POD_NAMESPACE in %s", b.Namespace, bundle.FileClusterEnv)
	}
	name, err := nodeName(b)
	if err != nil {
		return nil, err
	}

	// The agent's environment as Istio's would see it: mesh.yaml
	// proxyMetadata, overridden by cluster.env.
	env := map[string]string{}
	for k, v := range b.ProxyConfig.GetProxyMetadata() {
		env[k] = v
	}
	for k, v := range b.Env {
		env[k] = v
	}
	meta := map[string]any{}
	// Plain values first, then JSON values, each in a fixed order, so that a
	// key given both ways resolves the same on every run.
	for _, k := range sortedKeys(env) {
		if key, ok := strings.CutPrefix(k, envMetaPrefix); ok && key != "" {
			meta[key] = env[k]
		}
	}
	for k, v := range b.Meta { // ISTIO_META_* of cluster.env, prefix stripped
		if k != "" {
			meta[k] = v
		}
	}
	for _, k := range sortedKeys(env) {
		key, ok := strings.CutPrefix(k, envMetaJSONPrefix)
		if !ok || key == "" {
			continue
		}
		var v any
		if err := json.Unmarshal([]byte(env[k]), &v); err != nil {
			return nil, fmt.Errorf("xds: node: %s (in %s or mesh.yaml proxyMetadata) is not valid JSON (%v); write a JSON value, e.g. %s='{\"app\":\"web\"}'", k, bundle.FileClusterEnv, err, k)
		}
		meta[key] = v
	}

	meta[MetaNamespace] = b.Namespace
	setIf(meta, MetaServiceAccount, b.ServiceAccount)
	setIf(meta, MetaClusterID, b.ClusterID)
	setIf(meta, MetaNetwork, b.Network)
	setIf(meta, MetaMeshID, b.MeshID)
	setIf(meta, MetaWorkloadName, b.WorkloadName)
	setIf(meta, MetaAutoRegisterGroup, b.AutoRegisterGroup)
	setIf(meta, MetaIstioVersion, istioVersion)
	meta[MetaDNSCapture] = "true"
	meta[MetaInstanceIPs] = instanceIPs(b.IP, meta[MetaInstanceIPs])

	if len(b.Labels) > 0 {
		labels := map[string]any{}
		if prev, ok := meta[MetaLabels].(map[string]any); ok {
			for k, v := range prev {
				labels[k] = v
			}
		}
		for k, v := range b.Labels {
			labels[k] = v
		}
		meta[MetaLabels] = labels
	}
	if labels, ok := meta[MetaLabels]; ok {
		if _, isMap := labels.(map[string]any); !isMap {
			return nil, fmt.Errorf("xds: node: LABELS must be a JSON object of strings, got %T; fix ISTIO_METAJSON_LABELS in %s", labels, bundle.FileClusterEnv)
		}
	}

	pc, err := proxyConfigObject(b)
	if err != nil {
		return nil, err
	}
	if pc != nil {
		meta[MetaProxyConfig] = pc
	}
	stringifyBools(meta)

	st, err := structpb.NewStruct(meta)
	if err != nil {
		return nil, fmt.Errorf("xds: node: metadata cannot be encoded: %w", err)
	}
	id := fmt.Sprintf("sidecar~%s~%s.%s~%s.%s", b.IP, name, b.Namespace, b.Namespace, dnsDomainSuffix)
	node := &corev3.Node{
		Id:            id,
		Metadata:      st,
		UserAgentName: UserAgentName,
	}
	if svc := firstNonEmpty(b.Env["CANONICAL_SERVICE"], b.WorkloadName); svc != "" {
		node.Cluster = svc + "." + b.Namespace
	}
	if istioVersion != "" {
		node.UserAgentVersionType = &corev3.Node_UserAgentVersion{UserAgentVersion: istioVersion}
	}
	return node, nil
}

// nodeName picks the <name> part of the node id.
func nodeName(b *bundle.Bundle) (string, error) {
	name := b.Env["POD_NAME"]
	if name == "" {
		if h, err := hostname(); err == nil {
			name, _, _ = strings.Cut(h, ".")
		}
	}
	if name == "" {
		name = b.WorkloadName
	}
	if name == "" {
		return "", fmt.Errorf("xds: node: no workload name: the host has no hostname and the bundle sets neither POD_NAME nor ISTIO_META_WORKLOAD_NAME; set POD_NAME in %s", bundle.FileClusterEnv)
	}
	if strings.Contains(name, "~") {
		return "", fmt.Errorf("xds: node: workload name %q contains '~', which cannot appear in a node id; set POD_NAME in %s", name, bundle.FileClusterEnv)
	}
	return name, nil
}

// instanceIPs joins the chosen IP and any others already in metadata, chosen
// first, without duplicates.
func instanceIPs(chosen netip.Addr, prev any) string {
	out := []string{chosen.String()}
	seen := map[string]bool{out[0]: true}
	if s, ok := prev.(string); ok {
		for _, p := range strings.Split(s, ",") {
			p = strings.TrimSpace(p)
			a, err := netip.ParseAddr(p)
			if err != nil {
				continue
			}
			if k := a.Unmap().String(); !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	return strings.Join(out, ",")
}

// proxyConfigObject renders the bundle's ProxyConfig, with its readiness probe,
// as a JSON object (protojson field names, as istiod parses PROXY_CONFIG).
func proxyConfigObject(b *bundle.Bundle) (map[string]any, error) {
	if b.ProxyConfig == nil && b.ReadinessProbe == nil {
		return nil, nil
	}
	pc := &meshv1alpha1.ProxyConfig{}
	if b.ProxyConfig != nil {
		pc = proto.Clone(b.ProxyConfig).(*meshv1alpha1.ProxyConfig)
	}
	if pc.ReadinessProbe == nil && b.ReadinessProbe != nil {
		pc.ReadinessProbe = proto.Clone(b.ReadinessProbe).(*networkingv1alpha3.ReadinessProbe)
	}
	raw, err := protojson.Marshal(pc)
	if err != nil {
		return nil, fmt.Errorf("xds: node: ProxyConfig from %s cannot be encoded: %w", bundle.FileMeshYAML, err)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("xds: node: ProxyConfig from %s cannot be encoded: %w", bundle.FileMeshYAML, err)
	}
	return obj, nil
}

func setIf(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// stringifyBools turns top-level JSON booleans into "true"/"false": istiod's
// NodeMetadata reads its boolean fields only from strings.
func stringifyBools(m map[string]any) {
	for k, v := range m {
		if b, ok := v.(bool); ok {
			if b {
				m[k] = "true"
			} else {
				m[k] = "false"
			}
		}
	}
}
