package doctor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onramp-mesh/onramp/agent/doctor"
	"github.com/onramp-mesh/onramp/testbed/harness"
	"github.com/onramp-mesh/onramp/testbed/nspawn"
)

// TestDoctorWithTheResolvedRedirect boots Debian 12 and 13 machines with
// systemd-resolved, runs the real agent in each with the resolved redirect,
// and runs doctor there: healthy; then the link reverted behind the agent's
// back (resolvectl revert) is named as the redirect.
func TestDoctorWithTheResolvedRedirect(t *testing.T) {
	for _, suite := range []string{"bookworm", "trixie"} {
		t.Run(suite, func(t *testing.T) { testResolved(t, suite) })
	}
}

func testResolved(t *testing.T, suite string) {
	if bin.Onramp == "" {
		t.Skip("the onramp binary was not built (not root)")
	}
	dir := t.TempDir()
	tablePath := filepath.Join(dir, "table.json")
	if err := os.WriteFile(tablePath, []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	// The agent runs as root; the machine keeps CAP_NET_ADMIN so that the
	// resolved backend can create its own link.
	m := nspawn.ForTest(t, suite, nspawn.Opts{
		Capabilities: []string{"CAP_NET_ADMIN"},
		DNS:          []netip.Addr{netip.MustParseAddr("10.213.0.1")},
		Binds: []nspawn.Bind{
			{Src: bin.Onramp, Dst: "/usr/local/bin/onramp"},
			{Src: tablePath, Dst: "/etc/onramp/table.json"},
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The upstream, on the machine's peer, knows public.test.
	dm, err := harness.Start("dnsmasq", m.Peer, nil, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=",
		"--no-resolv", "--no-hosts", "--bind-interfaces", "--listen-address="+m.PeerAddr.String(), "--except-interface=lo",
		"--user=root", "--address=/"+publicName+"/"+publicAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer dm.Stop()
	if out, err := m.Run(ctx, "systemd-run", "--unit=onramp-doctor-agent", "--property=StateDirectory=onramp",
		"/usr/local/bin/onramp", "run", "--name-table", "/etc/onramp/table.json", "--redirect", "resolved", "--data-plane", "proxy"); err != nil {
		t.Fatalf("systemd-run: %v\n%s", err, out)
	}
	defer func() {
		if t.Failed() {
			log, _, _ := m.Exec(context.Background(), "journalctl", "-u", "onramp-doctor-agent", "--no-pager", "-n", "40")
			t.Logf("agent log:\n%s", log)
		}
	}()
	doc := func() (doctor.Report, int) {
		t.Helper()
		stdout, stderr, err := m.Exec(ctx, "/usr/local/bin/onramp", "doctor", "--public-name", publicName, "--timeout", "10s", "-o", "json")
		var rep doctor.Report
		if jerr := json.Unmarshal([]byte(stdout), &rep); jerr != nil {
			t.Fatalf("doctor -o json: %v (%v)\n%s\n%s", jerr, err, stdout, stderr)
		}
		t.Logf("doctor: exit %d\n%s", nspawn.ExitCode(err), text(rep))
		return rep, nspawn.ExitCode(err)
	}
	// Wait for the agent to serve and report its redirect.
	var rep doctor.Report
	var code int
	served := time.Time{}
	for deadline := time.Now().Add(30 * time.Second); ; {
		stdout, _, err := m.Exec(ctx, "/usr/local/bin/onramp", "status", "-o", "json")
		if strings.Contains(stdout, `"backend": "resolved"`) {
			break
		}
		if err == nil && served.IsZero() {
			served = time.Now()
		}
		if !served.IsZero() && time.Since(served) > 5*time.Second {
			t.Skip("this agent reports no redirect (agent/redirect is not wired into the daemon)")
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent never served:\n%s", stdout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	rep, code = doc()
	st := verdicts(rep)
	if c := rep.Check(doctor.CheckRedirect); c.Facts["inPlace"] == false {
		// The agent could not apply its redirect here: doctor must name it,
		// with the agent's reason, as the first broken link.
		if code != 1 || rep.Broken != doctor.CheckRedirect || !strings.Contains(c.Detail, "is not in place") || c.Facts["lastError"] == "" {
			t.Fatalf("%s, redirect not applied: exit %d, broken %q, %+v", suite, code, rep.Broken, c)
		}
		t.Skipf("%s: the agent's resolved redirect is not in place in this machine (%v); doctor names it, the healthy path is not testable here", suite, c.Facts["lastError"])
	}
	if code != 0 || !rep.Healthy || st[doctor.CheckRedirect] != doctor.OK || st[doctor.CheckMeshName] != doctor.OK || st[doctor.CheckPublicName] != doctor.OK {
		t.Fatalf("%s, resolved redirect in place: exit %d, %v", suite, code, st)
	}
	link := fmt.Sprint(rep.Check(doctor.CheckRedirect).Facts["link"])
	if link == "" || link == "<nil>" {
		t.Fatalf("no link in %v", rep.Check(doctor.CheckRedirect).Facts)
	}
	// Revert the link behind the agent's back and look at once, before its
	// next check (every 5 s) applies it again.
	if out, err := m.Run(ctx, "resolvectl", "revert", link); err != nil {
		t.Fatalf("resolvectl revert %s: %v\n%s", link, err, out)
	}
	rep, code = doc()
	if code != 1 || rep.Broken != doctor.CheckRedirect || !strings.Contains(rep.Check(doctor.CheckRedirect).Detail, "gone from the host") {
		t.Fatalf("%s, link reverted: exit %d, broken %q, %+v", suite, code, rep.Broken, rep.Check(doctor.CheckRedirect))
	}
	// The agent applies its link again at its next check; the path is healthy again.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Second) {
		if rep, code = doc(); code == 0 && rep.Healthy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still broken 20 s after the revert: %v", suite, verdicts(rep))
		}
	}
}
