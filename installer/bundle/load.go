package bundle

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
)

// DefaultTrustDomain is the trust domain when cluster.env sets no TRUST_DOMAIN.
const DefaultTrustDomain = "cluster.local"

// DefaultClusterID is Istio's cluster name when ISTIO_META_CLUSTER_ID is unset.
const DefaultClusterID = "Kubernetes"

// istiodServiceName replaces "localhost" as the TLS server name: istiod's
// certificate never carries localhost.
const istiodServiceName = "istiod.istio-system.svc"

// Options adjust Load. The zero value reads the running host.
type Options struct {
	// Now is the time certificates are checked at (default time.Now).
	Now func() time.Time
	// Network is how the VM's IP is discovered.
	Network AddressSource
	// Context bounds name resolution (default context.Background()).
	Context context.Context
}

// Load reads and validates the bundle in dir (see LoadWith).
func Load(dir string) (*Bundle, error) { return LoadWith(dir, Options{}) }

// LoadWith reads and validates the bundle in dir. Every defect is an *Error
// naming the file (and line or key). An expired istio-token is not a defect:
// check it with Bundle.ValidateToken when the token is needed.
func LoadWith(dir string, opts Options) (*Bundle, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Context == nil {
		opts.Context = context.Background()
	}
	b := &Bundle{Dir: dir}
	read := func(file string) ([]byte, error) {
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			msg := "cannot read"
			if errors.Is(err, fs.ErrNotExist) {
				msg = "missing; a bundle from istioctl x workload entry configure -o DIR has cluster.env, mesh.yaml, root-cert.pem, istio-token and hosts"
			}
			return nil, &Error{Dir: dir, File: file, Msg: msg, Err: err}
		}
		return data, nil
	}
	withDir := func(err error) error {
		var e *Error
		if errors.As(err, &e) && e.Dir == "" {
			e.Dir = dir
		}
		return err
	}

	// cluster.env
	envData, err := read(FileClusterEnv)
	if err != nil {
		return nil, err
	}
	lines, err := ParseClusterEnv(envData)
	if err != nil {
		return nil, withDir(err)
	}
	b.Env = make(map[string]string, len(lines))
	b.Meta = map[string]string{}
	seen := map[string]int{}
	for _, l := range lines {
		if prev, ok := seen[l.Key]; ok {
			b.Warnings = append(b.Warnings, fmt.Sprintf("%s: %s set on line %d and again on line %d; the later value wins", FileClusterEnv, l.Key, prev, l.Line))
		}
		seen[l.Key] = l.Line
		b.Env[l.Key] = l.Value
	}
	keyErr := func(key, msg string, err error) error {
		return &Error{Dir: dir, File: FileClusterEnv, Line: seen[key], Key: key, Msg: msg, Err: err}
	}
	for k, v := range b.Env {
		if m, ok := strings.CutPrefix(k, "ISTIO_META_"); ok && m != "" {
			b.Meta[m] = v
		}
	}
	for _, k := range []string{"POD_NAMESPACE", "SERVICE_ACCOUNT"} {
		if b.Env[k] == "" {
			return nil, &Error{Dir: dir, File: FileClusterEnv, Key: k, Msg: "required key is missing or empty; regenerate the bundle with istioctl x workload entry configure"}
		}
	}
	b.Namespace = b.Env["POD_NAMESPACE"]
	b.ServiceAccount = b.Env["SERVICE_ACCOUNT"]
	if !validLabel(b.Namespace) {
		return nil, keyErr("POD_NAMESPACE", fmt.Sprintf("%q is not a valid Kubernetes namespace name", b.Namespace), nil)
	}
	if !validSubdomain(b.ServiceAccount) {
		return nil, keyErr("SERVICE_ACCOUNT", fmt.Sprintf("%q is not a valid service account name", b.ServiceAccount), nil)
	}
	b.TrustDomain = orDefault(b.Env["TRUST_DOMAIN"], DefaultTrustDomain)
	if strings.ContainsAny(b.TrustDomain, "/: ") {
		return nil, keyErr("TRUST_DOMAIN", fmt.Sprintf("%q is not a trust domain (a DNS-like name)", b.TrustDomain), nil)
	}
	b.ClusterID = orDefault(b.Env["ISTIO_META_CLUSTER_ID"], DefaultClusterID)
	b.Network = b.Env["ISTIO_META_NETWORK"]
	b.WorkloadName = b.Env["ISTIO_META_WORKLOAD_NAME"]
	b.AutoRegisterGroup = b.Env["ISTIO_META_AUTO_REGISTER_GROUP"]
	switch v := strings.ToLower(b.Env["ISTIO_META_DNS_CAPTURE"]); v {
	case "true", "1":
		b.DNSCapture = true
	case "", "false", "0":
	default:
		return nil, keyErr("ISTIO_META_DNS_CAPTURE", fmt.Sprintf("%q is not true or false", b.Env["ISTIO_META_DNS_CAPTURE"]), nil)
	}
	if raw := b.Env["ISTIO_METAJSON_LABELS"]; strings.TrimSpace(raw) != "" {
		if err := json.Unmarshal([]byte(raw), &b.Labels); err != nil {
			return nil, keyErr("ISTIO_METAJSON_LABELS", "is not a JSON object of string labels", err)
		}
	}
	if b.Labels == nil {
		b.Labels = map[string]string{}
	}

	// mesh.yaml
	meshData, err := read(FileMeshYAML)
	if err != nil {
		return nil, err
	}
	mc, err := ParseMeshYAML(meshData)
	if err != nil {
		return nil, withDir(err)
	}
	for _, f := range mc.UnknownFields {
		b.Warnings = append(b.Warnings, fmt.Sprintf("%s: defaultConfig.%s is unknown to this onramp and was ignored", FileMeshYAML, f))
	}
	b.ProxyConfig = mc.ProxyConfig
	b.ReadinessProbe = mc.ProxyConfig.GetReadinessProbe()
	b.Plaintext = mc.AuthPolicySet && mc.ProxyConfig.GetControlPlaneAuthPolicy() == meshv1alpha1.AuthenticationPolicy_NONE
	if b.MeshID = b.Env["ISTIO_META_MESH_ID"]; b.MeshID == "" {
		b.MeshID = mc.ProxyConfig.GetMeshId()
	}
	b.DiscoveryAddress = orDefault(mc.ProxyConfig.GetDiscoveryAddress(), DefaultDiscoveryAddress)
	host, err := splitHostPort(b.DiscoveryAddress)
	if err != nil {
		return nil, &Error{Dir: dir, File: FileMeshYAML, Key: "defaultConfig.discoveryAddress", Msg: fmt.Sprintf("%q is not host:port", b.DiscoveryAddress), Err: err}
	}
	b.ServerName = host
	if strings.EqualFold(host, "localhost") {
		b.ServerName = istiodServiceName
	}
	if san := b.Env["ISTIOD_SAN"]; san != "" {
		b.ServerName = san
	}
	b.CAAddress = b.DiscoveryAddress
	if ca := b.Env["CA_ADDR"]; ca != "" {
		if _, err := splitHostPort(ca); err != nil {
			return nil, keyErr("CA_ADDR", fmt.Sprintf("%q is not host:port", ca), err)
		}
		b.CAAddress, b.CAAddressExplicit = ca, true
	}

	// root-cert.pem
	if b.RootCertPEM, err = read(FileRootCert); err != nil {
		return nil, err
	}
	roots, err := ParseRootCerts(b.RootCertPEM, opts.Now())
	if err != nil {
		return nil, withDir(err)
	}
	b.Roots = x509.NewCertPool()
	for _, c := range roots {
		b.Roots.AddCert(c)
	}

	// istio-token
	tok, err := read(FileToken)
	if err != nil {
		return nil, err
	}
	claims, err := ParseToken(string(tok))
	if err != nil {
		return nil, withDir(err)
	}
	b.Token = strings.TrimSpace(string(tok))
	b.TokenExpiry = claims.Expiry
	if len(claims.Audience) > 0 && !slices.Contains(claims.Audience, "istio-ca") {
		b.Warnings = append(b.Warnings, fmt.Sprintf("%s: audience %v does not include istio-ca; the CA may refuse it", FileToken, claims.Audience))
	}

	// hosts
	hostsData, err := read(FileHosts)
	if err != nil {
		return nil, err
	}
	if b.Hosts, err = ParseHosts(hostsData); err != nil {
		return nil, withDir(err)
	}

	// The VM's IP.
	ip, notes, err := ChooseIP(opts.Context, b.Env["ISTIO_SVC_IP"], b.DiscoveryAddress, b.Hosts, opts.Network)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Dir, e.Line = dir, seen[e.Key]
		}
		return nil, err
	}
	b.IP = ip
	if len(notes) > 0 {
		b.IPReason = notes[len(notes)-1]
		for _, n := range notes[:len(notes)-1] {
			b.Warnings = append(b.Warnings, "choosing the IP: "+n)
		}
	}
	return b, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func splitHostPort(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if host == "" {
		return "", fmt.Errorf("empty host")
	}
	if _, err := parsePort(port); err != nil {
		return "", err
	}
	return host, nil
}

// validLabel reports whether s is an RFC 1123 label (a namespace name).
func validLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')) {
			return false
		}
	}
	return true
}

// validSubdomain reports whether s is an RFC 1123 subdomain (a service
// account name).
func validSubdomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !validLabel(l) {
			return false
		}
	}
	return true
}
