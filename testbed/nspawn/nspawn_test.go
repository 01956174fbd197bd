package nspawn

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMirrorFromSources(t *testing.T) {
	deb822 := `Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
`
	if got := mirrorFromDeb822(deb822); got != "http://mirror.example/debian" {
		t.Errorf("deb822: got %q", got)
	}
	security := "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
	if got := mirrorFromDeb822(security); got != "" {
		t.Errorf("security only: got %q", got)
	}
	disabled := "Enabled: no\nTypes: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n"
	if got := mirrorFromDeb822(disabled); got != "" {
		t.Errorf("disabled: got %q", got)
	}
	list := "# deb http://old.example/debian bookworm main\ndeb-src http://src.example/debian bookworm main\n" +
		"deb [signed-by=/k.gpg arch=amd64] http://mirror.example/debian-security bookworm-security main\n" +
		"deb [arch=amd64] http://mirror.example/debian bookworm main\n"
	if got := mirrorFromList(list); got != "http://mirror.example/debian" {
		t.Errorf("sources.list: got %q", got)
	}
}

func boot(t *testing.T, suite string, o Opts) *Machine {
	t.Helper()
	start := time.Now()
	m := ForTest(t, suite, o)
	t.Logf("%s booted to %s in %v", suite, m.State, time.Since(start).Round(time.Millisecond))
	return m
}

func run(t *testing.T, m *Machine, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := m.Run(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBootBothSuites(t *testing.T) {
	for _, suite := range []string{"bookworm", "trixie"} {
		t.Run(suite, func(t *testing.T) {
			t.Parallel()
			m := boot(t, suite, Opts{
				Addr6:     netip.MustParsePrefix("fd00:213::2/64"),
				PeerAddr6: netip.MustParsePrefix("fd00:213::1/64"),
			})
			if m.State != "running" {
				out, _, _ := m.Exec(context.Background(), "systemctl", "--failed", "--no-legend")
				t.Errorf("system state %s, failed units:\n%s", m.State, out)
			}
			if got := run(t, m, "readlink", "/etc/resolv.conf"); strings.TrimSpace(got) != "../run/systemd/resolve/stub-resolv.conf" {
				t.Errorf("/etc/resolv.conf -> %q, want resolved's stub", got)
			}
			if st := run(t, m, "resolvectl", "status"); !strings.Contains(st, "host0") {
				t.Errorf("resolvectl status does not show host0:\n%s", st)
			}
			run(t, m, "nft", "add", "table", "inet", "probe")
			if rs := run(t, m, "nft", "list", "ruleset"); !strings.Contains(rs, "table inet probe") {
				t.Errorf("nft list ruleset:\n%s", rs)
			}
			if h := strings.TrimSpace(run(t, m, "hostname")); h != m.Name {
				t.Errorf("hostname %q, want %q", h, m.Name)
			}

			// A listener in the peer namespace is reachable across the veth.
			ln, err := m.Peer.Listen("tcp", m.PeerAddr.String()+":0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				if c, err := ln.Accept(); err == nil {
					fmt.Fprintln(c, "hello from the peer")
					c.Close()
				}
			}()
			port := ln.Addr().(*net.TCPAddr).Port
			got := run(t, m, "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%d; cat <&3", m.PeerAddr, port))
			if strings.TrimSpace(got) != "hello from the peer" {
				t.Errorf("read %q from the peer", got)
			}
			run(t, m, "ping", "-c1", "-W2", m.PeerAddr.String())
			run(t, m, "ping", "-6", "-c1", "-W2", "fd00:213::1")
		})
	}
}

func TestExitCodeAndWriteFile(t *testing.T) {
	m := boot(t, "bookworm", Opts{})
	ctx := context.Background()
	_, stderr, err := m.Exec(ctx, "sh", "-c", "echo oops >&2; exit 3")
	if ExitCode(err) != 3 || strings.TrimSpace(stderr) != "oops" {
		t.Errorf("exit %d (%v), stderr %q", ExitCode(err), err, stderr)
	}
	if err := m.WriteFile(ctx, "/etc/onramp/probe.yaml", []byte("a: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := run(t, m, "stat", "-c", "%a %s", "/etc/onramp/probe.yaml"); strings.TrimSpace(got) != "600 5" {
		t.Errorf("stat: %q", got)
	}
}

func TestBindsAndArgs(t *testing.T) {
	dir := t.TempDir()
	unit := "[Unit]\nDescription=probe\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c 'cat /srv/in/msg > /srv/out/copy'\n"
	os.MkdirAll(filepath.Join(dir, "in"), 0o755)
	os.MkdirAll(filepath.Join(dir, "out"), 0o755)
	os.WriteFile(filepath.Join(dir, "probe.service"), []byte(unit), 0o644)
	os.WriteFile(filepath.Join(dir, "in", "msg"), []byte("bound\n"), 0o644)
	m := boot(t, "bookworm", Opts{
		Binds: []Bind{
			{Src: filepath.Join(dir, "probe.service"), Dst: "/etc/systemd/system/probe.service"},
			{Src: filepath.Join(dir, "in"), Dst: "/srv/in"},
			{Src: filepath.Join(dir, "out"), Dst: "/srv/out", RW: true},
		},
		Args: []string{"systemd.wants=probe.service"},
	})
	if got, err := os.ReadFile(filepath.Join(dir, "out", "copy")); err != nil || string(got) != "bound\n" {
		t.Errorf("the unit wanted on the command line did not run: %q %v\n%s", got, err, run(t, m, "systemctl", "status", "probe"))
	}
	if _, _, err := m.Exec(context.Background(), "touch", "/srv/in/x"); err == nil {
		t.Error("a read-only bind is writable")
	}
}

func TestNoResolved(t *testing.T) {
	m := boot(t, "bookworm", Opts{NoResolved: true})
	if got := run(t, m, "cat", "/etc/resolv.conf"); got != "nameserver "+m.PeerAddr.String()+"\n" {
		t.Errorf("resolv.conf: %q", got)
	}
	out, _, _ := m.Exec(context.Background(), "systemctl", "is-active", "systemd-resolved")
	if strings.TrimSpace(out) == "active" {
		t.Error("systemd-resolved is active")
	}
}

func TestRebootKeepsState(t *testing.T) {
	state := t.TempDir()
	m := boot(t, "bookworm", Opts{StateDir: state})
	ctx := context.Background()
	if err := m.WriteFile(ctx, "/var/lib/probe/kept", []byte("kept\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := run(t, m, "cat", "/etc/machine-id")
	start := time.Now()
	if err := m.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("rebooted in %v", time.Since(start).Round(time.Millisecond))
	if got := run(t, m, "cat", "/var/lib/probe/kept"); got != "kept\n" {
		t.Errorf("after reboot: %q", got)
	}
	if got := run(t, m, "cat", "/etc/machine-id"); got != id {
		t.Errorf("machine id changed across reboot: %q -> %q", id, got)
	}
	run(t, m, "ping", "-c1", "-W2", m.PeerAddr.String())
	if _, err := os.Stat(filepath.Join(m.opts.Root, "var/lib/probe")); err == nil {
		t.Error("the shared rootfs was written to")
	}
	// A new Boot on the same state directory continues from it too.
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	m2 := boot(t, "bookworm", Opts{StateDir: state})
	if got := run(t, m2, "cat", "/var/lib/probe/kept"); got != "kept\n" {
		t.Errorf("after a new boot: %q", got)
	}
}

// TestNothingOutlivesAKilledTest kills a test process that has a machine
// running, as a test timeout or ^C would, and checks that the machine dies
// with it.
func TestNothingOutlivesAKilledTest(t *testing.T) {
	if os.Getenv("NSPAWN_TEST_CHILD") == "1" {
		m := boot(t, "bookworm", Opts{})
		fmt.Printf("init %d netns %s %s\n", m.PID(), m.NS.Name, m.Peer.Name)
		time.Sleep(time.Minute)
		return
	}
	if err := Available(); err != nil {
		t.Skip(err)
	}
	if _, err := Rootfs(context.Background(), "bookworm"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNothingOutlivesAKilledTest$", "-test.v")
	cmd.Env = append(os.Environ(), "NSPAWN_TEST_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	var ns, peer string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if n, _ := fmt.Sscanf(sc.Text(), "init %d netns %s %s", &pid, &ns, &peer); n == 3 {
			break
		}
	}
	if pid == 0 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the child test did not boot a machine")
	}
	// A killed test runs no cleanup: its namespaces are left for this one to remove.
	defer exec.Command("ip", "netns", "del", ns).Run()
	defer exec.Command("ip", "netns", "del", peer).Run()
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the machine's init (pid %d) outlived its killed test", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSandboxedServiceRuns checks that systemd's sandboxing options (those a
// hardened unit uses) work inside the machines of both suites.
func TestSandboxedServiceRuns(t *testing.T) {
	unit := `[Service]
Type=notify
NotifyAccess=all
ExecStart=/bin/sh -c 'systemd-notify --ready; exec sleep infinity'
WatchdogSec=30s
User=nobody
StateDirectory=probe
AmbientCapabilities=CAP_NET_ADMIN
CapabilityBoundingSet=CAP_NET_ADMIN
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
UMask=0077
`
	for _, suite := range []string{"bookworm", "trixie"} {
		t.Run(suite, func(t *testing.T) {
			m := boot(t, suite, Opts{})
			ctx := context.Background()
			if err := m.WriteFile(ctx, "/etc/systemd/system/probe.service", []byte(unit), 0o644); err != nil {
				t.Fatal(err)
			}
			run(t, m, "systemctl", "daemon-reload")
			if _, _, err := m.Exec(ctx, "systemctl", "start", "probe"); err != nil {
				st, _, _ := m.Exec(ctx, "systemctl", "status", "probe")
				j, _, _ := m.Exec(ctx, "journalctl", "-u", "probe", "--no-pager")
				t.Fatalf("%v\n%s\n%s", err, st, j)
			}
		})
	}
}

// TestLinkDNS gives the machine an upstream in its peer, as DHCP would, and
// resolves a name through resolved, also after resolved restarts.
func TestLinkDNS(t *testing.T) {
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		t.Skip("dnsmasq is not installed: apt-get install dnsmasq-base")
	}
	for _, suite := range []string{"bookworm", "trixie"} {
		t.Run(suite, func(t *testing.T) {
			m := boot(t, suite, Opts{DNS: []netip.Addr{netip.MustParseAddr("10.213.0.1")}})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			dnsmasq := m.Peer.Command(ctx, "dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts",
				"--bind-interfaces", "--listen-address="+m.PeerAddr.String(), "--address=/probe.test/10.9.9.9", "--pid-file=")
			if err := dnsmasq.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { dnsmasq.Process.Kill(); dnsmasq.Wait() }()
			lookup := func() {
				t.Helper()
				var out string
				var err error
				for range 50 { // until dnsmasq listens
					if out, err = m.Run(ctx, "getent", "hosts", "up.probe.test"); err == nil {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				if !strings.HasPrefix(out, "10.9.9.9 ") {
					st, _, _ := m.Exec(ctx, "resolvectl", "status", "host0")
					t.Fatalf("getent hosts up.probe.test: %q %v\n%s", out, err, st)
				}
			}
			lookup()
			run(t, m, "systemctl", "restart", "systemd-resolved")
			run(t, m, "resolvectl", "flush-caches")
			if dns := run(t, m, "resolvectl", "dns", "host0"); !strings.Contains(dns, "10.213.0.1") {
				t.Errorf("after resolved restarted, host0's servers: %q", dns)
			}
			lookup()
		})
	}
}

// TestLocalPackageInstalls installs a local .deb whose maintainer script
// creates a system user, as a real package's does, with apt from a file.
func TestLocalPackageInstalls(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb is not installed")
	}
	dir := t.TempDir()
	pkg := filepath.Join(dir, "pkg")
	os.MkdirAll(filepath.Join(pkg, "DEBIAN"), 0o755)
	os.MkdirAll(filepath.Join(pkg, "usr/share/probe"), 0o755)
	os.WriteFile(filepath.Join(pkg, "usr/share/probe/data"), []byte("x\n"), 0o644)
	control := "Package: probe\nVersion: 1.0\nArchitecture: all\nMaintainer: onramp <onramp@example.invalid>\n" +
		"Depends: adduser, systemd\nDescription: probe\n a probe package\n"
	os.WriteFile(filepath.Join(pkg, "DEBIAN/control"), []byte(control), 0o644)
	postinst := "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then adduser --system --group --no-create-home --home /nonexistent probe; useradd --system --no-create-home probe2; fi\n"
	os.WriteFile(filepath.Join(pkg, "DEBIAN/postinst"), []byte(postinst), 0o755)
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "--build", pkg, filepath.Join(dir, "probe.deb")).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v: %s", err, out)
	}
	for _, suite := range []string{"bookworm", "trixie"} {
		t.Run(suite, func(t *testing.T) {
			m := boot(t, suite, Opts{Binds: []Bind{{Src: filepath.Join(dir, "probe.deb"), Dst: "/tmp/probe.deb"}}})
			run(t, m, "apt-get", "install", "-y", "-q", "/tmp/probe.deb")
			run(t, m, "id", "probe")
			run(t, m, "id", "probe2")
			run(t, m, "apt-get", "purge", "-y", "-q", "probe")
		})
	}
}
