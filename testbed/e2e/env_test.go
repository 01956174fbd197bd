// Package e2e runs the agent against the testbed control plane as real
// processes over real TLS and gRPC: the control plane in one network
// namespace, the VM in another, dig and dnsperf as clients.
package e2e

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/onramp-mesh/onramp/agent/status"
	"github.com/onramp-mesh/onramp/testbed/demo"
	"github.com/onramp-mesh/onramp/testbed/harness"
	"github.com/onramp-mesh/onramp/testbed/netns"
)

var bin harness.Binaries

func TestMain(m *testing.M) {
	if netns.Available() == nil {
		repo, err := harness.RepoRoot()
		if err == nil {
			dir, _ := os.MkdirTemp("", "onramp-e2e-bin-")
			bin, err = harness.Build(context.Background(), repo, dir)
			defer os.RemoveAll(dir)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// testMesh is the mesh every test starts from.
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
  probe:
    periodSeconds: 1
    successThreshold: 1
    failureThreshold: 1
    tcpSocket: {port: 8080}
`,
}

// env is a control plane host and a VM host joined by a veth link.
type env struct {
	t          *testing.T
	ctx        context.Context
	cpNS, vmNS *netns.NS
	cp         *harness.ControlPlane
	work, mesh string
}

func newEnv(t *testing.T, grace time.Duration) *env {
	t.Helper()
	if err := netns.Available(); err != nil {
		t.Skip(err)
	}
	if _, err := os.Stat("/usr/bin/dig"); err != nil {
		t.Skip("dig is not installed (apt-get install bind9-dnsutils)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, work: t.TempDir()}
	var err error
	if e.cpNS, err = netns.New(netns.UniqueName("ecp")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.cpNS.Close() })
	if e.vmNS, err = netns.New(netns.UniqueName("evm")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.vmNS.Close() })
	if err := netns.Connect(e.cpNS, prefix(demo.ControlPlaneIP), e.vmNS, prefix(demo.VMIP)); err != nil {
		t.Fatal(err)
	}
	// The VM's own resolv.conf names nothing that answers: mesh names must come from the agent.
	if err := e.vmNS.SetResolvConf("nameserver 10.250.0.1\nsearch vm.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"); err != nil {
		t.Fatal(err)
	}
	e.mesh = filepath.Join(e.work, "mesh")
	os.MkdirAll(e.mesh, 0o755)
	for name, body := range testMesh {
		e.writeMesh(name, body)
	}
	e.cp, err = harness.StartControlPlane(ctx, bin, e.cpNS, demo.ControlPlaneIP, e.mesh, filepath.Join(e.work, "cp-state"), grace, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.cp.Stop()
		if t.Failed() {
			t.Logf("control plane log:\n%s", harness.Tail(e.cp.Output(), 30))
		}
	})
	return e
}

func (e *env) writeMesh(name, body string) {
	e.t.Helper()
	// Write then rename, as a config management tool would.
	tmp := filepath.Join(e.mesh, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(e.mesh, name)); err != nil {
		e.t.Fatal(err)
	}
}

// bundle mints a bundle for vm/vm-group into a fresh directory.
func (e *env) bundle(o harness.BundleOptions) string {
	e.t.Helper()
	if o.Group == "" {
		o.Group, o.Namespace, o.ServiceAccount = "vm-group", "vm", "vm-sa"
	}
	if !o.VMIP.IsValid() {
		o.VMIP = demo.VMIP
	}
	dir, _ := os.MkdirTemp(e.work, "bundle-")
	if err := e.cp.MintBundle(e.ctx, dir, o); err != nil {
		e.t.Fatal(err)
	}
	return dir
}

// agent starts `onramp run --bundle DIR [extra...]` on the VM with its state in state.
func (e *env) agent(bundleDir, state string, extra ...string) *harness.Agent {
	e.t.Helper()
	args := append([]string{"--bundle", bundleDir, "--log-level", "debug"}, extra...)
	a, err := harness.StartAgent(bin, e.vmNS, "127.0.0.1:15053", "127.0.0.1:15020", state, nil, args...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		a.Stop()
		if e.t.Failed() {
			e.t.Logf("agent log:\n%s", harness.Tail(a.Output(), 40))
		}
	})
	return a
}

func (e *env) dig(name, qtype string) demo.DigResult {
	e.t.Helper()
	r, err := demo.Dig(e.ctx, e.vmNS, "127.0.0.1", "15053", name, qtype)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) status(a *harness.Agent) status.Report {
	e.t.Helper()
	rep, err := e.tryStatus(a)
	if err != nil {
		e.t.Fatal(err)
	}
	return rep
}

// tryStatus reads the agent's report; the agent may not be listening yet.
func (e *env) tryStatus(a *harness.Agent) (status.Report, error) {
	var rep status.Report
	code, body, err := harness.HTTPGet(e.ctx, e.vmNS.DialContext, "http://"+a.StatusAddr+"/debug/status")
	if err != nil || code != 200 {
		return rep, fmt.Errorf("agent status: %d %v", code, err)
	}
	return rep, json.Unmarshal(body, &rep)
}

// entry is a WorkloadEntry as the control plane's debug endpoint lists it.
type entry struct {
	Metadata struct {
		Name, Namespace string
		Labels          map[string]string
		Annotations     map[string]string
	}
	Spec struct {
		Address        string
		ServiceAccount string
	}
	Status struct {
		Conditions []struct{ Type, Status, Message string }
	}
}

func (e *env) entries() []entry {
	e.t.Helper()
	code, body, err := harness.HTTPGet(e.ctx, e.cpNS.DialContext, "http://"+e.cp.DebugAddr()+"/debug/workloadentries")
	if err != nil || code != 200 {
		e.t.Fatalf("workload entries: %d %v", code, err)
	}
	var list []entry
	if err := json.Unmarshal(body, &list); err != nil {
		e.t.Fatalf("workload entries: %v: %s", err, body)
	}
	return list
}

func (e *env) post(path string) {
	e.t.Helper()
	req := "http://" + e.cp.DebugAddr() + path
	if err := postVia(e.ctx, e.cpNS, req); err != nil {
		e.t.Fatal(err)
	}
}

// eventually polls f every 50 ms until it returns "" (no complaint), failing
// with its last complaint after timeout. It returns how long it took.
func (e *env) eventually(timeout time.Duration, what string, f func() string) time.Duration {
	e.t.Helper()
	start := time.Now()
	last := ""
	for time.Since(start) < timeout {
		if last = f(); last == "" {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("%s: not within %s: %s", what, timeout, last)
	return 0
}

func leafURI(t *testing.T, stateDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stateDir, "cert-chain.pem"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("cert-chain.pem holds no PEM")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.URIs) != 1 {
		t.Fatalf("leaf has %d URI SANs", len(c.URIs))
	}
	return c.URIs[0].String()
}
