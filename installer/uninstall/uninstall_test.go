package uninstall

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestRunPurge(t *testing.T) {
	root := t.TempDir()
	hosts := filepath.Join(root, "hosts")
	os.WriteFile(hosts, []byte("127.0.0.1 localhost\n# BEGIN onramp\n192.0.2.10 istiod.istio-system.svc\n# END onramp\n::1 localhost\n"), 0o644)
	cfg := filepath.Join(root, "onramp.yaml")
	os.WriteFile(cfg, []byte("# x\nbundle: /etc/onramp/bundle\ndataPlane: none\n"), 0o644)
	state := filepath.Join(root, "state")
	os.MkdirAll(filepath.Join(state, "identity-1"), 0o750)
	os.WriteFile(filepath.Join(state, "key.pem"), []byte("k"), 0o600)
	bdir := filepath.Join(root, "bundle")
	os.MkdirAll(bdir, 0o750)
	var stopped, redirected bool
	err := Run(context.Background(), Options{
		Purge: true, Hosts: hosts, StateDir: state, BundleDir: bdir,
		StopUnits:      func(context.Context) error { stopped = true; return nil },
		RemoveRedirect: func(_ context.Context, dir string) error { redirected = dir == state; return nil },
	})
	if err != nil || !stopped || !redirected {
		t.Fatalf("err %v stopped %v redirected %v", err, stopped, redirected)
	}
	if got, _ := os.ReadFile(hosts); string(got) != "127.0.0.1 localhost\n::1 localhost\n" {
		t.Errorf("hosts:\n%s", got)
	}
	if got, _ := os.ReadFile(cfg); string(got) != "# x\nbundle: /etc/onramp/bundle\ndataPlane: none\n" {
		t.Errorf("the configuration changed:\n%s", got)
	}
	if ents, _ := os.ReadDir(state); len(ents) != 0 {
		t.Errorf("state left: %v", ents)
	}
	if _, err := os.Stat(bdir); err == nil {
		t.Error("bundle left")
	}
	// Again: nothing left to do, no error.
	if err := Run(context.Background(), Options{Purge: true, Hosts: hosts, StateDir: state, BundleDir: bdir,
		StopUnits: func(context.Context) error { return nil }}); err != nil {
		t.Fatal(err)
	}
}
