package mesh

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/go-hclog"

	"github.com/onramp-mesh/onramp/workloadentry"
)

// Options configures a Store.
type Options struct {
	// StatePath is the JSON file holding auto-allocated VIPs, so they stay
	// the same across restarts. Empty keeps them in memory only.
	StatePath string
	// ClusterDomain is the Kubernetes cluster domain; default "cluster.local".
	ClusterDomain string
	// DefaultCluster is the cluster of objects without the cluster label and
	// of proxies without CLUSTER_ID; default "Kubernetes" (istiod's).
	DefaultCluster string
	// RootNamespace holds the mesh-wide default Sidecar; default
	// "istio-system".
	RootNamespace string
	// Debounce is how long Watch waits for changes to settle; default 100ms.
	Debounce time.Duration
}

// Store holds the mesh configuration read from a directory. Reads
// (NameTable, WorkloadGroup, Version) use an immutable snapshot and are safe
// for concurrent use with Reload.
type Store struct {
	dir  string
	opts Options
	log  hclog.Logger

	mu    sync.Mutex // serialises reloads; guards alloc and gen
	alloc map[string]vipPair
	gen   uint64
	snap  atomic.Pointer[snapshot]
}

// Load reads every *.yaml and *.yml file in dir and the VIP state. It fails
// when any file is invalid, naming the file, document and field.
func Load(dir string, opts Options, log hclog.Logger) (*Store, error) {
	if opts.ClusterDomain == "" {
		opts.ClusterDomain = "cluster.local"
	}
	if opts.DefaultCluster == "" {
		opts.DefaultCluster = "Kubernetes"
	}
	if opts.RootNamespace == "" {
		opts.RootNamespace = "istio-system"
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	alloc, err := loadVIPs(opts.StatePath)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, opts: opts, log: log.Named("mesh"), alloc: alloc}
	if err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload re-reads the directory. On error the previous configuration stays
// in place and the error is logged and returned.
func (s *Store) Reload() error {
	err := s.reload()
	if err != nil {
		s.log.Error("mesh config rejected; keeping the previous one", "dir", s.dir, "version", s.Version(), "error", err)
	}
	return err
}

func (s *Store) reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	objs, err := readDir(s.dir, s.opts.DefaultCluster)
	if err != nil {
		return err
	}
	snap := build(objs, s.opts)
	alloc, changed, err := allocateVIPs(s.alloc, snap.vipHosts())
	if err != nil {
		return err
	}
	if changed {
		if err := saveVIPs(s.opts.StatePath, alloc); err != nil {
			return fmt.Errorf("%w; the new config was not applied", err)
		}
	}
	snap.applyVIPs(alloc)
	s.alloc = alloc
	s.gen++
	sum := sha256.Sum256(objs.digest)
	snap.version = fmt.Sprintf("%d-%s", s.gen, hex.EncodeToString(sum[:4]))
	s.snap.Store(snap)
	s.log.Info("mesh config loaded", "dir", s.dir, "version", snap.version,
		"services", len(snap.services), "workload_groups", len(snap.groups), "vips", len(alloc))
	return nil
}

// Version identifies the loaded configuration; it changes on every
// successful reload.
func (s *Store) Version() string {
	if snap := s.snap.Load(); snap != nil {
		return snap.version
	}
	return ""
}

// WorkloadGroup returns a copy of the WorkloadGroup namespace/name.
func (s *Store) WorkloadGroup(namespace, name string) (*workloadentry.Group, bool) {
	g, ok := s.snap.Load().groups[namespace+"/"+name]
	if !ok {
		return nil, false
	}
	return g.Clone(), true
}

// Watch reloads the configuration when a YAML file in the directory
// changes, once changes settle for Options.Debounce, and calls onChange
// after each successful reload. It blocks until ctx is done and then
// returns nil.
func (s *Store) Watch(ctx context.Context, onChange func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("mesh: watch %s: %w", s.dir, err)
	}
	defer w.Close()
	if err := w.Add(s.dir); err != nil {
		return fmt.Errorf("mesh: watch %s: %w; check the directory exists", s.dir, err)
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("mesh: file watcher closed")
			}
			base := filepath.Base(ev.Name)
			// "..data" is the symlink a Kubernetes ConfigMap volume swaps
			// on update.
			if (!isConfigFile(base) && base != "..data") || ev.Op == fsnotify.Chmod {
				continue
			}
			s.log.Debug("config file changed", "file", ev.Name, "op", ev.Op.String())
			timer.Reset(s.opts.Debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("mesh: file watcher closed")
			}
			s.log.Warn("file watcher error; forcing a reload", "dir", s.dir, "error", err)
			timer.Reset(s.opts.Debounce)
		case <-timer.C:
			if s.Reload() == nil && onChange != nil {
				onChange()
			}
		}
	}
}
