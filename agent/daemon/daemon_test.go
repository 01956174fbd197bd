package daemon

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
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
	resp, err := http.Get("http://" + cfg.Status.Listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `onramp_dns_queries_total{source="mesh"} 1`) || !strings.Contains(string(b), `source="upstream"} 1`) {
		t.Errorf("metrics:\n%s", b)
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
