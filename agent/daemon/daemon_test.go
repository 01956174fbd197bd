package daemon

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/onramp-mesh/onramp/agent/config"
)

func freePort(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	l, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Skip("UDP port not free on TCP too; rerun")
	}
	l.Close()
	return pc.LocalAddr().String()
}

// TestStaticTable runs the agent in-process on a static table: mesh names
// from the table, a forwarded name from a loopback upstream, and the status
// endpoints.
func TestStaticTable(t *testing.T) {
	dir := t.TempDir()
	resolvConfPath = filepath.Join(dir, "resolv.conf")
	os.WriteFile(resolvConfPath, []byte("nameserver 192.0.2.53\nsearch a.example\n"), 0o644)
	table := filepath.Join(dir, "table.json")
	os.WriteFile(table, []byte(`{"table": {"productpage.ns1.svc.cluster.local": {"ips": ["10.96.0.12"], "registry": "Kubernetes", "shortname": "productpage", "namespace": "ns1"}}}`), 0o644)

	up := &dns.Server{Addr: "127.0.0.1:0", Net: "udp", Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		rr, _ := dns.NewRR(q.Question[0].Name + " 60 IN A 192.0.2.7")
		m.Answer = []dns.RR{rr}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	up.NotifyStartedFunc = func() { close(started) }
	go up.ListenAndServe()
	<-started
	defer up.Shutdown()

	cfg := config.Default()
	cfg.NameTable = table
	cfg.StateDir = dir
	cfg.DNS.Listen = []string{freePort(t)}
	cfg.DNS.Upstreams = []string{up.PacketConn.LocalAddr().String()}
	cfg.DNS.Namespace = "ns1"
	cfg.Status.Listen = freePort(t)
	cfg.Log.Level = "error"

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, "test") }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	var body string
	for i := 0; i < 100; i++ {
		resp, err := http.Get("http://" + cfg.Status.Listen + "/healthz/ready")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if body = string(b); resp.StatusCode == 200 {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if body != "ready\n" {
		t.Fatalf("not ready: %q", body)
	}
	c := &dns.Client{Timeout: 2 * time.Second}
	ask := func(name string) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		r, _, err := c.Exchange(m, cfg.DNS.Listen[0])
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := ask("productpage."); len(r.Answer) != 1 || !r.Authoritative || r.Answer[0].(*dns.A).A.String() != "10.96.0.12" {
		t.Errorf("short name in the agent's namespace: %v", r)
	}
	if r := ask("www.example.org."); len(r.Answer) != 1 || r.Authoritative || r.Answer[0].(*dns.A).A.String() != "192.0.2.7" {
		t.Errorf("forwarded: %v", r)
	}
	// The search list is followed: the one-round-trip CNAME moves with it.
	if r := ask("productpage.ns1.svc.cluster.local.a.example."); len(r.Answer) != 2 || r.Answer[0].Header().Rrtype != dns.TypeCNAME {
		t.Errorf("search expansion for a.example: %v", r)
	}
	os.WriteFile(resolvConfPath+".new", []byte("nameserver 192.0.2.53\nsearch b.example\n"), 0o644)
	os.Rename(resolvConfPath+".new", resolvConfPath)
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := ask("productpage.ns1.svc.cluster.local.b.example.")
		if len(r.Answer) == 2 && r.Answer[0].Header().Rrtype == dns.TypeCNAME {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("search list change not followed: %v", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := ask("productpage.ns1.svc.cluster.local.a.example."); r.Authoritative {
		t.Errorf("the old search domain still expands: %v", r)
	}

	resp, err := http.Get("http://" + cfg.Status.Listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	count := func(source string) int {
		m := regexp.MustCompile(`onramp_dns_queries_total\{source="` + source + `"\} (\d+)`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("no %s count in the metrics:\n%s", source, b)
		}
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}
	// Mesh: productpage., both expansions; upstream: www.example.org and the stale expansion.
	if mesh, up := count("mesh"), count("upstream"); mesh < 3 || up < 2 {
		t.Errorf("mesh %d, upstream %d answers counted:\n%s", mesh, up, b)
	}
}

func TestBadTableFileIsAClearError(t *testing.T) {
	dir := t.TempDir()
	table := filepath.Join(dir, "table.json")
	os.WriteFile(table, []byte(`{"table": {"bad.example": {"ips": ["not-an-ip"]}}}`), 0o644)
	cfg := config.Default()
	cfg.NameTable, cfg.StateDir = table, dir
	cfg.DNS.Listen = []string{freePort(t)}
	cfg.Status.Listen = "off"
	cfg.Log.Level = "error"
	err := Run(context.Background(), cfg, "test")
	if err == nil || !strings.Contains(err.Error(), "table.json") || !strings.Contains(err.Error(), "not-an-ip") {
		t.Fatalf("want an error naming the file and the bad IP, got %v", err)
	}
}
