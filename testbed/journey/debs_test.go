package journey

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/onramp-mesh/onramp/testbed/nspawn"
)

// debsCache is where the downloaded .debs and the apt lists for each suite
// are kept between runs; testbed/packaging keeps its own in the same place,
// under the same lock.
const debsCache = "/var/cache/onramp-packaging-test"

// debsFor downloads pkgs with the dependencies the machine image of suite
// lacks (apt-get install --download-only against the image's dpkg status,
// with lists and archives of its own under debsCache: the host's apt state is
// not touched) and returns the directory of .debs, to be installed in a
// volatile machine, which has no network.
func debsFor(t *testing.T, suite string, pkgs ...string) string {
	t.Helper()
	if err := nspawn.Available(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root, err := nspawn.Rootfs(ctx, suite)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(debsCache, "apt-"+suite)
	archives := filepath.Join(base, "archives-"+filepath.Base(root)+"-"+strings.Join(pkgs, "+"))
	for _, d := range []string{filepath.Join(base, "lists", "partial"), filepath.Join(archives, "partial")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	lock, err := os.OpenFile(filepath.Join(base, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if done, _ := filepath.Glob(filepath.Join(archives, "*.deb")); len(done) > 0 {
		return archives
	}
	mirror, err := nspawn.Mirror()
	if err != nil {
		t.Fatal(err)
	}
	sources := filepath.Join(base, "sources.list")
	line := fmt.Sprintf("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n", mirror, suite)
	if err := os.WriteFile(sources, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := []string{
		"-o", "Dir::Etc::sourcelist=" + sources, "-o", "Dir::Etc::sourceparts=-",
		"-o", "Dir::State::Lists=" + filepath.Join(base, "lists"), "-o", "Dir::Cache::archives=" + archives,
		"-o", "Dir::State::status=" + filepath.Join(root, "var/lib/dpkg/status"),
		"-o", "APT::Architecture=" + runtime.GOARCH, "-o", "Debug::NoLocking=1", "-qq",
	}
	if lists, _ := filepath.Glob(filepath.Join(base, "lists", "*Packages*")); len(lists) == 0 {
		if out, err := exec.CommandContext(ctx, "apt-get", append(opts, "update")...).CombinedOutput(); err != nil {
			t.Fatalf("apt-get update for %s: %v\n%s", suite, err, out)
		}
	}
	args := append(opts, "install", "--download-only", "-y", "--no-install-recommends")
	if out, err := exec.CommandContext(ctx, "apt-get", append(args, pkgs...)...).CombinedOutput(); err != nil {
		t.Fatalf("apt-get download %v for %s: %v\n%s", pkgs, suite, err, out)
	}
	return archives
}

// installDebs is the command that installs what debsFor downloaded, bound at /debs.
const installDebs = "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends /debs/*.deb >/tmp/debs.log 2>&1 || { tail -30 /tmp/debs.log; exit 1; }"

// withDebs boots a Debian 12 machine as newVM does and installs pkgs into it
// from debsFor.
func withDebs(t *testing.T, o nspawn.Opts, pkgs ...string) *vm {
	t.Helper()
	start := time.Now()
	o.Binds = append(o.Binds, nspawn.Bind{Src: debsFor(t, "bookworm", pkgs...), Dst: "/debs"})
	v := newVM(t, "bookworm", o)
	v.sh(installDebs)
	t.Logf("%v installed in %v", pkgs, time.Since(start).Round(100*time.Millisecond))
	return v
}
