package journey

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/onramp-mesh/onramp/testbed/nspawn"
)

// TestDebJourney is the whole journey with the .deb, on Debian 12 and 13:
// install, bootstrap, the system resolver, restart and upgrade under load,
// watchdog, crash loop, reboot with the control plane down, purge.
func TestDebJourney(t *testing.T) {
	for _, suite := range []string{"bookworm", "trixie"} {
		t.Run(suite, func(t *testing.T) {
			// polkit, which the package recommends: resolved lets the onramp
			// user configure its link only through the package's polkit rule.
			v := newVM(t, suite, nspawn.Opts{StateDir: t.TempDir(),
				Binds: []nspawn.Bind{{Src: debsFor(t, suite, "polkitd"), Dst: "/debs"}}})
			v.sh(installDebs)
			before := v.sh(snapshotScript)
			step := func(name string, f func(t *testing.T)) {
				if !t.Run(name, f) {
					t.FailNow()
				}
			}

			step("install", func(t *testing.T) {
				v.shown("DEBIAN_FRONTEND=noninteractive apt-get install -y /dist/" + built.PrevDeb)
				if out := v.sh("systemctl is-enabled onramp.service onramp.socket"); out != "enabled\nenabled\n" {
					t.Errorf("units after install: %q, want both enabled (Also=onramp.socket)", out)
				}
				if out, _, _ := v.try("systemctl is-active onramp.service"); strings.TrimSpace(out) != "inactive" {
					t.Errorf("the agent started before a bundle was configured: %s", out)
				}
				if out := v.sh("stat -c '%U:%G %a' /var/lib/onramp"); out != "onramp:onramp 750\n" {
					t.Errorf("/var/lib/onramp: %s", out)
				}
				// Started by hand before any bundle: it fails once and says why.
				v.try("systemctl start onramp.service")
				v.eventually(10*time.Second, "an unconfigured agent fails", func() string {
					if p := v.unit(); p["ActiveState"] != "failed" {
						return fmt.Sprint(p)
					}
					return ""
				})
				if out := v.shown("journalctl -u onramp --no-pager -o cat | grep -m1 'onramp bootstrap --bundle'"); out == "" {
					t.Error("no reason in the journal")
				}
			})

			step("bootstrap", func(t *testing.T) {
				start := time.Now()
				out := v.shown("onramp bootstrap --bundle " + bundleInVM + " --data-plane none")
				t.Logf("bootstrap to READY in %v", time.Since(start).Round(10*time.Millisecond))
				for _, want := range []string{"READY", "spiffe://cluster.local/ns/vm/sa/vm-sa", "workload entry"} {
					if !strings.Contains(out, want) {
						t.Errorf("bootstrap output lacks %q:\n%s", want, out)
					}
				}
				if p := v.unit(); p["ActiveState"] != "active" {
					t.Fatalf("after bootstrap: %v", p)
				}
				v.eventually(10*time.Second, "STATUS= names the table", func() string {
					// e.g. "3 mesh names on 127.0.0.1:15053 [::1]:15053 (control-plane)"
					if st := v.unit()["StatusText"]; !strings.Contains(st, "mesh names") {
						return "StatusText=" + st
					}
					return ""
				})
				if got := v.sh("stat -c '%U:%G %a' /etc/onramp/bundle /etc/onramp/bundle/istio-token"); got != "root:onramp 750\nroot:onramp 640\n" {
					t.Errorf("bundle owners and modes:\n%s", got)
				}
				v.waitEntry()
				if got := v.digMesh(); got != meshAddr {
					t.Errorf("dig %s = %q, want %s", meshName, got, meshAddr)
				}
				if out := v.sh("journalctl -u onramp -o json --no-pager | grep -c '\"SPIFFE_ID\":\"spiffe://' || true"); strings.TrimSpace(out) == "0" {
					t.Error("the journal has no SPIFFE_ID field: logs are not structured journal entries")
				}
				v.shown("systemctl status onramp --no-pager --lines=0 | head -12")
				v.shown("onramp status")
				out, _, err := v.try("onramp doctor --public-name " + publicName + " 2>&1")
				v.transcript("onramp doctor --public-name "+publicName, out)
				if err != nil { // with polkit: the whole path works
					t.Errorf("onramp doctor: %v\n%s", err, out)
				}
			})

			step("bootstrap-again-changes-nothing", func(t *testing.T) {
				pid := v.unit()["MainPID"]
				out := v.sh("onramp bootstrap --bundle " + bundleInVM + " 2>&1")
				if !strings.Contains(out, "nothing changed") || v.unit()["MainPID"] != pid {
					t.Errorf("the second bootstrap changed something (pid %s -> %s):\n%s", pid, v.unit()["MainPID"], out)
				}
			})

			step("system-resolver", func(t *testing.T) {
				if !hasRedirect(v) {
					t.Skip("pending: this onramp has no resolver redirect yet (onramp redirect); getent checks need it")
				}
				v.eventually(10*time.Second, "getent hosts "+meshName, func() string {
					if out, _, err := v.try("getent hosts " + meshName); !strings.HasPrefix(out, meshAddr+" ") {
						return fmt.Sprintf("got %q (%v)", out, err)
					}
					return ""
				})
				if out, _, err := v.try("getent hosts " + publicName); err != nil || !strings.HasPrefix(out, publicAddr+" ") {
					t.Errorf("getent hosts %s = %q %v", publicName, out, err)
				}
			})

			step("restart-under-load", func(t *testing.T) {
				we := v.workloadEntry()
				p := v.loadDuring("systemctl restart onramp.service")
				t.Logf("dnsperf during systemctl restart: sent %d, completed %d, lost %d, %s", p.Sent, p.Completed, p.Lost, p.Codes)
				if p.Lost != 0 || !strings.HasPrefix(p.Codes, "NOERROR") || strings.Contains(p.Codes, "SERVFAIL") {
					t.Errorf("queries lost or failed during restart:\n%s", p.Raw)
				}
				v.waitActive(30*time.Second, "active after restart")
				if got := v.workloadEntry(); got != we {
					t.Errorf("WorkloadEntry %q after restart, was %q", got, we)
				}
			})

			step("upgrade-under-load", func(t *testing.T) {
				we := v.workloadEntry()
				p := v.loadDuring("DEBIAN_FRONTEND=noninteractive apt-get install -y /dist/" + built.CurDeb + " > /tmp/upgrade.log 2>&1")
				t.Logf("dnsperf during the upgrade %s -> %s: sent %d, completed %d, lost %d, %s", prevVersion, curVersion, p.Sent, p.Completed, p.Lost, p.Codes)
				if p.Lost != 0 || strings.Contains(p.Codes, "SERVFAIL") {
					t.Errorf("queries lost or failed during the upgrade:\n%s", p.Raw)
				}
				v.waitActive(30*time.Second, "active after upgrade")
				if out := v.sh("onramp version"); !strings.Contains(out, curVersion) {
					t.Errorf("after the upgrade: %s", out)
				}
				if got := v.workloadEntry(); got != we {
					t.Errorf("WorkloadEntry %q after upgrade, was %q", got, we)
				}
				if out := v.sh("grep -c '^bundle: /etc/onramp/bundle' /etc/onramp/onramp.yaml"); out != "1\n" {
					t.Errorf("the upgrade lost the configured bundle line")
				}
			})

			step("watchdog", func(t *testing.T) {
				v.sh("mkdir -p " + dropInDir + " && printf '[Service]\\nWatchdogSec=2s\\n' > " + dropInDir + "/50-journey-watchdog.conf && systemctl daemon-reload && systemctl restart onramp.service")
				v.waitActive(30*time.Second, "active with a 2 s watchdog")
				pid := v.unit()["MainPID"]
				v.sh("kill -STOP " + pid)
				took := v.eventually(40*time.Second, "restarted by the watchdog", func() string {
					p := v.unit()
					if p["MainPID"] == pid || p["MainPID"] == "0" || p["ActiveState"] != "active" {
						return fmt.Sprint(p)
					}
					return ""
				})
				t.Logf("SIGSTOPped agent back (new pid, READY) after %v", took.Round(100*time.Millisecond))
				if out := v.sh("journalctl -u onramp --no-pager | grep -c -i watchdog || true"); strings.TrimSpace(out) == "0" {
					t.Error("the journal does not mention the watchdog")
				}
				v.sh("rm -f " + dropInDir + "/50-journey-watchdog.conf && systemctl daemon-reload")
			})

			step("crash-loop-heals", func(t *testing.T) {
				// Fast retries so that the default start limit (5 in 10 s) would be hit.
				v.sh("mkdir -p " + dropInDir + " && printf '[Service]\\nRestartSec=200ms\\nRestartSteps=0\\n' > " + dropInDir + "/50-journey-fast.conf && systemctl daemon-reload")
				v.sh("echo 'notAKey: 1' >> /etc/onramp/onramp.yaml && systemctl restart --no-block onramp.service")
				v.eventually(30*time.Second, "crash loop past the default start limit", func() string {
					p := v.unit()
					var n int
					fmt.Sscan(p["NRestarts"], &n)
					if n < 7 {
						return fmt.Sprint(p)
					}
					return ""
				})
				v.sh("sed -i '/^notAKey/d' /etc/onramp/onramp.yaml")
				took := v.waitActive(30*time.Second, "healed once the configuration is fixed")
				t.Logf("crash loop healed %v after the fix", took.Round(100*time.Millisecond))
				if out, _, _ := v.try("systemctl is-failed onramp.socket"); strings.TrimSpace(out) == "failed" {
					t.Error("onramp.socket failed during the crash loop")
				}
				v.sh("rm -f " + dropInDir + "/50-journey-fast.conf && systemctl daemon-reload")
			})

			step("reboot-with-control-plane-down", func(t *testing.T) {
				v.cp.Stop()
				start := time.Now()
				if err := v.m.Reboot(v.ctx); err != nil {
					t.Fatal(err)
				}
				v.waitActive(60*time.Second, "READY after reboot without istiod")
				t.Logf("READY %v after the reboot began, istiod down", time.Since(start).Round(100*time.Millisecond))
				if got := v.digMesh(); got != meshAddr {
					t.Errorf("after reboot, istiod down: dig %s = %q, want %s from the stored table", meshName, got, meshAddr)
				}
				out := v.sh("onramp status -o json")
				if !strings.Contains(out, `"source": "disk"`) || !strings.Contains(out, "spiffe://") {
					t.Errorf("status after reboot:\n%s", out)
				}
				if err := v.cp.Start(v.ctx); err != nil {
					t.Fatal(err)
				}
			})

			step("purge", func(t *testing.T) {
				if suite == "trixie" { // the README's way; on bookworm purge alone
					v.shown("onramp uninstall --purge")
				}
				v.shown("DEBIAN_FRONTEND=noninteractive apt-get purge -y onramp")
				after := v.sh(snapshotScript)
				gone, left := diffLines(before, after)
				if len(gone)+len(left) > 0 {
					t.Errorf("purge did not restore the host:\nonly before: %q\nonly after: %q", gone, left)
				}
			})
		})
	}
}
