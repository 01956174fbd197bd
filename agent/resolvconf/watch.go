package resolvconf

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Timing of Watch. Debounce coalesces the burst of events an editor or
// resolvconf(8) makes into one re-read; Resync re-reads the file even without
// events, in case a change was missed (e.g. a directory that did not exist yet).
var (
	Debounce = 100 * time.Millisecond
	Resync   = 30 * time.Second
)

// Watch follows the resolv.conf file at path. It calls onChange once with the
// current content, then again each time the content changes (a rename over
// the file, as resolvconf(8) and systemd-resolved do, counts). It watches the
// file's directory, and the directory of its symlink target, so atomic
// replacements are seen. While the file is missing or unreadable onChange is
// not called; the last configuration stays in force.
//
// Watch blocks until ctx is done and then returns nil; it returns an error
// only when the watch cannot be set up.
func Watch(ctx context.Context, path string, onChange func(*Config)) error {
	var last *Config
	return watchFiles(ctx, []string{path}, func() {
		c, err := ParseFile(path)
		if err != nil || c.Equal(last) {
			return
		}
		last = c
		onChange(c)
	})
}

// WatchHost follows the host's upstreams as HostUpstreams sees them: it
// watches both p.ResolvConf and p.ResolvedUpstream and calls onChange with
// the result of p.HostUpstreams once at start and then whenever that result
// (the path, the configuration or the error text) changes. It blocks until
// ctx is done and returns nil then.
func (p Paths) WatchHost(ctx context.Context, onChange func(path string, cfg *Config, err error)) error {
	p = p.withDefaults()
	var (
		lastPath, lastErr string
		lastCfg           *Config
		first             = true
	)
	return watchFiles(ctx, []string{p.ResolvConf, p.ResolvedUpstream}, func() {
		path, cfg, err := p.HostUpstreams()
		es := ""
		if err != nil {
			es = err.Error()
		}
		if !first && path == lastPath && es == lastErr && cfg.Equal(lastCfg) {
			return
		}
		first = false
		lastPath, lastCfg, lastErr = path, cfg, es
		onChange(path, cfg, err)
	})
}

// watchFiles calls check at start, after each debounced burst of events on
// any of files, and every Resync.
func watchFiles(ctx context.Context, files []string, check func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
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
	if len(dirs) == 0 {
		return fmt.Errorf("resolvconf: cannot watch %v: none of their directories exists", files)
	}
	check()

	var timer *time.Timer
	var fire <-chan time.Time
	resync := time.NewTicker(Resync)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if !names[filepath.Clean(ev.Name)] {
				continue
			}
			if timer == nil {
				timer = time.NewTimer(Debounce)
			} else {
				timer.Reset(Debounce)
			}
			fire = timer.C
		case <-w.Errors:
			// An overflowed queue loses events: re-read soon.
			if timer == nil {
				timer = time.NewTimer(Debounce)
			} else {
				timer.Reset(Debounce)
			}
			fire = timer.C
		case <-fire:
			fire = nil
			watchTargets()
			check()
		case <-resync.C:
			watchTargets()
			check()
		}
	}
}
