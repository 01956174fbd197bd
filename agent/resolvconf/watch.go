package resolvconf

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Host is the host's resolver state, as one Watcher reads it for every part
// of the agent: the search list and ndots that applications use, and the
// real upstream servers behind them.
type Host struct {
	// Search and Ndots come from Paths.ResolvConf, the file glibc applies
	// to the host's own queries. They are valid unless ResolvErr is set.
	Search    []string
	Ndots     int
	ResolvErr error
	// Upstreams are the servers a forwarder on this host should use, as
	// Paths.HostUpstreams finds them, read from UpstreamsFrom. When
	// UpstreamErr is set they are empty: keep the previous ones.
	Upstreams     []netip.AddrPort
	UpstreamsFrom string
	UpstreamErr   error
}

// Equal reports whether h and o describe the same state (errors compared by
// their text).
func (h Host) Equal(o Host) bool {
	return slices.Equal(h.Search, o.Search) && h.Ndots == o.Ndots && errText(h.ResolvErr) == errText(o.ResolvErr) &&
		slices.Equal(h.Upstreams, o.Upstreams) && h.UpstreamsFrom == o.UpstreamsFrom && errText(h.UpstreamErr) == errText(o.UpstreamErr)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// ReadHost reads the host's resolver state from p once.
func (p Paths) ReadHost() Host {
	var h Host
	if c, err := ParseFile(p.withDefaults().ResolvConf); err != nil {
		h.ResolvErr = err
	} else {
		h.Search, h.Ndots = c.Search, c.Ndots
	}
	path, cfg, err := p.HostUpstreams()
	h.UpstreamsFrom, h.UpstreamErr = path, err
	if err == nil {
		h.Upstreams = cfg.Servers
	}
	return h
}

// Default timing of a Watcher.
const (
	// DefaultDebounce coalesces the burst of events an editor or
	// resolvconf(8) makes into one re-read.
	DefaultDebounce = 100 * time.Millisecond
	// DefaultResync re-reads the files even without events, in case a
	// change was missed (e.g. a directory that did not exist yet).
	DefaultResync = 30 * time.Second
)

// Watcher follows the host's resolver state (Host) and tells every
// subscriber when it changes: the DNS proxy follows the upstreams, the
// name table the search list, from one watch of the files. Set the fields
// before Run; the zero value watches the system paths.
//
// It watches the files' directories, and those of their symlink targets,
// so atomic replacements (a rename over the file, as resolvconf(8) and
// systemd-resolved do) are seen.
type Watcher struct {
	// Paths says which files are read; see Paths.
	Paths Paths
	// Debounce and Resync time the re-reads; zero means DefaultDebounce
	// and DefaultResync.
	Debounce, Resync time.Duration

	readMu sync.Mutex // one read at a time, so states arrive in order
	mu     sync.Mutex // guards cur and subs; held while subscribers run
	cur    *Host
	subs   map[int]func(Host)
	next   int

	// checked, when set, is called after every read (for tests).
	checked func()
}

// Current returns the last state read, and false before the first read.
func (w *Watcher) Current() (Host, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cur == nil {
		return Host{}, false
	}
	return *w.cur, true
}

// Subscribe calls fn with the current state, if one was read, and then
// with each new state, in order, from the watcher's goroutine; fn must not
// block for long nor call the Watcher. The returned function ends the
// subscription.
func (w *Watcher) Subscribe(fn func(Host)) (cancel func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.subs == nil {
		w.subs = make(map[int]func(Host))
	}
	id := w.next
	w.next++
	w.subs[id] = fn
	if w.cur != nil {
		fn(*w.cur)
	}
	return func() {
		w.mu.Lock()
		delete(w.subs, id)
		w.mu.Unlock()
	}
}

// Read reads the state now, records it as the current one and tells the
// subscribers if it changed; it returns it. A caller that needs the state
// before Run (to build the name table at start, say) reads it here, and
// Run's first read then finds nothing new.
func (w *Watcher) Read() Host {
	w.readMu.Lock()
	defer w.readMu.Unlock()
	h := w.Paths.ReadHost()
	w.mu.Lock()
	if w.cur == nil || !w.cur.Equal(h) {
		w.cur = &h
		ids := make([]int, 0, len(w.subs))
		for id := range w.subs {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			w.subs[id](h)
		}
	}
	w.mu.Unlock()
	return h
}

// check is one read of the watch loop.
func (w *Watcher) check() {
	w.Read()
	if w.checked != nil {
		w.checked()
	}
}

// Run reads the state at once and then follows it until ctx is done, and
// returns nil then. It returns an error only when the watch cannot be set
// up (the state is still read once and subscribers told).
func (w *Watcher) Run(ctx context.Context) error {
	p := w.Paths.withDefaults()
	debounce, resync := w.Debounce, w.Resync
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	if resync <= 0 {
		resync = DefaultResync
	}
	return watchFiles(ctx, []string{p.ResolvConf, p.ResolvedUpstream}, debounce, resync, w.check)
}

// watchFiles calls check at start, after each debounced burst of events on
// any of files, and every resync.
func watchFiles(ctx context.Context, files []string, debounce, resync time.Duration, check func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		check()
		return fmt.Errorf("resolvconf: cannot watch %v: %w", files, err)
	}
	defer w.Close()
	names := map[string]bool{}
	dirs := map[string]bool{}
	addDir := func(f string) {
		names[filepath.Clean(f)] = true
		d := filepath.Dir(f)
		if dirs[d] {
			return
		}
		if w.Add(d) == nil {
			dirs[d] = true
		}
	}
	// watchTargets (re)adds the directories of the files and of their
	// symlink targets, which can change (resolv.conf relinked).
	watchTargets := func() {
		for _, f := range files {
			addDir(f)
			if t, err := filepath.EvalSymlinks(f); err == nil && t != f {
				addDir(t)
			}
		}
	}
	watchTargets()
	check()
	if len(dirs) == 0 {
		return fmt.Errorf("resolvconf: cannot watch %v: none of their directories exists", files)
	}

	timer := time.NewTimer(debounce)
	timer.Stop()
	tick := time.NewTicker(resync)
	defer tick.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if names[filepath.Clean(ev.Name)] {
				timer.Reset(debounce)
			}
		case <-w.Errors:
			// An overflowed queue loses events: re-read soon.
			timer.Reset(debounce)
		case <-timer.C:
			watchTargets()
			check()
		case <-tick.C:
			watchTargets()
			check()
		}
	}
}
