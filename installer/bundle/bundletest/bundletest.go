// Package bundletest writes valid onboarding bundles for tests of the
// packages that install them.
package bundletest

import (
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

	"github.com/onramp-mesh/onramp/installer/bundle"
)

// Files returns a valid bundle for workload vm-app in namespace vm-ns, with
// ISTIO_SVC_IP 192.0.2.50 (so that loading it needs no network) and a token
// valid for an hour.
func Files(t testing.TB) *bundle.Files {
	t.Helper()
	now := time.Now()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{Organization: []string{"cluster.local"}, CommonName: "test root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": "k"})
	p, _ := json.Marshal(map[string]any{"aud": []string{"istio-ca"}, "exp": now.Add(time.Hour).Unix(), "sub": "system:serviceaccount:vm-ns:vm-sa"})
	return &bundle.Files{
		ClusterEnv: map[string]string{
			"CANONICAL_REVISION": "latest", "CANONICAL_SERVICE": "vm-app",
			"ISTIO_META_AUTO_REGISTER_GROUP": "vm-app", "ISTIO_META_CLUSTER_ID": "cluster1",
			"ISTIO_META_NETWORK": "vm-net", "ISTIO_META_WORKLOAD_NAME": "vm-app",
			"ISTIO_NAMESPACE": "vm-ns", "POD_NAMESPACE": "vm-ns", "SERVICE_ACCOUNT": "vm-sa",
			"TRUST_DOMAIN": "cluster.local", "ISTIO_SVC_IP": "192.0.2.50",
		},
		ProxyConfig: &meshv1alpha1.ProxyConfig{DiscoveryAddress: "istiod.istio-system.svc:15012"},
		RootCertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Token:       enc.EncodeToString(h) + "." + enc.EncodeToString(p) + "." + enc.EncodeToString([]byte("signature")),
		Hosts:       []bundle.HostEntry{{IP: netip.MustParseAddr("192.0.2.10"), Names: []string{"istiod.istio-system.svc"}}},
	}
}

// Write writes Files(t) into dir and returns dir.
func Write(t testing.TB, dir string) string {
	t.Helper()
	if err := Files(t).WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}
