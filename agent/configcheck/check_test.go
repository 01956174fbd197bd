package configcheck

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
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/onramp-mesh/onramp/installer/bundle"
)

var now = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

// writeBundle writes a valid bundle whose token expires at exp.
func writeBundle(t *testing.T, dir string, exp time.Time) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "root"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	claims, _ := json.Marshal(map[string]any{"aud": []string{"istio-ca"}, "exp": exp.Unix(), "sub": "system:serviceaccount:vm-ns:vm-sa"})
	enc := base64.RawURLEncoding
	f := &bundle.Files{
		ClusterEnv: map[string]string{
			"CANONICAL_SERVICE": "vm-app", "ISTIO_META_CLUSTER_ID": "cluster1", "ISTIO_META_MESH_ID": "mesh1",
			"ISTIO_META_NETWORK": "vm-net", "ISTIO_NAMESPACE": "vm-ns", "POD_NAMESPACE": "vm-ns",
			"SERVICE_ACCOUNT": "vm-sa", "TRUST_DOMAIN": "cluster.local", "ISTIO_META_AUTO_REGISTER_GROUP": "vm-app",
		},
		ProxyConfig: &meshv1alpha1.ProxyConfig{DiscoveryAddress: "istiod.istio-system.svc:15012"},
		RootCertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Token:       enc.EncodeToString([]byte(`{"alg":"RS256"}`)) + "." + enc.EncodeToString(claims) + ".c2ln",
		Hosts:       []bundle.HostEntry{{IP: netip.MustParseAddr("192.0.2.10"), Names: []string{"istiod.istio-system.svc"}}},
	}
	if err := f.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
}

// opts checks as root, so that no access check applies.
func opts() Options {
	return Options{Agent: &Account{Name: "root"}, Bundle: bundle.Options{
		Now: func() time.Time { return now },
		Network: bundle.AddressSource{
			RouteSource: func(netip.AddrPort) (netip.Addr, error) { return netip.MustParseAddr("192.0.2.50"), nil },
			Interfaces: func() ([]bundle.NetInterface, error) {
				return []bundle.NetInterface{{Name: "eth0", Up: true, Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.50")}}}, nil
			},
		},
	}}
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	os.Mkdir(state, 0o755)
	good, expired, broken := filepath.Join(dir, "good"), filepath.Join(dir, "expired"), filepath.Join(dir, "broken")
	writeBundle(t, good, now.Add(time.Hour))
	writeBundle(t, expired, now.Add(-time.Hour))
	writeBundle(t, broken, now.Add(time.Hour))
	os.Remove(filepath.Join(broken, "mesh.yaml"))
	file := writeFile(t, filepath.Join(dir, "file"), "")
	table := writeFile(t, filepath.Join(dir, "table.json"), `{"table": {"a.example": {"ips": ["10.0.0.1"]}, "b.example": {}}}`)

	type want struct {
		ok                 bool
		severity, key, msg string // of the one finding; "" for none
	}
	for _, tc := range []struct {
		name, yaml string
		want       want
	}{
		{"good bundle", "bundle: " + good + "\nstateDir: " + state, want{ok: true}},
		{"expired token", "bundle: " + expired + "\nstateDir: " + state, want{true, Warning, "bundle", "istio-token"}},
		{"bundle without mesh.yaml", "bundle: " + broken + "\nstateDir: " + state, want{false, Error, "bundle", broken + "/mesh.yaml: missing"}},
		{"bundle is a file", "bundle: " + file + "\nstateDir: " + state, want{false, Error, "bundle", "is not a directory"}},
		{"bundle absent", "bundle: " + filepath.Join(dir, "absent") + "\nstateDir: " + state, want{false, Error, "bundle", "no such file"}},
		{"table entry without addresses", "nameTable: " + table + "\nstateDir: " + state, want{false, Error, "nameTable", `"b.example"`}},
		{"state dir absent", "bundle: " + good + "\nstateDir: " + filepath.Join(dir, "nostate"), want{true, Warning, "stateDir", "does not exist"}},
		{"state dir is a file", "bundle: " + good + "\nstateDir: " + file, want{false, Error, "stateDir", "is not a directory"}},
		{"unknown key", "bundel: " + good, want{false, Error, "", `unknown field "bundel"`}},
		{"bad value", "bundle: " + good + "\nlog: {level: loud}", want{false, Error, "", `log.level: "loud"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, filepath.Join(t.TempDir(), "onramp.yaml"), tc.yaml+"\n")
			r := Check(path, opts())
			if r.OK != tc.want.ok || r.File != path {
				t.Errorf("OK %v, file %q; want %v, %q", r.OK, r.File, tc.want.ok, path)
			}
			if tc.want.msg == "" {
				if len(r.Findings) != 0 {
					t.Errorf("findings %v, want none", r.Findings)
				}
				return
			}
			if len(r.Findings) != 1 {
				t.Fatalf("findings %v, want one", r.Findings)
			}
			f := r.Findings[0]
			if f.Severity != tc.want.severity || f.Key != tc.want.key || f.File != path || !strings.Contains(f.Message, tc.want.msg) {
				t.Errorf("finding %+v; want %s %s containing %q", f, tc.want.severity, tc.want.key, tc.want.msg)
			}
			if strings.HasPrefix(f.Message, f.Key+": ") || strings.HasPrefix(strings.ToLower(f.Message), strings.ToLower(f.Key)+": ") {
				t.Errorf("message repeats its key: %s", f)
			}
		})
	}
}

func TestCheckAgentAccess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the files must be owned by another user than the agent's")
	}
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	state := filepath.Join(dir, "state")
	os.Mkdir(state, 0o755)
	b := filepath.Join(dir, "bundle")
	writeBundle(t, b, now.Add(time.Hour)) // istio-token is written 0600, owned by root
	os.Chmod(b, 0o755)
	for _, f := range []string{"cluster.env", "mesh.yaml", "root-cert.pem", "hosts"} {
		os.Chmod(filepath.Join(b, f), 0o644)
	}
	nobody := &Account{Name: "nobody", UID: 65534, Groups: []uint32{65534}}
	o := opts()
	o.Agent = nobody
	cfg := writeFile(t, filepath.Join(dir, "onramp.yaml"), "bundle: "+b+"\nstateDir: "+state+"\n")

	r := Check(cfg, o)
	var msgs []string
	for _, f := range r.Findings {
		msgs = append(msgs, f.String())
	}
	all := strings.Join(msgs, "\n")
	if r.OK || len(r.Findings) != 2 {
		t.Fatalf("OK %v, findings:\n%s\nwant the token and the state dir", r.OK, all)
	}
	tok := r.Findings[0]
	if tok.Key != "bundle" || !strings.Contains(tok.Message, "the agent runs as nobody and cannot read "+filepath.Join(b, "istio-token")+" (owner root, group root, mode 0600)") || !strings.Contains(tok.Message, "chgrp nobody") {
		t.Errorf("token finding: %s", tok)
	}
	st := r.Findings[1]
	if st.Key != "stateDir" || !strings.Contains(st.Message, "cannot read and write "+state) {
		t.Errorf("state finding: %s", st)
	}

	// The agent's group may read the token; a directory on the way that it
	// cannot enter is named.
	os.Chown(filepath.Join(b, "istio-token"), 0, 65534)
	os.Chmod(filepath.Join(b, "istio-token"), 0o640)
	os.Chown(state, 65534, 65534)
	if r := Check(cfg, o); !r.OK || len(r.Findings) != 0 {
		t.Errorf("readable by the group: %+v", r.Findings)
	}
	os.Chmod(dir, 0o700)
	r = Check(cfg, o)
	if r.OK || len(r.Findings) == 0 || !strings.Contains(r.Findings[0].Message, "cannot enter "+dir+" (owner root, group root, mode 0700)") {
		t.Errorf("unreachable directory: %+v", r.Findings)
	}
}
