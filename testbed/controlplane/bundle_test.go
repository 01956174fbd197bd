package controlplane

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onramp-mesh/onramp/installer/bundle"
	"github.com/onramp-mesh/onramp/testbed/ca"
	"github.com/onramp-mesh/onramp/testbed/mesh"
)

func TestMintBundleLoads(t *testing.T) {
	dir := t.TempDir()
	b, _ := os.ReadFile("testdata/mesh.yaml")
	os.WriteFile(filepath.Join(dir, "mesh.yaml"), b, 0o644)
	store, err := mesh.Load(dir, mesh.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, ok := store.WorkloadGroup("vm", "vm-group")
	if !ok {
		t.Fatal("vm-group not loaded")
	}
	a, err := ca.New(ca.Options{StateDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, plaintext := range []bool{false, true} {
		o := BundleOptions{
			TokenTTL:     30 * time.Minute,
			GatewayIP:    netip.MustParseAddr("127.0.0.1"),
			IP:           netip.MustParseAddr("10.0.0.9"),
			Network:      "net1",
			AutoRegister: true,
			Plaintext:    plaintext,
		}
		if plaintext {
			o.DiscoveryAddress = "istiod.istio-system.svc:15010"
		}
		files, err := MintBundle(a, g, o)
		if err != nil {
			t.Fatal(err)
		}
		out := t.TempDir()
		if err := files.WriteDir(out); err != nil {
			t.Fatal(err)
		}
		got, err := bundle.Load(out)
		if err != nil {
			t.Fatalf("bundle.Load of a minted bundle: %v", err)
		}
		if got.Namespace != "vm" || got.ServiceAccount != "vm-sa" || got.AutoRegisterGroup != "vm-group" || !got.DNSCapture ||
			got.ClusterID != "Kubernetes" || got.Network != "net1" || got.TrustDomain != "cluster.local" || got.IP != o.IP {
			t.Fatalf("bundle %+v", got)
		}
		if got.Labels["app"] != "myvmapi" || got.Labels["version"] != "v1" {
			t.Fatalf("labels %v", got.Labels)
		}
		if got.ReadinessProbe.GetHttpGet().GetPath() != "/ready" {
			t.Fatalf("readiness probe %v", got.ReadinessProbe)
		}
		if got.Plaintext != plaintext {
			t.Fatalf("plaintext = %v, want %v", got.Plaintext, plaintext)
		}
		if d := time.Until(got.TokenExpiry); d < 29*time.Minute || d > 31*time.Minute {
			t.Fatalf("token expires in %s, want 30m", d)
		}
		if _, _, err := a.VerifyToken(got.Token); err != nil {
			t.Fatalf("minted token does not verify: %v", err)
		}
		if len(got.Hosts) != 1 || got.Hosts[0].IP != o.GatewayIP || got.Hosts[0].Names[0] != "istiod.istio-system.svc" {
			t.Fatalf("hosts %+v", got.Hosts)
		}
		env, _ := os.ReadFile(filepath.Join(out, "cluster.env"))
		for _, want := range []string{"ISTIO_META_AUTO_REGISTER_GROUP='vm-group'", "ISTIO_META_DNS_CAPTURE='true'",
			"ISTIO_INBOUND_PORTS='8080'", "ISTIO_SERVICE='vm-group.vm'", "CANONICAL_SERVICE='myvmapi'", "CANONICAL_REVISION='v1'"} {
			if !strings.Contains(string(env), want) {
				t.Errorf("cluster.env lacks %s:\n%s", want, env)
			}
		}
	}
}
