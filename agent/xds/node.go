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

// The bundle's files, named in errors.
const (
	fileClusterEnv = "cluster.env"
	fileMeshYAML   = "mesh.yaml"
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

// DefaultIstioVersion is the ISTIO_VERSION reported when the bundle gives
// none (istioctl writes none; ISTIO_META_ISTIO_VERSION in cluster.env or in
// mesh.yaml's proxyMetadata overrides it). It is the Istio release onramp is
// tested against, and istiod shapes what it sends by it. Set it at build
// time with -ldflags "-X github.com/onramp-mesh/onramp/agent/xds.DefaultIstioVersion=1.30.0".
var DefaultIstioVersion = "1.29.6"

// NodeInfo is what the ADS node is made of: the workload's identity and
// placement as the onboarding bundle gives them (see installer/bundle), and
// the host's addresses. xds reads no files itself.
type NodeInfo struct {
	// IP is the VM's address in the mesh; it names the WorkloadEntry.
	IP netip.Addr
	// IPExplicit is true when IP was given (ISTIO_SVC_IP) rather than
	// discovered; only then may it be a loopback address.
	IPExplicit bool
	// IPReason says how a discovered IP was chosen, for errors.
	IPReason string
	// HostIPs are the addresses of the host's interfaces; INSTANCE_IPS
	// lists them after IP, as pilot-agent does (loopback, link-local and
	// unspecified addresses left out).
	HostIPs []netip.Addr

	Namespace         string // POD_NAMESPACE
	ServiceAccount    string // SERVICE_ACCOUNT
	ClusterID         string // ISTIO_META_CLUSTER_ID
	Network           string // ISTIO_META_NETWORK
	MeshID            string // ISTIO_META_MESH_ID
	WorkloadName      string // ISTIO_META_WORKLOAD_NAME
	AutoRegisterGroup string // ISTIO_META_AUTO_REGISTER_GROUP
	// Labels from ISTIO_METAJSON_LABELS.
	Labels map[string]string
	// Meta holds every ISTIO_META_<KEY> of cluster.env as <KEY> -> value.
	Meta map[string]string
	// Env holds every KEY=value of cluster.env.
	Env map[string]string
	// ProxyConfig is mesh.yaml's defaultConfig; ReadinessProbe the group's probe.
	ProxyConfig    *meshv1alpha1.ProxyConfig
	ReadinessProbe *networkingv1alpha3.ReadinessProbe
}

// Node builds the ADS node istiod expects from an Istio sidecar on a VM:
//
//	id       = sidecar~<ip>~<name>.<namespace>~<namespace>.svc.cluster.local
//	metadata = Istio NodeMetadata as a Struct
//
// <name> is POD_NAME from cluster.env when set, else the host's short name (as
// Istio's VM start script does), else WORKLOAD_NAME.
//
// Metadata starts from the agent's environment — mesh.yaml
// defaultConfig.proxyMetadata overridden by cluster.env: ISTIO_META_<KEY>=v
// gives <KEY>: "v" and ISTIO_METAJSON_<KEY>=<json> gives <KEY>: <json value>.
// The parsed fields then override: NAMESPACE (POD_NAMESPACE), SERVICE_ACCOUNT,
// CLUSTER_ID, NETWORK, MESH_ID, WORKLOAD_NAME, AUTO_REGISTER_GROUP, LABELS (a
// map), INSTANCE_IPS (one comma-joined string: the chosen IP first, since it
// names the WorkloadEntry, then every other address of the host, as
// pilot-agent sends them; istiod picks the table's IP families by them),
// ISTIO_VERSION (the bundle's, else DefaultIstioVersion), PROXY_CONFIG
// (ProxyConfig as a JSON object, readinessProbe included) and DNS_CAPTURE:
// "true". onramp always serves DNS, and istiod puts auto-allocated VIPs in
// the table only for proxies that capture DNS; with dataPlane none the agent
// still wants them, to know which names the mesh has only as VIPs (it
// withholds and counts those). Booleans are JSON strings, as istiod's parser
// requires.
//
// A loopback IP is refused unless it was given explicitly: istiod would
// register the WorkloadEntry <group>-127.0.0.1, which nothing else can reach.
func Node(in NodeInfo) (*corev3.Node, error) {
	if !in.IP.IsValid() {
		return nil, fmt.Errorf("xds: node: no workload IP; set ISTIO_SVC_IP in %s", fileClusterEnv)
	}
	if in.IP.IsLoopback() && !in.IPExplicit {
		why := ""
		if in.IPReason != "" {
			why = " (" + in.IPReason + ")"
		}
		return nil, fmt.Errorf("xds: node: this VM's only address toward the control plane is the loopback address %s%s; istiod would register a WorkloadEntry at %s that no other workload can reach. Set ISTIO_SVC_IP in %s to the address the mesh reaches this VM at (or to %s itself when the control plane and every workload run on this host)",
			in.IP, why, in.IP, fileClusterEnv, in.IP)
	}
	if in.Namespace == "" {
		return nil, fmt.Errorf("xds: node: no namespace; set POD_NAMESPACE in %s", fileClusterEnv)
	}
	if strings.Contains(in.Namespace, "~") {
		return nil, fmt.Errorf("xds: node: namespace %q contains '~', which cannot appear in a node id; fix POD_NAMESPACE in %s", in.Namespace, fileClusterEnv)
	}
	name, err := nodeName(in)
	if err != nil {
		return nil, err
	}

	// The agent's environment as Istio's would see it: mesh.yaml
	// proxyMetadata, overridden by cluster.env.
	env := map[string]string{}
	for k, v := range in.ProxyConfig.GetProxyMetadata() {
		env[k] = v
	}
	for k, v := range in.Env {
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
	for k, v := range in.Meta { // ISTIO_META_* of cluster.env, prefix stripped
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
			return nil, fmt.Errorf("xds: node: %s (in %s or mesh.yaml proxyMetadata) is not valid JSON (%v); write a JSON value, e.g. %s='{\"app\":\"web\"}'", k, fileClusterEnv, err, k)
		}
		meta[key] = v
	}

	meta[MetaNamespace] = in.Namespace
	setIf(meta, MetaServiceAccount, in.ServiceAccount)
	setIf(meta, MetaClusterID, in.ClusterID)
	setIf(meta, MetaNetwork, in.Network)
	setIf(meta, MetaMeshID, in.MeshID)
	setIf(meta, MetaWorkloadName, in.WorkloadName)
	setIf(meta, MetaAutoRegisterGroup, in.AutoRegisterGroup)
	istioVersion, _ := meta[MetaIstioVersion].(string)
	if istioVersion == "" {
		istioVersion = DefaultIstioVersion
	}
	meta[MetaIstioVersion] = istioVersion
	meta[MetaDNSCapture] = "true"
	meta[MetaInstanceIPs] = instanceIPs(in.IP, meta[MetaInstanceIPs], in.HostIPs)

	if len(in.Labels) > 0 {
		labels := map[string]any{}
		if prev, ok := meta[MetaLabels].(map[string]any); ok {
			for k, v := range prev {
				labels[k] = v
			}
		}
		for k, v := range in.Labels {
			labels[k] = v
		}
		meta[MetaLabels] = labels
	}
	if labels, ok := meta[MetaLabels]; ok {
		if _, isMap := labels.(map[string]any); !isMap {
			return nil, fmt.Errorf("xds: node: LABELS must be a JSON object of strings, got %T; fix ISTIO_METAJSON_LABELS in %s", labels, fileClusterEnv)
		}
	}

	pc, err := proxyConfigObject(in)
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
	id := fmt.Sprintf("sidecar~%s~%s.%s~%s.%s", in.IP, name, in.Namespace, in.Namespace, dnsDomainSuffix)
	node := &corev3.Node{
		Id:                   id,
		Metadata:             st,
		UserAgentName:        UserAgentName,
		UserAgentVersionType: &corev3.Node_UserAgentVersion{UserAgentVersion: istioVersion},
	}
	if svc := firstNonEmpty(in.Env["CANONICAL_SERVICE"], in.WorkloadName); svc != "" {
		node.Cluster = svc + "." + in.Namespace
	}
	return node, nil
}

// nodeName picks the <name> part of the node id.
func nodeName(b NodeInfo) (string, error) {
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
		return "", fmt.Errorf("xds: node: no workload name: the host has no hostname and the bundle sets neither POD_NAME nor ISTIO_META_WORKLOAD_NAME; set POD_NAME in %s", fileClusterEnv)
	}
	if strings.Contains(name, "~") {
		return "", fmt.Errorf("xds: node: workload name %q contains '~', which cannot appear in a node id; set POD_NAME in %s", name, fileClusterEnv)
	}
	return name, nil
}

// instanceIPs joins the chosen IP, those already in metadata, then the
// host's addresses: chosen first, without duplicates, IPv4-mapped forms
// unmapped, and the host's loopback, link-local and unspecified addresses
// left out (as pilot-agent leaves them out).
func instanceIPs(chosen netip.Addr, prev any, host []netip.Addr) string {
	out := []string{chosen.String()}
	seen := map[string]bool{out[0]: true}
	add := func(a netip.Addr) {
		if k := a.Unmap().WithZone("").String(); !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	if s, ok := prev.(string); ok {
		for _, p := range strings.Split(s, ",") {
			if a, err := netip.ParseAddr(strings.TrimSpace(p)); err == nil {
				add(a)
			}
		}
	}
	for _, a := range host {
		a = a.Unmap()
		if !a.IsValid() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsUnspecified() {
			continue
		}
		add(a)
	}
	return strings.Join(out, ",")
}

// proxyConfigObject renders the bundle's ProxyConfig, with its readiness probe,
// as a JSON object (protojson field names, as istiod parses PROXY_CONFIG).
func proxyConfigObject(b NodeInfo) (map[string]any, error) {
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
		return nil, fmt.Errorf("xds: node: ProxyConfig from %s cannot be encoded: %w", fileMeshYAML, err)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("xds: node: ProxyConfig from %s cannot be encoded: %w", fileMeshYAML, err)
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
