package workloadentry

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Defaults of RegistryOptions, as in istiod.
const (
	// DefaultGracePeriod is PILOT_WORKLOAD_ENTRY_GRACE_PERIOD.
	DefaultGracePeriod = 10 * time.Second
	// DefaultMaxConnectionAge is istiod's default MAX_CONNECTION_AGE.
	DefaultMaxConnectionAge = 30 * time.Minute
	// DefaultSweepInterval is how often the periodic cleanup runs.
	DefaultSweepInterval = 100 * time.Second
)

// RegistryOptions configures a Registry. Zero values take the defaults.
type RegistryOptions struct {
	// Controller is the control plane instance written to
	// istio.io/workloadController.
	Controller string
	// GracePeriod is how long a disconnected entry survives before it is
	// deleted, unless the workload reconnects.
	GracePeriod time.Duration
	// MaxConnectionAge is the control plane's maximum ADS connection age; the
	// sweep removes disconnected entries whose connectedAt is older than 1.5x
	// this age (entries leaked when no disconnect was recorded).
	MaxConnectionAge time.Duration
	// SweepInterval is the period of the cleanup sweep; negative disables it.
	SweepInterval time.Duration
	// Clock is the time source; nil means SystemClock.
	Clock Clock
}

// EventType says what happened to an entry.
type EventType int

// Event types.
const (
	EventAdded EventType = iota + 1
	EventUpdated
	EventDeleted
)

// String returns "added", "updated" or "deleted".
func (t EventType) String() string {
	switch t {
	case EventAdded:
		return "added"
	case EventUpdated:
		return "updated"
	case EventDeleted:
		return "deleted"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event is a change notification. Entry is a copy the receiver owns.
type Event struct {
	Type  EventType
	Entry *Entry
}

// Registry holds the auto-registered WorkloadEntries of a control plane and
// gives them istiod's lifecycle. It is safe for concurrent use.
type Registry struct {
	opts RegistryOptions
	log  hclog.Logger

	mu        sync.Mutex
	entries   map[string]*record
	subs      map[int]func(Event)
	nextSub   int
	stopSweep func() bool
	closed    bool
}

type record struct {
	entry *Entry
	conns int
	// gen changes on every connect and disconnect so a stale grace timer
	// does nothing.
	gen       uint64
	stopGrace func() bool
}

// NewRegistry returns an empty Registry and starts its periodic sweep.
// Call Close to stop it.
func NewRegistry(opts RegistryOptions, log hclog.Logger) *Registry {
	if opts.GracePeriod <= 0 {
		opts.GracePeriod = DefaultGracePeriod
	}
	if opts.MaxConnectionAge <= 0 {
		opts.MaxConnectionAge = DefaultMaxConnectionAge
	}
	if opts.SweepInterval == 0 {
		opts.SweepInterval = DefaultSweepInterval
	}
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	r := &Registry{
		opts:    opts,
		log:     log.Named("workloadentry"),
		entries: map[string]*record{},
		subs:    map[int]func(Event){},
	}
	r.mu.Lock()
	r.scheduleSweep()
	r.mu.Unlock()
	return r
}

// Close stops the sweep and all grace timers. Entries stay readable.
func (r *Registry) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.stopSweep != nil {
		r.stopSweep()
	}
	for _, rec := range r.entries {
		if rec.stopGrace != nil {
			rec.stopGrace()
			rec.stopGrace = nil
		}
	}
}

func (r *Registry) scheduleSweep() {
	if r.closed || r.opts.SweepInterval < 0 {
		return
	}
	r.stopSweep = r.opts.Clock.AfterFunc(r.opts.SweepInterval, func() {
		r.Sweep()
		r.mu.Lock()
		r.scheduleSweep()
		r.mu.Unlock()
	})
}

// Connect records a new connection of workload n to group g. The first
// connection creates the entry from the group ([FromGroup]); a later one
// (a reconnect, or a second stream of the same workload) only sets
// connectedAt and the controller and clears disconnectedAt, keeping the
// entry's spec and status, as istiod does. It returns a copy of the entry.
// A missing group gives an error wrapping ErrGroupNotFound.
func (r *Registry) Connect(g *Group, n Node) (*Entry, error) {
	now := r.opts.Clock.Now()
	fresh, err := FromGroup(g, n, r.opts.Controller, now)
	if err != nil {
		return nil, err
	}
	key := fresh.Key()
	r.mu.Lock()
	rec, ok := r.entries[key]
	typ := EventUpdated
	if ok {
		setConnectMeta(rec.entry, r.opts.Controller, now)
	} else {
		typ = EventAdded
		rec = &record{entry: fresh}
		r.entries[key] = rec
	}
	rec.conns++
	rec.gen++
	if rec.stopGrace != nil {
		rec.stopGrace()
		rec.stopGrace = nil
	}
	out := rec.entry.Clone()
	conns := rec.conns
	subs := r.subscribers()
	r.mu.Unlock()

	r.log.Info("workload connected", "entry", key, "address", out.Spec.GetAddress(), "connections", conns, "new", typ == EventAdded)
	notify(subs, Event{Type: typ, Entry: out})
	return out.Clone(), nil
}

// Disconnect records the end of one connection of the entry. When the last
// connection ends it sets disconnectedAt and deletes the entry after the
// grace period unless the workload reconnects. It reports whether the entry
// was known and connected.
func (r *Registry) Disconnect(namespace, name string) bool {
	key := namespace + "/" + name
	r.mu.Lock()
	rec, ok := r.entries[key]
	if !ok || rec.conns == 0 {
		r.mu.Unlock()
		r.log.Warn("disconnect of an entry with no connection ignored", "entry", key)
		return false
	}
	rec.conns--
	if rec.conns > 0 {
		conns := rec.conns
		r.mu.Unlock()
		r.log.Debug("workload stream closed; others remain", "entry", key, "connections", conns)
		return true
	}
	now := r.opts.Clock.Now()
	setDisconnectMeta(rec.entry, now)
	rec.gen++
	gen := rec.gen
	if !r.closed {
		rec.stopGrace = r.opts.Clock.AfterFunc(r.opts.GracePeriod, func() { r.expire(key, gen) })
	}
	out := rec.entry.Clone()
	subs := r.subscribers()
	r.mu.Unlock()

	r.log.Info("workload disconnected", "entry", key, "delete_after", r.opts.GracePeriod)
	notify(subs, Event{Type: EventUpdated, Entry: out})
	return true
}

func (r *Registry) expire(key string, gen uint64) {
	r.mu.Lock()
	rec, ok := r.entries[key]
	if !ok || rec.gen != gen || rec.conns > 0 {
		r.mu.Unlock()
		return
	}
	delete(r.entries, key)
	out := rec.entry
	subs := r.subscribers()
	r.mu.Unlock()
	r.log.Info("disconnected entry deleted after grace period", "entry", key, "grace", r.opts.GracePeriod)
	notify(subs, Event{Type: EventDeleted, Entry: out})
}

// Sweep removes entries with no connection that are either disconnected for
// longer than the grace period, or whose connectedAt is older than 1.5x the
// maximum connection age. Connected entries are never removed. It returns
// how many entries were removed. The registry runs it every SweepInterval.
func (r *Registry) Sweep() int {
	now := r.opts.Clock.Now()
	maxAge := r.opts.MaxConnectionAge * 3 / 2
	r.mu.Lock()
	var removed []*Entry
	for key, rec := range r.entries {
		if rec.conns > 0 {
			continue
		}
		e := rec.entry
		remove := false
		if at, ok := e.DisconnectedAt(); ok && now.Sub(at) >= r.opts.GracePeriod {
			remove = true
		}
		if at, ok := e.ConnectedAt(); ok && now.Sub(at) > maxAge {
			remove = true
		}
		if remove {
			if rec.stopGrace != nil {
				rec.stopGrace()
			}
			delete(r.entries, key)
			removed = append(removed, e)
		}
	}
	subs := r.subscribers()
	r.mu.Unlock()
	for _, e := range removed {
		r.log.Info("sweep removed stale entry", "entry", e.Key())
		notify(subs, Event{Type: EventDeleted, Entry: e})
	}
	return len(removed)
}

// SetHealth writes the Healthy condition of an entry from the workload's
// health report: status True when healthy, False with message otherwise.
// LastTransition changes only when the status does. It fails when the entry
// is unknown or its workload did not enable health checks (istiod ignores
// those reports).
func (r *Registry) SetHealth(namespace, name string, healthy bool, message string) (*Entry, error) {
	key := namespace + "/" + name
	now := r.opts.Clock.Now()
	r.mu.Lock()
	rec, ok := r.entries[key]
	if !ok {
		r.mu.Unlock()
		return nil, fmt.Errorf("workloadentry: health report for unknown entry %s; the workload must connect with AUTO_REGISTER_GROUP first", key)
	}
	if rec.entry.Annotations[AnnotationHealthChecksEnabled] != "true" {
		r.mu.Unlock()
		return nil, fmt.Errorf("workloadentry: health report for %s ignored: health checks are not enabled; send PROXY_CONFIG.readinessProbe in the node metadata", key)
	}
	c := Condition{Type: ConditionHealthy, Status: StatusTrue, LastTransition: now}
	if !healthy {
		c.Status = StatusFalse
		c.Message = message
	}
	conds := rec.entry.Conditions
	i := slices.IndexFunc(conds, func(c Condition) bool { return c.Type == ConditionHealthy })
	switch {
	case i < 0:
		rec.entry.Conditions = append(conds, c)
	default:
		if conds[i].Status == c.Status {
			c.LastTransition = conds[i].LastTransition
		}
		conds[i] = c
	}
	out := rec.entry.Clone()
	subs := r.subscribers()
	r.mu.Unlock()
	r.log.Info("workload health", "entry", key, "healthy", healthy, "message", message)
	notify(subs, Event{Type: EventUpdated, Entry: out})
	return out.Clone(), nil
}

// Get returns a copy of the entry namespace/name.
func (r *Registry) Get(namespace, name string) (*Entry, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.entries[namespace+"/"+name]
	if !ok {
		return nil, false
	}
	return rec.entry.Clone(), true
}

// Connections returns the number of open connections of an entry.
func (r *Registry) Connections(namespace, name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec, ok := r.entries[namespace+"/"+name]; ok {
		return rec.conns
	}
	return 0
}

// List returns copies of all entries sorted by namespace and name.
func (r *Registry) List() []*Entry {
	r.mu.Lock()
	out := make([]*Entry, 0, len(r.entries))
	for _, rec := range r.entries {
		out = append(out, rec.entry.Clone())
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b *Entry) int {
		if a.Namespace != b.Namespace {
			if a.Namespace < b.Namespace {
				return -1
			}
			return 1
		}
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// Subscribe calls fn after every change, outside the registry's lock, with
// a copy of the entry. Calls for different changes may run concurrently.
// The returned function cancels the subscription.
func (r *Registry) Subscribe(fn func(Event)) (cancel func()) {
	r.mu.Lock()
	id := r.nextSub
	r.nextSub++
	r.subs[id] = fn
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.subs, id)
		r.mu.Unlock()
	}
}

func (r *Registry) subscribers() []func(Event) {
	out := make([]func(Event), 0, len(r.subs))
	for _, fn := range r.subs {
		out = append(out, fn)
	}
	return out
}

func notify(subs []func(Event), ev Event) {
	for _, fn := range subs {
		fn(Event{Type: ev.Type, Entry: ev.Entry.Clone()})
	}
}
