package daemon

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/onramp-mesh/onramp/agent/redirect"
	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
)

// fakeBackend records the plans applied and the removals.
type fakeBackend struct {
	mu      sync.Mutex
	plans   []redirect.Plan
	removed int
}

func (f *fakeBackend) Name() string { return redirect.Nftables }
func (f *fakeBackend) Apply(_ context.Context, p redirect.Plan) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plans = append(f.plans, p)
	return nil
}
func (f *fakeBackend) State() redirect.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return redirect.State{Backend: redirect.Nftables, InPlace: len(f.plans) > 0 && f.removed == 0}
}
func (f *fakeBackend) Remove(context.Context) error {
	f.mu.Lock()
	f.removed++
	f.mu.Unlock()
	return nil
}

func (f *fakeBackend) last() (redirect.Plan, int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.plans) == 0 {
		return redirect.Plan{}, 0, f.removed
	}
	return f.plans[len(f.plans)-1], len(f.plans), f.removed
}

// The agent applies the redirect at start with the table's domains and the
// proxy's listeners, applies it again when a new table brings new domains
// (and not for a table with the same ones), shows it in status, and removes
// it when it stops.
func TestRedirectFollowsTheTable(t *testing.T) {
	cfg, env := testConfig(t, productpage)
	cfg.Redirect.Mode = redirect.Nftables
	fb := &fakeBackend{}
	env.redirectHost = nftHost{}
	env.redirectBackend = func(redirect.Choice, redirect.Options) redirect.Backend { return fb }
	ctx, cancel := context.WithCancel(context.Background())
	a, err := assemble(cfg, "test", env, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.serve(ctx) }()

	wait := func(what string, cond func(redirect.Plan, int, int) bool) {
		t.Helper()
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			if cond(fb.last()) {
				return
			}
		}
		p, n, r := fb.last()
		t.Fatalf("%s: last plan %+v after %d applies, %d removals", what, p, n, r)
	}
	wait("applied at start", func(p redirect.Plan, n, _ int) bool {
		return n == 1 && slices.Contains(p.Domains, "cluster.local") && slices.Contains(p.Domains, "productpage.ns1") && len(p.Listen) == 1 && p.Mark == redirect.DefaultMark
	})
	if r := a.report(); r.Redirect == nil || !r.Redirect.InPlace {
		t.Errorf("status shows no redirect in place: %+v", r.Redirect)
	}
	push := func(hosts ...string) {
		tbl := &ndspb.NameTable{Table: map[string]*ndspb.NameInfo{}}
		for _, h := range hosts {
			tbl.Table[h] = &ndspb.NameInfo{Ips: []string{"10.96.0.30"}, Registry: "External"}
		}
		if err := a.tables.Push("v", tbl); err != nil {
			t.Fatal(err)
		}
	}
	push("db.example.org")
	wait("applied for the new domains", func(p redirect.Plan, n, _ int) bool { return n == 2 && slices.Contains(p.Domains, "db.example.org") })
	push("db.example.org")
	time.Sleep(100 * time.Millisecond)
	if _, n, _ := fb.last(); n != 2 {
		t.Errorf("a table with the same domains applied the redirect again (%d applies)", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, _, r := fb.last(); r != 1 {
		t.Errorf("removed %d times at stop, want 1", r)
	}
}

// nftHost is a host where only nftables works.
type nftHost struct{ bareHost }

func (nftHost) Nftables() error { return nil }
