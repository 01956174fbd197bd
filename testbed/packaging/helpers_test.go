package packaging_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/onramp-mesh/onramp/testbed/nspawn"
)

// The two builds the suite installs, upgrades from and to.
const (
	oldVersion = "0.1.0"
	newVersion = "0.1.1"
)

// cacheDir keeps what the suite downloads for the machines (polkitd and
// rpmlint with their dependencies: the machines have no network), outside
// the repository.
const cacheDir = "/var/cache/onramp-packaging-test"

// packages are the built .deb and .rpm of both versions for the host's
// architecture.
type packages struct {
	dir              string // holds old/ and new/
	oldDeb, newDeb   string // paths below dir
	oldRPM, newRPM   string
	debArch, rpmArch string
	buildErr         error
	buildOnce        sync.Once
	buildTime        time.Duration
}

var pkgs packages

// built builds the packages once for the whole test binary with the
// Makefile's own target (make deb rpm), so the suite tests what users get.
func built(t *testing.T) *packages {
	t.Helper()
	if err := nspawn.Available(); err != nil {
		t.Skip(err)
	}
	pkgs.buildOnce.Do(func() {
		start := time.Now()
		pkgs.debArch = runtime.GOARCH
		pkgs.rpmArch = map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
		dir, err := os.MkdirTemp("", "onramp-packaging-")
		if err != nil {
			pkgs.buildErr = err
			return
		}
		pkgs.dir = dir
		root, _ := filepath.Abs("../..")
		for _, v := range []struct{ version, sub string }{{oldVersion, "old"}, {newVersion, "new"}} {
			cmd := exec.Command("make", "-C", root, "deb", "rpm", "PKG_ARCHES="+runtime.GOARCH, "VERSION="+v.version, "DIST="+filepath.Join(dir, v.sub))
			if out, err := cmd.CombinedOutput(); err != nil {
				pkgs.buildErr = fmt.Errorf("make deb rpm VERSION=%s: %v\n%s", v.version, err, out)
				return
			}
		}
		pkgs.oldDeb = fmt.Sprintf("old/onramp_%s-1_%s.deb", oldVersion, pkgs.debArch)
		pkgs.newDeb = fmt.Sprintf("new/onramp_%s-1_%s.deb", newVersion, pkgs.debArch)
		pkgs.oldRPM = fmt.Sprintf("old/onramp-%s-1.%s.rpm", oldVersion, pkgs.rpmArch)
		pkgs.newRPM = fmt.Sprintf("new/onramp-%s-1.%s.rpm", newVersion, pkgs.rpmArch)
		pkgs.buildTime = time.Since(start)
	})
	if pkgs.buildErr != nil {
		t.Fatal(pkgs.buildErr)
	}
	return &pkgs
}

// bind puts the package directory at /pkgs in a machine.
func (p *packages) bind() nspawn.Bind { return nspawn.Bind{Src: p.dir, Dst: "/pkgs"} }

// debsFor downloads pkgNames with the dependencies the machine image of
// suite lacks (apt-get install --download-only against a copy of the
// image's dpkg status, with lists and archives of its own under cacheDir:
// the host's apt state is not touched) and returns the directory of .debs.
func debsFor(t *testing.T, suite string, pkgNames ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root, err := nspawn.Rootfs(ctx, suite)
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(cacheDir, "apt-"+suite)
	archives := filepath.Join(base, "archives-"+strings.Join(pkgNames, "+"))
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
	if out, err := exec.CommandContext(ctx, "apt-get", append(args, pkgNames...)...).CombinedOutput(); err != nil {
		t.Fatalf("apt-get download %v for %s: %v\n%s", pkgNames, suite, err, out)
	}
	return archives
}

// snapshot is what a package may leave on a machine: every path under the
// directories it writes to, with mode and owner, the onramp user and group,
// and onramp's unit files with their enablement.
func snapshot(t *testing.T, ctx context.Context, m *nspawn.Machine) string {
	t.Helper()
	// Paths that change on their own (package manager databases, journals,
	// systemd's own state) or with any useradd/userdel (the -backups) are not
	// onramp's; the user shows in getent.
	script := `find /etc /usr /lib /var/lib /run/systemd/system -xdev \
	  \( -path /var/lib/dpkg -o -path /var/lib/apt -o -path /var/lib/rpm -o -path /var/lib/systemd \
	     -o -path /var/lib/polkit-1 -o -path /etc/ld.so.cache -o -name '*-' -o -path /usr/lib/sysimage \) -prune \
	  -o -printf '%p %m %u:%g\n' 2>/dev/null | sort
	echo "passwd: $(getent passwd onramp)"
	echo "group: $(getent group onramp)"
	systemctl list-unit-files --no-legend 'onramp*'
	ip -brief link show onramp0 2>/dev/null; nft list tables 2>/dev/null | grep onramp; true`
	out, err := m.Run(ctx, "sh", "-c", script)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// diffLines returns the lines only in a and only in b.
func diffLines(a, b string) (onlyA, onlyB []string) {
	set := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			if l != "" {
				m[l] = true
			}
		}
		return m
	}
	sa, sb := set(a), set(b)
	for l := range sa {
		if !sb[l] {
			onlyA = append(onlyA, l)
		}
	}
	for l := range sb {
		if !sa[l] {
			onlyB = append(onlyB, l)
		}
	}
	sort.Strings(onlyA)
	sort.Strings(onlyB)
	return onlyA, onlyB
}

// sameAs fails t unless after equals before.
func sameAs(t *testing.T, what, before, after string) {
	t.Helper()
	gone, left := diffLines(before, after)
	if len(gone)+len(left) > 0 {
		t.Errorf("%s: the machine is not as before:\n  left behind: %s\n  gone: %s", what, strings.Join(left, "\n               "), strings.Join(gone, "\n         "))
	}
}

func run(t *testing.T, ctx context.Context, m *nspawn.Machine, args ...string) string {
	t.Helper()
	out, err := m.Run(ctx, args...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return strings.TrimSpace(out)
}

func sh(t *testing.T, ctx context.Context, m *nspawn.Machine, script string) string {
	t.Helper()
	return run(t, ctx, m, "sh", "-c", script)
}

// unitState is what systemctl says of onramp's units.
func unitState(ctx context.Context, m *nspawn.Machine) string {
	var parts []string
	for _, q := range [][]string{
		{"is-enabled", "onramp.service"}, {"is-enabled", "onramp.socket"},
		{"is-active", "onramp.service"}, {"is-active", "onramp.socket"},
	} {
		out, _, _ := m.Exec(ctx, "systemctl", q[0], q[1])
		parts = append(parts, q[1]+" "+strings.TrimPrefix(q[0], "is-")+"="+strings.TrimSpace(out))
	}
	return strings.Join(parts, " ")
}

func wantState(t *testing.T, ctx context.Context, m *nspawn.Machine, when string, want ...string) {
	t.Helper()
	got := unitState(ctx, m)
	for _, w := range want {
		if !strings.Contains(" "+got+" ", " "+w+" ") {
			t.Errorf("%s: units: %s; want %s", when, got, w)
		}
	}
}

// TestMain removes the built packages when the tests are done.
func TestMain(m *testing.M) {
	code := m.Run()
	if pkgs.dir != "" {
		os.RemoveAll(pkgs.dir)
	}
	os.Exit(code)
}
