// Package bundle reads and validates the onboarding bundle that
// `istioctl x workload entry configure -o DIR` writes: cluster.env, mesh.yaml,
// root-cert.pem, istio-token and hosts. It derives everything the agent needs
// to join the mesh from that directory, and reports each defect with the file
// and key at fault.
package bundle

import (
	"crypto/x509"
	"net"
	"net/netip"
	"strings"
	"time"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
)

// File names inside a bundle directory.
const (
	FileClusterEnv = "cluster.env"
	FileMeshYAML   = "mesh.yaml"
	FileRootCert   = "root-cert.pem"
	FileToken      = "istio-token"
	FileHosts      = "hosts"
)

// DefaultDiscoveryAddress is istiod's address when mesh.yaml names none.
const DefaultDiscoveryAddress = "istiod.istio-system.svc:15012"

// Bundle is a parsed, validated onboarding bundle.
type Bundle struct {
	// Dir is the directory the bundle was read from.
	Dir string

	// DiscoveryAddress is istiod's host:port (mesh.yaml defaultConfig.discoveryAddress).
	DiscoveryAddress string
	// ServerName is the TLS server name to verify istiod's certificate against
	// (host part of DiscoveryAddress; "localhost" becomes istiod.istio-system.svc;
	// ISTIOD_SAN overrides).
	ServerName string
	// Plaintext is true when ProxyConfig.controlPlaneAuthPolicy is NONE: ADS is
	// spoken without TLS (istiod's 15010), and identity bootstrap is skipped
	// unless CAAddress is set explicitly.
	Plaintext bool
	// CAAddress is the CA's host:port: CA_ADDR, or DiscoveryAddress when unset.
	CAAddress string
	// CAAddressExplicit is true when CA_ADDR was set in cluster.env.
	CAAddressExplicit bool

	// Identity of the workload.
	Namespace      string // POD_NAMESPACE
	ServiceAccount string // SERVICE_ACCOUNT
	TrustDomain    string // TRUST_DOMAIN, default cluster.local

	// Mesh placement.
	ClusterID    string // ISTIO_META_CLUSTER_ID
	Network      string // ISTIO_META_NETWORK
	MeshID       string // ISTIO_META_MESH_ID
	WorkloadName string // ISTIO_META_WORKLOAD_NAME

	// Labels from ISTIO_METAJSON_LABELS.
	Labels map[string]string
	// AutoRegisterGroup is the WorkloadGroup name (ISTIO_META_AUTO_REGISTER_GROUP).
	AutoRegisterGroup string
	// DNSCapture is ISTIO_META_DNS_CAPTURE == "true".
	DNSCapture bool

	// IP is the VM's chosen address: ISTIO_SVC_IP, else the source address of
	// the route to the control plane (never docker bridges or link-local).
	IP netip.Addr

	// ProxyConfig is mesh.yaml's defaultConfig.
	ProxyConfig *meshv1alpha1.ProxyConfig
	// ReadinessProbe is ProxyConfig.readinessProbe (nil when the group has none).
	ReadinessProbe *networkingv1alpha3.ReadinessProbe

	// Meta holds every ISTIO_META_<KEY> of cluster.env as <KEY> -> value.
	Meta map[string]string
	// Env holds every KEY='value' line of cluster.env, unquoted.
	Env map[string]string

	// RootCertPEM is root-cert.pem as read; Roots is it parsed into a pool.
	RootCertPEM []byte
	Roots       *x509.CertPool

	// Token is the istio-token JWT; TokenExpiry its exp claim.
	Token       string
	TokenExpiry time.Time

	// Hosts are the lines of the hosts file (istiod name -> gateway IP).
	Hosts []HostEntry

	// IPReason says how IP was chosen.
	IPReason string
	// Warnings are oddities that did not stop Load: unknown mesh.yaml fields,
	// repeated cluster.env keys, a token audience other than istio-ca.
	Warnings []string
}

// HostEntry is one line of the bundle's hosts file.
type HostEntry struct {
	IP    netip.Addr
	Names []string
}

// DialAddress returns addr (host:port) with its host replaced by the address
// the bundle's hosts file gives it, as Istio's VM install does by appending
// that file to /etc/hosts, without touching /etc/hosts. The TLS server name
// stays the host name. An address with no hosts entry is returned as it is.
func (b *Bundle) DialAddress(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	for _, h := range b.Hosts {
		for _, n := range h.Names {
			if strings.EqualFold(strings.TrimSuffix(n, "."), strings.TrimSuffix(host, ".")) {
				return net.JoinHostPort(h.IP.String(), port)
			}
		}
	}
	return addr
}
