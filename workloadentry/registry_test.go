package workloadentry

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newTestRegistry(t *testing.T) (*Registry, *manualClock, *[]Event) {
	t.Helper()
	clk := newManualClock(t0)
	r := NewRegistry(RegistryOptions{Controller: "istiod-a", Clock: clk, SweepInterval: -1}, hclog.NewNullLogger())
	t.Cleanup(r.Close)
	var mu sync.Mutex
	events := &[]Event{}
	r.Subscribe(func(ev Event) {
		mu.Lock()
		*events = append(*events, ev)
		mu.Unlock()
	})
	return r, clk, events
}

func eventTypes(evs []Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, e.Type.String())
	}
	return strings.Join(s, ",")
}

var vmNode = Node{IP: netip.MustParseAddr("10.0.0.7"), HealthChecks: true}

func TestRegistryLifecycle(t *testing.T) {
	type step struct {
		do          string // connect, disconnect, advance
		d           time.Duration
		wantPresent bool
		wantConns   int
	}
	tests := []struct {
		name       string
		steps      []step
		wantEvents string
	}{
		{
			name: "deleted after grace period",
			steps: []step{
				{do: "connect", wantPresent: true, wantConns: 1},
				{do: "disconnect", wantPresent: true},
				{do: "advance", d: 9 * time.Second, wantPresent: true},
				{do: "advance", d: time.Second, wantPresent: false},
			},
			wantEvents: "added,updated,deleted",
		},
		{
			name: "reconnect within grace keeps entry",
			steps: []step{
				{do: "connect", wantPresent: true, wantConns: 1},
				{do: "disconnect", wantPresent: true},
				{do: "advance", d: 5 * time.Second, wantPresent: true},
				{do: "connect", wantPresent: true, wantConns: 1},
				{do: "advance", d: time.Minute, wantPresent: true, wantConns: 1},
			},
			wantEvents: "added,updated,updated",
		},
		{
			name: "two streams: entry lives until the last one closes",
			steps: []step{
				{do: "connect", wantPresent: true, wantConns: 1},
				{do: "connect", wantPresent: true, wantConns: 2},
				{do: "disconnect", wantPresent: true, wantConns: 1},
				{do: "advance", d: time.Minute, wantPresent: true, wantConns: 1},
				{do: "disconnect", wantPresent: true},
				{do: "advance", d: 10 * time.Second, wantPresent: false},
			},
			wantEvents: "added,updated,updated,deleted",
		},
		{
			name: "reconnect after a stale timer is not deleted by it",
			steps: []step{
				{do: "connect", wantPresent: true, wantConns: 1},
				{do: "disconnect", wantPresent: true},
				{do: "advance", d: 5 * time.Second, wantPresent: true},
				{do: "connect", wantPresent: true, wantConns: 1},
				{do: "disconnect", wantPresent: true},
				{do: "advance", d: 6 * time.Second, wantPresent: true},
				{do: "advance", d: 4 * time.Second, wantPresent: false},
			},
			wantEvents: "added,updated,updated,updated,deleted",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, clk, events := newTestRegistry(t)
			g := testGroup()
			name := Name(g.Name, vmNode.IP, "")
			for i, s := range tt.steps {
				switch s.do {
				case "connect":
					if _, err := r.Connect(g, vmNode); err != nil {
						t.Fatal(err)
					}
				case "disconnect":
					if !r.Disconnect("vm", name) {
						t.Fatalf("step %d: disconnect not recorded", i)
					}
				case "advance":
					clk.Advance(s.d)
				}
				e, ok := r.Get("vm", name)
				if ok != s.wantPresent {
					t.Fatalf("step %d (%s): present=%v want %v", i, s.do, ok, s.wantPresent)
				}
				if got := r.Connections("vm", name); got != s.wantConns {
					t.Fatalf("step %d (%s): connections=%d want %d", i, s.do, got, s.wantConns)
				}
				if ok {
					_, disc := e.DisconnectedAt()
					if disc != (s.wantConns == 0) {
						t.Fatalf("step %d: disconnectedAt present=%v with %d connections: %v", i, disc, s.wantConns, e.Annotations)
					}
					if _, ctl := e.Annotations[AnnotationWorkloadController]; ctl != (s.wantConns > 0) {
						t.Fatalf("step %d: controller annotation present=%v with %d connections", i, ctl, s.wantConns)
					}
				}
			}
			if got := eventTypes(*events); got != tt.wantEvents {
				t.Fatalf("events %s, want %s", got, tt.wantEvents)
			}
		})
	}
}

func TestRegistryReconnectUpdatesConnectedAtOnly(t *testing.T) {
	r, clk, _ := newTestRegistry(t)
	g := testGroup()
	e1, _ := r.Connect(g, vmNode)
	if _, err := r.SetHealth("vm", e1.Name, true, ""); err != nil {
		t.Fatal(err)
	}
	r.Disconnect("vm", e1.Name)
	clk.Advance(3 * time.Second)
	g.Spec.Template.ServiceAccount = "changed"
	e2, err := r.Connect(g, vmNode)
	if err != nil {
		t.Fatal(err)
	}
	at, _ := e2.ConnectedAt()
	if !at.Equal(t0.Add(3 * time.Second)) {
		t.Fatalf("connectedAt %v", at)
	}
	if e2.Spec.ServiceAccount != "vm-sa" {
		t.Fatalf("reconnect rewrote the spec: %v", e2.Spec)
	}
	if c, ok := e2.Condition(ConditionHealthy); !ok || c.Status != StatusTrue {
		t.Fatalf("reconnect lost health: %v", e2.Conditions)
	}
}

func TestRegistrySweep(t *testing.T) {
	clk := newManualClock(t0)
	r := NewRegistry(RegistryOptions{Clock: clk, MaxConnectionAge: time.Minute, SweepInterval: 100 * time.Second, GracePeriod: time.Hour}, nil)
	defer r.Close()
	g := testGroup()
	connected, _ := r.Connect(g, Node{IP: netip.MustParseAddr("10.0.0.1")})
	leaked, _ := r.Connect(g, Node{IP: netip.MustParseAddr("10.0.0.2")})
	r.Disconnect("vm", leaked.Name)
	// 100 s: the leaked entry's connectedAt (t0) is older than 1.5 x 1 min.
	clk.Advance(100 * time.Second)
	if _, ok := r.Get("vm", leaked.Name); ok {
		t.Fatal("sweep kept a disconnected entry whose connectedAt is older than 1.5x max connection age")
	}
	if _, ok := r.Get("vm", connected.Name); !ok {
		t.Fatal("sweep removed a connected entry")
	}
	// A recently disconnected entry within grace and age survives a sweep.
	recent, _ := r.Connect(g, Node{IP: netip.MustParseAddr("10.0.0.3")})
	r.Disconnect("vm", recent.Name)
	if n := r.Sweep(); n != 0 {
		t.Fatalf("sweep removed %d entries, want 0", n)
	}
}

func TestRegistryHealth(t *testing.T) {
	r, clk, events := newTestRegistry(t)
	g := testGroup()
	e, _ := r.Connect(g, vmNode)
	steps := []struct {
		healthy    bool
		msg        string
		advance    time.Duration
		wantStatus string
		wantMsg    string
		wantTrans  time.Time
	}{
		{true, "", 0, StatusTrue, "", t0},
		{false, "Get http://localhost:8080/ready: connection refused", time.Second, StatusFalse, "Get http://localhost:8080/ready: connection refused", t0.Add(time.Second)},
		{false, "timeout", time.Second, StatusFalse, "timeout", t0.Add(time.Second)},
		{true, "ignored when healthy", time.Second, StatusTrue, "", t0.Add(3 * time.Second)},
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		got, err := r.SetHealth("vm", e.Name, s.healthy, s.msg)
		if err != nil {
			t.Fatal(err)
		}
		c, ok := got.Condition(ConditionHealthy)
		if !ok || c.Status != s.wantStatus || c.Message != s.wantMsg || !c.LastTransition.Equal(s.wantTrans) {
			t.Fatalf("step %d: condition %+v", i, c)
		}
		if got.Healthy() != s.healthy || len(got.Conditions) != 1 {
			t.Fatalf("step %d: Healthy()=%v conditions=%v", i, got.Healthy(), got.Conditions)
		}
	}
	if got := eventTypes(*events); got != "added,updated,updated,updated,updated" {
		t.Fatalf("events %s", got)
	}
	if _, err := r.SetHealth("vm", "nope", true, ""); err == nil {
		t.Fatal("health of unknown entry accepted")
	}
	plain, _ := r.Connect(g, Node{IP: netip.MustParseAddr("10.9.9.9")})
	if _, err := r.SetHealth("vm", plain.Name, false, "x"); err == nil || !strings.Contains(err.Error(), "readinessProbe") {
		t.Fatalf("health without health checks: %v", err)
	}
	if !plain.Healthy() {
		t.Fatal("entry without health checks must count as healthy")
	}
}

func TestRegistryMissingGroupAndList(t *testing.T) {
	r, _, _ := newTestRegistry(t)
	if _, err := r.Connect(nil, vmNode); err == nil {
		t.Fatal("connect without group accepted")
	}
	if len(r.List()) != 0 {
		t.Fatal("failed connect left an entry")
	}
	g := testGroup()
	r.Connect(g, Node{IP: netip.MustParseAddr("10.0.0.9")})
	r.Connect(g, Node{IP: netip.MustParseAddr("10.0.0.10")})
	l := r.List()
	if len(l) != 2 || l[0].Name != "vm-group-10.0.0.10" || l[1].Name != "vm-group-10.0.0.9" {
		t.Fatalf("List order: %v, %v", l[0].Name, l[1].Name)
	}
	l[0].Labels["mutated"] = "x"
	if e, _ := r.Get("vm", "vm-group-10.0.0.10"); e.Labels["mutated"] != "" {
		t.Fatal("List returned shared state")
	}
	if r.Disconnect("vm", "unknown") {
		t.Fatal("disconnect of unknown entry reported")
	}
}
