package tablestate

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/onramp-mesh/onramp/agent/nametable"
	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
)

// table is one Kubernetes service productpage.ns1 at ip.
func table(ip string) *ndspb.NameTable {
	return &ndspb.NameTable{Table: map[string]*ndspb.NameInfo{
		"productpage.ns1.svc.cluster.local": {Ips: []string{ip}, Registry: ndspb.RegistryKubernetes, Shortname: "productpage", Namespace: "ns1"},
	}}
}

// memStore is a Store in memory whose Save can be made to fail.
type memStore struct {
	mu      sync.Mutex
	st      nametable.Stored
	saveErr error
	saves   int
}

func (m *memStore) Save(st nametable.Stored) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.saves++
	if m.saveErr != nil {
		return m.saveErr
	}
	m.st = st
	return nil
}

func (m *memStore) Load() (nametable.Stored, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.st.Table == nil {
		return nametable.Stored{}, os.ErrNotExist
	}
	return m.st, nil
}

func newTables(store Store, search ...string) *Tables {
	return New(Config{
		Host:    nametable.HostContext{Namespace: "ns1", Search: search, Ndots: 1},
		Store:   store,
		Release: func() {},
	})
}

// lookup is what the proxy would answer for name (A): the addresses, and
// whether the table answered at all.
func lookup(t *testing.T, s *Tables, name string) ([]string, bool) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	q, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	qend := len(q)
	qname := []byte(strings.ToLower(string(q[12 : qend-4])))
	resp, ok := s.AppendResponse(nil, q, qend, qname, dns.TypeA)
	if !ok {
		return nil, false
	}
	r := new(dns.Msg)
	if err := r.Unpack(resp); err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			ips = append(ips, a.A.String())
		}
	}
	return ips, true
}

func TestNothingServedBeforeTheFirstInstall(t *testing.T) {
	s := newTables(nil)
	if _, ok := lookup(t, s, "productpage.ns1.svc.cluster.local."); ok {
		t.Error("answered with no table")
	}
	if err := s.Ready(); err == nil || !strings.Contains(err.Error(), "no name table yet") {
		t.Errorf("Ready = %v, want no name table yet", err)
	}
	if err := s.LoadStored(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadStored with no store = %v, want ErrNotExist", err)
	}
	if st := s.Status(); st.Names != 0 || st.Source != "" || !st.LastPush.IsZero() {
		t.Errorf("status = %+v", st)
	}
}

// TestFailedSaveKeepsTheNewestTable is issue 10's case: a push whose save
// fails, then a new search list. The rebuild must serve the pushed table,
// not the older copy on disk.
func TestFailedSaveKeepsTheNewestTable(t *testing.T) {
	store := &memStore{}
	s := newTables(store, "a.example")
	if err := s.Push("v1", table("10.0.0.1")); err != nil {
		t.Fatal(err)
	}
	store.saveErr = errors.New("disk full")
	if err := s.Push("v2", table("10.0.0.2")); err != nil {
		t.Fatalf("a failed save must not refuse the table: %v", err)
	}
	if st, _ := store.Load(); st.Version != "v1" {
		t.Fatalf("store holds %s, want v1 (the save of v2 failed)", st.Version)
	}
	if st := s.Status(); st.SaveError != "disk full" || st.Version != "v2" {
		t.Errorf("status after the failed save = %+v, want v2 with the save error", st)
	}

	s.SetSearch([]string{"b.example"}, 1)
	if ips, _ := lookup(t, s, "productpage.ns1.svc.cluster.local."); !slices.Equal(ips, []string{"10.0.0.2"}) {
		t.Errorf("after the search-list rebuild: %v, want the newest table's 10.0.0.2", ips)
	}
	if ips, _ := lookup(t, s, "productpage.ns1.svc.cluster.local.b.example."); !slices.Equal(ips, []string{"10.0.0.2"}) {
		t.Errorf("new search domain: %v, want 10.0.0.2", ips)
	}
	if _, ok := lookup(t, s, "productpage.ns1.svc.cluster.local.a.example."); ok {
		t.Error("the old search domain still expands")
	}
	if st := s.Status(); st.Version != "v2" || st.Source != "control-plane" {
		t.Errorf("status after the rebuild = %+v, want v2 from the control plane", st)
	}
}

// TestOddTableIsAppliedAndReported: a table with an address that cannot
// be served is applied without it (as Istio's agent does), saved, and what
// is not served is in Status.
func TestOddTableIsAppliedAndReported(t *testing.T) {
	store := &memStore{}
	s := newTables(store)
	if err := s.Push("v1", table("10.0.0.1")); err != nil {
		t.Fatal(err)
	}
	odd := table("10.0.0.2")
	odd.Table["broken.example"] = &ndspb.NameInfo{Ips: []string{"not-an-ip"}}
	if err := s.Push("v2", odd); err != nil {
		t.Fatalf("a table that decodes was refused: %v", err)
	}
	if ips, _ := lookup(t, s, "productpage.ns1.svc.cluster.local."); !slices.Equal(ips, []string{"10.0.0.2"}) {
		t.Errorf("after the odd table: %v, want v2's address", ips)
	}
	if _, ok := lookup(t, s, "broken.example."); ok {
		t.Error("the entry without a usable address is answered")
	}
	st := s.Status()
	if st.Version != "v2" || store.saves != 2 || len(st.Skipped) != 2 || st.Skipped[0].Address != "not-an-ip" || !st.Skipped[1].Entry {
		t.Errorf("status = %+v, %d saves; want v2 saved, the address and the entry reported", st, store.saves)
	}
	// The report follows the table in use.
	if err := s.Push("v3", table("10.0.0.3")); err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); len(st.Skipped) != 0 {
		t.Errorf("a clean table still reports %v", st.Skipped)
	}
}

func TestNdotsAloneDoesNotRebuild(t *testing.T) {
	s := newTables(nil, "a.example")
	var builds atomic.Int32
	defer s.OnInstall(func(*nametable.Index) { builds.Add(1) })()
	if err := s.Push("v1", table("10.0.0.1")); err != nil {
		t.Fatal(err)
	}
	ix := s.Index()
	s.SetSearch([]string{"a.example"}, 5)
	if s.Index() != ix || builds.Load() != 1 {
		t.Errorf("ndots alone rebuilt the index (%d builds)", builds.Load())
	}
	if st := s.Status(); st.Ndots != 5 {
		t.Errorf("status ndots = %d, want 5", st.Ndots)
	}
	s.SetSearch([]string{"a.example"}, 5) // no change at all
	s.SetSearch([]string{"b.example"}, 5)
	if s.Index() == ix || builds.Load() != 2 {
		t.Errorf("a new search list did not rebuild (%d builds)", builds.Load())
	}
}

func TestStoredTableAtStart(t *testing.T) {
	store := &memStore{}
	if err := newTables(store).Push("v7", table("10.0.0.7")); err != nil {
		t.Fatal(err)
	}
	s := newTables(store)
	if err := s.LoadStored(); err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.Version != "v7" || st.Source != "disk" || st.Names == 0 {
		t.Errorf("status = %+v, want v7 from disk", st)
	}
	if store.saves != 1 {
		t.Errorf("%d saves, want 1: a table read from disk is not written back", store.saves)
	}
}

// TestPushTimeSurvivesARestart: after a restart, status says when the table
// was pushed, not when it was read from disk.
func TestPushTimeSurvivesARestart(t *testing.T) {
	store := &nametable.Store{Dir: t.TempDir()}
	pushed := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	before := New(Config{Store: store, Now: func() time.Time { return pushed }, Release: func() {}})
	if err := before.Push("v3", table("10.0.0.3")); err != nil {
		t.Fatal(err)
	}
	restarted := pushed.Add(5 * time.Hour)
	after := New(Config{Store: store, Now: func() time.Time { return restarted }, Release: func() {}})
	if err := after.LoadStored(); err != nil {
		t.Fatal(err)
	}
	st := after.Status()
	if st.Source != "disk" || st.Version != "v3" || !st.LastPush.Equal(pushed) || !st.Installed.Equal(restarted) {
		t.Errorf("status after restart = %+v, want v3 from disk, pushed %v, installed %v", st, pushed, restarted)
	}
}

func TestInstallFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "table.json")
	os.WriteFile(path, []byte(`{"table": {"db.internal": {"ips": ["10.1.0.1"], "registry": "External"}}}`), 0o644)
	store := &memStore{}
	s := newTables(store)
	if err := s.InstallFile(path); err != nil {
		t.Fatal(err)
	}
	if ips, _ := lookup(t, s, "db.internal."); !slices.Equal(ips, []string{"10.1.0.1"}) {
		t.Errorf("db.internal: %v", ips)
	}
	if st := s.Status(); st.Source != "file" || !st.LastPush.IsZero() || store.saves != 0 {
		t.Errorf("status %+v, %d saves: want a file table, never pushed, not saved", st, store.saves)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"table": {"db.internal": {"ips": 10}}}`), 0o644)
	if err := s.InstallFile(bad); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Errorf("want an error naming the file, got %v", err)
	}
	if ips, _ := lookup(t, s, "db.internal."); !slices.Equal(ips, []string{"10.1.0.1"}) {
		t.Errorf("after a file that does not parse: %v, want the previous table", ips)
	}
}

func TestPushTimeFromTheClock(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	s := New(Config{Now: func() time.Time { return now }, Release: func() {}})
	if err := s.Push("v1", table("10.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); !st.LastPush.Equal(now) || !st.Installed.Equal(now) {
		t.Errorf("status = %+v, want pushed and installed at %v", st, now)
	}
}

// TestOnInstall: a subscriber gets the index in use at once, then every
// install in order, until it unsubscribes.
func TestOnInstall(t *testing.T) {
	s := newTables(nil)
	if err := s.Push("v1", table("10.0.0.1")); err != nil {
		t.Fatal(err)
	}
	var got []*nametable.Index
	unsubscribe := s.OnInstall(func(ix *nametable.Index) { got = append(got, ix) })
	first := s.Index()
	if err := s.Push("v2", table("10.0.0.2")); err != nil {
		t.Fatal(err)
	}
	second := s.Index()
	unsubscribe()
	if err := s.Push("v4", table("10.0.0.4")); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != first || got[1] != second {
		t.Errorf("subscriber saw %d indexes, want the one in use then v2's", len(got))
	}
}

// TestAnswersDuringInstalls answers queries from several goroutines while
// tables are pushed; run with -race.
func TestAnswersDuringInstalls(t *testing.T) {
	s := newTables(nil)
	if err := s.Push("a", table("10.96.0.1")); err != nil {
		t.Fatal(err)
	}
	m := new(dns.Msg)
	m.SetQuestion("productpage.ns1.svc.cluster.local.", dns.TypeA)
	q, _ := m.Pack()
	qend := len(q)
	qname := q[12 : qend-4]

	var stop atomic.Bool
	var answered, failed atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, 512)
			for !stop.Load() {
				resp, ok := s.AppendResponse(buf[:0], q, qend, qname, dns.TypeA)
				r := new(dns.Msg)
				if !ok || r.Unpack(resp) != nil || len(r.Answer) != 1 {
					failed.Add(1)
					continue
				}
				if ip := r.Answer[0].(*dns.A).A.String(); ip != "10.96.0.1" && ip != "10.200.0.1" {
					failed.Add(1)
				}
				answered.Add(1)
			}
		}()
	}
	for i := 0; i < 200 || answered.Load() < 1000; i++ {
		ip := "10.96.0.1"
		if i%2 == 0 {
			ip = "10.200.0.1"
		}
		if err := s.Push("v", table(ip)); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d queries failed during installs", failed.Load(), answered.Load())
	}
}
