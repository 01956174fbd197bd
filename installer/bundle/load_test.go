package bundle

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeValid(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := validFiles(t).WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func loadFake(dir string, fn *fakeNet) (*Bundle, error) {
	return LoadWith(dir, Options{Network: fn.source()})
}

func TestLoadValid(t *testing.T) {
	dir := writeValid(t)
	fn := newFakeNet()
	fn.route[netip.MustParseAddr("192.0.2.10")] = netip.MustParseAddr("192.0.2.50")
	b, err := loadFake(dir, fn)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"DiscoveryAddress", b.DiscoveryAddress, "istiod.istio-system.svc:15012"},
		{"ServerName", b.ServerName, "istiod.istio-system.svc"},
		{"CAAddress", b.CAAddress, "istiod.istio-system.svc:15012"},
		{"Namespace", b.Namespace, "vm-ns"},
		{"ServiceAccount", b.ServiceAccount, "vm-sa"},
		{"TrustDomain", b.TrustDomain, "cluster.local"},
		{"ClusterID", b.ClusterID, "cluster1"},
		{"Network", b.Network, "vm-net"},
		{"MeshID", b.MeshID, "mesh1"},
		{"WorkloadName", b.WorkloadName, "vm-app"},
		{"AutoRegisterGroup", b.AutoRegisterGroup, "vm-app"},
		{"Labels[version]", b.Labels["version"], "v1"},
		{"Meta[NETWORK]", b.Meta["NETWORK"], "vm-net"},
		{"Env[ISTIO_SERVICE]", b.Env["ISTIO_SERVICE"], "vm-app.vm-ns"},
		{"IP", b.IP.String(), "192.0.2.50"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if b.Plaintext || b.CAAddressExplicit || !b.DNSCapture {
		t.Errorf("Plaintext=%v CAAddressExplicit=%v DNSCapture=%v", b.Plaintext, b.CAAddressExplicit, b.DNSCapture)
	}
	if b.Roots == nil || len(b.RootCertPEM) == 0 || b.Token == "" || b.TokenExpiry.IsZero() {
		t.Error("root or token not loaded")
	}
	if len(fn.dialed) != 1 || fn.dialed[0] != netip.MustParseAddrPort("192.0.2.10:15012") {
		t.Errorf("route looked up to %v, want the hosts-file gateway 192.0.2.10:15012", fn.dialed)
	}
	if err := b.ValidateToken(time.Now()); err != nil {
		t.Errorf("fresh token: %v", err)
	}
}

func TestLoadDerivedFields(t *testing.T) {
	f := validFiles(t)
	f.MeshYAML = []byte("defaultConfig:\n  discoveryAddress: localhost:15010\n  controlPlaneAuthPolicy: NONE\n  meshId: from-mesh\n  readinessProbe:\n    httpGet:\n      path: /ready\n      port: 8080\n    periodSeconds: 5\n  someFutureField: 1\n")
	f.ClusterEnv["CA_ADDR"] = "ca.example.internal:15012"
	f.ClusterEnv["ISTIO_SVC_IP"] = "10.1.2.3"
	delete(f.ClusterEnv, "ISTIO_META_MESH_ID")
	delete(f.ClusterEnv, "TRUST_DOMAIN")
	delete(f.ClusterEnv, "ISTIO_META_CLUSTER_ID")
	dir := t.TempDir()
	if err := f.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	b, err := loadFake(dir, newFakeNet())
	if err != nil {
		t.Fatal(err)
	}
	if b.ServerName != "istiod.istio-system.svc" || !b.Plaintext || b.CAAddress != "ca.example.internal:15012" || !b.CAAddressExplicit {
		t.Errorf("ServerName=%q Plaintext=%v CAAddress=%q", b.ServerName, b.Plaintext, b.CAAddress)
	}
	if b.MeshID != "from-mesh" || b.TrustDomain != DefaultTrustDomain || b.ClusterID != DefaultClusterID {
		t.Errorf("MeshID=%q TrustDomain=%q ClusterID=%q", b.MeshID, b.TrustDomain, b.ClusterID)
	}
	if b.IP != netip.MustParseAddr("10.1.2.3") {
		t.Errorf("IP = %v, want ISTIO_SVC_IP", b.IP)
	}
	if b.ReadinessProbe.GetHttpGet().GetPath() != "/ready" || b.ReadinessProbe.GetPeriodSeconds() != 5 {
		t.Errorf("readiness probe = %v", b.ReadinessProbe)
	}
	if len(b.Warnings) == 0 || !strings.Contains(strings.Join(b.Warnings, "\n"), "someFutureField") {
		t.Errorf("warnings %q lack the unknown field", b.Warnings)
	}

	// ISTIOD_SAN overrides; no controlPlaneAuthPolicy means TLS.
	f.ClusterEnv["ISTIOD_SAN"] = "istiod.custom.svc"
	f.MeshYAML = []byte("defaultConfig:\n  discoveryAddress: 10.9.9.9:15012\n")
	if err := f.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	if b, err = loadFake(dir, newFakeNet()); err != nil {
		t.Fatal(err)
	}
	if b.ServerName != "istiod.custom.svc" || b.Plaintext {
		t.Errorf("ServerName=%q Plaintext=%v", b.ServerName, b.Plaintext)
	}
}

func TestTokenExpiryIsNotALoadError(t *testing.T) {
	f := validFiles(t)
	exp := time.Now().Add(-time.Hour).Truncate(time.Second)
	f.Token = testJWT(map[string]any{"aud": "istio-ca", "exp": exp.Unix()})
	dir := t.TempDir()
	if err := f.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	b, err := loadFake(dir, newFakeNet())
	if err != nil {
		t.Fatalf("expired token must not fail Load: %v", err)
	}
	if !b.TokenExpired(time.Now()) || b.TokenExpired(exp.Add(-time.Second)) {
		t.Error("TokenExpired wrong")
	}
	err = b.ValidateToken(time.Now())
	var te *TokenError
	if !errors.As(err, &te) || !te.Expiry.Equal(exp) {
		t.Fatalf("ValidateToken = %v, want *TokenError at %v", err, exp)
	}
	for _, want := range []string{"istio-token expired at " + exp.UTC().Format(time.RFC3339), "istioctl x workload entry configure"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name   string
		mutate func(dir string)
		file   string
		line   int
		key    string
		msg    string
	}{
		{"missing cluster.env", rm(FileClusterEnv), FileClusterEnv, 0, "", "missing"},
		{"missing mesh.yaml", rm(FileMeshYAML), FileMeshYAML, 0, "", "missing"},
		{"missing root", rm(FileRootCert), FileRootCert, 0, "", "missing"},
		{"missing token", rm(FileToken), FileToken, 0, "", "missing"},
		{"missing hosts", rm(FileHosts), FileHosts, 0, "", "missing"},
		{"unparsable env line", appendTo(FileClusterEnv, "# ok\n\nNOT A LINE\n"), FileClusterEnv, 20, "", "expected KEY='value'"},
		{"unterminated quote", appendTo(FileClusterEnv, "X='abc\n"), FileClusterEnv, 18, "X", "unterminated single quote"},
		{"expansion", appendTo(FileClusterEnv, "X=$HOME\n"), FileClusterEnv, 18, "X", "expansion"},
		{"missing POD_NAMESPACE", dropKey("POD_NAMESPACE"), FileClusterEnv, 0, "POD_NAMESPACE", "required"},
		{"missing SERVICE_ACCOUNT", dropKey("SERVICE_ACCOUNT"), FileClusterEnv, 0, "SERVICE_ACCOUNT", "required"},
		{"bad namespace", appendTo(FileClusterEnv, "POD_NAMESPACE='Bad_NS'\n"), FileClusterEnv, 18, "POD_NAMESPACE", "namespace"},
		{"bad labels JSON", appendTo(FileClusterEnv, "ISTIO_METAJSON_LABELS='{\"app\":'\n"), FileClusterEnv, 18, "ISTIO_METAJSON_LABELS", "JSON"},
		{"labels not strings", appendTo(FileClusterEnv, "ISTIO_METAJSON_LABELS='{\"app\":1}'\n"), FileClusterEnv, 18, "ISTIO_METAJSON_LABELS", "JSON"},
		{"bad DNS capture", appendTo(FileClusterEnv, "ISTIO_META_DNS_CAPTURE=maybe\n"), FileClusterEnv, 18, "ISTIO_META_DNS_CAPTURE", "true or false"},
		{"bad CA_ADDR", appendTo(FileClusterEnv, "CA_ADDR=noport\n"), FileClusterEnv, 18, "CA_ADDR", "host:port"},
		{"bad ISTIO_SVC_IP", appendTo(FileClusterEnv, "ISTIO_SVC_IP=10.0.0.300\n"), FileClusterEnv, 18, "ISTIO_SVC_IP", "not an IP"},
		{"mesh not YAML", put(FileMeshYAML, "defaultConfig: [\n"), FileMeshYAML, 0, "", "YAML"},
		{"mesh not mapping", put(FileMeshYAML, "- a\n"), FileMeshYAML, 0, "", "mapping"},
		{"mesh bad enum", put(FileMeshYAML, "defaultConfig:\n  controlPlaneAuthPolicy: SOMETIMES\n"), FileMeshYAML, 0, "defaultConfig.controlPlaneAuthPolicy", "invalid"},
		{"mesh bad type", put(FileMeshYAML, "defaultConfig:\n  discoveryAddress: [1]\n"), FileMeshYAML, 0, "defaultConfig.discoveryAddress", "invalid"},
		{"mesh bad address", put(FileMeshYAML, "defaultConfig:\n  discoveryAddress: istiod\n"), FileMeshYAML, 0, "defaultConfig.discoveryAddress", "host:port"},
		{"root not PEM", put(FileRootCert, "hello"), FileRootCert, 0, "", "not PEM"},
		{"root wrong block", put(FileRootCert, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), FileRootCert, 0, "", "want CERTIFICATE"},
		{"root not CA", putBytes(FileRootCert, testRoot(t, false, now.Add(-time.Hour), now.Add(time.Hour))), FileRootCert, 0, "", "not a CA"},
		{"root expired", putBytes(FileRootCert, testRoot(t, true, now.Add(-2*time.Hour), now.Add(-time.Hour))), FileRootCert, 0, "", "expired"},
		{"root trailing junk", func(dir string) { appendTo(FileRootCert, "junk")(dir) }, FileRootCert, 0, "", "unparsable data"},
		{"token empty", put(FileToken, "\n"), FileToken, 0, "", "empty"},
		{"token not JWT", put(FileToken, "abc.def"), FileToken, 0, "", "not a JWT"},
		{"token bad base64", put(FileToken, "###.e30.sig"), FileToken, 0, "", "base64"},
		{"token no exp", put(FileToken, testJWT(map[string]any{"aud": "istio-ca"})), FileToken, 0, "exp", "no exp"},
		{"token exp not number", put(FileToken, testJWT(map[string]any{"exp": "soon"})), FileToken, 0, "", "not a JSON object"},
		{"hosts bad IP", put(FileHosts, "# gw\n300.1.1.1 istiod.istio-system.svc\n"), FileHosts, 2, "", "not an IP"},
		{"hosts no name", put(FileHosts, "10.0.0.1\n"), FileHosts, 1, "", "no host name"},
		{"hosts bad name", put(FileHosts, "10.0.0.1 bad..name\n"), FileHosts, 1, "", "not a valid host name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeValid(t)
			c.mutate(dir)
			_, err := loadFake(dir, newFakeNet())
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Load = %v, want *Error", err)
			}
			if e.File != c.file || e.Line != c.line || e.Key != c.key || e.Dir != dir {
				t.Errorf("error at dir=%q file=%q line=%d key=%q, want file=%q line=%d key=%q: %v", e.Dir, e.File, e.Line, e.Key, c.file, c.line, c.key, err)
			}
			if !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), c.file) {
				t.Errorf("%q does not mention %q and %q", err, c.file, c.msg)
			}
		})
	}
}

func rm(file string) func(string) {
	return func(dir string) { os.Remove(filepath.Join(dir, file)) }
}

func put(file, content string) func(string) { return putBytes(file, []byte(content)) }

func putBytes(file string, content []byte) func(string) {
	return func(dir string) {
		if err := os.WriteFile(filepath.Join(dir, file), content, 0o644); err != nil {
			panic(err)
		}
	}
}

func appendTo(file, content string) func(string) {
	return func(dir string) {
		p := filepath.Join(dir, file)
		old, err := os.ReadFile(p)
		if err != nil {
			panic(err)
		}
		putBytes(file, append(old, content...))(dir)
	}
}

func dropKey(key string) func(string) {
	return func(dir string) {
		p := filepath.Join(dir, FileClusterEnv)
		old, _ := os.ReadFile(p)
		var keep []string
		for _, l := range strings.SplitAfter(string(old), "\n") {
			if !strings.HasPrefix(l, key+"=") {
				keep = append(keep, l)
			}
		}
		putBytes(FileClusterEnv, []byte(strings.Join(keep, "")))(dir)
	}
}
