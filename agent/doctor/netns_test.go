package doctor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onramp-mesh/onramp/agent/doctor"
	"github.com/onramp-mesh/onramp/agent/status"
	"github.com/onramp-mesh/onramp/testbed/harness"
	"github.com/onramp-mesh/onramp/testbed/netns"
)

// The hosts of these tests: a VM namespace running the real agent, and an
// upstream namespace running dnsmasq, joined by a veth pair.
const (
	vmAddr       = "10.77.0.1"
	upstreamAddr = "10.77.0.2"
	statusAddr   = "127.0.0.1:15020"
	publicName   = "public.test"
	publicAddr   = "10.77.0.80"
)

// table is the static name table the agent serves: a Kubernetes service and
// a ServiceEntry host known only by an auto-allocated VIP.
const table = `{"table": {
  "productpage.ns1.svc.cluster.local": {"ips": ["10.96.0.12"], "registry": "Kubernetes", "shortname": "productpage", "namespace": "ns1"},
  "api.stripe.com": {"ips": ["240.240.0.7"], "registry": "External"}
}}`

var bin harness.Binaries

func TestMain(m *testing.M) {
	code := func() int {
		if netns.Available() != nil {
			return m.Run() // the tests skip
		}
		repo, err := harness.RepoRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		dir, err := os.MkdirTemp("", "onramp-doctor-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if bin, err = harness.Build(context.Background(), repo, dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// host is the VM namespace with its upstream.
type host struct {
	t        *testing.T
	ctx      context.Context
	vm, up   *netns.NS
	work     string
	tableRaw string
}

func newHost(t *testing.T) *host {
	t.Helper()
	if err := netns.Available(); err != nil {
		t.Skip(err)
	}
	for _, tool := range []string{"dnsmasq", "getent"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: %v", tool, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	h := &host{t: t, ctx: ctx, work: t.TempDir()}
	var err error
	if h.vm, err = netns.New(netns.UniqueName("docvm")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.vm.Close() })
	if h.up, err = netns.New(netns.UniqueName("docup")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.up.Close() })
	if err := netns.Connect(h.vm, netip.MustParsePrefix(vmAddr+"/24"), h.up, netip.MustParsePrefix(upstreamAddr+"/24")); err != nil {
		t.Fatal(err)
	}
	// The upstream knows public.test and nothing else.
	dm, err := harness.Start("dnsmasq", h.up, nil, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=",
		"--no-resolv", "--no-hosts", "--bind-interfaces", "--listen-address="+upstreamAddr, "--except-interface=lo",
		"--user=root", "--address=/"+publicName+"/"+publicAddr, "--log-queries", "--log-facility=-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dm.Stop)
	h.tableRaw = filepath.Join(h.work, "table.json")
	if err := os.WriteFile(h.tableRaw, []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	// A stand-in for a working redirect: the agent listens on 127.0.0.1:53
	// and the VM's resolv.conf names 127.0.0.1, so glibc asks onramp first.
	h.resolvConf("nameserver 127.0.0.1\n")
	return h
}

func (h *host) resolvConf(content string) {
	h.t.Helper()
	if err := h.vm.SetResolvConf(content); err != nil {
		h.t.Fatal(err)
	}
}

// startAgent runs the real agent in the VM with the static table, its DNS on
// 127.0.0.1:53, the upstream named explicitly (resolv.conf names the agent
// itself), and no redirect of its own.
func (h *host) startAgent(dataPlane string) *harness.Agent {
	h.t.Helper()
	state := filepath.Join(h.work, "state-"+dataPlane)
	if err := os.MkdirAll(state, 0o700); err != nil {
		h.t.Fatal(err)
	}
	a, err := harness.StartAgent(bin, h.vm, "127.0.0.1:53", statusAddr, state, nil,
		"--name-table", h.tableRaw, "--upstream", upstreamAddr+":53", "--redirect", "none", "--data-plane", dataPlane)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() {
		a.Stop()
		if h.t.Failed() {
			h.t.Logf("agent log:\n%s", harness.Tail(a.Output(), 30))
		}
	})
	if err := a.WaitReady(h.ctx, 20*time.Second); err != nil {
		h.t.Fatal(err)
	}
	return a
}

// doctor runs `onramp doctor -o json` in the VM and returns its report and
// exit status.
func (h *host) doctor() (doctor.Report, int) {
	h.t.Helper()
	cmd := h.vm.Command(h.ctx, bin.Onramp, "doctor", "--addr", statusAddr, "--public-name", publicName, "--timeout", "10s", "-o", "json")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		h.t.Fatal(err)
	}
	var rep doctor.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		h.t.Fatalf("doctor -o json: %v\n%s\nstderr: %s", err, out, stderr.String())
	}
	h.t.Logf("doctor: exit %d\n%s", code, text(rep))
	return rep, code
}

// getent is an application on the VM looking name up.
func (h *host) getent(name string) string {
	out, _ := h.vm.Command(h.ctx, "getent", "ahosts", name).Output()
	return string(out)
}

func text(rep doctor.Report) string {
	var b strings.Builder
	rep.WriteText(&b)
	return b.String()
}

func verdicts(rep doctor.Report) map[string]doctor.Status {
	m := map[string]doctor.Status{}
	for _, c := range rep.Checks {
		m[c.Name] = c.Status
	}
	return m
}

// TestDoctorNamesTheBrokenLink: a healthy path, then the redirect removed
// behind the agent's back, then the agent stopped.
func TestDoctorNamesTheBrokenLink(t *testing.T) {
	h := newHost(t)
	agent := h.startAgent("proxy")

	rep, code := h.doctor()
	st := verdicts(rep)
	if code != 0 || !rep.Healthy || st[doctor.CheckAgent] != doctor.OK || st[doctor.CheckMeshName] != doctor.OK ||
		st[doctor.CheckPublicName] != doctor.OK || st[doctor.CheckLoop] != doctor.OK || st[doctor.CheckVIPs] != doctor.OK {
		t.Fatalf("healthy path: exit %d, %v", code, st)
	}
	// The agent runs with --redirect none: doctor must not call that a pass.
	if st[doctor.CheckRedirect] == doctor.OK {
		t.Errorf("redirect: %s, want unknown or warn with no redirect of the agent's own", st[doctor.CheckRedirect])
	}
	mesh := rep.Check(doctor.CheckMeshName)
	if mesh.Facts["name"] != "productpage.ns1.svc.cluster.local." || fmt.Sprint(mesh.Facts["got"]) != "[10.96.0.12]" {
		t.Errorf("mesh-name facts %v", mesh.Facts)
	}
	if before, after := mesh.Facts["meshAnswersBefore"].(float64), mesh.Facts["meshAnswersAfter"].(float64); after <= before {
		t.Errorf("mesh answers %v -> %v: the lookup did not reach onramp", before, after)
	}
	if got := rep.Check(doctor.CheckPublicName).Facts["got"]; fmt.Sprint(got) != "["+publicAddr+"]" {
		t.Errorf("public-name got %v", got)
	}

	// The redirect removed behind the agent's back: resolv.conf names only the upstream.
	h.resolvConf("nameserver " + upstreamAddr + "\n")
	rep, code = h.doctor()
	if code != 1 || rep.Healthy || rep.Broken != doctor.CheckMeshName {
		t.Fatalf("redirect removed: exit %d, broken %q, %v", code, rep.Broken, verdicts(rep))
	}
	if fix := rep.Check(doctor.CheckMeshName).Fix; !strings.Contains(fix, "/etc/resolv.conf names "+upstreamAddr) || !strings.Contains(fix, "onramp listens on 127.0.0.1:53") {
		t.Errorf("fix: %q", fix)
	}
	if s := rep.Check(doctor.CheckPublicName).Status; s != doctor.OK {
		t.Errorf("public name through the upstream alone: %s", s)
	}

	// The agent stopped.
	h.resolvConf("nameserver 127.0.0.1\n")
	agent.Stop()
	rep, code = h.doctor()
	if code != 1 || rep.Broken != doctor.CheckAgent || !strings.Contains(rep.Check(doctor.CheckAgent).Fix, "systemctl start onramp") {
		t.Fatalf("agent stopped: exit %d, broken %q, %+v", code, rep.Broken, rep.Check(doctor.CheckAgent))
	}
	// With resolv.conf naming only the dead agent, names outside the mesh fail too, and doctor says so.
	if c := rep.Check(doctor.CheckPublicName); c.Status != doctor.Fail || !strings.Contains(c.Detail, "while the agent is down") {
		t.Errorf("public-name with the agent down: %+v", c)
	}
	if out := text(rep); !strings.Contains(out, "FAIL  agent        no agent answers on "+statusAddr) || !strings.Contains(out, "\nbroken: agent: ") {
		t.Errorf("text:\n%s", out)
	}
}

// TestDoctorWarnsOfVIPsWithoutAProxy: with dataPlane none, an application on
// the VM looks up a name the mesh knows only by an auto-allocated VIP; doctor
// warns and the path stays healthy.
func TestDoctorWarnsOfVIPsWithoutAProxy(t *testing.T) {
	h := newHost(t)
	h.startAgent("none")
	out := h.getent("api.stripe.com")
	t.Logf("getent ahosts api.stripe.com: %q", out)
	rep, code := h.doctor()
	c := rep.Check(doctor.CheckVIPs)
	if code != 0 || !rep.Healthy || c.Status != doctor.Warn || c.Fix == "" {
		t.Fatalf("exit %d, vips %+v", code, c)
	}
	// The agent withholds the VIP-only name and counts the application's lookups of it.
	if c.Facts["dataPlane"] != "none" || !strings.Contains(c.Detail, "got the upstream's answer") || fmt.Sprint(c.Facts["lookedUp"]) == "<nil>" ||
		!strings.Contains(fmt.Sprint(c.Facts["lookedUp"]), "api.stripe.com (") {
		t.Errorf("vips: %+v", c)
	}
}

// TestNftablesInspector reads a real nftables table in a namespace, then
// finds it gone after a ruleset flush.
func TestNftablesInspector(t *testing.T) {
	if err := netns.Available(); err != nil {
		t.Skip(err)
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft is not installed (apt-get install nftables)")
	}
	ns, err := netns.New(netns.UniqueName("docnft"))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	nft := func(script string) {
		t.Helper()
		cmd := ns.Command(context.Background(), "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nft: %v\n%s", err, out)
		}
	}
	nft(`table inet doctest {
	set dns4 {
		type ipv4_addr
		elements = { 10.77.0.2 }
	}
	chain output {
		type nat hook output priority -100
		ip daddr @dns4 udp dport 53 redirect to :15053
	}
}
`)
	rv := status.Redirect{Backend: "nftables", InPlace: true, Table: "doctest"}
	inspect := func() (doctor.Live, error) {
		var live doctor.Live
		var ierr error
		if err := ns.Do(func() error { live, ierr = doctor.NftablesInspector(context.Background(), rv); return nil }); err != nil {
			t.Fatal(err)
		}
		return live, ierr
	}
	live, err := inspect()
	if err != nil || !live.Present || fmt.Sprint(live.Redirected) != "[10.77.0.2]" {
		t.Fatalf("table in place: %+v, %v", live, err)
	}
	nft("flush ruleset\n")
	if live, err = inspect(); err != nil || live.Present {
		t.Fatalf("after a flush: %+v, %v", live, err)
	}
	t.Logf("after a flush: %s", live.Detail)
	if _, err := doctor.NftablesInspector(context.Background(), status.Redirect{Backend: "resolved"}); !errors.Is(err, doctor.ErrNotInspected) {
		t.Errorf("resolved backend: %v", err)
	}
}

// startRedirectedAgent runs the real agent in the VM on its default-style
// port 15053 with the real nftables redirect: the VM's resolv.conf names the
// upstream, and the agent's table sends that traffic to itself.
func (h *host) startRedirectedAgent() *harness.Agent {
	h.t.Helper()
	state := filepath.Join(h.work, "state-nft")
	if err := os.MkdirAll(state, 0o700); err != nil {
		h.t.Fatal(err)
	}
	a, err := harness.StartAgent(bin, h.vm, "127.0.0.1:15053", statusAddr, state, nil,
		"--name-table", h.tableRaw, "--redirect", "nftables", "--data-plane", "proxy")
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() {
		a.Stop()
		if h.t.Failed() {
			h.t.Logf("agent log:\n%s", harness.Tail(a.Output(), 30))
		}
	})
	if err := a.WaitReady(h.ctx, 20*time.Second); err != nil {
		h.t.Fatal(err)
	}
	return a
}

// inProcess are doctor's inputs for the VM, for running the checks from
// this process right after changing something behind the agent's back.
func (h *host) inProcess() doctor.Options {
	ns := h.vm
	return doctor.Options{
		Agent:   doctor.HTTPStatus{Address: statusAddr, Client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: ns.DialContext, DisableKeepAlives: true}}},
		Resolve: doctor.GetentResolver("ip", "netns", "exec", ns.Name, "getent", "ahosts"),
		Exchange: func(ctx context.Context, s netip.AddrPort, name string, mark uint32) (rcode int, addrs []netip.Addr, err error) {
			ns.Do(func() error { rcode, addrs, err = doctor.DNSExchange(ctx, s, name, mark); return nil })
			return
		},
		Inspect: func(ctx context.Context, rv status.Redirect) (live doctor.Live, err error) {
			ns.Do(func() error { live, err = doctor.NftablesInspector(ctx, rv); return nil })
			return
		},
		Now:        time.Now,
		ResolvConf: "nameserver " + upstreamAddr + "\n",
		PublicName: publicName,
		Timeout:    10 * time.Second,
	}
}

// TestDoctorWithTheNftablesRedirect: the real nftables redirect in place is
// a healthy path; a ruleset flush behind the agent's back is named as the
// redirect, and after the agent restores its table the path is healthy again.
func TestDoctorWithTheNftablesRedirect(t *testing.T) {
	h := newHost(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft is not installed (apt-get install nftables)")
	}
	h.resolvConf("nameserver " + upstreamAddr + "\n")
	h.startRedirectedAgent()

	rep, code := h.doctor()
	st := verdicts(rep)
	if _, ok := rep.Check(doctor.CheckRedirect).Facts["backend"]; !ok && st[doctor.CheckRedirect] == doctor.Unknown {
		t.Skip("this agent reports no redirect (agent/redirect is not wired into the daemon)")
	}
	if code != 0 || !rep.Healthy || st[doctor.CheckRedirect] != doctor.OK || st[doctor.CheckMeshName] != doctor.OK || st[doctor.CheckPublicName] != doctor.OK || st[doctor.CheckLoop] != doctor.OK {
		t.Fatalf("nftables redirect in place: exit %d, %v", code, st)
	}

	// Flush behind the agent's back and look at once, before its next check
	// (every second) restores the table. A few tries, in case a check falls
	// right between the flush and the look.
	named := false
	for try := 0; try < 3 && !named; try++ {
		if out, err := h.vm.Command(h.ctx, "nft", "flush", "ruleset").CombinedOutput(); err != nil {
			t.Fatalf("nft flush ruleset: %v\n%s", err, out)
		}
		rep := doctor.Run(h.ctx, h.inProcess())
		t.Logf("right after the flush:\n%s", text(rep))
		if rep.Broken == doctor.CheckRedirect {
			named = true
			if c := rep.Check(doctor.CheckRedirect); !strings.Contains(c.Detail, "gone from the host") || !strings.Contains(c.Fix, "ruleset flush") {
				t.Errorf("redirect: %+v", c)
			}
		}
		time.Sleep(2500 * time.Millisecond) // the agent restores its table
	}
	if !named {
		t.Fatal("a flushed ruleset was never named as the broken redirect")
	}
	rep, code = h.doctor()
	if code != 0 || verdicts(rep)[doctor.CheckRedirect] != doctor.OK || !strings.Contains(rep.Check(doctor.CheckRedirect).Detail, "restored") {
		t.Errorf("after the agent's repair: exit %d, %+v", code, rep.Check(doctor.CheckRedirect))
	}
}
