// Package demo runs the seed scenarios end to end, as `make demo` shows them:
// the testbed control plane in one network namespace, a "VM" in another
// running the real agent from a freshly minted bundle, and the seed names
// resolved through the agent with dig, checked, and printed as a table.
package demo

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/miekg/dns"

	"github.com/onramp-mesh/onramp/testbed/harness"
	"github.com/onramp-mesh/onramp/testbed/netns"
)

// sampleMesh holds the seed articles' services as Istio YAML.
//
//go:embed mesh/*.yaml
var sampleMesh embed.FS

// SampleMesh is the directory of Istio YAML the demo serves by default.
var SampleMesh = mustSub(sampleMesh, "mesh")

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

// Addresses of the demo's two simulated hosts.
var (
	ControlPlaneIP = netip.MustParseAddr("10.250.0.1")
	VMIP           = netip.MustParseAddr("10.250.0.2")
)

// Options configure a demo run.
type Options struct {
	Bin     harness.Binaries
	MeshDir string    // Istio YAML of the mesh; empty: the embedded sample mesh (mesh/)
	Out     io.Writer // the report
	Verbose bool      // echo the processes' logs
}

// Scenario is one name the demo resolves through the agent.
type Scenario struct {
	Story  string // where the name comes from
	Name   string
	Type   string // A, AAAA, PTR
	Source string // "mesh" (answered from the name table) or "upstream"
	// Check says what is wrong with the answer, or "".
	Check func(DigResult) string
}

// Run runs the demo and returns an error when any scenario fails.
func Run(ctx context.Context, o Options) error {
	if err := netns.Available(); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	work, err := os.MkdirTemp("", "onramp-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	var echo io.Writer
	if o.Verbose {
		echo = os.Stderr
	}
	step := func(format string, args ...any) { fmt.Fprintf(o.Out, "==> "+format+"\n", args...) }

	step("creating two hosts: control plane %s, VM %s (network namespaces)", ControlPlaneIP, VMIP)
	cpNS, err := netns.New(netns.UniqueName("orcp"))
	if err != nil {
		return err
	}
	defer cpNS.Close()
	vmNS, err := netns.New(netns.UniqueName("orvm"))
	if err != nil {
		return err
	}
	defer vmNS.Close()
	if err := netns.Connect(cpNS, netip.PrefixFrom(ControlPlaneIP, 24), vmNS, netip.PrefixFrom(VMIP, 24)); err != nil {
		return err
	}

	// The site's own DNS server, on the control-plane host: what the VM's
	// resolv.conf names, and where non-mesh names go.
	site, err := StartSiteDNS(cpNS, ControlPlaneIP)
	if err != nil {
		return err
	}
	defer site.Shutdown()
	if err := vmNS.SetResolvConf(fmt.Sprintf("nameserver %s\nsearch vm.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n", ControlPlaneIP)); err != nil {
		return err
	}

	meshDir := filepath.Join(work, "mesh")
	var src fs.FS = SampleMesh
	from := "the embedded sample mesh"
	if o.MeshDir != "" {
		src, from = os.DirFS(o.MeshDir), o.MeshDir
	}
	if err := os.CopyFS(meshDir, src); err != nil {
		return err
	}
	step("starting the testbed control plane (CA + ADS/NDS on :15012 TLS) with %s", from)
	cp, err := harness.StartControlPlane(ctx, o.Bin, cpNS, ControlPlaneIP, meshDir, filepath.Join(work, "cp-state"), 10*time.Second, echo)
	if err != nil {
		return err
	}
	defer cp.Stop()

	bundleDir := filepath.Join(work, "bundle")
	step("minting an onboarding bundle for WorkloadGroup vm/vm-group (as istioctl x workload entry configure)")
	if err := cp.MintBundle(ctx, bundleDir, harness.BundleOptions{Group: "vm-group", Namespace: "vm", ServiceAccount: "vm-sa", VMIP: VMIP}); err != nil {
		return err
	}

	// The seeds' answers (istio.io -> 240.240.0.1) need a proxy on the VM
	// that carries traffic to auto-allocated VIPs: dataPlane proxy.
	step("starting the agent on the VM: onramp run --bundle %s --data-plane proxy (a proxy on the VM carries the VIPs)", "bundle/")
	vmState := filepath.Join(work, "vm-state")
	agent, err := harness.StartAgent(o.Bin, vmNS, "127.0.0.1:15053", "127.0.0.1:15020", vmState, echo, "--bundle", bundleDir, "--data-plane", "proxy")
	if err != nil {
		return err
	}
	defer agent.Stop()
	if err := agent.WaitReady(ctx, 30*time.Second); err != nil {
		return err
	}

	step("resolving the seed scenarios through the agent (dig @127.0.0.1 -p 15053 on the VM)")
	failed := runScenarios(ctx, o.Out, vmNS, Scenarios())

	step("the WorkloadEntry the control plane auto-registered for the VM, with the health the agent reported")
	if err := printEntries(ctx, o.Out, cpNS, cp.DebugAddr()); err != nil {
		return err
	}
	step("onramp status on the VM")
	st, _ := vmNS.Command(ctx, o.Bin.Onramp, "status").CombinedOutput()
	o.Out.Write(st)

	// The same VM without a proxy: a VIP would lead nowhere, so names the
	// mesh knows only by VIPs go to the site's DNS as if the mesh did not
	// know them; names with real addresses still come from the mesh.
	agent.Stop()
	step("restarting the agent on the same VM without a data-plane proxy: onramp run --bundle %s --data-plane none", "bundle/")
	agent, err = harness.StartAgent(o.Bin, vmNS, "127.0.0.1:15053", "127.0.0.1:15020", vmState, echo, "--bundle", bundleDir, "--data-plane", "none")
	if err != nil {
		return err
	}
	defer agent.Stop()
	if err := agent.WaitReady(ctx, 30*time.Second); err != nil {
		return err
	}
	before := site.Queries("istio.io")
	step("resolving without a proxy: VIP-only names answer the site's address")
	failed += runScenarios(ctx, o.Out, vmNS, NoProxyScenarios())
	if n := site.Queries("istio.io") - before; n < 1 {
		fmt.Fprintf(o.Out, "FAIL: the site's DNS saw %d queries for istio.io, want at least 1\n", n)
		failed++
	} else {
		fmt.Fprintf(o.Out, "the site's DNS answered istio.io %d time(s); onramp cached the answer as usual\n", n)
	}
	step("onramp status on the VM (data plane none): the withheld names and their lookups")
	st, _ = vmNS.Command(ctx, o.Bin.Onramp, "status").CombinedOutput()
	o.Out.Write(st)

	step("tearing down")
	agent.Stop()
	cp.Stop()
	if failed > 0 {
		return fmt.Errorf("demo: %d scenario(s) failed", failed)
	}
	fmt.Fprintln(o.Out, "==> all scenarios passed")
	return nil
}

// runScenarios resolves each scenario on the VM, prints a table of the
// answers and returns how many failed.
func runScenarios(ctx context.Context, out io.Writer, vmNS *netns.NS, scenarios []Scenario) int {
	failed := 0
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTYPE\tANSWER\tSOURCE\tRESULT\tSTORY")
	for _, s := range scenarios {
		r, err := Dig(ctx, vmNS, "127.0.0.1", "15053", s.Name, s.Type)
		problem := ""
		if err != nil {
			problem = err.Error()
		} else if problem = s.Check(r); problem == "" {
			got := "upstream"
			if r.Authoritative {
				got = "mesh"
			}
			if got != s.Source {
				problem = "answered by " + got + ", want " + s.Source
			}
		}
		result := "PASS"
		if problem != "" {
			result = "FAIL: " + problem
			failed++
		}
		answer := strings.Join(r.Answers, ", ")
		if answer == "" {
			answer = "(" + r.Status + ", no records)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Type, answer, s.Source, result, s.Story)
	}
	tw.Flush()
	return failed
}

// printEntries prints the control plane's WorkloadEntries once the VM's
// health condition is there (the probe reports within a few seconds).
func printEntries(ctx context.Context, w io.Writer, ns *netns.NS, debugAddr string) error {
	var body []byte
	for deadline := time.Now().Add(15 * time.Second); ; {
		code, b, err := harness.HTTPGet(ctx, ns.DialContext, "http://"+debugAddr+"/debug/workloadentries")
		if err != nil || code != 200 {
			return fmt.Errorf("demo: list workload entries: %d %v", code, err)
		}
		body = b
		if strings.Contains(string(b), `"Healthy"`) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var pretty any
	if json.Unmarshal(body, &pretty) == nil {
		body, _ = json.MarshalIndent(pretty, "", "  ")
	}
	fmt.Fprintf(w, "%s\n", body)
	return nil
}

// SiteDNS is the site's own DNS server, on port 53 of the control-plane
// host: it answers www.example.org and istio.io with their real (public)
// addresses, every other name NXDOMAIN, and counts the queries per name.
type SiteDNS struct {
	srv *dns.Server
	mu  sync.Mutex
	n   map[string]int
}

// Site addresses, as the world outside the mesh knows them.
const (
	SiteWWW     = "192.0.2.80" // www.example.org
	SiteIstioIO = "192.0.2.31" // istio.io: the mesh has it only as an auto-allocated VIP
)

// StartSiteDNS serves the site's zone on ip:53 inside ns.
func StartSiteDNS(ns *netns.NS, ip netip.Addr) (*SiteDNS, error) {
	pc, err := ns.ListenPacket("udp", net.JoinHostPort(ip.String(), "53"))
	if err != nil {
		return nil, err
	}
	s := &SiteDNS{n: map[string]int{}}
	answers := map[string]string{"www.example.org.": SiteWWW, "istio.io.": SiteIstioIO}
	mux := dns.NewServeMux()
	mux.HandleFunc(".", func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		name := strings.ToLower(q.Question[0].Name)
		s.mu.Lock()
		s.n[name]++
		s.mu.Unlock()
		if ip, ok := answers[name]; !ok {
			m.Rcode = dns.RcodeNameError
		} else if q.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR(name + " 300 IN A " + ip)
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	})
	s.srv = &dns.Server{PacketConn: pc, Handler: mux}
	started := make(chan struct{})
	s.srv.NotifyStartedFunc = func() { close(started) }
	go s.srv.ActivateAndServe()
	<-started
	return s, nil
}

// Queries returns how many queries for name (any type, any case, trailing
// dot optional) the site's server has answered.
func (s *SiteDNS) Queries(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[dns.Fqdn(strings.ToLower(name))]
}

// Shutdown stops the server.
func (s *SiteDNS) Shutdown() { s.srv.Shutdown() }
