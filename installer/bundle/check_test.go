package bundle_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onramp-mesh/onramp/installer/bundle"
	"github.com/onramp-mesh/onramp/installer/bundle/bundletest"
)

func TestCheckValid(t *testing.T) {
	dir := bundletest.Write(t, t.TempDir())
	b, errs := bundle.Check(dir, bundle.Options{})
	if len(errs) != 0 || b == nil || b.Namespace != "vm-ns" {
		t.Fatalf("Check = %v, %v", b, errs)
	}
}

// TestCheckEveryDefect breaks three files at once: all three are reported,
// each naming its file.
func TestCheckEveryDefect(t *testing.T) {
	dir := bundletest.Write(t, t.TempDir())
	os.Remove(filepath.Join(dir, bundle.FileToken))
	os.WriteFile(filepath.Join(dir, bundle.FileClusterEnv), []byte("POD_NAMESPACE='vm-ns'\n"), 0o644)
	os.WriteFile(filepath.Join(dir, bundle.FileRootCert), []byte("not a certificate\n"), 0o644)
	b, errs := bundle.Check(dir, bundle.Options{})
	if b != nil || len(errs) != 3 {
		t.Fatalf("Check = %v, %d errors: %v", b, len(errs), errs)
	}
	all := ""
	for _, e := range errs {
		all += e.Error() + "\n"
	}
	for _, want := range []string{"cluster.env key SERVICE_ACCOUNT", "root-cert.pem", "istio-token: missing"} {
		if !strings.Contains(all, want) {
			t.Errorf("no %q in:\n%s", want, all)
		}
	}
}

func TestCheckNotADirectory(t *testing.T) {
	_, errs := bundle.Check(filepath.Join(t.TempDir(), "nope"), bundle.Options{})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "istioctl x workload entry configure") {
		t.Fatalf("errs = %v", errs)
	}
}
