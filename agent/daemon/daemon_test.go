package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/onramp-mesh/onramp/agent/config"
	"github.com/onramp-mesh/onramp/agent/nametable"
	"github.com/onramp-mesh/onramp/agent/resolvconf"
	"github.com/onramp-mesh/onramp/agent/status"
	"github.com/onramp-mesh/onramp/agent/tablestate"
)

const productpage = `{"table": {"productpage.ns1.svc.cluster.local": {"ips": ["10.96.0.12"], "registry": "Kubernetes", "shortname": "productpage", "namespace": "ns1"}}}`

// testConfig is a static-table agent on ephemeral loopback ports.
func testConfig(t *testing.T, table string) (config.Config, hostEnv) {
	t.Helper()
	dir := t.TempDir()
	env := hostEnv{resolver: resolvconf.Paths{ResolvConf: filepath.Join(dir, "resolv.conf"), ResolvedUpstream: filepath.Join(dir, "absent")}, redirectHost: bareHost{}}
	writeFile(t, env.resolver.ResolvConf, "nameserver 192.0.2.53\nsearch a.example\n")
	cfg := config.Default()
	cfg.NameTable = filepath.Join(dir, "table.json")
	writeFile(t, cfg.NameTable, table)
	cfg.StateDir = dir
	cfg.DNS.Listen = []string{"127.0.0.1:0"}
	cfg.DNS.Namespace = "ns1"
	cfg.Status.Listen = "127.0.0.1:0"
	cfg.Log.Level = "error"
	return cfg, env
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path+".new", []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// upstream is a loopback DNS server answering every A query with 192.0.2.7.
func upstream(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A 192.0.2.7")
		m.Answer = []dns.RR{rr}
		w.WriteMsg(m)
	})}
	go up.ActivateAndServe()
	t.Cleanup(func() { up.Shutdown() })
	return pc.LocalAddr().String()
}

// start assembles the agent (all sockets open) and serves it until the test ends.
func start(t *testing.T, cfg config.Config, env hostEnv) *agent {
	t.Helper()
	return startLogged(t, cfg, env, hclog.NewNullLogger())
}

func startLogged(t *testing.T, cfg config.Config, env hostEnv, log hclog.Logger) *agent {
	t.Helper()
	a, err := assemble(cfg, "test", env, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return a
}

func ask(t *testing.T, server, name string) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, server)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestStaticTable runs the agent in-process on a static table: mesh names
// from the table, a forwarded name from a loopback upstream, the search list
// followed, and the status endpoints.
func TestStaticTable(t *testing.T) {
	cfg, env := testConfig(t, productpage)
	up := upstream(t)
	cfg.DNS.Upstreams = []string{up}
	a := start(t, cfg, env)
	installs := make(chan *nametable.Index, 10)
	t.Cleanup(a.tables.OnInstall(func(ix *nametable.Index) { installs <- ix }))
	<-installs // the table in use
	server, statusURL := a.dns.Addrs()[0], "http://"+a.status.Addr()

	// The sockets were open before serving started: no polling needed.
	if code, body := get(t, statusURL+"/healthz/ready"); code != 200 || body != "ready\n" {
		t.Fatalf("not ready: %d %q", code, body)
	}
	if r := ask(t, server, "productpage."); len(r.Answer) != 1 || !r.Authoritative || r.Answer[0].(*dns.A).A.String() != "10.96.0.12" {
		t.Errorf("short name in the agent's namespace: %v", r)
	}
	if r := ask(t, server, "www.example.org."); len(r.Answer) != 1 || r.Authoritative || r.Answer[0].(*dns.A).A.String() != "192.0.2.7" {
		t.Errorf("forwarded: %v", r)
	}
	// The search list is followed: the one-round-trip CNAME moves with it.
	if r := ask(t, server, "productpage.ns1.svc.cluster.local.a.example."); len(r.Answer) != 2 || r.Answer[0].Header().Rrtype != dns.TypeCNAME {
		t.Errorf("search expansion for a.example: %v", r)
	}
	writeFile(t, env.resolver.ResolvConf, "nameserver 192.0.2.53\nsearch b.example\n")
	select {
	case <-installs:
	case <-time.After(10 * time.Second):
		t.Fatal("search list change not followed within 10s")
	}
	if r := ask(t, server, "productpage.ns1.svc.cluster.local.b.example."); len(r.Answer) != 2 || r.Answer[0].Header().Rrtype != dns.TypeCNAME {
		t.Errorf("search expansion for b.example: %v", r)
	}
	if r := ask(t, server, "productpage.ns1.svc.cluster.local.a.example."); r.Authoritative {
		t.Errorf("the old search domain still expands: %v", r)
	}

	rep, err := status.Fetch(context.Background(), a.status.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mode != "static" || rep.DataPlane != "none" || rep.NameTable.Source != "file" || rep.NameTable.Hosts != 1 || rep.NameTable.Search[0] != "b.example" ||
		len(rep.DNS.Listen) != 1 || rep.DNS.Listen[0] != server || rep.DNS.SocketActivated || len(rep.DNS.Upstreams) != 1 || rep.DNS.Upstreams[0] != up {
		t.Errorf("report = %+v", rep)
	}
	_, body := get(t, statusURL+"/debug/nametable")
	if !strings.Contains(body, `"name": "productpage.ns1.svc.cluster.local."`) {
		t.Errorf("/debug/nametable: %s", body)
	}
	_, body = get(t, statusURL+"/debug/config")
	for _, want := range []string{`"redirect": {`, `"mode": "auto"`, `"dataPlane": "none"`} {
		if !strings.Contains(body, want) {
			t.Errorf("/debug/config lacks %s:\n%s", want, body)
		}
	}
	_, metrics := get(t, statusURL+"/metrics")
	count := func(re string) int {
		m := regexp.MustCompile(re + ` (\d+)`).FindStringSubmatch(metrics)
		if m == nil {
			t.Fatalf("no %s in the metrics:\n%s", re, metrics)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	// Mesh: productpage., both expansions; upstream: www.example.org and the stale expansion.
	if mesh, up := count(`onramp_dns_queries_total\{source="mesh"\}`), count(`onramp_dns_queries_total\{source="upstream"\}`); mesh != 3 || up != 2 {
		t.Errorf("mesh %d, upstream %d answers counted:\n%s", mesh, up, metrics)
	}
	if n := count(`onramp_nametable_installs_total`); n != 2 {
		t.Errorf("%d installs counted, want 2 (the file, the new search list)", n)
	}
}

// TestSocketActivation serves the sockets systemd would pass, not dns.listen,
// and says so in the report.
func TestSocketActivation(t *testing.T) {
	cfg, env := testConfig(t, productpage)
	cfg.DNS.Listen = []string{"127.0.0.1:9"} // overridden: never opened
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	env.activated = func() ([]net.PacketConn, []net.Listener, error) { return []net.PacketConn{pc}, nil, nil }
	var logged strings.Builder
	a := startLogged(t, cfg, env, hclog.New(&hclog.LoggerOptions{Output: &syncWriter{w: &logged}, Level: hclog.Warn}))
	if !strings.Contains(logged.String(), "socket activation overrides dns.listen") || !strings.Contains(logged.String(), pc.LocalAddr().String()) {
		t.Errorf("no warning naming the served socket: %q", logged.String())
	}
	rep := a.report()
	if !rep.DNS.SocketActivated || len(rep.DNS.Listen) != 1 || rep.DNS.Listen[0] != pc.LocalAddr().String() {
		t.Errorf("DNS report %+v, want the activated socket %s", rep.DNS, pc.LocalAddr())
	}
	if r := ask(t, pc.LocalAddr().String(), "productpage."); len(r.Answer) != 1 {
		t.Errorf("activated socket: %v", r)
	}
}

func TestBadTableFileIsAClearError(t *testing.T) {
	// A table file that does not decode is an error naming the file. (One
	// that decodes is served, what cannot be served of it skipped.)
	cfg, env := testConfig(t, `{"table": {"bad.example": {"ips": 10}}}`)
	cfg.Status.Listen = "off"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := run(ctx, cfg, "test", env)
	if err == nil || !strings.Contains(err.Error(), "table.json") {
		t.Fatalf("want an error naming the file, got %v", err)
	}
}

// reserve binds addr's port for UDP and TCP with SO_REUSEPORT, as the proxy
// does, so that the proxy can bind it too while the test knows the port.
func reserve(t *testing.T) (string, func()) {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) })
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := lc.Listen(context.Background(), "tcp4", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	return pc.LocalAddr().String(), func() { pc.Close(); l.Close() }
}

// componentGoroutines returns the stacks of goroutines running the agent's
// components (none may be left once Run returned).
func componentGoroutines() string {
	// A goroutine that has signalled its WaitGroup may not have exited yet;
	// let such goroutines finish (a bounded number of yields, no timing).
	var left string
	for range 1000 {
		if left = componentStacks(); left == "" {
			return ""
		}
		runtime.Gosched()
	}
	return left
}

func componentStacks() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var left []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "testing.tRunner") {
			continue // a test's own goroutine
		}
		for _, pkg := range []string{"agent/dnsproxy.", "agent/status.", "agent/resolvconf.", "agent/xds.", "agent/daemon."} {
			if strings.Contains(g, pkg) {
				left = append(left, g)
				break
			}
		}
	}
	return strings.Join(left, "\n\n")
}

// syncWriter serialises writes of the logger.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func openSockets(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(target, "socket:") {
			n++
		}
	}
	return n
}

// TestStatusAddressInUse: the status port is taken, so Run fails before
// starting anything, and closes the DNS sockets it had opened.
func TestStatusAddressInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dnsAddr, release := reserve(t)
	cfg, env := testConfig(t, productpage)
	cfg.DNS.Listen = []string{dnsAddr}
	cfg.Status.Listen = taken.Addr().String()

	sockets := openSockets(t)
	err = run(context.Background(), cfg, "test", env)
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "status.listen") {
		t.Fatalf("want EADDRINUSE naming status.listen, got %v", err)
	}
	if n := openSockets(t); n != sockets {
		t.Errorf("%d sockets open after the failed Run, %d before", n, sockets)
	}
	if g := componentGoroutines(); g != "" {
		t.Errorf("goroutines of the agent's components left after the failed Run:\n%s", g)
	}
	release()
	if held := listening(t, dnsAddr); len(held) > 0 {
		t.Errorf("DNS port still held after the failed Run: %v", held)
	}
}

// listening returns the UDP sockets and TCP listeners bound to addr's port
// on the host (/proc/net), whoever holds them: unlike a test bind, client
// connections that happen to use the port as their own do not count.
func listening(t *testing.T, addr string) []string {
	t.Helper()
	ap := netip.MustParseAddrPort(addr)
	port := fmt.Sprintf(":%04X", ap.Port())
	var held []string
	for _, f := range []struct{ file, state string }{{"/proc/net/udp", ""}, {"/proc/net/tcp", "0A"}} {
		data, err := os.ReadFile(f.file)
		if err != nil {
			t.Skipf("cannot read %s: %v", f.file, err)
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) > 3 && strings.HasSuffix(fields[1], port) && (f.state == "" || fields[3] == f.state) {
				held = append(held, f.file+": "+line)
			}
		}
	}
	return held
}

// TestComponentFailureStopsAll: a component failing once started stops the
// others, and Run returns its error after all of them returned.
func TestComponentFailureStopsAll(t *testing.T) {
	cfg, env := testConfig(t, productpage)
	a, err := assemble(cfg, "test", env, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	statusAddr, dnsAddr := a.status.Addr(), a.dns.Addrs()[0]
	boom := errors.New("boom")
	err = a.serveWith(context.Background(), append(a.services(), service{"failing", func(context.Context) error { return boom }, false}))
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "failing: boom") {
		t.Fatalf("want the failing component's error, got %v", err)
	}
	if g := componentGoroutines(); g != "" {
		t.Errorf("goroutines of the agent's components left after Run returned:\n%s", g)
	}
	if _, err := net.Dial("tcp", statusAddr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("status after Run returned: %v, want the connection refused", err)
	}
	if held := listening(t, dnsAddr); len(held) > 0 {
		t.Errorf("DNS port still held after Run returned: %v", held)
	}
}

func TestNotConfigured(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name         string
		bundle, tbl  string
		want         bool
		wantContains string
	}{
		{"neither", "", "", true, "neither bundle: nor nameTable:"},
		{"empty bundle dir", dir, "", true, "no onboarding bundle in " + dir},
		{"missing bundle dir", filepath.Join(dir, "absent"), "", true, "cluster.env is missing"},
		{"table", "", filepath.Join(dir, "t.json"), false, ""},
	} {
		cfg := config.Default()
		cfg.Bundle, cfg.NameTable = tc.bundle, tc.tbl
		err := checkConfigured(cfg)
		if got := errors.Is(err, ErrNotConfigured); got != tc.want {
			t.Errorf("%s: errors.Is(%v, ErrNotConfigured) = %v, want %v", tc.name, err, got, tc.want)
			continue
		}
		if tc.want && (!strings.Contains(err.Error(), tc.wantContains) || !strings.Contains(err.Error(), "onramp bootstrap --bundle DIR")) {
			t.Errorf("%s: %q lacks %q or the bootstrap hint", tc.name, err, tc.wantContains)
		}
	}
}

// bareHost is a host with neither systemd-resolved nor nftables: the agent
// under test never touches the machine's resolver or ruleset.
type bareHost struct{}

func (bareHost) ResolvedOnBus() (bool, error)           { return false, nil }
func (bareHost) Nameservers() ([]netip.AddrPort, error) { return nil, nil }
func (bareHost) Nftables() error                        { return errors.New("nftables: not in tests") }

// TestNotifyServing: READY=1 only with the first table, STATUS= before it
// and with every table.
func TestNotifyServing(t *testing.T) {
	tables := tablestate.New(tablestate.Config{
		Host:    nametable.HostContext{Namespace: "ns1", ClusterDomain: nametable.DefaultClusterDomain, Ndots: 1},
		Log:     hclog.NewNullLogger(),
		Release: func() {},
	})
	var sent []string
	line := func(ix *nametable.Index) string {
		if ix == nil {
			return "waiting"
		}
		return fmt.Sprintf("%d names", ix.Len())
	}
	unsubscribe := notifyServing(tables, line, func(s string) error { sent = append(sent, s); return nil })
	defer unsubscribe()
	if want := []string{"STATUS=waiting"}; !slices.Equal(sent, want) {
		t.Fatalf("before a table: %q, want %q", sent, want)
	}
	path := filepath.Join(t.TempDir(), "table.json")
	writeFile(t, path, productpage)
	for range 2 {
		if err := tables.InstallFile(path); err != nil {
			t.Fatal(err)
		}
	}
	if len(sent) != 4 || sent[2] != "READY=1" || !strings.HasPrefix(sent[1], "STATUS=") || !strings.HasPrefix(sent[3], "STATUS=") || sent[1] == "STATUS=waiting" {
		t.Errorf("after two tables: %q, want STATUS=waiting, STATUS=N names, READY=1, STATUS=N names", sent)
	}
}
