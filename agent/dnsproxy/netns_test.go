package dnsproxy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/onramp-mesh/onramp/agent/nametable"
	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
	"golang.org/x/sys/unix"
)

// needNetns skips unless the test runs as root with ip(8) and the given
// tools.
func needNetns(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// addNetns creates a network namespace with lo up and removes it at the end.
func addNetns(t *testing.T, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), rand.IntN(1e6))
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// inNetns runs fn on a thread switched into the namespace; sockets fn opens
// belong to it.
func inNetns(t *testing.T, name string, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := os.Open(filepath.Join("/run/netns", name))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatalf("enter netns %s: %v", name, err)
	}
	defer func() {
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			panic("cannot return to the original network namespace: " + err.Error())
		}
	}()
	fn()
}

func bookinfoIndex(t *testing.T) *nametable.Index {
	t.Helper()
	tbl := &ndspb.NameTable{Table: map[string]*ndspb.NameInfo{
		"productpage.ns1.svc.cluster.local": {Ips: []string{"10.96.0.10"}, Registry: ndspb.RegistryKubernetes, Shortname: "productpage", Namespace: "ns1"},
	}}
	ix, err := nametable.Build(tbl, nametable.HostContext{
		Namespace: "ns1", ClusterDomain: "cluster.local",
		Search: []string{"ns1.svc.cluster.local", "svc.cluster.local", "cluster.local"}, Ndots: 5,
	}, nametable.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// serveIn starts a proxy whose sockets live in namespace ns.
func serveIn(t *testing.T, ns string, listen string) (*Proxy, string) {
	t.Helper()
	p := newProxy(t, Config{Upstreams: []string{"192.0.2.1"}, Timeout: 200 * time.Millisecond})
	var pcs []net.PacketConn
	var ls []net.Listener
	var err error
	inNetns(t, ns, func() {
		pcs, ls, err = Listen([]string{listen})
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.ServeConns(ctx, pcs, ls) }()
	t.Cleanup(func() { cancel(); <-done })
	return p, pcs[0].LocalAddr().String()
}

// TestRefusedForNonLocalSource checks that the proxy is no open resolver:
// bound to a routable address, it refuses a client in another namespace
// and answers the host's own address.
func TestRefusedForNonLocalSource(t *testing.T) {
	needNetns(t, "dig")
	srv := addNetns(t, "dnsp-srv")
	cli := addNetns(t, "dnsp-cli")
	va, vb := fmt.Sprintf("dps%d", rand.IntN(1e6)), fmt.Sprintf("dpc%d", rand.IntN(1e6))
	run(t, "ip", "link", "add", va, "netns", srv, "type", "veth", "peer", "name", vb, "netns", cli)
	run(t, "ip", "-n", srv, "addr", "add", "10.253.7.1/24", "dev", va)
	run(t, "ip", "-n", cli, "addr", "add", "10.253.7.2/24", "dev", vb)
	run(t, "ip", "-n", srv, "link", "set", va, "up")
	run(t, "ip", "-n", cli, "link", "set", vb, "up")

	p, addr := serveIn(t, srv, "10.253.7.1:0")
	p.SetTable(bookinfoIndex(t))
	port := addr[strings.LastIndex(addr, ":")+1:]
	dig := func(ns string, extra ...string) string {
		args := append([]string{"ip", "netns", "exec", ns, "dig", "+tries=1", "+time=2", "@10.253.7.1", "-p", port}, extra...)
		return run(t, append(args, "productpage.ns1.svc.cluster.local")...)
	}
	for _, proto := range [][]string{nil, {"+tcp"}} {
		if out := dig(cli, proto...); !strings.Contains(out, "status: REFUSED") {
			t.Fatalf("query from another host %v: want REFUSED\n%s", proto, out)
		}
	}
	if p.metrics.refused.load() != 2 {
		t.Fatalf("refused counter %d, want 2", p.metrics.refused.load())
	}
	// The host's own interface address is allowed once it is known.
	inNetns(t, srv, func() {
		if err := localAddrs.refresh(); err != nil {
			t.Fatal(err)
		}
	})
	defer localAddrs.refresh()
	if out := dig(srv); !strings.Contains(out, "status: NOERROR") || !strings.Contains(out, "10.96.0.10") {
		t.Fatalf("query from the host's own address: want the mesh answer\n%s", out)
	}
}

// TestGlibcQueryCount checks that glibc, with Kubernetes' search list and
// ndots:5, resolves a mesh name in exactly two queries (A and AAAA) thanks
// to the one-round-trip search expansion.
func TestGlibcQueryCount(t *testing.T) {
	needNetns(t, "getent")
	ns := addNetns(t, "dnsp-glibc")
	dir := filepath.Join("/etc/netns", ns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	conf := "nameserver 127.0.0.1\nsearch ns1.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p, _ := serveIn(t, ns, "127.0.0.1:53")
	p.SetTable(bookinfoIndex(t))
	out := run(t, "ip", "netns", "exec", ns, "getent", "ahosts", "productpage.ns1.svc.cluster.local")
	if !strings.Contains(out, "10.96.0.10") {
		t.Fatalf("getent ahosts: want 10.96.0.10\n%s", out)
	}
	if n := p.Requests(); n != 2 {
		t.Fatalf("the proxy saw %d queries, want exactly 2 (A and AAAA)\n%s", n, out)
	}
}
