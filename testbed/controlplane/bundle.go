package controlplane

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	"sigs.k8s.io/yaml"

	"github.com/onramp-mesh/onramp/installer/bundle"
	"github.com/onramp-mesh/onramp/testbed/ca"
	"github.com/onramp-mesh/onramp/workloadentry"
)

// BundleOptions are the inputs of an onboarding bundle, as the flags of
// `istioctl x workload entry configure`.
type BundleOptions struct {
	// ServiceAccount overrides the group template's serviceAccount
	// (default: the template's, else "default").
	ServiceAccount string
	// TokenTTL is the istio-token lifetime; default 1h.
	TokenTTL time.Duration
	// DiscoveryAddress is istiod's host:port; default
	// istiod.istio-system.svc:15012.
	DiscoveryAddress string
	// GatewayIP, when set, maps istiod.istio-system.svc to it in hosts.
	GatewayIP netip.Addr
	// ClusterID is ISTIO_META_CLUSTER_ID; default Kubernetes.
	ClusterID string
	// Network overrides the template's network (ISTIO_META_NETWORK).
	Network string
	// MeshID is ISTIO_META_MESH_ID (empty: left out).
	MeshID string
	// IP, when set, is ISTIO_SVC_IP: the VM's address.
	IP netip.Addr
	// Plaintext makes the bundle speak plaintext ADS
	// (controlPlaneAuthPolicy: NONE), for a control plane's 15010.
	Plaintext bool
	// AutoRegister sets ISTIO_META_AUTO_REGISTER_GROUP (istioctl --autoregister).
	AutoRegister bool
}

// MintBundle builds the files `istioctl x workload entry configure
// --autoregister` writes for a VM joining group g, with a fresh token from
// the authority.
func MintBundle(a *ca.Authority, g *workloadentry.Group, o BundleOptions) (*bundle.Files, error) {
	if g == nil || g.Spec == nil {
		return nil, fmt.Errorf("bundle: no WorkloadGroup given")
	}
	tmpl := g.Spec.GetTemplate()
	sa := o.ServiceAccount
	if sa == "" {
		sa = tmpl.GetServiceAccount()
	}
	if sa == "" {
		sa = "default"
	}
	if o.DiscoveryAddress == "" {
		o.DiscoveryAddress = bundle.DefaultDiscoveryAddress
	}
	if o.ClusterID == "" {
		o.ClusterID = DefaultClusterID
	}
	network := o.Network
	if network == "" {
		network = tmpl.GetNetwork()
	}
	token, err := a.MintToken(g.Namespace, sa, o.TokenTTL)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}

	labels := map[string]string{}
	for k, v := range g.Spec.GetMetadata().GetLabels() {
		labels[k] = v
	}
	labelsJSON, err := json.Marshal(labels)
	if err != nil {
		return nil, fmt.Errorf("bundle: encode labels: %w", err)
	}
	canonSvc, canonRev := canonicalLabels(labels, g.Name)

	// Proxy metadata, as istioctl puts it both in mesh.yaml's proxyMetadata
	// and in cluster.env.
	md := map[string]string{
		"CANONICAL_SERVICE":        canonSvc,
		"CANONICAL_REVISION":       canonRev,
		"POD_NAMESPACE":            g.Namespace,
		"SERVICE_ACCOUNT":          sa,
		"TRUST_DOMAIN":             a.TrustDomain(),
		"ISTIO_META_CLUSTER_ID":    o.ClusterID,
		"ISTIO_META_MESH_ID":       o.MeshID,
		"ISTIO_META_NETWORK":       network,
		"ISTIO_META_WORKLOAD_NAME": g.Name,
		"ISTIO_METAJSON_LABELS":    string(labelsJSON),
		"ISTIO_META_DNS_CAPTURE":   "true",
	}
	if o.AutoRegister {
		md["ISTIO_META_AUTO_REGISTER_GROUP"] = g.Name
	}
	for k, v := range md {
		if v == "" {
			delete(md, k)
		}
	}

	ports := "*"
	if p := tmpl.GetPorts(); len(p) > 0 {
		var list []string
		for _, v := range p {
			list = append(list, fmt.Sprint(v))
		}
		ports = strings.Join(sortedUnique(list), ",")
	}
	env := map[string]string{
		"ISTIO_INBOUND_PORTS":       ports,
		"ISTIO_NAMESPACE":           g.Namespace,
		"ISTIO_SERVICE":             g.Name + "." + g.Namespace,
		"ISTIO_SERVICE_CIDR":        "*",
		"ISTIO_LOCAL_EXCLUDE_PORTS": "15090,15021,15020",
	}
	for k, v := range md {
		env[k] = v
	}
	if o.IP.IsValid() {
		env["ISTIO_SVC_IP"] = o.IP.String()
	}

	pc := &meshv1alpha1.ProxyConfig{
		DiscoveryAddress: o.DiscoveryAddress,
		ProxyMetadata:    md,
		ReadinessProbe:   g.Spec.GetProbe(),
	}
	meshYAML, err := formatMeshYAML(pc, o.Plaintext)
	if err != nil {
		return nil, err
	}

	f := &bundle.Files{
		ClusterEnv:  env,
		MeshYAML:    meshYAML,
		RootCertPEM: a.RootPEM(),
		Token:       token,
	}
	if o.GatewayIP.IsValid() {
		host, _, ok := strings.Cut(o.DiscoveryAddress, ":")
		if !ok || host == "" {
			host = "istiod.istio-system.svc"
		}
		f.Hosts = []bundle.HostEntry{{IP: o.GatewayIP, Names: []string{host}}}
	}
	return f, nil
}

// formatMeshYAML renders `defaultConfig:` with controlPlaneAuthPolicy NONE
// spelled out when plaintext (its proto zero value, which a plain encoding
// would leave out).
func formatMeshYAML(pc *meshv1alpha1.ProxyConfig, plaintext bool) ([]byte, error) {
	js, err := protojson.Marshal(pc)
	if err != nil {
		return nil, fmt.Errorf("bundle: encode ProxyConfig: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		return nil, fmt.Errorf("bundle: encode ProxyConfig: %w", err)
	}
	if plaintext {
		m["controlPlaneAuthPolicy"] = "NONE"
	}
	y, err := yaml.Marshal(map[string]any{"defaultConfig": m})
	if err != nil {
		return nil, fmt.Errorf("bundle: encode mesh.yaml: %w", err)
	}
	return y, nil
}

// canonicalLabels derives the canonical service name and revision as Istio's
// injector does.
func canonicalLabels(l map[string]string, workload string) (string, string) {
	svc := firstOf(l, "service.istio.io/canonical-name", "app.kubernetes.io/name", "app")
	if svc == "" {
		svc = workload
	}
	rev := firstOf(l, "service.istio.io/canonical-revision", "app.kubernetes.io/version", "version")
	if rev == "" {
		rev = "latest"
	}
	return svc, rev
}

func firstOf(l map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := l[k]; v != "" {
			return v
		}
	}
	return ""
}

func sortedUnique(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	// numeric order for port numbers
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && (len(out[j]) < len(out[j-1]) || len(out[j]) == len(out[j-1]) && out[j] < out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
