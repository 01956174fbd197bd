package daemon

import (
	"context"

	"github.com/hashicorp/go-hclog"

	"github.com/onramp-mesh/onramp/agent/resolvconf"
	"github.com/onramp-mesh/onramp/agent/tablestate"
)

// searchFollower keeps the index's search list equal to resolv.conf's, so
// that every search domain keeps its one-round-trip CNAMEs.
type searchFollower struct {
	path   string
	tables *tablestate.Tables
	log    hclog.Logger
}

// Run follows the file until ctx ends. A watch that cannot be set up is
// logged, not fatal: the search list stays as read at start.
func (f *searchFollower) Run(ctx context.Context) error {
	err := resolvconf.Watch(ctx, f.path, func(rc *resolvconf.Config) {
		f.tables.SetSearch(rc.Search, rc.Ndots)
	})
	if err != nil {
		f.log.Warn("not following the search list; it stays as read at start", "file", f.path, "error", err)
	}
	return nil
}

// readResolvConf reads the search list and ndots at start.
func readResolvConf(path string) (*resolvconf.Config, error) { return resolvconf.ParseFile(path) }
