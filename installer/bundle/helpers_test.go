package bundle

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/netip"
	"testing"
	"time"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
)

// testRoot returns a PEM CA certificate valid from nb to na.
func testRoot(t testing.TB, isCA bool, nb, na time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{"cluster.local"}, CommonName: "test root"},
		NotBefore:             nb,
		NotAfter:              na,
		IsCA:                  isCA,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// testJWT builds an unsigned-looking JWT with the given claims.
func testJWT(claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": "k"})
	p, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(p) + "." + enc.EncodeToString([]byte("signature"))
}

func validFiles(t testing.TB) *Files {
	now := time.Now()
	return &Files{
		ClusterEnv: map[string]string{
			"CANONICAL_REVISION":             "latest",
			"CANONICAL_SERVICE":              "vm-app",
			"ISTIO_INBOUND_PORTS":            "*",
			"ISTIO_LOCAL_EXCLUDE_PORTS":      "15090,15021,15020",
			"ISTIO_METAJSON_LABELS":          `{"app":"vm-app","version":"v1"}`,
			"ISTIO_META_AUTO_REGISTER_GROUP": "vm-app",
			"ISTIO_META_CLUSTER_ID":          "cluster1",
			"ISTIO_META_DNS_CAPTURE":         "true",
			"ISTIO_META_MESH_ID":             "mesh1",
			"ISTIO_META_NETWORK":             "vm-net",
			"ISTIO_META_WORKLOAD_NAME":       "vm-app",
			"ISTIO_NAMESPACE":                "vm-ns",
			"ISTIO_SERVICE":                  "vm-app.vm-ns",
			"ISTIO_SERVICE_CIDR":             "*",
			"POD_NAMESPACE":                  "vm-ns",
			"SERVICE_ACCOUNT":                "vm-sa",
			"TRUST_DOMAIN":                   "cluster.local",
		},
		ProxyConfig: &meshv1alpha1.ProxyConfig{
			DiscoveryAddress: "istiod.istio-system.svc:15012",
			ProxyMetadata:    map[string]string{"ISTIO_META_DNS_CAPTURE": "true"},
		},
		RootCertPEM: testRoot(t, true, now.Add(-time.Hour), now.Add(24*time.Hour)),
		Token:       testJWT(map[string]any{"aud": []string{"istio-ca"}, "exp": now.Add(time.Hour).Unix(), "sub": "system:serviceaccount:vm-ns:vm-sa"}),
		Hosts:       []HostEntry{{IP: netip.MustParseAddr("192.0.2.10"), Names: []string{"istiod.istio-system.svc"}}},
	}
}

// fakeNet is a host with eth0 192.0.2.50, docker0 172.17.0.1, and routes
// whose source the test sets.
type fakeNet struct {
	route    map[netip.Addr]netip.Addr
	resolved map[string][]netip.Addr
	ifaces   []NetInterface
	dialed   []netip.AddrPort
}

func newFakeNet() *fakeNet {
	return &fakeNet{
		route:    map[netip.Addr]netip.Addr{},
		resolved: map[string][]netip.Addr{},
		ifaces: []NetInterface{
			{Name: "lo", Up: true, Loopback: true, Virtual: true, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}},
			{Name: "docker0", Up: true, Virtual: true, Bridged: true, Addrs: []netip.Addr{netip.MustParseAddr("172.17.0.1")}},
			{Name: "eth0", Up: true, Addrs: []netip.Addr{netip.MustParseAddr("fe80::1"), netip.MustParseAddr("192.0.2.50")}},
		},
	}
}

func (f *fakeNet) source() AddressSource {
	return AddressSource{
		Resolve: func(_ context.Context, host string) ([]netip.Addr, error) {
			if a, ok := f.resolved[host]; ok {
				return a, nil
			}
			return nil, &notFound{host}
		},
		RouteSource: func(dst netip.AddrPort) (netip.Addr, error) {
			f.dialed = append(f.dialed, dst)
			if a, ok := f.route[dst.Addr()]; ok {
				return a, nil
			}
			return netip.Addr{}, &notFound{dst.String()}
		},
		Interfaces: func() ([]NetInterface, error) { return f.ifaces, nil },
	}
}

type notFound struct{ what string }

func (e *notFound) Error() string { return "no such thing: " + e.what }
