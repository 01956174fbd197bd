package redirect

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onramp-mesh/onramp/agent/status"
	"github.com/onramp-mesh/onramp/testbed/harness"
	"github.com/onramp-mesh/onramp/testbed/netns"
	"github.com/onramp-mesh/onramp/testbed/nspawn"
)

// TestResolvedRedirect runs the packaged unit (systemd/onramp.service and
// onramp.socket, user onramp) in a Debian 12 (systemd 252) and a Debian 13
// (systemd 257) machine whose systemd-resolved has the peer's dnsmasq as
// its upstream: mesh names looked up through resolved (resolvectl,
// getent) reach onramp; other names never do (counted at onramp: 0) and
// reach the upstream; resolved's restart and a reverted link are survived;
// kill -9 of the agent under steady load costs the counted failures; stop
// leaves resolved's state as it was.
func TestResolvedRedirect(t *testing.T) {
	if err := nspawn.Available(); err != nil {
		t.Skip(err)
	}
	repo, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, suite := range []string{"bookworm", "trixie"} {
		t.Run(suite, func(t *testing.T) {
			t.Parallel()
			testResolved(t, repo, suite)
		})
	}
}

type resolvedHost struct {
	t     *testing.T
	ctx   context.Context
	m     *nspawn.Machine
	get   func(string) (string, error)
	upLog string
}

func (h *resolvedHost) sh(script string) (string, error) {
	out, stderr, err := h.m.Exec(h.ctx, "sh", "-c", script)
	return strings.TrimSpace(out + stderr), err
}

func (h *resolvedHost) must(script string) string {
	h.t.Helper()
	out, err := h.sh(script)
	if err != nil {
		h.t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return out
}

func (h *resolvedHost) report() status.Report {
	var r status.Report
	if body, err := h.get("/debug/status"); err == nil {
		json.Unmarshal([]byte(body), &r)
	}
	return r
}

func (h *resolvedHost) requests() int { return metric(h.t, h.get, "onramp_dns_requests_total") }

// resolvedState is what resolved and the kernel say about DNS: every
// link's resolved settings and the links themselves.
func (h *resolvedHost) resolvedState() string {
	// Column alignment, the server in use and the scopes (LLMNR/IPv6 comes
	// once host0's link-local address is ready) vary by themselves.
	return h.must("resolvectl status --no-pager | sed -e 's/^ *//' -e '/^Current DNS Server/d' -e '/^Current Scopes/d'; ip -br link | awk '{print $1}'; ls /run/systemd/resolve/netif/ 2>/dev/null | wc -l")
}

func (h *resolvedHost) waitInPlace(what string) {
	h.t.Helper()
	waitFor(h.t, 30*time.Second, what, func() bool {
		r := h.report()
		return r.Redirect != nil && r.Redirect.InPlace && len(r.Redirect.Upstreams) > 0
	})
}

func testResolved(t *testing.T, repo, suite string) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	root, err := nspawn.Rootfs(ctx, suite)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "table.json"), []byte(meshTable), 0o644)
	// resolved lets only uid 0 (or a polkit rule, which needs polkitd)
	// configure a link: CAP_NET_ADMIN alone is refused on 252 and 257. The
	// agent runs as root with CAP_NET_ADMIN as its only capability.
	os.WriteFile(filepath.Join(dir, "root.conf"), []byte("[Service]\nUser=root\nGroup=root\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "onramp.yaml"), []byte("nameTable: /etc/onramp/table.json\nredirect:\n  mode: auto\n"), 0o644)
	peer, err := netns.New(netns.UniqueName("rdpr"))
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	m, err := nspawn.Boot(ctx, nspawn.Opts{Root: root, Peer: peer, Capabilities: []string{"CAP_NET_ADMIN"}, Binds: []nspawn.Bind{
		{Src: onrampBin, Dst: "/usr/bin/onramp"},
		{Src: filepath.Join(repo, "systemd", "onramp.service"), Dst: "/etc/systemd/system/onramp.service"},
		{Src: filepath.Join(repo, "systemd", "onramp.socket"), Dst: "/etc/systemd/system/onramp.socket"},
		{Src: filepath.Join(dir, "onramp.yaml"), Dst: "/etc/onramp/onramp.yaml"},
		{Src: filepath.Join(dir, "table.json"), Dst: "/etc/onramp/table.json"},
		{Src: filepath.Join(dir, "root.conf"), Dst: "/etc/systemd/system/onramp.service.d/root.conf"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	h := &resolvedHost{t: t, ctx: ctx, m: m, get: nsGetter(m.NS, "127.0.0.1:15020"), upLog: filepath.Join(dir, "upstream.log")}
	nh := &nftHost{t: t, ctx: ctx}
	nh.dnsmasq(m.Peer, h.upLog, "--listen-address="+m.PeerAddr.String(), "--address=/public.test/192.0.2.10")

	version := h.must("systemctl --version | head -1")
	h.must("resolvectl dns host0 " + m.PeerAddr.String() + " && resolvectl domain host0 '~.'")
	h.must("adduser --system --group --no-create-home --quiet onramp")
	// A VPN-like link whose server answers only its own domain: never one
	// of onramp's upstreams.
	h.must("ip link add vpn0 type veth peer name vpn0p && ip link set vpn0p up && ip link set vpn0 up && ip addr add 10.99.0.2/24 dev vpn0 && " +
		"resolvectl dns vpn0 10.99.0.1 && resolvectl domain vpn0 '~corp.test' && resolvectl default-route vpn0 false")
	before := h.resolvedState()
	h.must("systemctl daemon-reload && systemctl start onramp.socket onramp.service")
	defer func() {
		if t.Failed() {
			out, _ := h.sh("journalctl -u onramp --no-pager | tail -40; resolvectl status --no-pager")
			t.Logf("%s: journal:\n%s", suite, out)
		}
	}()
	h.waitInPlace("redirect in place")
	rd := h.report().Redirect
	t.Logf("%s: link %s (%s, created %v), %d domains, upstreams %v", version, rd.Link, rd.LinkKind, rd.LinkCreated, len(rd.Domains), rd.Upstreams)
	if got := strings.Join(rd.Upstreams, ","); got != m.PeerAddr.String()+":53" {
		t.Errorf("onramp's upstreams from resolved = %q, want only %s:53 (never the stub, never onramp's link)", got, m.PeerAddr)
	}

	// Mesh names through resolved reach onramp.
	meshLookups := func(when string) {
		t.Helper()
		r0 := h.requests()
		for _, c := range []string{
			"resolvectl query --cache=no productpage.ns1.svc.cluster.local",
			"getent ahosts productpage.ns1.svc.cluster.local",
			"resolvectl query --cache=no api.external.test",
		} {
			out, err := h.sh(c)
			if err != nil || !(strings.Contains(out, "10.96.0.12") || strings.Contains(out, "10.96.0.20")) {
				t.Fatalf("%s: %s: %v\n%s", when, c, err, out)
			}
		}
		if got := h.requests() - r0; got < 3 {
			t.Errorf("%s: %d mesh queries reached onramp, want at least 3", when, got)
		}
	}
	meshLookups("first")

	// Other names do not reach onramp, and resolve through the upstream.
	h.must("resolvectl flush-caches")
	r0 := h.requests()
	for i, c := range []string{
		"resolvectl query --cache=no www.public.test",
		"getent ahosts www2.public.test",
		"resolvectl query --cache=no -t AAAA www3.public.test; true",
		"getent ahosts other.local.public.test",
	} {
		out, err := h.sh(c)
		if i != 2 && (err != nil || !strings.Contains(out, "192.0.2.10")) {
			t.Fatalf("%s: %v\n%s", c, err, out)
		}
	}
	leaked := h.requests() - r0
	t.Logf("%s: non-mesh names looked up through resolved: %d queries reached onramp; the upstream saw %d", version, leaked, countLines(h.upLog, "public.test from"))
	if leaked != 0 {
		t.Errorf("%d queries for non-mesh names reached onramp, want 0", leaked)
	}

	// resolved restarts; its link settings reverted behind onramp's back.
	h.must("systemctl restart systemd-resolved")
	h.waitInPlace("after resolved's restart")
	meshLookups("after resolved's restart")
	h.must("resolvectl revert " + rd.Link)
	waitFor(t, 15*time.Second, "re-applied after revert", func() bool {
		out, _ := h.sh("resolvectl domain " + rd.Link)
		return strings.Contains(out, "cluster.local")
	})
	meshLookups("after a revert")

	// kill -9 under steady load: count the failures until the agent is back.
	load := `fm=0; fp=0; for i in $(seq 60); do
	  getent hosts productpage.ns1.svc.cluster.local >/dev/null || fm=$((fm+1))
	  getent hosts n$i.public.test >/dev/null || fp=$((fp+1))
	  sleep 0.1; done; echo "$fm $fp"`
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() { out, err := h.sh(load); done <- result{out, err} }()
	time.Sleep(time.Second)
	pid := h.must("systemctl show -p MainPID --value onramp")
	killed := time.Now()
	h.must("kill -9 " + pid)
	back := waitFor(t, 30*time.Second, "agent back after kill -9", func() bool {
		np, _ := h.sh("systemctl show -p MainPID --value onramp")
		r := h.report()
		return np != pid && np != "0" && r.Redirect != nil && r.Redirect.InPlace
	})
	res := <-done
	if res.err != nil {
		t.Fatalf("load: %v %s", res.err, res.out)
	}
	var fm, fp int
	fmt.Sscan(res.out, &fm, &fp)
	t.Logf("%s: kill -9 under load (60 mesh + 60 non-mesh getent, 10/s each): agent back in %s; failed: %d mesh, %d non-mesh",
		version, back.Round(100*time.Millisecond), fm, fp)
	_ = killed
	if fp != 0 {
		t.Errorf("%d non-mesh lookups failed while the agent restarted, want 0", fp)
	}

	// captureAll: every name goes to onramp (~.), which forwards the others
	// to resolved's real server, not back to resolved's stub: no loop. The
	// upstream sees each name twice: resolved asks every link routing "."
	// (host0's own ~. too) and onramp once.
	os.WriteFile(filepath.Join(dir, "onramp.yaml"), []byte("nameTable: /etc/onramp/table.json\nredirect:\n  mode: auto\n  captureAll: true\n"), 0o644)
	h.must("systemctl restart onramp.service")
	waitFor(t, 30*time.Second, "captureAll in place", func() bool {
		r := h.report()
		return r.Redirect != nil && r.Redirect.InPlace && r.Redirect.CaptureAll && len(r.Redirect.Upstreams) > 0
	})
	if got := strings.Join(h.report().Redirect.Upstreams, ","); got != m.PeerAddr.String()+":53" {
		t.Errorf("captureAll: onramp's upstreams = %q, want only %s:53", got, m.PeerAddr)
	}
	h.must("resolvectl flush-caches")
	r0 = h.requests()
	if out, err := h.sh("resolvectl query --cache=no all.public.test && getent ahosts all2.public.test"); err != nil || !strings.Contains(out, "192.0.2.10") {
		t.Fatalf("captureAll: non-mesh names: %v\n%s", err, out)
	}
	meshLookups("captureAll")
	t.Logf("%s: captureAll: %d queries reached onramp for 2 non-mesh and 3 mesh lookups; the upstream saw all.public.test %d, all2.public.test %d (A)",
		version, h.requests()-r0, countLines(h.upLog, "query[A] all.public.test"), countLines(h.upLog, "query[A] all2.public.test"))
	if h.requests()-r0 < 5 {
		t.Errorf("captureAll: only %d queries reached onramp", h.requests()-r0)
	}
	for _, n := range []string{"query[A] all.public.test", "query[A] all2.public.test"} {
		if c := countLines(h.upLog, n); c < 1 || c > 2 {
			t.Errorf("captureAll: the upstream saw %q %d times, want once from onramp and at most once from resolved itself", n, c)
		}
	}

	// Stop: resolved's state and the links are as before.
	h.must("systemctl stop onramp.service")
	after := h.resolvedState()
	if after != before {
		t.Errorf("resolved's state after stop differs:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if out, _ := h.sh("ls /var/lib/onramp/redirect/state.json"); !strings.Contains(out, "No such file") {
		t.Errorf("the redirect record outlived the stop: %s", out)
	}
}
