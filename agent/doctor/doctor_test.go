package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/onramp-mesh/onramp/agent/status"
)

// fakeAgent is a status server in memory: its mesh counter moves when the
// fake resolver "reaches" it.
type fakeAgent struct {
	down        bool
	ready       bool
	report      string // /debug/status
	table       string // /debug/nametable
	config      string // /debug/config
	meshAnswers int
	extra       string // more /metrics lines
}

func (f *fakeAgent) Addr() string { return "127.0.0.1:15020" }

func (f *fakeAgent) Get(_ context.Context, path string) (int, []byte, error) {
	if f.down {
		return 0, nil, errors.New("connection refused")
	}
	switch path {
	case "/healthz/ready":
		if !f.ready {
			return 503, []byte("not ready: no name table yet\n"), nil
		}
		return 200, []byte("ready\n"), nil
	case "/debug/status":
		return 200, []byte(f.report), nil
	case "/debug/nametable":
		return 200, []byte(f.table), nil
	case "/debug/config":
		return 200, []byte(f.config), nil
	case "/metrics":
		return 200, []byte(fmt.Sprintf("# TYPE x counter\nonramp_dns_requests_total %d\nonramp_dns_queries_total{source=\"mesh\"} %d\n%s", f.meshAnswers, f.meshAnswers, f.extra)), nil
	}
	return 404, nil, nil
}

const (
	okReport = `{"version":"v1","mode":"static","dns":{"listen":["127.0.0.1:53"],"upstreams":["10.9.0.2:53"]},
		"nameTable":{"names":3,"hosts":2,"version":"7","source":"file"}}`
	okTable = `{"clusterDomain":"cluster.local","names":3,"entries":[
		{"name":"api.example.org.","registry":"External","ips":["240.240.0.9"]},
		{"name":"productpage.ns1.svc.cluster.local.","registry":"Kubernetes","ips":["10.96.0.12"],"aliases":["productpage.ns1."]}]}`
)

// host is the host's resolver: it answers names from its map, and bumps the
// agent's mesh counter when viaOnramp.
type host struct {
	agent     *fakeAgent
	answers   map[string][]string
	viaOnramp bool
}

func (h *host) resolve(_ context.Context, name string) ([]netip.Addr, error) {
	ips, ok := h.answers[name]
	if !ok {
		return nil, fmt.Errorf("getent ahosts %s: %w", name, ErrNotFound)
	}
	if h.viaOnramp && strings.HasSuffix(name, ".cluster.local.") {
		h.agent.meshAnswers += 2
	}
	var out []netip.Addr
	for _, s := range ips {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

func noUpstream(context.Context, netip.AddrPort, string, uint32) (int, []netip.Addr, error) {
	return 0, nil, errors.New("timeout")
}

func healthy() (*fakeAgent, *host) {
	a := &fakeAgent{ready: true, report: okReport, table: okTable, config: `{"dataPlane":"proxy"}`}
	h := &host{agent: a, viaOnramp: true, answers: map[string][]string{
		"productpage.ns1.svc.cluster.local.": {"10.96.0.12"},
		"example.com.":                       {"10.9.0.80"},
	}}
	return a, h
}

func options(a *fakeAgent, h *host) Options {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return Options{Agent: a, Resolve: h.resolve, Exchange: noUpstream, Now: func() time.Time { return t0 },
		ResolvConf: "nameserver 127.0.0.1\n"}
}

func wantStatus(t *testing.T, rep Report, want map[string]Status) {
	t.Helper()
	for name, s := range want {
		if got := rep.Check(name).Status; got != s {
			t.Errorf("%s: %s (%s), want %s", name, got, rep.Check(name).Detail, s)
		}
	}
}

func TestHealthyWithoutRedirectState(t *testing.T) {
	a, h := healthy()
	rep := Run(context.Background(), options(a, h))
	wantStatus(t, rep, map[string]Status{CheckAgent: OK, CheckRedirect: Unknown, CheckMeshName: OK, CheckPublicName: OK, CheckLoop: OK, CheckVIPs: OK})
	if !rep.Healthy || rep.Err() != nil || rep.Broken != "" {
		t.Errorf("healthy %v broken %q", rep.Healthy, rep.Broken)
	}
	if d := rep.Check(CheckRedirect).Detail; !strings.Contains(d, "resolv.conf names 127.0.0.1, onramp's own listener") {
		t.Errorf("redirect detail %q", d)
	}
	var buf bytes.Buffer
	rep.WriteText(&buf)
	if !strings.Contains(buf.String(), "ok    mesh-name    getent ahosts productpage.ns1.svc.cluster.local. gives the mesh's 10.96.0.12, answered by onramp") ||
		!strings.Contains(buf.String(), "?     redirect") || !strings.Contains(buf.String(), "healthy, with 1 thing(s) to look at") {
		t.Errorf("text:\n%s", buf.String())
	}
	js, _ := json.Marshal(rep)
	var back map[string]any
	json.Unmarshal(js, &back)
	if back["healthy"] != true || len(back["checks"].([]any)) != 6 {
		t.Errorf("json %s", js)
	}
}

func TestMeshNameNotReachingOnramp(t *testing.T) {
	a, h := healthy()
	delete(h.answers, "productpage.ns1.svc.cluster.local.")
	o := options(a, h)
	o.ResolvConf = "nameserver 10.9.0.2\n"
	rep := Run(context.Background(), o)
	if rep.Healthy || rep.Broken != CheckMeshName {
		t.Fatalf("broken %q, want mesh-name: %+v", rep.Broken, rep.Checks)
	}
	c := rep.Check(CheckMeshName)
	if !strings.Contains(c.Fix, "/etc/resolv.conf names 10.9.0.2, onramp listens on 127.0.0.1:53") || !strings.Contains(c.Fix, "redirect.mode: auto") {
		t.Errorf("fix %q", c.Fix)
	}
	var buf bytes.Buffer
	rep.WriteText(&buf)
	if !strings.Contains(buf.String(), "\nbroken: mesh-name: getent ahosts productpage.ns1.svc.cluster.local. (what applications get) found nothing") {
		t.Errorf("text:\n%s", buf.String())
	}
}

func TestMeshNameOtherAnswerAndCache(t *testing.T) {
	a, h := healthy()
	h.answers["productpage.ns1.svc.cluster.local."] = []string{"192.0.2.1"}
	rep := Run(context.Background(), options(a, h))
	if rep.Broken != CheckMeshName || !strings.Contains(rep.Check(CheckMeshName).Fix, "/etc/hosts") {
		t.Errorf("foreign answer: %+v", rep.Check(CheckMeshName))
	}
	a, h = healthy()
	h.viaOnramp = false // a cache answered
	rep = Run(context.Background(), options(a, h))
	if c := rep.Check(CheckMeshName); c.Status != Warn || !strings.Contains(c.Detail, "counted no mesh answer") || !rep.Healthy {
		t.Errorf("cache: %+v", c)
	}
}

func TestMeshNameCachedThenUnique(t *testing.T) {
	a, h := healthy()
	a.table = `{"clusterDomain":"cluster.local","names":2,"entries":[
		{"name":"*.wild.example.org.","registry":"External","ips":["10.20.0.1"]},
		{"name":"productpage.ns1.svc.cluster.local.","registry":"Kubernetes","ips":["10.96.0.12"]}]}`
	h.viaOnramp = false // the cluster.local name comes from a cache
	o := options(a, h)
	o.Resolve = func(ctx context.Context, name string) ([]netip.Addr, error) {
		if strings.HasSuffix(name, ".wild.example.org.") && strings.HasPrefix(name, "onramp-doctor-") {
			a.meshAnswers++ // a name no cache has: it reaches onramp
			return []netip.Addr{netip.MustParseAddr("10.20.0.1")}, nil
		}
		return h.resolve(ctx, name)
	}
	rep := Run(context.Background(), o)
	c := rep.Check(CheckMeshName)
	if c.Status != OK || !strings.Contains(c.Detail, "from a cache") || !strings.HasPrefix(fmt.Sprint(c.Facts["confirmedWith"]), "onramp-doctor-") {
		t.Errorf("%+v", c)
	}
}

func TestMeshNameCachedThenAnother(t *testing.T) {
	a, h := healthy()
	a.table = `{"clusterDomain":"cluster.local","names":2,"entries":[
		{"name":"productpage.ns1.svc.cluster.local.","registry":"Kubernetes","ips":["10.96.0.12"]},
		{"name":"reviews.ns1.svc.cluster.local.","registry":"Kubernetes","ips":["10.96.0.13"]}]}`
	h.answers["reviews.ns1.svc.cluster.local."] = []string{"10.96.0.13"}
	o := options(a, h)
	o.Resolve = func(ctx context.Context, name string) ([]netip.Addr, error) {
		h.viaOnramp = name != "productpage.ns1.svc.cluster.local." // that one is cached
		return h.resolve(ctx, name)
	}
	rep := Run(context.Background(), o)
	c := rep.Check(CheckMeshName)
	if c.Status != OK || c.Facts["confirmedWith"] != "reviews.ns1.svc.cluster.local." {
		t.Errorf("%+v", c)
	}
}

func TestAgentDown(t *testing.T) {
	a, h := healthy()
	a.down = true
	rep := Run(context.Background(), options(a, h))
	if rep.Broken != CheckAgent || !strings.Contains(rep.Check(CheckAgent).Fix, "systemctl start onramp") {
		t.Errorf("%+v", rep.Check(CheckAgent))
	}
	wantStatus(t, rep, map[string]Status{CheckRedirect: Skipped, CheckMeshName: Skipped, CheckLoop: Skipped, CheckVIPs: Skipped, CheckPublicName: OK})
	a.down, a.ready = false, false
	rep = Run(context.Background(), options(a, h))
	if rep.Broken != CheckAgent || !strings.Contains(rep.Check(CheckAgent).Detail, "not ready: not ready: no name table yet") {
		t.Errorf("%+v", rep.Check(CheckAgent))
	}
}

func TestRedirectReported(t *testing.T) {
	for _, tc := range []struct {
		section string
		want    Status
		broken  string
	}{
		{`{"backend":"nftables","inPlace":true,"mark":4242,"table":"onramp","redirected":["10.9.0.2"],"listen":["127.0.0.1:15053"]}`, OK, ""},
		{`{"backend":"nftables","inPlace":true,"mark":4242,"table":"gone","redirected":["10.9.0.2"]}`, Fail, CheckRedirect},
		{`{"backend":"nftables","inPlace":true,"mark":4242,"table":"partial","redirected":["10.9.0.2"]}`, Fail, CheckRedirect},
		{`{"backend":"nftables","inPlace":true,"mark":4242,"table":"onramp","redirected":["10.1.1.1"]}`, Fail, CheckRedirect},
		{`{"backend":"nftables","inPlace":true,"mark":4242,"table":"onramp","captureAll":true}`, OK, ""},
		{`{"backend":"nftables","inPlace":true,"mark":4242,"listen":["127.0.0.1:5353"],"redirected":["10.9.0.2"]}`, Fail, CheckRedirect},
		{`{"backend":"nftables","inPlace":false}`, Fail, CheckRedirect},
		{`{"backend":"nftables","inPlace":false,"error":"netlink: operation not permitted"}`, Fail, CheckRedirect},
		{`{"backend":"resolved","inPlace":false,"error":"resolved is not on the bus"}`, Fail, CheckRedirect},
		{`{"backend":"resolved","inPlace":true,"domains":["svc.cluster.local"]}`, Fail, CheckRedirect},
		{`{"backend":"resolved","inPlace":true,"domains":["cluster.local","example.org"]}`, OK, ""},
		{`{"backend":"none","reason":"no resolved and no nftables"}`, Warn, ""},
	} {
		a, h := healthy()
		a.report = `{"dns":{"listen":["127.0.0.1:15053"],"upstreams":["10.9.0.2:53"]},"nameTable":{"names":3},"redirect":` + tc.section + "}"
		o := options(a, h)
		o.ResolvConf = "nameserver 10.9.0.2\n"
		o.Inspect = func(_ context.Context, rv status.Redirect) (Live, error) {
			switch rv.Table {
			case "":
				return Live{}, ErrNotInspected
			case "gone":
				return Live{Detail: "table inet gone is not in the ruleset"}, nil
			case "partial":
				return Live{Present: true, Detail: "table inet partial", Redirected: []netip.Addr{netip.MustParseAddr("10.1.1.1")}}, nil
			}
			return Live{Present: true, Detail: "table inet onramp", Redirected: []netip.Addr{netip.MustParseAddr("10.9.0.2")}}, nil
		}
		rep := Run(context.Background(), o)
		c := rep.Check(CheckRedirect)
		if c.Status != tc.want || rep.Broken != tc.broken {
			t.Errorf("%s: %s %q, broken %q", tc.section, c.Status, c.Detail, rep.Broken)
		}
	}
}

func TestPublicName(t *testing.T) {
	a, h := healthy()
	delete(h.answers, "example.com.")
	o := options(a, h)
	// The upstream answers directly: onramp's path breaks non-mesh names.
	var asked []string
	o.Exchange = func(_ context.Context, s netip.AddrPort, name string, mark uint32) (int, []netip.Addr, error) {
		asked = append(asked, fmt.Sprint(s, " ", name, " ", mark))
		return dns.RcodeSuccess, []netip.Addr{netip.MustParseAddr("10.9.0.80")}, nil
	}
	rep := Run(context.Background(), o)
	if rep.Broken != CheckPublicName || fmt.Sprint(asked) != "[10.9.0.2:53 example.com. 0]" {
		t.Errorf("broken %q, asked %v: %+v", rep.Broken, asked, rep.Check(CheckPublicName))
	}
	// No upstream reachable: a warning, not onramp's failure.
	o.Exchange = noUpstream
	rep = Run(context.Background(), o)
	if c := rep.Check(CheckPublicName); c.Status != Warn || !rep.Healthy || !strings.Contains(c.Detail, "no working upstream DNS") {
		t.Errorf("%+v", c)
	}
	// Answered with a VIP: the mesh answers a public name.
	h.answers["example.com."] = []string{"240.240.0.3"}
	rep = Run(context.Background(), o)
	if rep.Check(CheckPublicName).Status != Fail {
		t.Errorf("%+v", rep.Check(CheckPublicName))
	}
}

func TestLoop(t *testing.T) {
	for _, tc := range []struct {
		dns, redirect string
		want          Status
	}{
		{`{"listen":["127.0.0.1:53"],"upstreams":["127.0.0.1:53"]}`, "", Fail},
		{`{"listen":["0.0.0.0:53"],"upstreams":["127.0.0.1:53"]}`, "", Fail},
		{`{"listen":["127.0.0.1:15053"],"upstreams":["127.0.0.53:53"]}`, `,"redirect":{"backend":"resolved","inPlace":true}`, Fail},
		{`{"listen":["127.0.0.1:15053"],"upstreams":["10.9.0.2:53"]}`, `,"redirect":{"backend":"nftables","inPlace":true,"redirected":["10.9.0.2"]}`, Fail},
		{`{"listen":["127.0.0.1:15053"],"upstreams":["10.9.0.2:53"]}`, `,"redirect":{"backend":"nftables","inPlace":true,"mark":7,"redirected":["10.9.0.2"]}`, OK},
		{`{"listen":["127.0.0.1:15053"]}`, "", Warn},
	} {
		a, h := healthy()
		a.report = `{"dns":` + tc.dns + `,"nameTable":{"names":3}` + tc.redirect + `}`
		rep := Run(context.Background(), options(a, h))
		if c := rep.Check(CheckLoop); c.Status != tc.want {
			t.Errorf("%s%s: %s %q", tc.dns, tc.redirect, c.Status, c.Detail)
		}
	}
}

func TestVIPs(t *testing.T) {
	withheldTable := `{"clusterDomain":"cluster.local","names":1,"entries":[{"name":"productpage.ns1.svc.cluster.local.","ips":["10.96.0.12"]}],
		"withheld":[{"host":"api.stripe.com.","vips":["240.240.0.7"],"lookups":5},{"host":"istio.io.","vips":["240.240.0.8"],"lookups":0}]}`
	noVIPTable := `{"clusterDomain":"cluster.local","names":1,"entries":[{"name":"productpage.ns1.svc.cluster.local.","ips":["10.96.0.12"]}]}`
	for _, tc := range []struct {
		name, config, table, metrics string
		want                         Status
		detail                       string
	}{
		{"proxy", `{"dataPlane":"proxy"}`, okTable, "", OK, "for the proxy on this VM"},
		{"none, looked up", `{"dataPlane":"none"}`, noVIPTable, "onramp_nametable_withheld_names 2\nonramp_nametable_withheld_lookups_total 5\n", Warn, "asked 5 times for names the mesh knows only by auto-allocated VIPs (2 such names)"},
		{"none, looked up, listed", `{"dataPlane":"none"}`, withheldTable, "onramp_nametable_withheld_names 2\nonramp_nametable_withheld_lookups_total 5\n", Warn, "got the upstream's answer, not the mesh service: api.stripe.com (5)"},
		{"none, not looked up", `{"dataPlane":"none"}`, noVIPTable, "onramp_nametable_withheld_names 2\nonramp_nametable_withheld_lookups_total 0\n", OK, "no application has looked one up"},
		{"none, VIPs answered", `{"dataPlane":"none"}`, okTable, "", Warn, "nothing on this host can reach"},
		{"unsaid", `{}`, okTable, "", Warn, "does not say whether"},
		{"unsaid, no VIPs", `{}`, noVIPTable, "", OK, "no auto-allocated VIPs"},
	} {
		a, h := healthy()
		a.config, a.table, a.extra = tc.config, tc.table, tc.metrics
		rep := Run(context.Background(), options(a, h))
		c := rep.Check(CheckVIPs)
		if c.Status != tc.want || !strings.Contains(c.Detail, tc.detail) || !rep.Healthy {
			t.Errorf("%s: %s %q (healthy %v)", tc.name, c.Status, c.Detail, rep.Healthy)
		}
	}
}

func TestProbeChoice(t *testing.T) {
	a, h := healthy()
	o := options(a, h)
	o.MeshName = "productpage.ns1"
	rep := Run(context.Background(), o)
	if c := rep.Check(CheckMeshName); c.Facts["name"] != "productpage.ns1." {
		t.Errorf("--name productpage.ns1 looked up %v", c.Facts["name"])
	}
	o.MeshName = "nothere.example"
	rep = Run(context.Background(), o)
	if c := rep.Check(CheckMeshName); c.Status != Fail || !strings.Contains(c.Detail, "not in the agent's name table") {
		t.Errorf("%+v", c)
	}
}

func TestParse(t *testing.T) {
	got := parseAhosts("10.96.0.12      STREAM productpage.ns1.svc.cluster.local\n10.96.0.12      DGRAM  \n10.96.0.12      RAW    \nfd00::1 STREAM\n")
	if fmt.Sprint(got) != "[10.96.0.12 fd00::1]" {
		t.Errorf("ahosts %v", got)
	}
	m := parseMetrics("# HELP a b\nonramp_dns_queries_total{source=\"mesh\"} 12\nx 1.5\nbad\n")
	if m[metricMeshAnswers] != 12 || m["x"] != 1.5 || len(m) != 2 {
		t.Errorf("metrics %v", m)
	}
	if ns := nameservers("# c\nnameserver 10.0.0.1\nsearch a\nnameserver ::1\n"); fmt.Sprint(ns) != "[10.0.0.1 ::1]" {
		t.Errorf("nameservers %v", ns)
	}
}
