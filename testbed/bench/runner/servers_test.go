package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func testTable(t *testing.T) Table {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "unbound.conf"), []byte("local-data: \"a.ns.svc.cluster.local. 30 IN A 10.96.0.1\"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "hosts"), []byte("10.96.0.1 a.ns.svc.cluster.local\n"), 0o644)
	return Table{Dir: dir, Names: 1}
}

// TestUnboundConfigChecks has unbound's own checker read the configuration.
func TestUnboundConfigChecks(t *testing.T) {
	check, err := exec.LookPath("unbound-checkconf")
	if err != nil {
		t.Skip("unbound-checkconf not installed (apt install unbound)")
	}
	tb := testTable(t)
	work := t.TempDir()
	args, err := unboundCommand(tb, 20001, "127.0.0.1:20002", work)
	if err != nil {
		t.Fatal(err)
	}
	conf := args[len(args)-1]
	out, err := exec.Command(check, conf).CombinedOutput()
	if err != nil {
		t.Fatalf("unbound-checkconf %s: %v\n%s", conf, err, out)
	}
	b, _ := os.ReadFile(conf)
	for _, want := range []string{"interface: 127.0.0.1@20001", "forward-addr: 127.0.0.1@20002", `local-zone: "test." nodefault`, "num-threads: 1"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("unbound config lacks %q", want)
		}
	}
}

// TestDnsmasqArgsCheck has dnsmasq check its arguments (--test).
func TestDnsmasqArgsCheck(t *testing.T) {
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/dnsmasq"); serr != nil {
			t.Skip("dnsmasq not installed (apt install dnsmasq-base)")
		}
		bin = "/usr/sbin/dnsmasq"
	}
	args, _ := dnsmasqCommand(testTable(t), 20001, "127.0.0.1:20002", t.TempDir())
	out, err := exec.Command(bin, append(args, "--test")...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "syntax check OK") {
		t.Fatalf("dnsmasq --test: %v\n%s", err, out)
	}
	if !strings.Contains(strings.Join(args, " "), "--server=127.0.0.1#20002") {
		t.Fatalf("dnsmasq does not forward to the upstream: %v", args)
	}
}

func TestCorefile(t *testing.T) {
	tb := testTable(t)
	c := corefile(tb, 20001, "127.0.0.1:20002")
	for _, want := range []string{".:20001 {", "bind 127.0.0.1", "hosts " + filepath.Join(tb.Dir, "hosts"), "fallthrough", "cache 3600", "forward . 127.0.0.1:20002"} {
		if !strings.Contains(c, want) {
			t.Errorf("Corefile lacks %q:\n%s", want, c)
		}
	}
	if strings.Count(c, "{") != strings.Count(c, "}") {
		t.Errorf("Corefile braces do not balance:\n%s", c)
	}
}

func TestOnrampArgs(t *testing.T) {
	tb := testTable(t)
	args, err := onrampCommand(tb, 20001, "127.0.0.1:20002", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(args, " ")
	for _, want := range []string{"run ", "--name-table " + filepath.Join(tb.Dir, "onramp.json"), "--dns-listen 127.0.0.1:20001", "--upstream 127.0.0.1:20002", "--status-listen off"} {
		if !strings.Contains(got, want) {
			t.Errorf("onramp args lack %q: %s", want, got)
		}
	}
}
