package nspawn

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// CacheDir holds the rootfs tarballs and their unpacked trees. The
// ONRAMP_TESTBED_CACHE environment variable overrides it.
var CacheDir = "/var/cache/onramp-testbed"

// recipe changes whenever the way a rootfs is made changes, so that caches
// made the old way are not reused.
const recipe = "4"

// Packages is what every rootfs holds on top of debootstrap's minbase: a
// systemd host with D-Bus and systemd-resolved (a separate package since
// Debian 12) managing /etc/resolv.conf, nftables, the usual network tools, the
// DNS clients and load generator the tests use, rpm (to run an .rpm's
// scriptlets), and adduser for maintainer scripts that create users.
var Packages = []string{
	"systemd", "systemd-sysv", "dbus", "systemd-resolved", "libnss-resolve",
	"nftables", "iproute2", "iputils-ping", "bind9-dnsutils", "dnsmasq-base", "dnsperf",
	"procps", "rpm", "ca-certificates", "adduser", "passwd",
}

// Suites are the Debian releases Rootfs builds.
var Suites = map[string]string{
	"bookworm": "Debian 12, systemd 252",
	"trixie":   "Debian 13, systemd 257",
}

// Rootfs returns the directory of an unpacked Debian rootfs of suite with
// Packages and extra installed. It builds it with debootstrap from the host's
// own apt mirror the first time (about a minute), keeps it as a tar.zst under
// CacheDir, and unpacks that once into a shared directory that must be treated
// as read-only: Boot never writes to it. Concurrent callers, also in other
// processes, wait for one build under a file lock.
func Rootfs(ctx context.Context, suite string, extra ...string) (string, error) {
	if _, ok := Suites[suite]; !ok {
		return "", fmt.Errorf("nspawn: unknown suite %q (have bookworm, trixie)", suite)
	}
	if err := Available(); err != nil {
		return "", err
	}
	pkgs := slices.Concat(Packages, extra)
	slices.Sort(pkgs)
	pkgs = slices.Compact(pkgs)
	sum := sha256.Sum256([]byte(recipe + "\n" + suite + "\n" + strings.Join(pkgs, "\n")))
	key := suite + "-" + hex.EncodeToString(sum[:6])

	cache := cacheDir()
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(ctx, filepath.Join(cache, key+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()

	dir := filepath.Join(cache, key)
	if _, err := os.Stat(filepath.Join(dir, ".onramp-rootfs")); err == nil {
		return dir, nil
	}
	tarball := filepath.Join(cache, key+".tar.zst")
	if _, err := os.Stat(tarball); err != nil {
		if err := build(ctx, suite, pkgs, tarball); err != nil {
			return "", err
		}
	}
	if err := unpack(ctx, tarball, dir); err != nil {
		return "", err
	}
	return dir, nil
}

func cacheDir() string {
	if d := os.Getenv("ONRAMP_TESTBED_CACHE"); d != "" {
		return d
	}
	return CacheDir
}

// build runs debootstrap into a scratch directory, makes the tree boot as a
// fresh host, and writes it to tarball.
func build(ctx context.Context, suite string, pkgs []string, tarball string) error {
	mirror, err := Mirror()
	if err != nil {
		return err
	}
	scratch, err := os.MkdirTemp(filepath.Dir(tarball), filepath.Base(tarball)+".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	root := filepath.Join(scratch, "root")
	start := time.Now()
	if err := runLogged(ctx, filepath.Join(scratch, "debootstrap.log"), "debootstrap", "--variant=minbase",
		"--include="+strings.Join(pkgs, ","), suite, root, mirror); err != nil {
		return fmt.Errorf("nspawn: debootstrap %s from %s: %w", suite, mirror, err)
	}
	built := time.Since(start)
	if err := prepare(root); err != nil {
		return fmt.Errorf("nspawn: prepare %s rootfs: %w", suite, err)
	}
	tmp := tarball + ".tmp"
	start = time.Now()
	if err := runLogged(ctx, filepath.Join(scratch, "tar.log"), "tar", "-C", root, "--numeric-owner",
		"--xattrs", "--xattrs-include=*", "-I", "zstd -3 -T0 -q", "-cf", tmp, "."); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("nspawn: pack %s rootfs: %w", suite, err)
	}
	packed := time.Since(start)
	st, err := os.Stat(tmp)
	if err != nil {
		return err
	}
	info := fmt.Sprintf("suite: %s\nmirror: %s\npackages: %s\ndebootstrap: %.1fs\npack: %.1fs\nsize: %d\n",
		suite, mirror, strings.Join(pkgs, " "), built.Seconds(), packed.Seconds(), st.Size())
	os.WriteFile(strings.TrimSuffix(tarball, ".tar.zst")+".info", []byte(info), 0o644)
	return os.Rename(tmp, tarball)
}

// prepare turns a fresh debootstrap tree into an image of a host that has not
// booted yet: no machine id, no host name (the machine name is used), clean
// hosts file, resolved managing /etc/resolv.conf through its stub as on a
// Debian host with systemd-resolved, and no timers that would wake up during a
// test.
func prepare(root string) error {
	p := func(rel string) string { return filepath.Join(root, rel) }
	if err := os.WriteFile(p("etc/machine-id"), nil, 0o444); err != nil {
		return err
	}
	os.Remove(p("var/lib/dbus/machine-id"))
	os.Remove(p("etc/hostname"))
	hosts := "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n"
	if err := os.WriteFile(p("etc/hosts"), []byte(hosts), 0o644); err != nil {
		return err
	}
	os.Remove(p("etc/resolv.conf"))
	if err := os.Symlink("../run/systemd/resolve/stub-resolv.conf", p("etc/resolv.conf")); err != nil {
		return err
	}
	for _, timer := range []string{"apt-daily.timer", "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "e2scrub_all.timer", "fstrim.timer"} {
		os.Remove(p("etc/systemd/system/timers.target.wants/" + timer))
	}
	// The package caches and lists are useless without a network (local
	// packages install without them), and documentation, manuals and
	// translations are a third of the tree; packages installed later keep
	// theirs.
	for _, glob := range []string{"var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*_Packages",
		"var/lib/apt/lists/*_InRelease", "var/log/*.log", "usr/share/doc/*", "usr/share/man/*", "usr/share/info/*",
		"usr/share/locale/*/"} {
		matches, _ := filepath.Glob(p(glob))
		for _, m := range matches {
			os.RemoveAll(m)
		}
	}
	return os.WriteFile(p(".onramp-rootfs"), []byte("onramp testbed rootfs\n"), 0o644)
}

// unpack extracts tarball into dir, atomically: dir exists only once complete.
func unpack(ctx context.Context, tarball, dir string) error {
	tmp := dir + ".unpack"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	if err := runLogged(ctx, "", "tar", "-C", tmp, "--numeric-owner", "--xattrs", "--xattrs-include=*",
		"-I", "zstd -d -T0 -q", "-xf", tarball); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("nspawn: unpack %s: %w", tarball, err)
	}
	if _, err := os.Stat(filepath.Join(tmp, ".onramp-rootfs")); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("nspawn: %s is not an onramp rootfs; delete it", tarball)
	}
	os.RemoveAll(dir)
	return os.Rename(tmp, dir)
}

// Mirror returns the Debian mirror the host's apt uses: the first URI of a
// deb source for a release (not -security) in /etc/apt/sources.list.d/*.sources
// or /etc/apt/sources.list. ONRAMP_TESTBED_MIRROR overrides it.
func Mirror() (string, error) {
	if m := os.Getenv("ONRAMP_TESTBED_MIRROR"); m != "" {
		return m, nil
	}
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if m := mirrorFromDeb822(string(data)); m != "" {
			return m, nil
		}
	}
	if data, err := os.ReadFile("/etc/apt/sources.list"); err == nil {
		if m := mirrorFromList(string(data)); m != "" {
			return m, nil
		}
	}
	return "", errors.New("nspawn: no Debian mirror in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list; set ONRAMP_TESTBED_MIRROR")
}

func mirrorFromDeb822(text string) string {
	for _, stanza := range strings.Split(text, "\n\n") {
		fields := map[string]string{}
		sc := bufio.NewScanner(strings.NewReader(stanza))
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "#") {
				continue
			}
			if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(k, " ") {
				fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
		if strings.EqualFold(fields["enabled"], "no") || !slices.Contains(strings.Fields(fields["types"]), "deb") {
			continue
		}
		if uris := strings.Fields(fields["uris"]); len(uris) > 0 && releaseSuite(strings.Fields(fields["suites"])) {
			return uris[0]
		}
	}
	return ""
}

func mirrorFromList(text string) string {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") {
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) == 0 {
				continue
			}
			f = f[1:]
		}
		if len(f) >= 2 && releaseSuite(f[1:2]) {
			return f[0]
		}
	}
	return ""
}

// releaseSuite says whether suites name a release itself, not its security
// or updates pocket.
func releaseSuite(suites []string) bool {
	for _, s := range suites {
		if !strings.Contains(s, "-") && !strings.Contains(s, "/") {
			return true
		}
	}
	return false
}

// lockFile takes an exclusive flock on path, waiting as long as ctx allows.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("nspawn: lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("nspawn: waiting for %s (another build): %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// runLogged runs a command, its output going to logPath (if set); a failure
// carries the output's tail.
func runLogged(ctx context.Context, logPath, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if logPath != "" {
		os.WriteFile(logPath, out, 0o644)
	}
	if err != nil {
		return fmt.Errorf("%v: %s", err, tail(string(out), 2000))
	}
	return nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}
