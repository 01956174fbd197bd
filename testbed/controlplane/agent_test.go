package controlplane

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/onramp-mesh/onramp/agent/daemon"
	"github.com/onramp-mesh/onramp/agent/identity"
	"github.com/onramp-mesh/onramp/agent/xds"
	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
	"github.com/onramp-mesh/onramp/installer/bundle"
	"github.com/onramp-mesh/onramp/workloadentry"
)

// TestAgentLibraries runs the agent's own identity and ADS clients against
// the control plane, from a minted bundle: token bootstrap, mTLS on ADS,
// auto-registration, NDS and health.
func TestAgentLibraries(t *testing.T) {
	tb := startTestbed(t, "")
	g, ok := tb.store.WorkloadGroup("vm", "vm-group")
	if !ok {
		t.Fatal("no vm-group")
	}
	files, err := MintBundle(tb.authority, g, BundleOptions{AutoRegister: true, IP: netip.MustParseAddr("10.0.0.11"), GatewayIP: netip.MustParseAddr("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := files.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	token := func() (string, error) { return b.Token, nil }
	idm, err := identity.New(identity.Config{
		CAAddress: tb.srv.TLSAddr(), ServerName: b.ServerName, Roots: b.Roots, ClusterID: b.ClusterID,
		TrustDomain: b.TrustDomain, Namespace: b.Namespace, ServiceAccount: b.ServiceAccount,
		Token: token, StateDir: t.TempDir(),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	go idm.Start(ctx)
	select {
	case <-idm.Ready():
	case <-ctx.Done():
		t.Fatalf("no certificate: %+v", idm.Status())
	}
	if got := idm.Status().SPIFFEID; got != "spiffe://cluster.local/ns/vm/sa/vm-sa" {
		t.Fatalf("identity %q", got)
	}

	node, err := xds.Node(daemon.NodeInfo(b, nil))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var tables []*ndspb.NameTable
	cl, err := xds.New(xds.Config{
		Address: tb.srv.TLSAddr(), ServerName: b.ServerName, Roots: b.Roots,
		ClientCertificate: idm.ClientCertificate, Token: token, Node: node,
		OnNameTable: func(_ string, nt *ndspb.NameTable) error {
			mu.Lock()
			tables = append(tables, nt)
			mu.Unlock()
			return nil
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); cl.Run(runCtx) }()
	eventually(t, 5*time.Second, "name table received", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(tables) > 0 && tables[0].GetTable()["productpage.ns1.svc.cluster.local"] != nil
	})
	conns := tb.srv.Connections()
	if len(conns) != 1 || conns[0].Auth != string(AuthClientCert) || conns[0].WorkloadEntry != "vm/vm-group-10.0.0.11" {
		t.Fatalf("connections %+v: want one mTLS stream with the auto-registered entry", conns)
	}
	cl.SetHealth(false, "probe failed")
	eventually(t, 5*time.Second, "Healthy=False", func() bool {
		e, ok := tb.srv.Registry().Get("vm", "vm-group-10.0.0.11")
		c, _ := e.Condition(workloadentry.ConditionHealthy)
		return ok && c.Status == workloadentry.StatusFalse && strings.Contains(c.Message, "probe failed")
	})
	stop()
	<-done
}
