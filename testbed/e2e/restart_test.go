package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/onramp-mesh/onramp/testbed/harness"
)

// TestControlPlaneRestartLosesNoAnswers crashes and restarts the control
// plane while dnsperf asks the agent for mesh names: the agent keeps
// answering from its table, and reconnects by itself.
func TestControlPlaneRestartLosesNoAnswers(t *testing.T) {
	if _, err := exec.LookPath("dnsperf"); err != nil {
		t.Skip("dnsperf is not installed (apt-get install dnsperf)")
	}
	e := newEnv(t, 10*time.Second)
	a := e.agent(e.bundle(harness.BundleOptions{}), filepath.Join(e.work, "vm-state"))
	if err := a.WaitReady(e.ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	queries := filepath.Join(e.work, "queries.txt")
	os.WriteFile(queries, []byte(strings.Join([]string{
		"productpage.ns1.svc.cluster.local A",
		"productpage.ns1 A",
		"productpage.ns1.svc.cluster.local.vm.svc.cluster.local A",
		"productpage.ns1.svc.cluster.local AAAA",
		"12.0.96.10.in-addr.arpa PTR",
	}, "\n")+"\n"), 0o644)

	// Bounded: 6 s at 2,000 queries/s, loopback inside the VM namespace.
	perf := e.vmNS.Command(e.ctx, "dnsperf", "-s", "127.0.0.1", "-p", "15053", "-d", queries, "-l", "6", "-Q", "2000", "-t", "2")
	out := make(chan string, 1)
	go func() {
		b, err := perf.CombinedOutput()
		if err != nil {
			b = append(b, []byte("\ndnsperf: "+err.Error())...)
		}
		out <- string(b)
	}()
	time.Sleep(1500 * time.Millisecond)
	e.cp.Kill()
	time.Sleep(time.Second)
	if err := e.cp.Start(e.ctx); err != nil {
		t.Fatal(err)
	}
	report := <-out

	sent := regexp.MustCompile(`Queries sent:\s+(\d+)`).FindStringSubmatch(report)
	lost := regexp.MustCompile(`Queries lost:\s+(\d+)`).FindStringSubmatch(report)
	if sent == nil || lost == nil {
		t.Fatalf("dnsperf output not understood:\n%s", report)
	}
	t.Logf("dnsperf: %s queries sent, %s lost", sent[1], lost[1])
	if lost[1] != "0" {
		t.Errorf("%s queries lost during the control plane restart:\n%s", lost[1], report)
	}
	if !regexp.MustCompile(`Response codes:\s+NOERROR \d+ \(100\.00%\)\n`).MatchString(report) {
		t.Errorf("not every answer was NOERROR:\n%s", report)
	}
	e.eventually(30*time.Second, "agent reconnected", func() string {
		rep := e.status(a)
		if rep.ControlPlane.Connected && rep.ControlPlane.Reconnects >= 1 {
			return ""
		}
		return fmt.Sprintf("%+v", rep.ControlPlane)
	})
}

// TestBootWithControlPlaneDownServesLastGoodTable: the agent restarts while
// the control plane is away and answers mesh names from the table on disk.
func TestBootWithControlPlaneDownServesLastGoodTable(t *testing.T) {
	e := newEnv(t, 10*time.Second)
	state := filepath.Join(e.work, "vm-state")
	dir := e.bundle(harness.BundleOptions{})
	a := e.agent(dir, state)
	if err := a.WaitReady(e.ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	pushed := e.status(a).NameTable.LastPush
	a.Stop()
	e.cp.Stop()

	a = e.agent(dir, state)
	if err := a.WaitReady(e.ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if r := e.dig("productpage.ns1.svc.cluster.local", "A"); len(r.Answers) != 1 || r.Answers[0] != "A 10.96.0.12" {
		t.Fatalf("with the control plane down: %+v", r)
	}
	rep := e.status(a)
	if rep.NameTable.Source != "disk" || rep.ControlPlane.Connected {
		t.Errorf("want the table from disk and no connection, got %+v / %+v", rep.NameTable, rep.ControlPlane)
	}
	// Status says when the table was pushed, not when it was read from disk.
	if pushed.IsZero() || !rep.NameTable.LastPush.Equal(pushed) {
		t.Errorf("last push after the restart = %v, want the push before it, %v", rep.NameTable.LastPush, pushed)
	}
}
