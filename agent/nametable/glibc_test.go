package nametable

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// TestGlibcTwoQueries serves the index on 127.0.0.1:53 inside a network
// namespace whose resolv.conf has ndots:5 and three search domains, and
// checks that glibc (getent ahosts) resolves productpage.ns1.svc.cluster.local
// in exactly two queries (A and AAAA, first search domain) thanks to the
// one-round-trip CNAME. Needs root, ip(8) and getent(1).
func TestGlibcTwoQueries(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	for _, tool := range []string{"ip", "getent"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	ns := fmt.Sprintf("onramp-nt-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", ns).Run() })
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}
	// ip netns exec bind-mounts this over /etc/resolv.conf inside ns only.
	etc := filepath.Join("/etc/netns", ns)
	_, statErr := os.Stat("/etc/netns")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.RemoveAll(etc)
		if os.IsNotExist(statErr) {
			os.Remove("/etc/netns") // only if this test created it and it is empty
		}
	})
	search := []string{"ns1.svc.cluster.local", "svc.cluster.local", "cluster.local"}
	rc := "nameserver 127.0.0.1\nsearch " + strings.Join(search, " ") + "\noptions ndots:5\n"
	if err := os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}

	ix := mustBuild(t, testTable(), HostContext{Namespace: "ns1", Search: search, Ndots: 5}, Options{})
	pc, err := listenInNetns(ns, "127.0.0.1:53")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	go func() {
		buf := make([]byte, 1500)
		out := make([]byte, 0, 1500)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			m := new(dns.Msg)
			if m.Unpack(buf[:n]) != nil || len(m.Question) != 1 {
				continue
			}
			q := m.Question[0]
			mu.Lock()
			seen = append(seen, dns.TypeToString[q.Qtype]+" "+q.Name)
			mu.Unlock()
			qname := packName(t, strings.ToLower(q.Name))
			qend := headerLen + len(qname) + 4
			resp, ok := ix.AppendResponse(out[:0], buf[:n], qend, qname, q.Qtype)
			if !ok {
				r := new(dns.Msg)
				r.SetRcode(m, dns.RcodeNameError)
				resp, _ = r.Pack()
			}
			pc.WriteTo(resp, addr)
		}
	}()
	t.Cleanup(func() { pc.Close() })

	cmd := exec.Command("ip", "netns", "exec", ns, "getent", "ahosts", "productpage.ns1.svc.cluster.local")
	done := make(chan struct{})
	var out []byte
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("getent did not finish")
	}
	if err != nil {
		t.Fatalf("getent: %v: %s", err, out)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("queries seen: %q", seen)
	if !strings.Contains(string(out), "10.96.0.1") || !strings.Contains(string(out), "fd00::1") {
		t.Fatalf("getent output lacks the addresses:\n%s", out)
	}
	want := []string{"A productpage.ns1.svc.cluster.local.ns1.svc.cluster.local.", "AAAA productpage.ns1.svc.cluster.local.ns1.svc.cluster.local."}
	got := slices.Sorted(slices.Values(seen))
	if !slices.Equal(got, want) {
		t.Fatalf("glibc sent %d queries %q, want exactly %q", len(seen), seen, want)
	}
}

// listenInNetns opens a UDP socket inside the named network namespace. The
// socket stays in that namespace once the thread switches back.
func listenInNetns(ns, addr string) (net.PacketConn, error) {
	type result struct {
		pc  net.PacketConn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			ch <- result{nil, err}
			runtime.UnlockOSThread()
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			ch <- result{nil, err}
			runtime.UnlockOSThread()
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{nil, fmt.Errorf("setns %s: %w", ns, err)}
			runtime.UnlockOSThread()
			return
		}
		pc, lerr := net.ListenPacket("udp", addr)
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// The thread is stuck in ns: leave it locked so it exits
			// with this goroutine instead of serving others.
			ch <- result{pc, lerr}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{pc, lerr}
	}()
	r := <-ch
	return r.pc, r.err
}
