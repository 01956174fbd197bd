// Package tablestate owns the mesh name table the agent serves, through its
// whole life:
//
//	InstallFile ─┐                                  ┌─► the proxy answers from Tables (AppendResponse)
//	LoadStored ──┼─► nametable.Build ─► the index ──┼─► OnInstall subscribers (the redirect's domains)
//	Push ────────┘         ▲                        └─► Status, Snapshot, metrics
//	   └─► Store.Save      │
//	SetSearch ─────────────┘ (rebuilt from the newest table kept in memory)
//
// Tables holds the one copy of the index in use. The DNS proxy reads it
// through Tables.AppendResponse (a dnsproxy.Table), so a new index is served
// the moment it is stored, and nobody keeps a second reference that could go
// stale.
//
// The newest table is also kept in memory, encoded (a few bytes per name,
// far less than the decoded protobuf), so that a rebuild for a new search
// list always starts from the table being served, whether or not it reached
// the disk: istiod does not resend a table it saw ACKed.
package tablestate

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/proto"

	"github.com/onramp-mesh/onramp/agent/nametable"
	"github.com/onramp-mesh/onramp/agent/status"
	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
)

// Source says where the table in use came from.
type Source string

const (
	// FromFile is a static table read from a protojson file (--name-table).
	FromFile Source = "file"
	// FromDisk is the last good table kept by the Store, read at start.
	FromDisk Source = "disk"
	// FromControlPlane is a table pushed by istiod over NDS.
	FromControlPlane Source = "control-plane"
)

// Store keeps the last good pushed table on disk; *nametable.Store
// implements it.
type Store interface {
	Save(nametable.Stored) error
	Load() (nametable.Stored, error)
}

// Config configures Tables.
type Config struct {
	// Host is what the host adds to every index: the proxy's namespace,
	// the cluster domain, the search list and ndots. SetSearch changes the
	// last two.
	Host nametable.HostContext
	// Options tune every index built (TTL, data plane).
	Options nametable.Options
	// Store keeps pushed tables across restarts; nil keeps none.
	Store Store
	// Log receives installs, rejections and save failures.
	Log hclog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Release hands a build's garbage back to the OS after each install;
	// nil means debug.FreeOSMemory now and once more a second later, when
	// the caller has let go of the decoded table.
	Release func()
}

// Tables owns the index in use and everything about the table it came
// from. Create it with New; it is safe for concurrent use.
type Tables struct {
	cfg Config
	log hclog.Logger

	// ix is the one copy of the index in use, read on every query.
	ix atomic.Pointer[nametable.Index]

	// mu orders installs (pushes, rebuilds for a new search list) and
	// guards what follows.
	mu        sync.Mutex
	host      nametable.HostContext
	encoded   []byte // the newest installed table, binary protobuf
	version   string
	source    Source
	pushed    time.Time // when the control plane pushed it (zero for a file)
	installed time.Time
	saveErr   error
	subs      []subscriber
	nextSub   int

	installs, rejects, saveFailures atomic.Uint64
}

// New returns Tables with no index: every query is handed on until the
// first install.
func New(cfg Config) *Tables {
	if cfg.Log == nil {
		cfg.Log = hclog.NewNullLogger()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Release == nil {
		cfg.Release = releaseMemory
	}
	if cfg.Options.Lookups == nil {
		// One counter for every index, so lookups of withheld names add up across tables.
		cfg.Options.Lookups = new(nametable.Lookups)
	}
	return &Tables{cfg: cfg, log: cfg.Log, host: cfg.Host}
}

// releaseMemory returns a build's garbage (several times the index) to the
// OS now instead of keeping it resident, and once more when the caller has
// let go of the decoded table.
func releaseMemory() {
	debug.FreeOSMemory()
	time.AfterFunc(time.Second, debug.FreeOSMemory)
}

// Index returns the index in use, or nil before the first install.
func (s *Tables) Index() *nametable.Index { return s.ix.Load() }

// AppendResponse answers a mesh query from the index in use (see
// nametable.Index.AppendResponse); with no index it returns false. It takes
// no lock: this is the proxy's hot path.
func (s *Tables) AppendResponse(dst, query []byte, qend int, qname []byte, qtype uint16) ([]byte, bool) {
	return s.ix.Load().AppendResponse(dst, query, qend, qname, qtype)
}

// InstallFile serves the protojson table in path (a static table). Errors
// name the file.
func (s *Tables) InstallFile(path string) error {
	t, err := nametable.LoadJSON(path)
	if err != nil {
		return err
	}
	if err := s.install(t, "", FromFile, time.Time{}, false); err != nil {
		return fmt.Errorf("name table %s: %w", path, err)
	}
	return nil
}

// LoadStored serves the last good table from the Store, so that DNS answers
// at boot before the control plane is reached; Status keeps saying when it
// was pushed. With no stored table it returns an error wrapping
// os.ErrNotExist and changes nothing.
func (s *Tables) LoadStored() error {
	if s.cfg.Store == nil {
		return fmt.Errorf("tablestate: no store: %w", os.ErrNotExist)
	}
	st, err := s.cfg.Store.Load()
	if err != nil {
		return err
	}
	return s.install(st.Table, st.Version, FromDisk, st.Pushed, false)
}

// Push installs a table the control plane pushed and keeps it in the Store.
// A table that does not build changes nothing and returns the reason (the
// NACK's text). A failed save is logged and reported in Status, not
// returned: the table is served, and ACKed.
func (s *Tables) Push(version string, t *ndspb.NameTable) error {
	return s.install(t, version, FromControlPlane, s.cfg.Now(), true)
}

func (s *Tables) install(t *ndspb.NameTable, version string, source Source, pushed time.Time, save bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	encoded, err := proto.MarshalOptions{Deterministic: true}.Marshal(t)
	if err != nil {
		s.rejects.Add(1)
		return fmt.Errorf("tablestate: encoding the table: %w", err)
	}
	if err := s.buildLocked(t, version, source); err != nil {
		s.rejects.Add(1)
		return err
	}
	s.encoded, s.version, s.source, s.pushed = encoded, version, source, pushed
	if save && s.cfg.Store != nil {
		s.saveErr = s.cfg.Store.Save(nametable.Stored{Table: t, Version: version, Pushed: pushed})
		if s.saveErr != nil {
			s.saveFailures.Add(1)
			s.log.Warn("could not keep the name table on disk; DNS still serves it", "version", version, "error", s.saveErr)
		}
	}
	s.cfg.Release()
	return nil
}

// buildLocked builds an index of t for the current host and makes it the
// one in use, then tells the subscribers. s.mu is held.
func (s *Tables) buildLocked(t *ndspb.NameTable, version string, source Source) error {
	start := s.cfg.Now()
	ix, err := nametable.Build(t, s.host, s.cfg.Options)
	if err != nil {
		s.log.Error("rejected name table; keeping the previous one", "version", version, "source", string(source), "error", err)
		return err
	}
	s.ix.Store(ix)
	if version != s.version || source != s.source || s.installs.Load() == 0 {
		// Once per table, not again when it is rebuilt for a search list.
		for _, sk := range ix.Skipped() {
			s.log.Warn("name table entry not fully served", "version", version, "host", sk.Host, "address", sk.Address, "skipped", sk.Entry, "reason", sk.Reason)
		}
	}
	s.installed = s.cfg.Now()
	s.installs.Add(1)
	s.log.Info("name table installed", "version", version, "source", string(source), "hosts", len(t.GetTable()), "names", ix.Len(),
		"took", s.installed.Sub(start).Round(time.Microsecond))
	for _, sub := range s.subs {
		sub.f(ix)
	}
	return nil
}

// SetSearch follows the host's search list and ndots (resolv.conf). A new
// search list rebuilds the index from the newest table, so that every
// search domain keeps its one-round-trip CNAMEs; ndots alone changes
// nothing in the index and only updates what Status reports.
func (s *Tables) SetSearch(search []string, ndots int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sameSearch := slices.Equal(s.host.Search, search)
	if sameSearch && s.host.Ndots == ndots {
		return
	}
	s.host.Search, s.host.Ndots = slices.Clone(search), ndots
	if sameSearch {
		s.log.Debug("ndots changed; the index stays", "ndots", ndots)
		return
	}
	s.log.Info("search list changed", "search", strings.Join(search, " "), "ndots", ndots)
	if s.encoded == nil {
		return // no table yet; the first one is built with the new list
	}
	t := new(ndspb.NameTable)
	if err := proto.Unmarshal(s.encoded, t); err != nil {
		// Cannot happen: the bytes were encoded from a table that built.
		s.log.Error("cannot rebuild the name table for the new search list; the old index stays", "error", err)
		return
	}
	if err := s.buildLocked(t, s.version, s.source); err != nil {
		s.log.Warn("cannot rebuild the name table for the new search list; the old index stays", "error", err)
		return
	}
	s.cfg.Release()
}

// OnInstall calls f with every index installed from now on, in install
// order, and at once with the index in use if there is one. f runs with
// installs held off: it must return quickly (hand the index to a goroutine
// of its own for slow work). The returned function unsubscribes.
func (s *Tables) OnInstall(f func(*nametable.Index)) (unsubscribe func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextSub
	s.nextSub++
	s.subs = append(s.subs, subscriber{id, f})
	if ix := s.ix.Load(); ix != nil {
		f(ix)
	}
	return func() {
		s.mu.Lock()
		s.subs = slices.DeleteFunc(s.subs, func(sub subscriber) bool { return sub.id == id })
		s.mu.Unlock()
	}
}

// Ready returns nil once an index is served, or why not.
func (s *Tables) Ready() error {
	if s.ix.Load() == nil {
		return errors.New("no name table yet (waiting for the control plane)")
	}
	return nil
}

// Status is what `onramp status` shows about the table.
func (s *Tables) Status() status.NameTable {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := status.NameTable{
		Names:     s.ix.Load().Len(),
		Hosts:     s.ix.Load().Hosts(),
		Version:   s.version,
		Source:    string(s.source),
		LastPush:  s.pushed,
		Installed: s.installed,
		Search:    slices.Clone(s.host.Search),
		Ndots:     s.host.Ndots,
		Skipped:   s.ix.Load().Skipped(),
		Withheld:  s.ix.Load().Withheld(),
	}
	if s.saveErr != nil {
		st.SaveError = s.saveErr.Error()
	}
	return st
}

// Snapshot is the whole index in use, for /debug/nametable.
func (s *Tables) Snapshot() nametable.Snapshot { return s.ix.Load().Snapshot() }

// WritePrometheus writes the table's metrics in the Prometheus text format.
func (s *Tables) WritePrometheus(w io.Writer) {
	ix := s.ix.Load()
	fmt.Fprintf(w, "# HELP onramp_nametable_names Names the mesh name table answers directly.\n# TYPE onramp_nametable_names gauge\nonramp_nametable_names %d\n", ix.Len())
	fmt.Fprintf(w, "# HELP onramp_nametable_installs_total Indexes installed (pushes, start-up loads, search-list rebuilds).\n# TYPE onramp_nametable_installs_total counter\nonramp_nametable_installs_total %d\n", s.installs.Load())
	fmt.Fprintf(w, "# HELP onramp_nametable_rejected_total Tables that did not build and were refused.\n# TYPE onramp_nametable_rejected_total counter\nonramp_nametable_rejected_total %d\n", s.rejects.Load())
	ix.WritePrometheus(w)
	fmt.Fprintf(w, "# HELP onramp_nametable_save_failures_total Pushed tables served but not kept on disk.\n# TYPE onramp_nametable_save_failures_total counter\nonramp_nametable_save_failures_total %d\n", s.saveFailures.Load())
}

type subscriber struct {
	id int
	f  func(*nametable.Index)
}
