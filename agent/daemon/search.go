package daemon

import (
	"context"

	"github.com/hashicorp/go-hclog"

	"github.com/onramp-mesh/onramp/agent/resolvconf"
	"github.com/onramp-mesh/onramp/agent/tablestate"
)

// hostResolver is the one watch of the host's resolver state: the proxy
// follows its upstreams (unless dns.upstreams is set), the name table its
// search list (unless dns.searchDomains is set).
type hostResolver struct {
	watcher *resolvconf.Watcher
	log     hclog.Logger
}

func newHostResolver(paths resolvconf.Paths, log hclog.Logger) *hostResolver {
	return &hostResolver{watcher: &resolvconf.Watcher{Paths: paths}, log: log}
}

// followSearch keeps the index's search list equal to resolv.conf's, so
// that every search domain keeps its one-round-trip CNAMEs. An unreadable
// resolv.conf keeps the list in force.
func (r *hostResolver) followSearch(tables *tablestate.Tables) {
	r.watcher.Subscribe(func(h resolvconf.Host) {
		if h.ResolvErr != nil {
			r.log.Debug("resolv.conf unreadable; the search list stays", "error", h.ResolvErr)
			return
		}
		tables.SetSearch(h.Search, h.Ndots)
	})
}

// Run follows the files until ctx ends. A watch that cannot be set up is
// logged, not fatal: what was read at start stays in force.
func (r *hostResolver) Run(ctx context.Context) error {
	if err := r.watcher.Run(ctx); err != nil {
		r.log.Warn("not following the host's resolver; its state stays as read at start", "error", err)
	}
	return nil
}
