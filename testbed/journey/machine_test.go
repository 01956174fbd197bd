package journey

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onramp-mesh/onramp/testbed/harness"
	"github.com/onramp-mesh/onramp/testbed/nspawn"
)

var (
	built   pkgs
	testbed harness.Binaries
)

func TestMain(m *testing.M) {
	if nspawn.Available() == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		repo, err := harness.RepoRoot()
		var dir string
		if err == nil {
			dir, _ = os.MkdirTemp("", "onramp-journey-")
			if testbed, err = harness.Build(ctx, repo, dir); err == nil {
				built, err = buildPackages(ctx, repo, dir)
			}
		}
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "journey:", err)
			os.Exit(1)
		}
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// testMesh is the mesh the control plane serves: one service, and the
// WorkloadGroup the VM joins.
var testMesh = map[string]string{
	"services.yaml": `
apiVersion: v1
kind: Service
metadata: {name: productpage, namespace: ns1}
spec:
  clusterIP: 10.96.0.12
  ports: [{name: http, port: 9080}]
`,
	"vm-group.yaml": `
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: {name: vm-group, namespace: vm}
spec:
  metadata:
    labels: {app: myvmapi, version: v1}
  template:
    serviceAccount: vm-sa
`,
}

const (
	meshName    = "productpage.ns1.svc.cluster.local"
	meshAddr    = "10.96.0.12"
	publicName  = "web.example" // answered by the upstream in the peer namespace
	publicAddr  = "192.0.2.80"
	bundleInVM  = "/root/bundle" // where the user copied the bundle
	dropInDir   = "/run/systemd/system/onramp.service.d"
	peerDNSPort = "53"
)

// vm is a booted machine with the testbed control plane and an upstream DNS
// server at the other end of its veth, and a bundle for it in /root/bundle.
type vm struct {
	t   *testing.T
	ctx context.Context
	m   *nspawn.Machine
	cp  *harness.ControlPlane
	dns *harness.Process
}

func newVM(t *testing.T, suite string, o nspawn.Opts, extra ...string) *vm {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	t.Cleanup(cancel)
	o.Binds = append(o.Binds, nspawn.Bind{Src: built.Dir, Dst: "/dist"})
	o.DNS = []netip.Addr{netip.MustParseAddr("10.213.0.1")}
	// The redirect (resolved over D-Bus, or nftables) needs CAP_NET_ADMIN in
	// the machine, as on a VM.
	o.Capabilities = append(o.Capabilities, "CAP_NET_ADMIN")
	m := nspawn.ForTest(t, suite, o, extra...)
	v := &vm{t: t, ctx: ctx, m: m}

	// The network's DNS server: names outside the mesh resolve through it.
	var err error
	v.dns, err = harness.Start("dnsmasq", m.Peer, nil, "dnsmasq", "--no-daemon", "--conf-file=/dev/null",
		"--listen-address="+m.PeerAddr.String(), "--bind-interfaces", "--no-resolv", "--no-hosts",
		"--address=/"+publicName+"/"+publicAddr, "--port="+peerDNSPort)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.dns.Stop)

	work := t.TempDir()
	mesh := filepath.Join(work, "mesh")
	os.MkdirAll(mesh, 0o755)
	for name, body := range testMesh {
		os.WriteFile(filepath.Join(mesh, name), []byte(body), 0o644)
	}
	v.cp, err = harness.StartControlPlane(ctx, testbed, m.Peer, m.PeerAddr, mesh, filepath.Join(work, "cp-state"), 30*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if v.cp.Process != nil {
			v.cp.Stop()
		}
	})
	bdir := filepath.Join(work, "bundle")
	if err := v.cp.MintBundle(ctx, bdir, harness.BundleOptions{Group: "vm-group", Namespace: "vm", ServiceAccount: "vm-sa", VMIP: m.Addr}); err != nil {
		t.Fatal(err)
	}
	v.sh("mkdir -p " + bundleInVM)
	ents, _ := os.ReadDir(bdir)
	for _, e := range ents {
		data, _ := os.ReadFile(filepath.Join(bdir, e.Name()))
		if err := m.WriteFile(ctx, bundleInVM+"/"+e.Name(), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

// try runs a bash script in the machine.
func (v *vm) try(script string) (string, string, error) {
	return v.m.Exec(v.ctx, "bash", "-c", script)
}

// sh runs a bash script in the machine and fails the test when it fails.
func (v *vm) sh(script string) string {
	v.t.Helper()
	out, stderr, err := v.try(script)
	if err != nil {
		v.t.Fatalf("%s\nstdout: %s\nstderr: %s\nerr: %v", script, out, stderr, err)
	}
	return out
}

// transcript appends a command and its output to $ONRAMP_JOURNEY_TRANSCRIPT,
// the real output the README shows.
func (v *vm) transcript(cmd, out string) {
	path := os.Getenv("ONRAMP_JOURNEY_TRANSCRIPT")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "### %s\n$ %s\n%s\n", v.t.Name(), cmd, strings.TrimRight(out, "\n"))
}

// shown runs script as sh does and records it in the transcript.
func (v *vm) shown(script string) string {
	v.t.Helper()
	out, stderr, err := v.try(script + " 2>&1")
	v.transcript(script, out+stderr)
	if err != nil {
		v.t.Fatalf("%s\n%s%s\nerr: %v", script, out, stderr, err)
	}
	return out
}

// unit reads properties of onramp.service.
func (v *vm) unit() map[string]string {
	out, _, _ := v.try("systemctl show onramp.service -p ActiveState,SubState,MainPID,NRestarts,Result,StatusText")
	p := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, val, ok := strings.Cut(l, "="); ok {
			p[k] = val
		}
	}
	return p
}

// eventually polls f every 100 ms until it returns "", failing after timeout.
func (v *vm) eventually(timeout time.Duration, what string, f func() string) time.Duration {
	v.t.Helper()
	start := time.Now()
	last := ""
	for time.Since(start) < timeout {
		if last = f(); last == "" {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	journal, _, _ := v.try("journalctl -u onramp --no-pager -n 30")
	v.t.Fatalf("%s: not within %s: %s\njournal:\n%s", what, timeout, last, journal)
	return 0
}

func (v *vm) waitActive(timeout time.Duration, what string) time.Duration {
	v.t.Helper()
	return v.eventually(timeout, what, func() string {
		if p := v.unit(); p["ActiveState"] != "active" || p["SubState"] != "running" {
			return fmt.Sprint(p)
		}
		return ""
	})
}

// digMesh asks the agent's listener directly for the mesh name.
func (v *vm) digMesh() string {
	out, _, _ := v.try("dig +short +time=2 +tries=1 @127.0.0.1 -p 15053 " + meshName + " A")
	return strings.TrimSpace(out)
}

// entry is a WorkloadEntry as the control plane's debug endpoint lists it.
type entry struct {
	Metadata struct{ Name, Namespace string }
	Spec     struct{ Address string }
}

// workloadEntry returns the name of the VM's WorkloadEntry, or "".
func (v *vm) workloadEntry() string {
	v.t.Helper()
	code, body, err := harness.HTTPGet(v.ctx, v.m.Peer.DialContext, "http://"+v.cp.DebugAddr()+"/debug/workloadentries")
	if err != nil || code != 200 {
		v.t.Fatalf("workload entries: %d %v", code, err)
	}
	var list []entry
	if err := json.Unmarshal(body, &list); err != nil {
		v.t.Fatalf("workload entries: %v: %s", err, body)
	}
	for _, e := range list {
		if e.Spec.Address == v.m.Addr.String() {
			return e.Metadata.Namespace + "/" + e.Metadata.Name
		}
	}
	return ""
}

// waitEntry waits until the control plane lists the VM's WorkloadEntry (READY
// means DNS serves, which may come before the registration) and returns it.
func (v *vm) waitEntry() string {
	v.t.Helper()
	we := ""
	took := v.eventually(15*time.Second, "WorkloadEntry registered", func() string {
		if we = v.workloadEntry(); we == "" {
			return "not listed by the control plane"
		}
		return ""
	})
	v.t.Logf("WorkloadEntry %s (listed %v after the check began)", we, took.Round(10*time.Millisecond))
	return we
}

// perf is what dnsperf reported.
type perf struct {
	Sent, Completed, Lost int
	Codes                 string
	Raw                   string
}

var (
	reSent  = regexp.MustCompile(`Queries sent:\s+(\d+)`)
	reDone  = regexp.MustCompile(`Queries completed:\s+(\d+)`)
	reLost  = regexp.MustCompile(`Queries lost:\s+(\d+)`)
	reCodes = regexp.MustCompile(`Response codes:\s+(.*)`)
)

// loadDuring runs a bounded dnsperf of mesh queries (10 s at 300 qps,
// 3 s timeout) against the agent's listener and runs action 2 s into it.
func (v *vm) loadDuring(action string) perf {
	v.t.Helper()
	script := fmt.Sprintf(`printf '%s A\n' > /tmp/q
dnsperf -s 127.0.0.1 -p 15053 -d /tmp/q -l 10 -Q 300 -t 3 > /tmp/perf.out 2>&1 & p=$!
sleep 2
%s
wait $p
cat /tmp/perf.out`, meshName, action)
	out := v.sh(script)
	p := perf{Raw: out}
	atoi := func(re *regexp.Regexp) int {
		if m := re.FindStringSubmatch(out); m != nil {
			n, _ := strconv.Atoi(m[1])
			return n
		}
		return -1
	}
	p.Sent, p.Completed, p.Lost = atoi(reSent), atoi(reDone), atoi(reLost)
	if m := reCodes.FindStringSubmatch(out); m != nil {
		p.Codes = strings.TrimSpace(m[1])
	}
	if p.Sent <= 0 {
		v.t.Fatalf("dnsperf did not run:\n%s", out)
	}
	return p
}

// snapshotScript lists what a package could leave behind: every file with
// its mode and owner (outside the kernel's, the package managers' and the
// logs' own trees), the onramp user and group, the nftables ruleset,
// resolved's state, /etc/hosts and onramp's unit files.
const snapshotScript = `find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp -o -path /var/tmp \
  -o -path /var/log -o -path /var/cache -o -path /var/lib/apt -o -path /var/lib/dpkg -o -path /var/lib/rpm \
  -o -path /var/lib/systemd -o -path /root -o -path /dist \) -prune -o -printf '%p %M %u:%g\n' \
  | grep -v -E '^/etc/(passwd|group|shadow|gshadow|subuid|subgid)- ' | sort
echo '== user'; getent passwd onramp; getent group onramp
echo '== nft'; nft list ruleset
echo '== hosts'; cat /etc/hosts
echo '== resolved'; resolvectl status --no-pager 2>/dev/null | grep -v -E 'Current DNS Server|Current Scopes'
echo '== /run/systemd/resolve/netif'; ls /run/systemd/resolve/netif 2>/dev/null
echo '== units'; ls /run/systemd/system /etc/systemd/system/*.wants 2>/dev/null | grep onramp
true`

// diffLines returns the lines only in a and only in b.
func diffLines(a, b string) (onlyA, onlyB []string) {
	count := map[string]int{}
	for _, l := range strings.Split(a, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(b, "\n") {
		count[l]--
	}
	for l, n := range count {
		switch {
		case n > 0:
			onlyA = append(onlyA, l)
		case n < 0:
			onlyB = append(onlyB, l)
		}
	}
	sort.Strings(onlyA)
	sort.Strings(onlyB)
	return
}

// hasRedirect reports whether this onramp has the resolver redirect
// (`onramp redirect`), which the getent checks need.
func hasRedirect(v *vm) bool {
	_, _, err := v.try("onramp help redirect") // an unknown help topic exits 2
	return err == nil
}
