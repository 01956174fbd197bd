package redirect

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/onramp-mesh/onramp/agent/status"
	"github.com/onramp-mesh/onramp/testbed/harness"
	"github.com/onramp-mesh/onramp/testbed/netns"
)

// nftHost is a simulated VM without systemd-resolved: its own network
// namespace whose resolv.conf names an upstream dnsmasq in a second
// namespace at the other end of a veth.
type nftHost struct {
	t        *testing.T
	ctx      context.Context
	vm, up   *netns.NS
	dir      string
	upLog    string
	state    string
	agent    *harness.Process
	get      func(string) (string, error)
	upstream *exec.Cmd
}

func newNftHost(t *testing.T) *nftHost {
	if err := netns.Available(); err != nil {
		t.Skip(err)
	}
	if _, err := exec.LookPath("dnsmasq"); err != nil {
		t.Skip("dnsmasq is not installed: apt-get install dnsmasq-base")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft is not installed (the test compares rulesets with it): apt-get install nftables")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	h := &nftHost{t: t, ctx: ctx, dir: t.TempDir()}
	var err error
	if h.vm, err = netns.New(netns.UniqueName("rdvm")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.vm.Close() })
	if h.up, err = netns.New(netns.UniqueName("rdup")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.up.Close() })
	if err := netns.ConnectNamed(h.vm, "eth0", netip.MustParsePrefix("10.77.0.2/24"), h.up, "eth0", netip.MustParsePrefix("10.77.0.1/24")); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][]string{
		{"ip", "-n", h.vm.Name, "addr", "add", "fd77::2/64", "dev", "eth0", "nodad"},
		{"ip", "-n", h.up.Name, "addr", "add", "fd77::1/64", "dev", "eth0", "nodad"},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", c, err, out)
		}
	}
	h.upLog = filepath.Join(h.dir, "upstream.log")
	h.upstream = h.dnsmasq(h.up, h.upLog, "--listen-address=10.77.0.1", "--listen-address=fd77::1",
		"--address=/public.test/192.0.2.10", "--address=/public.test/2001:db8::10")
	if err := h.vm.SetResolvConf("nameserver 10.77.0.1\nnameserver fd77::1\noptions timeout:2 attempts:1\n"); err != nil {
		t.Fatal(err)
	}
	h.state = filepath.Join(h.dir, "state")
	os.MkdirAll(h.state, 0o700)
	os.WriteFile(filepath.Join(h.dir, "table.json"), []byte(meshTable), 0o644)
	h.get = nsGetter(h.vm, "127.0.0.1:15020")
	return h
}

// dnsmasq runs a dnsmasq in ns that logs every query to log.
func (h *nftHost) dnsmasq(ns *netns.NS, log string, args ...string) *exec.Cmd {
	h.t.Helper()
	cmd := ns.Command(context.Background(), "dnsmasq", append([]string{"-k", "--port=53", "--bind-interfaces", "--no-resolv", "--no-hosts",
		"--user=root", "--pid-file=", "--log-queries", "--log-facility=" + log, "--cache-size=0"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(h.t, 5*time.Second, "dnsmasq started", func() bool { return countLines(log, "started") > 0 })
	return cmd
}

// ruleset is `nft -j list ruleset` in the VM.
func (h *nftHost) ruleset() string {
	h.t.Helper()
	out, err := h.vm.Command(h.ctx, "nft", "-j", "list", "ruleset").Output()
	if err != nil {
		h.t.Fatalf("nft list ruleset: %v", err)
	}
	return string(out)
}

func (h *nftHost) sh(name string, args ...string) (string, error) {
	out, err := h.vm.Command(h.ctx, name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// startAgent runs onramp in the VM with the given extra configuration.
func (h *nftHost) startAgent(extra string) {
	h.t.Helper()
	cfg := filepath.Join(h.dir, "onramp.yaml")
	os.WriteFile(cfg, []byte("dns:\n  listen: [\"127.0.0.1:15053\", \"[::1]:15053\"]\n  timeout: 1s\nstatus:\n  listen: 127.0.0.1:15020\n"+extra), 0o644)
	p, err := harness.Start("agent", h.vm, nil, onrampBin, "run", "--config", cfg, "--state-dir", h.state,
		"--name-table", filepath.Join(h.dir, "table.json"), "--redirect", "nftables", "--log-level", "debug")
	if err != nil {
		h.t.Fatal(err)
	}
	h.agent = p
	h.t.Cleanup(func() {
		p.Stop()
		if h.t.Failed() {
			h.t.Logf("agent log:\n%s", harness.Tail(p.Output(), 40))
		}
	})
	waitFor(h.t, 20*time.Second, "redirect in place", func() bool {
		r := h.report()
		return r.Redirect != nil && r.Redirect.InPlace
	})
}

func (h *nftHost) report() status.Report {
	var r status.Report
	body, err := h.get("/debug/status")
	if err == nil {
		json.Unmarshal([]byte(body), &r)
	}
	return r
}

func (h *nftHost) mesh() int { return metric(h.t, h.get, `onramp_dns_queries_total{source="mesh"}`) }
func (h *nftHost) requests() int {
	return metric(h.t, h.get, "onramp_dns_requests_total")
}

// TestNftablesRedirect: applications that ask resolv.conf's nameservers get
// mesh answers from onramp (getent, dig over UDP and TCP, IPv4 and IPv6)
// and other names from the upstream, each exactly once (onramp's own
// upstream queries, marked, are not redirected back, though the agent runs
// as root); a ruleset flush is repaired; stop, and `onramp redirect remove` after kill -9, leave the ruleset
// as it was.
func TestNftablesRedirect(t *testing.T) {
	h := newNftHost(t)
	before := h.ruleset()
	h.startAgent("")

	// Mesh names: getent (glibc, A and AAAA), dig UDP, TCP, over IPv6.
	m0 := h.mesh()
	if out, err := h.sh("getent", "ahosts", "productpage.ns1.svc.cluster.local"); err != nil || !strings.Contains(out, "10.96.0.12") || !strings.Contains(out, "fd00::12") {
		t.Fatalf("getent ahosts productpage: %v\n%s", err, out)
	}
	for _, args := range [][]string{
		{"+short", "@10.77.0.1", "productpage.ns1.svc.cluster.local"},
		{"+short", "+tcp", "@10.77.0.1", "productpage.ns1.svc.cluster.local"},
		{"+short", "@fd77::1", "productpage.ns1.svc.cluster.local"},
		{"+short", "+tcp", "@fd77::1", "api.external.test"},
	} {
		out, err := h.sh("dig", append([]string{"+time=2", "+tries=1"}, args...)...)
		if err != nil || !(strings.Contains(out, "10.96.0.12") || strings.Contains(out, "10.96.0.20")) {
			t.Fatalf("dig %v: %v\n%s", args, err, out)
		}
	}
	if got := h.mesh() - m0; got < 6 {
		t.Errorf("onramp answered %d mesh queries, want at least 6 (2 getent + 4 dig)", got)
	}
	if n := countLines(h.upLog, "query[", "svc.cluster.local"); n != 0 {
		t.Errorf("the upstream saw %d queries for mesh names, want 0", n)
	}

	// Other names go through onramp to the upstream, once each: onramp's
	// own query carries the mark and is not redirected back to it.
	r0 := h.requests()
	if out, err := h.sh("getent", "ahosts", "www.public.test"); err != nil || !strings.Contains(out, "192.0.2.10") {
		t.Fatalf("getent ahosts www.public.test: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"+short", "@10.77.0.1", "udp.public.test"}, {"+short", "+tcp", "@fd77::1", "tcp.public.test"}} {
		if out, err := h.sh("dig", append([]string{"+time=2", "+tries=1"}, args...)...); err != nil || !strings.Contains(out, "192.0.2.10") {
			t.Fatalf("dig %v: %v\n%s", args, err, out)
		}
	}
	reached := h.requests() - r0
	t.Logf("non-mesh lookups: %d queries reached onramp; the upstream saw www %d (A) + %d (AAAA), udp %d, tcp %d", reached,
		countLines(h.upLog, "query[A] www.public.test"), countLines(h.upLog, "query[AAAA] www.public.test"),
		countLines(h.upLog, "query[A] udp.public.test"), countLines(h.upLog, "query[A] tcp.public.test"))
	if reached < 4 {
		t.Errorf("%d non-mesh queries reached onramp, want at least 4: the redirect is not catching them", reached)
	}
	for _, name := range []string{"query[A] www.public.test", "query[AAAA] www.public.test", "query[A] udp.public.test", "query[A] tcp.public.test"} {
		if n := countLines(h.upLog, name); n != 1 {
			t.Errorf("upstream saw %q %d times, want exactly once", name, n)
		}
	}
	if n := countLines(h.upLog, "from 127.0.0.1"); n != 0 {
		t.Errorf("upstream saw %d queries from 127.0.0.1", n)
	}

	// A flush of the whole ruleset is noticed and repaired.
	if out, err := h.sh("nft", "flush", "ruleset"); err != nil {
		t.Fatalf("nft flush ruleset: %v %s", err, out)
	}
	took := waitFor(t, 10*time.Second, "table restored after a flush", func() bool {
		_, err := h.sh("nft", "list", "table", "inet", "onramp")
		return err == nil
	})
	t.Logf("ruleset flush repaired in %s", took.Round(10*time.Millisecond))
	if out, err := h.sh("dig", "+short", "+time=2", "+tries=1", "@10.77.0.1", "productpage.ns1.svc.cluster.local"); err != nil || !strings.Contains(out, "10.96.0.12") {
		t.Fatalf("after repair: dig: %v\n%s", err, out)
	}
	if r := h.report(); r.Redirect == nil || r.Redirect.Repairs < 1 {
		t.Errorf("status does not count the repair: %+v", r.Redirect)
	}

	// Stop: the ruleset is the one from before.
	h.agent.Stop()
	if after := h.ruleset(); after != before {
		t.Fatalf("ruleset after stop differs:\nbefore %s\nafter  %s", before, after)
	}
	if _, err := os.Stat(filepath.Join(h.state, "redirect", "state.json")); !os.IsNotExist(err) {
		t.Errorf("the redirect record outlived the stop: %v", err)
	}

	// kill -9 leaves the table; `onramp redirect remove` takes it out.
	h.startAgent("")
	h.agent.Kill()
	time.Sleep(200 * time.Millisecond)
	if after := h.ruleset(); after == before {
		t.Fatal("after kill -9 the table is gone already?")
	}
	if out, err := h.sh(onrampBin, "redirect", "remove", "--state-dir", h.state); err != nil || !strings.Contains(out, "removed the nftables redirect") {
		t.Fatalf("onramp redirect remove: %v\n%s", err, out)
	}
	if after := h.ruleset(); after != before {
		t.Fatalf("ruleset after redirect remove differs:\nbefore %s\nafter  %s", before, after)
	}
	if out, err := h.sh(onrampBin, "redirect", "remove", "--state-dir", h.state); err != nil || !strings.Contains(out, "nothing to remove") {
		t.Fatalf("onramp redirect remove, again: %v\n%s", err, out)
	}
}

// TestNftablesLoops: with a local dnsmasq on 127.0.0.1 as the host's
// resolver (and onramp's upstream), names resolve once each through it;
// with captureAll, the local dnsmasq's own upstream queries come back to
// onramp, which forwards them to the dnsmasq again: that loop must end in a
// timeout or SERVFAIL with a bounded number of packets, never a storm.
func TestNftablesLoops(t *testing.T) {
	h := newNftHost(t)
	localLog := filepath.Join(h.dir, "local.log")
	h.dnsmasq(h.vm, localLog, "--listen-address=127.0.0.1", "--server=10.77.0.1")
	h.vm.SetResolvConf("nameserver 127.0.0.1\noptions timeout:2 attempts:1\n")
	before := h.ruleset()

	h.startAgent("")
	if r := h.report(); r.Redirect == nil || strings.Join(r.Redirect.Nameservers, ",") != "127.0.0.1" {
		t.Fatalf("redirected nameservers: %+v", r.Redirect)
	}
	if out, err := h.sh("getent", "ahosts", "productpage.ns1.svc.cluster.local"); err != nil || !strings.Contains(out, "10.96.0.12") {
		t.Fatalf("getent mesh name: %v\n%s", err, out)
	}
	if out, err := h.sh("dig", "+short", "+time=2", "+tries=1", "@127.0.0.1", "local.public.test"); err != nil || !strings.Contains(out, "192.0.2.10") {
		t.Fatalf("dig through the local dnsmasq: %v\n%s", err, out)
	}
	if n := countLines(localLog, "query[A] local.public.test"); n != 1 {
		t.Errorf("the local dnsmasq saw local.public.test %d times, want once", n)
	}
	if n := countLines(h.upLog, "query[A] local.public.test"); n != 1 {
		t.Errorf("the upstream saw local.public.test %d times, want once", n)
	}
	if n := countLines(localLog, "svc.cluster.local"); n != 0 {
		t.Errorf("the local dnsmasq saw %d mesh queries, want 0", n)
	}
	h.agent.Stop()

	// captureAll: the loop through the local dnsmasq is bounded.
	h.startAgent("redirect:\n  captureAll: true\n")
	if out, err := h.sh("dig", "+short", "+time=2", "+tries=1", "@10.77.0.1", "productpage.ns1.svc.cluster.local"); err != nil || !strings.Contains(out, "10.96.0.12") {
		t.Fatalf("captureAll: mesh name to any server: %v\n%s", err, out)
	}
	r0 := h.requests()
	start := time.Now()
	out, _ := h.sh("dig", "+time=5", "+tries=1", "@127.0.0.1", "loop.public.test")
	took := time.Since(start)
	time.Sleep(3 * time.Second) // let retries in flight end
	local := countLines(localLog, "query[A] loop.public.test")
	up := countLines(h.upLog, "query[A] loop.public.test")
	reached := h.requests() - r0
	t.Logf("captureAll loop through a local dnsmasq: dig took %s (%s); onramp received %d queries, the local dnsmasq %d, the upstream %d",
		took.Round(time.Millisecond), digStatus(out), reached, local, up)
	if reached > 50 || local > 50 {
		t.Errorf("packet storm: onramp received %d, the local dnsmasq %d queries for one lookup", reached, local)
	}
	h.agent.Stop()
	if after := h.ruleset(); after != before {
		t.Fatalf("ruleset after stop differs:\nbefore %s\nafter  %s", before, after)
	}
}

func digStatus(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if i := strings.Index(l, "status: "); i >= 0 {
			return strings.TrimSuffix(strings.Fields(l[i+8:])[0], ",")
		}
	}
	if strings.Contains(out, "timed out") {
		return "timed out"
	}
	return strings.TrimSpace(out)
}
