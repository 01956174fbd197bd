package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onramp-mesh/onramp/installer/bundle"
	"github.com/onramp-mesh/onramp/testbed/ca"
)

const demoMesh = "../../mesh/testdata/demo"

func TestBundleCommand(t *testing.T) {
	state, out := t.TempDir(), filepath.Join(t.TempDir(), "bundle")
	var stdout bytes.Buffer
	err := runBundle([]string{"--config", demoMesh, "--state", state, "--group", "vm-group", "--namespace", "vm",
		"-o", out, "--gateway-ip", "127.0.0.1", "--ip", "10.0.0.2", "--plaintext", "--token-ttl", "10m"}, &stdout)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Load(out)
	if err != nil {
		t.Fatalf("bundle.Load: %v", err)
	}
	if b.Namespace != "vm" || b.AutoRegisterGroup != "vm-group" || !b.Plaintext || b.DiscoveryAddress != "istiod.istio-system.svc:15010" {
		t.Fatalf("bundle %+v", b)
	}
	// The token verifies with the state dir's key: a control plane started
	// on that state accepts it.
	a, err := ca.New(ca.Options{StateDir: state}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.VerifyToken(b.Token); err != nil {
		t.Fatal(err)
	}
	if string(a.RootPEM()) != string(b.RootCertPEM) {
		t.Fatal("bundle root differs from the state's root")
	}
}

func TestBundleCommandRefusesUnknownGroup(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bundle")
	err := runBundle([]string{"--config", demoMesh, "--state", t.TempDir(), "--group", "nope", "--namespace", "vm", "-o", out}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "WorkloadGroup vm/nope not found") {
		t.Fatalf("err = %v", err)
	}
	if _, serr := os.Stat(out); !os.IsNotExist(serr) {
		t.Fatal("output directory created for a refused bundle")
	}
	err = runBundle([]string{"--group", "vm-group"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "--namespace") || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("missing flags: err = %v", err)
	}
}
