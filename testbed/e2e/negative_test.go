package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onramp-mesh/onramp/testbed/harness"
)

// waitExit waits for the agent to stop on its own and returns its output.
func waitExit(t *testing.T, a *harness.Agent, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if done, err := a.Exited(); done {
			if err == nil {
				t.Errorf("agent exited with status 0; want a failure")
			}
			return a.Output()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("agent still running after %s:\n%s", within, harness.Tail(a.Output(), 20))
	return ""
}

func TestWrongRootCertIsRefused(t *testing.T) {
	e := newEnv(t, 10*time.Second)
	dir := e.bundle(harness.BundleOptions{})
	// Another CA's root, as when the bundle came from another mesh.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{Organization: []string{"other mesh"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	os.WriteFile(filepath.Join(dir, "root-cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)

	state := filepath.Join(e.work, "vm-state")
	a := e.agent(dir, state)
	e.eventually(10*time.Second, "a clear TLS error", func() string {
		if out := a.Output(); strings.Contains(out, "does not verify against the bundle's root-cert.pem") && strings.Contains(out, "mint a fresh bundle") {
			return ""
		}
		return "no TLS verification error yet:\n" + harness.Tail(a.Output(), 5)
	})
	if rep := e.status(a); !strings.Contains(rep.Identity.LastError, "root-cert.pem") {
		t.Errorf("onramp status does not say what is wrong: %q", rep.Identity.LastError)
	}
	if _, err := os.Stat(filepath.Join(state, "cert-chain.pem")); err == nil {
		t.Error("a certificate was stored although the CA could not be verified")
	}
	t.Logf("agent says (%d bytes):\n%s", len(a.Output()), a.Output())
	if n := len(e.entries()); n != 0 {
		t.Errorf("%d WorkloadEntries registered through an unverified control plane", n)
	}
}

func TestExpiredTokenWithoutCertificateSaysReBootstrap(t *testing.T) {
	e := newEnv(t, 10*time.Second)
	dir := e.bundle(harness.BundleOptions{TokenTTL: time.Second})
	time.Sleep(2 * time.Second)
	a := e.agent(dir, filepath.Join(e.work, "vm-state"))
	out := waitExit(t, a, 20*time.Second)
	if !strings.Contains(out, "expired") || !strings.Contains(out, "bootstrap") {
		t.Errorf("want an error saying the token expired and to re-bootstrap:\n%s", harness.Tail(out, 10))
	}
	if n := len(e.entries()); n != 0 {
		t.Errorf("%d entries registered with an expired token", n)
	}
	t.Logf("agent says: %s", harness.Tail(out, 1))
}

func TestMissingWorkloadGroupReportedAndRetried(t *testing.T) {
	e := newEnv(t, 10*time.Second)
	dir := e.bundle(harness.BundleOptions{})
	group := testMesh["vm-group.yaml"]
	if err := os.Remove(filepath.Join(e.mesh, "vm-group.yaml")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the control plane reloads
	a := e.agent(dir, filepath.Join(e.work, "vm-state"))
	var first int
	e.eventually(15*time.Second, "the control plane's reason in onramp status", func() string {
		rep, err := e.tryStatus(a)
		if err != nil {
			return err.Error()
		}
		if strings.Contains(rep.ControlPlane.LastError, "FailedPrecondition") && strings.Contains(rep.ControlPlane.LastError, "vm-group") {
			first = rep.ControlPlane.Reconnects
			return ""
		}
		return fmt.Sprintf("%+v", rep.ControlPlane)
	})
	e.eventually(15*time.Second, "retries", func() string {
		if rep := e.status(a); rep.ControlPlane.Reconnects <= first {
			return fmt.Sprintf("reconnects %d", rep.ControlPlane.Reconnects)
		}
		return ""
	})
	// Once the group exists, the agent joins without a restart.
	e.writeMesh("vm-group.yaml", group)
	e.eventually(40*time.Second, "registered once the group exists", func() string {
		if len(e.entries()) == 1 && e.status(a).ControlPlane.Connected {
			return ""
		}
		return fmt.Sprintf("%+v", e.status(a).ControlPlane)
	})
}

func TestIdentityMismatchIsRefused(t *testing.T) {
	e := newEnv(t, 10*time.Second)
	dir := e.bundle(harness.BundleOptions{})
	// The token is for vm/vm-sa; the node claims another namespace.
	env := filepath.Join(dir, "cluster.env")
	b, _ := os.ReadFile(env)
	os.WriteFile(env, []byte(strings.ReplaceAll(string(b), "POD_NAMESPACE='vm'", "POD_NAMESPACE='payments'")), 0o644)
	if !strings.Contains(string(b), "POD_NAMESPACE='vm'") {
		t.Fatalf("cluster.env has no POD_NAMESPACE='vm':\n%s", b)
	}
	a := e.agent(dir, filepath.Join(e.work, "vm-state"))
	e.eventually(20*time.Second, "a refusal naming the identity", func() string {
		out := a.Output()
		if strings.Contains(out, "PermissionDenied") || strings.Contains(out, "does not match") || strings.Contains(out, "mismatch") {
			return ""
		}
		return "no refusal yet:\n" + harness.Tail(out, 5)
	})
	if n := len(e.entries()); n != 0 {
		t.Errorf("%d entries registered for a mismatched identity", n)
	}
	t.Logf("agent says (%d bytes):\n%s", len(a.Output()), a.Output())
}

func TestMalformedNameTableIsNACKedAndOldTableKept(t *testing.T) {
	e := newEnv(t, 10*time.Second)
	a := e.agent(e.bundle(harness.BundleOptions{}), filepath.Join(e.work, "vm-state"))
	if err := a.WaitReady(e.ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	before := e.status(a)
	e.post("/debug/fault?nds=malformed")
	e.post("/debug/push")
	e.eventually(5*time.Second, "NACK", func() string {
		if rep := e.status(a); rep.ControlPlane.Rejected == 0 || rep.ControlPlane.LastRejection == "" {
			return fmt.Sprintf("%+v", rep.ControlPlane)
		}
		return ""
	})
	rep := e.status(a)
	if rep.NameTable.Version != before.NameTable.Version || rep.NameTable.Names != before.NameTable.Names {
		t.Errorf("table changed after a NACK: %+v -> %+v", before.NameTable, rep.NameTable)
	}
	if r := e.dig("productpage.ns1.svc.cluster.local", "A"); len(r.Answers) != 1 || r.Answers[0] != "A 10.96.0.12" {
		t.Errorf("old table no longer served: %+v", r)
	}
	t.Logf("rejected: %s", rep.ControlPlane.LastRejection)
	// Back to good tables: the next push is accepted.
	e.post("/debug/fault?nds=none")
	e.post("/debug/push")
	e.eventually(5*time.Second, "ACK after the fault clears", func() string {
		if r := e.status(a); r.ControlPlane.Accepted <= before.ControlPlane.Accepted {
			return fmt.Sprintf("%+v", r.ControlPlane)
		}
		return ""
	})
}
