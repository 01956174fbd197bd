// Package packaging_test installs the real .deb (with apt) and .rpm (with
// rpm, so that its scriptlets run with rpm's arguments) in Debian 12 and 13
// machines booted with systemd-nspawn, and checks each step of their life:
// install, a start with nothing configured, a configured agent, an upgrade
// to the next build under DNS load, remove, purge or erase. It also checks
// the units with systemd-analyze on both systemd versions, the journal
// fields of the agent's log, the polkit rule that lets the agent configure
// systemd-resolved, and rpmlint. Needs root (make test runs it as root).
package packaging_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onramp-mesh/onramp/testbed/nspawn"
)

var suites = []string{"bookworm", "trixie"}

const (
	meshName = "productpage.ns1.svc.cluster.local"
	meshAddr = "10.96.0.12"
	table    = `{"table": {"productpage.ns1.svc.cluster.local": {"ips": ["10.96.0.12"], "registry": "Kubernetes", "shortname": "productpage", "namespace": "ns1"}}}`
)

// configure makes the installed agent serve a static name table (no
// control plane here): the conffile is edited as an operator would.
func configure(t *testing.T, ctx context.Context, m *nspawn.Machine) {
	t.Helper()
	if err := m.WriteFile(ctx, "/etc/onramp/nametable.json", []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, ctx, m, `sed -i 's|^bundle: /etc/onramp/bundle$|nameTable: /etc/onramp/nametable.json|' /etc/onramp/onramp.yaml && grep -q '^nameTable:' /etc/onramp/onramp.yaml`)
}

// waitActive waits for onramp.service to be active (Type=notify: after READY=1).
func waitActive(t *testing.T, ctx context.Context, m *nspawn.Machine) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _, _ := m.Exec(ctx, "systemctl", "is-active", "onramp.service")
		if strings.TrimSpace(out) == "active" {
			return
		}
		if time.Now().After(deadline) {
			st, _, _ := m.Exec(ctx, "systemctl", "status", "--no-pager", "onramp.service")
			t.Fatalf("onramp.service is %q, not active:\n%s", strings.TrimSpace(out), st)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func mainPID(t *testing.T, ctx context.Context, m *nspawn.Machine) string {
	t.Helper()
	return run(t, ctx, m, "systemctl", "show", "-P", "MainPID", "onramp.service")
}

// queryLoop starts a loop of queries to the agent's socket inside the
// machine (until /tmp/q.stop exists, at most 3000); stop ends it and returns
// how many were asked and how many did not get the mesh address.
func queryLoop(t *testing.T, ctx context.Context, m *nspawn.Machine) (stop func() (asked, lost int, sample string)) {
	t.Helper()
	sh(t, ctx, m, `rm -f /tmp/q.log /tmp/q.stop /tmp/q.done
(i=0; while [ ! -e /tmp/q.stop ] && [ $i -lt 3000 ]; do
   i=$((i+1)); r=$(dig +short +tries=1 +timeout=3 -p 15053 @127.0.0.1 `+meshName+` A); echo "${r:-NONE}"
 done > /tmp/q.log 2>&1; touch /tmp/q.done) >/dev/null 2>&1 &`)
	return func() (int, int, string) {
		sh(t, ctx, m, `touch /tmp/q.stop; for i in $(seq 100); do [ -e /tmp/q.done ] && exit 0; sleep 0.1; done; exit 1`)
		out := run(t, ctx, m, "cat", "/tmp/q.log")
		lines := strings.Split(out, "\n")
		lost, sample := 0, ""
		for _, l := range lines {
			if strings.TrimSpace(l) != meshAddr {
				lost++
				if sample == "" {
					sample = l
				}
			}
		}
		return len(lines), lost, sample
	}
}

// checkUnits runs systemd-analyze verify and security on the installed
// units: no complaint but the two keys systemd 252 does not know yet
// (RestartSteps= and RestartMaxDelaySec=, systemd 254), and an exposure of
// at most 2.5.
func checkUnits(t *testing.T, ctx context.Context, m *nspawn.Machine, suite string) {
	t.Helper()
	_, verify, _ := m.Exec(ctx, "systemd-analyze", "verify", "onramp.service", "onramp.socket")
	var complaints []string
	for _, l := range strings.Split(strings.TrimSpace(verify), "\n") {
		// The machines have no man command (minbase): verify cannot check
		// Documentation=man:onramp(1); the install check asserts the page.
		if l == "" || strings.Contains(l, "Command 'man onramp(1)' failed") ||
			(suite == "bookworm" && regexp.MustCompile(`Unknown key '(RestartSteps|RestartMaxDelaySec)'`).MatchString(l)) {
			continue
		}
		complaints = append(complaints, l)
	}
	if len(complaints) > 0 {
		t.Errorf("%s: systemd-analyze verify:\n%s", suite, strings.Join(complaints, "\n"))
	}
	sec, _, _ := m.Exec(ctx, "systemd-analyze", "security", "--offline=true", "--no-pager", "onramp.service")
	mm := regexp.MustCompile(`Overall exposure level for onramp.service: ([0-9.]+)`).FindStringSubmatch(sec)
	if mm == nil {
		t.Errorf("%s: no exposure level in systemd-analyze security:\n%s", suite, sec)
		return
	}
	score, _ := strconv.ParseFloat(mm[1], 64)
	t.Logf("%s: systemd-analyze security --offline=true onramp.service: %.1f", suite, score)
	if score > 2.5 {
		t.Errorf("%s: exposure %.1f > 2.5", suite, score)
	}
}

// checkNotConfigured: the agent with no bundle in /etc/onramp/bundle fails
// once with exit status 78 and says what to run, with no restart loop.
func checkNotConfigured(t *testing.T, ctx context.Context, m *nspawn.Machine) {
	t.Helper()
	m.Exec(ctx, "systemctl", "start", "onramp.service") // fails: that is the point
	time.Sleep(4 * time.Second)                         // RestartSec=2s: a loop would have restarted by now
	show := run(t, ctx, m, "systemctl", "show", "-p", "ActiveState,ExecMainStatus,NRestarts", "onramp.service")
	for _, want := range []string{"ActiveState=failed", "ExecMainStatus=78", "NRestarts=0"} {
		if !strings.Contains(show, want) {
			t.Errorf("unconfigured agent: %q lacks %s", show, want)
		}
	}
	journal := run(t, ctx, m, "journalctl", "-u", "onramp.service", "--no-pager", "-o", "cat")
	if !strings.Contains(journal, "no onboarding bundle in /etc/onramp/bundle") || !strings.Contains(journal, "onramp bootstrap --bundle DIR") {
		t.Errorf("unconfigured agent: the journal does not say what to do:\n%s", journal)
	}
	m.Exec(ctx, "systemctl", "reset-failed", "onramp.service")
}

// checkJournalFields: the agent's log lines are journal entries whose keys
// are fields.
func checkJournalFields(t *testing.T, ctx context.Context, m *nspawn.Machine, version string) {
	t.Helper()
	out := run(t, ctx, m, "journalctl", "-u", "onramp.service", "--no-pager", "-o", "json", "SYSLOG_IDENTIFIER=onramp")
	for _, line := range strings.Split(out, "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) != nil {
			continue
		}
		if e["VERSION"] == version && e["DNS"] != nil && e["LOGGER"] == "onramp" && e["PRIORITY"] == "6" {
			return
		}
	}
	t.Errorf("no journal entry with the fields VERSION=%s, DNS, LOGGER=onramp, PRIORITY=6:\n%s", version, out)
}

func TestDeb(t *testing.T) {
	p := built(t)
	t.Logf("packages built (two versions, deb and rpm) in %v", p.buildTime.Round(time.Second))
	for _, suite := range suites {
		t.Run(suite, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			m := nspawn.ForTest(t, suite, nspawn.Opts{Binds: []nspawn.Bind{p.bind()}})
			apt := func(args ...string) {
				t.Helper()
				run(t, ctx, m, append([]string{"env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-y", "-q", "-o", "Dpkg::Options::=--force-confold"}, args...)...)
			}
			before := snapshot(t, ctx, m)

			// Install: user, modes, units enabled, nothing started.
			apt("install", "/pkgs/"+p.oldDeb)
			sh(t, ctx, m, `getent passwd onramp | grep -q ':/var/lib/onramp:/usr/sbin/nologin$' && getent group onramp`)
			modes := sh(t, ctx, m, `stat -c '%n %a %U:%G' /etc/onramp /etc/onramp/bundle /var/lib/onramp /etc/onramp/onramp.yaml /usr/bin/onramp`)
			if want := "/etc/onramp 750 root:onramp\n/etc/onramp/bundle 750 root:onramp\n/var/lib/onramp 750 onramp:onramp\n/etc/onramp/onramp.yaml 644 root:root\n/usr/bin/onramp 755 root:root"; modes != want {
				t.Errorf("modes after install:\n%s\nwant:\n%s", modes, want)
			}
			sh(t, ctx, m, `test -s /usr/share/doc/onramp/copyright && test -s /usr/share/doc/onramp/changelog.Debian.gz && test -s /usr/share/man/man1/onramp.1.gz &&
				test -s /usr/share/bash-completion/completions/onramp && test -s /usr/share/zsh/vendor-completions/_onramp &&
				test -s /usr/share/fish/vendor_completions.d/onramp.fish && test -s /usr/share/polkit-1/rules.d/50-onramp.rules`)
			wantState(t, ctx, m, "after install", "onramp.service enabled=enabled", "onramp.socket enabled=enabled", "onramp.service active=inactive")
			checkUnits(t, ctx, m, suite)
			checkNotConfigured(t, ctx, m)

			// Configured: serves the table, logs with journal fields.
			configure(t, ctx, m)
			run(t, ctx, m, "systemctl", "start", "onramp.service")
			waitActive(t, ctx, m)
			if got := sh(t, ctx, m, "dig +short -p 15053 @127.0.0.1 "+meshName); got != meshAddr {
				t.Fatalf("dig %s: %q, want %s", meshName, got, meshAddr)
			}
			checkJournalFields(t, ctx, m, oldVersion)
			if st := run(t, ctx, m, "systemctl", "show", "-P", "StatusText", "onramp.service"); !regexp.MustCompile(`^\d+ mesh names on 127.0.0.1:15053 .*\(static\)$`).MatchString(st) {
				t.Errorf("STATUS= is %q", st)
			}

			// Upgrade under load: restarted, no query lost, conffile kept.
			pid := mainPID(t, ctx, m)
			stop := queryLoop(t, ctx, m)
			time.Sleep(300 * time.Millisecond)
			apt("install", "/pkgs/"+p.newDeb)
			waitActive(t, ctx, m)
			time.Sleep(300 * time.Millisecond)
			asked, lost, sample := stop()
			t.Logf("%s: deb upgrade %s -> %s under load: %d queries, %d lost", suite, oldVersion, newVersion, asked, lost)
			if lost > 0 || asked < 10 {
				t.Errorf("upgrade: %d of %d queries lost (first: %q)", lost, asked, sample)
			}
			if newPID := mainPID(t, ctx, m); newPID == pid {
				t.Errorf("upgrade did not restart the agent (MainPID %s)", pid)
			}
			if v := run(t, ctx, m, "onramp", "version"); !strings.Contains(v, newVersion) {
				t.Errorf("onramp version after upgrade: %q", v)
			}
			sh(t, ctx, m, `grep -q '^nameTable:' /etc/onramp/onramp.yaml`)
			wantState(t, ctx, m, "after upgrade", "onramp.service enabled=enabled", "onramp.socket enabled=enabled", "onramp.service active=active")
			checkJournalFields(t, ctx, m, newVersion)

			// Remove: stopped, disabled, binary gone; configuration, state and user kept.
			apt("remove", "onramp")
			// Stopped: inactive, or failed when systemd 257 could not spawn
			// the ExecStopPost= task during the stop (seen once: "Failed to
			// spawn executor: No such file or directory").
			if st := unitState(ctx, m); !strings.Contains(st, "onramp.service active=inactive") && !strings.Contains(st, "onramp.service active=failed") {
				t.Errorf("after remove: units: %s; want onramp.service stopped", st)
			}
			sh(t, ctx, m, `! test -e /usr/bin/onramp && ! test -e /lib/systemd/system/onramp.service &&
				test -f /etc/onramp/onramp.yaml && test -d /var/lib/onramp && getent passwd onramp >/dev/null &&
				! ls /etc/systemd/system/*/onramp.* 2>/dev/null`)

			// Reinstall after remove enables again; then purge leaves nothing.
			apt("install", "/pkgs/"+p.newDeb)
			wantState(t, ctx, m, "after reinstall", "onramp.service enabled=enabled", "onramp.socket enabled=enabled")
			apt("purge", "onramp")
			sameAs(t, "purge", before, snapshot(t, ctx, m))
		})
	}
}

func TestRPM(t *testing.T) {
	p := built(t)
	for _, suite := range suites {
		t.Run(suite, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			m := nspawn.ForTest(t, suite, nspawn.Opts{Binds: []nspawn.Bind{p.bind()}})
			sh(t, ctx, m, "rpm --initdb 2>/dev/null || true")
			before := snapshot(t, ctx, m)

			// rpm -i: %pre and %post with $1 = 1.
			run(t, ctx, m, "rpm", "-i", "--nodeps", "/pkgs/"+p.oldRPM)
			sh(t, ctx, m, `getent passwd onramp >/dev/null && test -d /etc/onramp/bundle && test -f /usr/lib/systemd/system/onramp.service &&
				test -s /usr/share/licenses/onramp/LICENSE && test -s /usr/share/zsh/site-functions/_onramp`)
			if modes := sh(t, ctx, m, `stat -c '%n %a %U:%G' /etc/onramp /etc/onramp/bundle /var/lib/onramp`); modes != "/etc/onramp 750 root:onramp\n/etc/onramp/bundle 750 root:onramp\n/var/lib/onramp 750 onramp:onramp" {
				t.Errorf("modes after rpm -i:\n%s", modes)
			}
			wantState(t, ctx, m, "after rpm -i", "onramp.service enabled=enabled", "onramp.socket enabled=enabled", "onramp.service active=inactive")
			configure(t, ctx, m)
			run(t, ctx, m, "systemctl", "start", "onramp.service")
			waitActive(t, ctx, m)

			// rpm -U: new %post with $1 = 2 restarts, old %preun/%postun with $1 = 1 keep everything.
			pid := mainPID(t, ctx, m)
			stop := queryLoop(t, ctx, m)
			time.Sleep(300 * time.Millisecond)
			run(t, ctx, m, "rpm", "-U", "--nodeps", "/pkgs/"+p.newRPM)
			waitActive(t, ctx, m)
			time.Sleep(300 * time.Millisecond)
			asked, lost, sample := stop()
			t.Logf("%s: rpm -U %s -> %s under load: %d queries, %d lost", suite, oldVersion, newVersion, asked, lost)
			if lost > 0 || asked < 10 {
				t.Errorf("rpm -U: %d of %d queries lost (first: %q)", lost, asked, sample)
			}
			if mainPID(t, ctx, m) == pid {
				t.Errorf("rpm -U did not restart the agent")
			}
			wantState(t, ctx, m, "after rpm -U", "onramp.service enabled=enabled", "onramp.socket enabled=enabled", "onramp.service active=active")
			sh(t, ctx, m, `grep -q '^nameTable:' /etc/onramp/onramp.yaml && test -d /var/lib/onramp`)

			// rpm -e ($1 = 0): secrets and state go, the edited configuration is
			// kept as .rpmsave, the user and group stay (documented).
			sh(t, ctx, m, `echo token > /etc/onramp/bundle/istio-token && echo key > /var/lib/onramp/key.pem && chown onramp: /var/lib/onramp/key.pem`)
			run(t, ctx, m, "rpm", "-e", "--nodeps", "onramp")
			sh(t, ctx, m, `! test -e /var/lib/onramp && ! test -e /etc/onramp/bundle && test -f /etc/onramp/onramp.yaml.rpmsave &&
				! test -e /usr/bin/onramp && getent passwd onramp >/dev/null`)
			wantState(t, ctx, m, "after rpm -e", "onramp.service active=inactive")
			after := snapshot(t, ctx, m)
			// What rpm -e is documented to keep; with them gone the machine is as before.
			sh(t, ctx, m, `rm -rf /etc/onramp && userdel onramp`)
			gone, left := diffLines(before, after)
			var unexpected, parents []string
			for _, l := range append(gone, left...) {
				path, _, _ := strings.Cut(l, " ")
				switch {
				case path == "/etc/onramp" || path == "/etc/onramp/onramp.yaml.rpmsave" || path == "/etc/onramp/nametable.json" ||
					strings.HasPrefix(l, "passwd: ") || strings.HasPrefix(l, "group: "):
				case strings.HasPrefix(path, "/usr/share/") && strings.HasSuffix(l, " 755 root:root") && slices.Contains(left, l):
					// A parent directory rpm created for a file (the man,
					// licenses, zsh and fish directories): on RPM distributions
					// the filesystem package or the shell owns it; here on
					// Debian no package does. Must be empty.
					parents = append(parents, path)
				default:
					unexpected = append(unexpected, l)
				}
			}
			if len(unexpected) > 0 {
				t.Errorf("rpm -e left or removed more than documented: %s", strings.Join(unexpected, "\n"))
			}
			sort.Sort(sort.Reverse(sort.StringSlice(parents))) // deepest first
			for _, d := range parents {
				if _, err := m.Run(ctx, "rmdir", d); err != nil {
					t.Errorf("rpm -e left %s, not empty: %v", d, err)
				}
			}
			sameAs(t, "rpm -e, then the documented leftovers removed", before, snapshot(t, ctx, m))
		})
	}
}

// TestResolvedPolkit finds out what the unprivileged agent needs to
// configure systemd-resolved over D-Bus: CAP_NET_ADMIN alone is refused on
// systemd 252 and 257, and the package's polkit rule allows the onramp user
// (and no other).
func TestResolvedPolkit(t *testing.T) {
	p := built(t)
	for _, suite := range suites {
		t.Run(suite, func(t *testing.T) {
			t.Parallel()
			polkit := debsFor(t, suite, "polkitd")
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			m := nspawn.ForTest(t, suite, nspawn.Opts{Capabilities: []string{"CAP_NET_ADMIN"}, Binds: []nspawn.Bind{p.bind(), {Src: polkit, Dst: "/polkit"}}})
			run(t, ctx, m, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q", "--no-install-recommends", "/pkgs/"+p.oldDeb)
			// A link of onramp's kind (the agent makes onramp0 itself).
			sh(t, ctx, m, `ip link add onramp0 type veth peer name onramp0p && ip link set onramp0p up && ip link set onramp0 up && ip addr add 198.18.0.53/32 dev onramp0`)
			idx := sh(t, ctx, m, `ip -o link show onramp0 | cut -d: -f1`)
			setDomains := func(user string) error {
				_, _, err := m.Exec(ctx, "setpriv", "--reuid", user, "--regid", user, "--init-groups",
					"--inh-caps", "+net_admin", "--ambient-caps", "+net_admin",
					"busctl", "call", "org.freedesktop.resolve1", "/org/freedesktop/resolve1", "org.freedesktop.resolve1.Manager",
					"SetLinkDomains", "ia(sb)", idx, "1", "cluster.local", "true")
				return err
			}
			if err := setDomains("onramp"); err == nil {
				t.Errorf("%s: SetLinkDomains as onramp with CAP_NET_ADMIN and no polkit succeeded; the polkit rule would not be needed", suite)
			} else {
				t.Logf("%s: without polkit, onramp with CAP_NET_ADMIN: %v", suite, err)
			}
			sh(t, ctx, m, `DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends /polkit/*.deb >/dev/null && systemctl start polkit.service`)
			if err := setDomains("onramp"); err != nil {
				t.Errorf("%s: SetLinkDomains as onramp with the polkit rule: %v", suite, err)
			}
			if got := sh(t, ctx, m, "resolvectl domain onramp0"); !strings.Contains(got, "~cluster.local") {
				t.Errorf("%s: resolvectl domain onramp0: %q", suite, got)
			}
			if err := setDomains("nobody"); err == nil {
				t.Errorf("%s: the rule also lets nobody configure resolved", suite)
			}
			// RevertLink, as `onramp redirect remove` does.
			if _, _, err := m.Exec(ctx, "setpriv", "--reuid", "onramp", "--regid", "onramp", "--init-groups",
				"busctl", "call", "org.freedesktop.resolve1", "/org/freedesktop/resolve1", "org.freedesktop.resolve1.Manager", "RevertLink", "i", idx); err != nil {
				t.Errorf("%s: RevertLink as onramp: %v", suite, err)
			}

			// The packaged agent itself, as the onramp user: its resolved
			// redirect routes the mesh's names to it through the system
			// resolver, and a stop takes the redirect away.
			sh(t, ctx, m, `ip link del onramp0`)
			configure(t, ctx, m)
			run(t, ctx, m, "systemctl", "start", "onramp.service")
			waitActive(t, ctx, m)
			var domains, hosts string
			for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
				domains, _, _ = m.Exec(ctx, "resolvectl", "domain", "onramp0")
				hosts, _, _ = m.Exec(ctx, "getent", "hosts", meshName)
				if strings.Contains(domains, "~cluster.local") && strings.HasPrefix(hosts, meshAddr+" ") {
					break
				}
			}
			if !strings.Contains(domains, "~cluster.local") || !strings.HasPrefix(hosts, meshAddr+" ") {
				j, _, _ := m.Exec(ctx, "journalctl", "-u", "onramp.service", "--no-pager", "-o", "cat")
				t.Fatalf("%s: the agent as user onramp did not redirect resolved: domains %q, getent hosts %q\n%s", suite, domains, hosts, j)
			}
			t.Logf("%s: the packaged agent (User=onramp, polkit rule) redirected resolved: %s -> %s", suite, meshName, strings.Fields(hosts)[0])
			run(t, ctx, m, "systemctl", "stop", "onramp.service")
			if _, _, err := m.Exec(ctx, "ip", "link", "show", "onramp0"); err == nil {
				t.Errorf("%s: onramp0 still there after the agent stopped", suite)
			}
		})
	}
}

// TestRpmlint runs rpmlint on the .rpm inside a machine (rpmlint unpacks the
// package into / when run as root: never on the host), with the
// package's rpmlint configuration, and wants 0 errors and 0 warnings.
func TestRpmlint(t *testing.T) {
	p := built(t)
	const suite = "bookworm"
	lint := debsFor(t, suite, "rpmlint", "binutils") // binutils: rpmlint reads ELF with readelf
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	root, _ := filepath.Abs("../..")
	m := nspawn.ForTest(t, suite, nspawn.Opts{Binds: []nspawn.Bind{p.bind(), {Src: lint, Dst: "/rpmlint"}, {Src: root + "/packaging/rpmlint.toml", Dst: "/rpmlint.toml"}}})
	sh(t, ctx, m, `DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends /rpmlint/*.deb >/dev/null`)
	for _, rpm := range []string{p.oldRPM} {
		out, _, err := m.Exec(ctx, "rpmlint", "-c", "/rpmlint.toml", "/pkgs/"+rpm)
		t.Logf("rpmlint %s:\n%s", rpm, out)
		mm := regexp.MustCompile(`(\d+) errors?, (\d+) warnings?`).FindStringSubmatch(out)
		if mm == nil {
			t.Fatalf("rpmlint gave no summary (%v):\n%s", err, out)
		}
		// Every accepted warning is a filter with its reason in rpmlint.toml.
		if mm[1] != "0" || mm[2] != "0" {
			t.Errorf("rpmlint: %s errors, %s warnings (fix them, or filter each in packaging/rpmlint.toml with its reason)", mm[1], mm[2])
		}
	}
}
