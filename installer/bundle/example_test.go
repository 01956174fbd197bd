package bundle_test

import (
	"fmt"
	"log"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/onramp-mesh/onramp/installer/bundle"
)

// Example writes a bundle the way istioctl does and loads it back.
func Example() {
	dir, _ := os.MkdirTemp("", "bundle")
	defer os.RemoveAll(dir)

	root, _ := os.ReadFile(filepath.Join("testdata", "root-cert.pem"))
	token, _ := os.ReadFile(filepath.Join("testdata", "istio-token"))
	files := &bundle.Files{
		ClusterEnv: map[string]string{
			"POD_NAMESPACE":          "vm-ns",
			"SERVICE_ACCOUNT":        "vm-sa",
			"ISTIO_META_CLUSTER_ID":  "cluster1",
			"ISTIO_METAJSON_LABELS":  `{"app":"vm-app"}`,
			"ISTIO_META_DNS_CAPTURE": "true",
			"ISTIO_SVC_IP":           "10.0.0.5",
		},
		ProxyConfig: &meshv1alpha1.ProxyConfig{DiscoveryAddress: "istiod.istio-system.svc:15012"},
		RootCertPEM: root,
		Token:       string(token),
		Hosts:       []bundle.HostEntry{{IP: netip.MustParseAddr("192.0.2.10"), Names: []string{"istiod.istio-system.svc"}}},
	}
	if err := files.WriteDir(dir); err != nil {
		log.Fatal(err)
	}
	// Check certificates as of a fixed day, to keep the example stable.
	b, err := bundle.LoadWith(dir, bundle.Options{Now: func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(b.DiscoveryAddress, b.ServerName)
	fmt.Printf("spiffe://%s/ns/%s/sa/%s\n", b.TrustDomain, b.Namespace, b.ServiceAccount)
	fmt.Println(b.ClusterID, b.IP, b.Labels["app"], b.DNSCapture)
	fmt.Println(b.ValidateToken(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)) != nil)
	// Output:
	// istiod.istio-system.svc:15012 istiod.istio-system.svc
	// spiffe://cluster.local/ns/vm-ns/sa/vm-sa
	// cluster1 10.0.0.5 vm-app true
	// true
}
