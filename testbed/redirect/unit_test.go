package redirect

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onramp-mesh/onramp/testbed/harness"
	"github.com/onramp-mesh/onramp/testbed/netns"
	"github.com/onramp-mesh/onramp/testbed/nspawn"
)

// TestNftablesUnit runs the packaged unit as shipped (user onramp with
// CAP_NET_ADMIN, onramp.socket) on a Debian 12 machine without
// systemd-resolved, so the agent takes the nftables backend: mesh names
// resolve through resolv.conf's nameserver, the set follows resolv.conf,
// and kill -9 of the agent under steady load is counted, with the unit as
// shipped (socket activation and `ExecStopPost=onramp redirect remove`) and
// with socket activation alone.
func TestNftablesUnit(t *testing.T) {
	if err := nspawn.Available(); err != nil {
		t.Skip(err)
	}
	repo, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, stopPost := range []bool{false, true} {
		name := "socket"
		if stopPost {
			name = "socket+ExecStopPost"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testNftablesUnit(t, repo, stopPost)
		})
	}
}

func testNftablesUnit(t *testing.T, repo string, stopPost bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root, err := nspawn.Rootfs(ctx, "bookworm")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "table.json"), []byte(meshTable), 0o644)
	os.WriteFile(filepath.Join(dir, "onramp.yaml"), []byte("nameTable: /etc/onramp/table.json\n"), 0o644)
	dropin := "[Service]\n"
	if !stopPost {
		dropin += "ExecStopPost=\n" // socket activation alone
	}
	os.WriteFile(filepath.Join(dir, "test.conf"), []byte(dropin), 0o644)
	peer, err := netns.New(netns.UniqueName("rdpu"))
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	m, err := nspawn.Boot(ctx, nspawn.Opts{Root: root, Peer: peer, NoResolved: true, Capabilities: []string{"CAP_NET_ADMIN"},
		ResolvConf: "nameserver 10.213.0.1\noptions timeout:2 attempts:2\n",
		Binds: []nspawn.Bind{
			{Src: onrampBin, Dst: "/usr/bin/onramp"},
			{Src: filepath.Join(repo, "systemd", "onramp.service"), Dst: "/etc/systemd/system/onramp.service"},
			{Src: filepath.Join(repo, "systemd", "onramp.socket"), Dst: "/etc/systemd/system/onramp.socket"},
			{Src: filepath.Join(dir, "test.conf"), Dst: "/etc/systemd/system/onramp.service.d/test.conf"},
			{Src: filepath.Join(dir, "onramp.yaml"), Dst: "/etc/onramp/onramp.yaml"},
			{Src: filepath.Join(dir, "table.json"), Dst: "/etc/onramp/table.json"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	h := &resolvedHost{t: t, ctx: ctx, m: m, get: nsGetter(m.NS, "127.0.0.1:15020"), upLog: filepath.Join(dir, "upstream.log")}
	nh := &nftHost{t: t, ctx: ctx}
	nh.dnsmasq(m.Peer, h.upLog, "--listen-address="+m.PeerAddr.String(), "--address=/public.test/192.0.2.10")
	h.must("adduser --system --group --no-create-home --quiet onramp")
	before := h.must("nft list ruleset")
	h.must("systemctl daemon-reload && systemctl start onramp.socket onramp.service")
	defer func() {
		if t.Failed() {
			out, _ := h.sh("journalctl -u onramp --no-pager | tail -30; nft list ruleset")
			t.Logf("journal:\n%s", out)
		}
	}()
	waitFor(t, 30*time.Second, "redirect in place", func() bool {
		r := h.report()
		return r.Redirect != nil && r.Redirect.InPlace
	})
	if rd := h.report().Redirect; rd.Backend != "nftables" {
		t.Fatalf("backend %q, want nftables", rd.Backend)
	}
	for _, c := range []string{"getent ahosts productpage.ns1.svc.cluster.local", "dig +short +tcp productpage.ns1.svc.cluster.local", "getent ahosts www.public.test"} {
		if out, err := h.sh(c); err != nil || !(strings.Contains(out, "10.96.0.12") || strings.Contains(out, "192.0.2.10")) {
			t.Fatalf("%s: %v\n%s", c, err, out)
		}
	}
	if n := countLines(h.upLog, "query[A] www.public.test"); n != 1 {
		t.Errorf("upstream saw www.public.test %d times, want once (onramp's own query, marked by user onramp, not redirected back)", n)
	}

	// The set follows resolv.conf.
	h.must("printf 'nameserver 10.213.0.1\\nnameserver 10.213.0.9\\noptions timeout:2 attempts:2\\n' > /etc/resolv.conf.new && mv /etc/resolv.conf.new /etc/resolv.conf")
	took := waitFor(t, 10*time.Second, "the set follows resolv.conf", func() bool {
		out, _ := h.sh("nft list set inet onramp dns4")
		return strings.Contains(out, "10.213.0.9")
	})
	t.Logf("the nameserver set followed resolv.conf in %s", took.Round(10*time.Millisecond))
	h.must("printf 'nameserver 10.213.0.1\\noptions timeout:2 attempts:2\\n' > /etc/resolv.conf.new && mv /etc/resolv.conf.new /etc/resolv.conf")
	waitFor(t, 10*time.Second, "the set follows resolv.conf back", func() bool {
		out, _ := h.sh("nft list set inet onramp dns4")
		return !strings.Contains(out, "10.213.0.9")
	})

	// kill -9 under steady load.
	load := `fm=0; fp=0; for i in $(seq 60); do
	  getent hosts productpage.ns1.svc.cluster.local >/dev/null || fm=$((fm+1))
	  getent hosts n$i.public.test >/dev/null || fp=$((fp+1))
	  sleep 0.1; done; echo "$fm $fp"`
	done := make(chan string, 1)
	go func() { out, _ := h.sh(load); done <- out }()
	time.Sleep(time.Second)
	pid := h.must("systemctl show -p MainPID --value onramp")
	h.must("kill -9 " + pid)
	// Watch the table until systemd has started the agent again (RestartSec),
	// so an ExecStopPost that runs late in that window is still seen.
	removed := false
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end) && !removed; time.Sleep(50 * time.Millisecond) {
		if _, err := h.sh("nft list table inet onramp"); err != nil {
			removed = true
		} else if np, _ := h.sh("systemctl show -p MainPID --value onramp"); np != pid && np != "0" {
			break
		}
	}
	back := waitFor(t, 30*time.Second, "agent back after kill -9", func() bool {
		np, _ := h.sh("systemctl show -p MainPID --value onramp")
		r := h.report()
		return np != pid && np != "0" && r.Redirect != nil && r.Redirect.InPlace
	})
	out := <-done
	var fm, fp int
	fmt.Sscan(out, &fm, &fp)
	t.Logf("nftables, %s: kill -9 under load (60 mesh + 60 non-mesh getent, 10/s each): agent back in %s; redirect removed meanwhile: %v; failed: %d mesh, %d non-mesh",
		map[bool]string{false: "socket activation", true: "socket activation + ExecStopPost=onramp redirect remove"}[stopPost], back.Round(100*time.Millisecond), removed, fm, fp)
	if removed != stopPost {
		t.Errorf("redirect removed while the agent was down: %v, want %v", removed, stopPost)
	}
	if fp != 0 {
		t.Errorf("%d non-mesh lookups failed while the agent restarted", fp)
	}

	h.must("systemctl stop onramp.service")
	if after := h.must("nft list ruleset"); after != before {
		t.Errorf("ruleset after stop:\n%s\nwant\n%s", after, before)
	}
}
