package journey

import (
	"context"
	"testing"
	"time"

	"fmt"
	"github.com/onramp-mesh/onramp/testbed/nspawn"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// hostDebs downloads, with the host's apt and its lists, the .debs that
// pkgs need on top of the Debian 12 rootfs root (the host's own release), into
// a cache directory that later runs reuse, and returns it. Installing them in
// a volatile machine (dpkg -i) is much cheaper than a rootfs of its own, and
// the machine needs no network for it.
func hostDebs(ctx context.Context, root string, pkgs ...string) (string, error) {
	dir := filepath.Join(cacheDir(), "journey-debs", filepath.Base(root)+"-"+strings.Join(pkgs, "+"))
	if err := os.MkdirAll(filepath.Join(dir, "partial"), 0o755); err != nil {
		return "", err
	}
	lock := "/run/lock/onramp-apt.lock"
	if _, err := os.Stat("/work"); err == nil {
		lock = "/work/apt.lock" // shared with every other apt call on a shared machine
	}
	args := append([]string{lock, "apt-get", "install", "--download-only", "-y", "-qq",
		"--no-install-recommends",
		"-o", "Dir::State::status=" + filepath.Join(root, "var/lib/dpkg/status"),
		"-o", "Dir::Cache::archives=" + dir,
		"-o", "DPkg::Lock::Timeout=600"}, pkgs...)
	cmd := exec.CommandContext(ctx, "flock", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get --download-only %v: %v\n%s", pkgs, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	if len(debs) == 0 {
		return "", fmt.Errorf("apt-get --download-only %v: no .deb in %s", pkgs, dir)
	}
	return dir, nil
}

func cacheDir() string {
	if d := os.Getenv("ONRAMP_TESTBED_CACHE"); d != "" {
		return d
	}
	return "/var/cache/onramp-testbed"
}

// withDebs boots a Debian 12 machine as newVM does and installs pkgs into it
// from hostDebs.
func withDebs(t *testing.T, o nspawn.Opts, pkgs ...string) *vm {
	t.Helper()
	if err := nspawn.Available(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root, err := nspawn.Rootfs(ctx, "bookworm")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	dir, err := hostDebs(ctx, root, pkgs...)
	if err != nil {
		t.Fatal(err)
	}
	o.Binds = append(o.Binds, nspawn.Bind{Src: dir, Dst: "/debs"})
	v := newVM(t, "bookworm", o)
	v.sh("DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends /debs/*.deb >/tmp/debs.log 2>&1 || { tail -30 /tmp/debs.log; exit 1; }")
	t.Logf("%v installed in %v", pkgs, time.Since(start).Round(100*time.Millisecond))
	return v
}

// debsDir is hostDebs for the Debian 12 rootfs, for a test.
func debsDir(t *testing.T, pkgs ...string) string {
	t.Helper()
	if err := nspawn.Available(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root, err := nspawn.Rootfs(ctx, "bookworm")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := hostDebs(ctx, root, pkgs...)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
