package redirect

import (
	"context"
	"net/netip"
	"slices"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/onramp-mesh/onramp/agent/resolvconf"
)

// noRedirect is the backend of a host onramp cannot (or was told not to)
// redirect: it changes nothing and says why in its State.
type noRedirect struct {
	mu     sync.Mutex
	reason string
	plan   Plan
}

// NewNone returns the backend that changes nothing; reason is shown in
// status and by doctor.
func NewNone(reason string) Backend { return &noRedirect{reason: reason} }

func (n *noRedirect) Name() string { return None }

func (n *noRedirect) Apply(_ context.Context, p Plan) error {
	n.mu.Lock()
	n.plan = p.Normalize()
	n.mu.Unlock()
	return nil
}

func (n *noRedirect) State() State {
	n.mu.Lock()
	defer n.mu.Unlock()
	return State{Backend: None, Reason: n.reason, LastError: n.reason, Listen: addrStrings(n.plan.Listen), Domains: slices.Clone(n.plan.Domains)}
}

func (n *noRedirect) Remove(context.Context) error { return nil }

// Options are what New passes on to the backend it builds.
type Options struct {
	StateDir string
	// Host is the watcher of the host's resolver (nftables follows its
	// nameservers).
	Host *resolvconf.Watcher
	// OnUpstreams receives resolved's real servers (resolved backend).
	OnUpstreams func([]netip.AddrPort)
	Log         hclog.Logger
}

// New builds the backend c names.
func New(c Choice, o Options) Backend {
	if o.Log == nil {
		o.Log = hclog.NewNullLogger()
	}
	switch c.Backend {
	case Resolved:
		return NewResolved(ResolvedConfig{StateDir: o.StateDir, OnUpstreams: o.OnUpstreams, Log: o.Log})
	case Nftables:
		cfg := NftablesConfig{StateDir: o.StateDir, Host: o.Host, Log: o.Log}
		if o.Host != nil {
			cfg.Nameservers = resolvNameservers(o.Host.Paths)
		} else {
			cfg.Nameservers = resolvNameservers(resolvconf.Paths{})
		}
		return NewNftables(cfg)
	}
	return NewNone(c.Reason)
}
