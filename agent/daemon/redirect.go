package daemon

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/onramp-mesh/onramp/agent/config"
	"github.com/onramp-mesh/onramp/agent/nametable"
	"github.com/onramp-mesh/onramp/agent/redirect"
	"github.com/onramp-mesh/onramp/agent/resolvconf"
	"github.com/onramp-mesh/onramp/agent/status"
	"github.com/onramp-mesh/onramp/agent/tablestate"
)

// hostRedirect points the host's resolver at the proxy while the agent
// runs: it applies the plan once DNS serves, again whenever the table's
// domains change, and removes it when the agent stops.
type hostRedirect struct {
	backend redirect.Backend
	choice  redirect.Choice
	tables  *tablestate.Tables
	dns     *dnsServer
	stubs   []string
	capture bool
	log     hclog.Logger
	kick    chan struct{}
}

// detectRedirect picks the backend for cfg.Redirect.Mode. An explicit mode
// the host cannot do is logged and the agent runs without a redirect:
// DNS keeps serving on its own addresses.
func detectRedirect(cfg config.Config, host redirect.Host, log hclog.Logger) redirect.Choice {
	c, err := redirect.Detect(cfg.Redirect.Mode, host)
	if err != nil {
		log.Error("no redirect of the host's resolver", "error", err)
		return redirect.Choice{Backend: redirect.None, Reason: err.Error()}
	}
	if c.Backend == redirect.None {
		if cfg.Redirect.Mode == redirect.None {
			log.Info("no redirect of the host's resolver", "reason", c.Reason)
		} else {
			log.Warn("NO REDIRECT of the host's resolver: applications do not get mesh answers unless pointed at onramp by hand", "reason", c.Reason)
		}
	} else {
		log.Info("redirecting the host's resolver", "backend", c.Backend, "reason", c.Reason)
	}
	return c
}

func newHostRedirect(cfg config.Config, c redirect.Choice, build func(redirect.Choice, redirect.Options) redirect.Backend, d *dnsServer, tables *tablestate.Tables, watcher *resolvconf.Watcher, log hclog.Logger) *hostRedirect {
	r := &hostRedirect{choice: c, tables: tables, dns: d, capture: cfg.Redirect.CaptureAll, log: log, kick: make(chan struct{}, 1)}
	for z := range cfg.DNS.Stubs {
		r.stubs = append(r.stubs, z)
	}
	r.backend = build(c, redirect.Options{
		StateDir:    cfg.StateDir,
		Host:        watcher,
		OnUpstreams: d.proxy.SetUpstreams,
		Log:         log,
	})
	return r
}

// plan is what the redirect should do now.
func (r *hostRedirect) plan() redirect.Plan {
	p := redirect.Plan{CaptureAll: r.capture, Mark: redirect.DefaultMark}
	for _, a := range r.dns.Addrs() {
		if ap, err := netip.ParseAddrPort(a); err == nil && !slices.Contains(p.Listen, ap) {
			p.Listen = append(p.Listen, ap)
		}
	}
	p.Domains = append(r.tables.Index().Domains(), r.stubs...)
	return p.Normalize()
}

// Run applies the plan, follows the table's domains and keeps the
// backend's configuration in place until ctx ends, then removes it.
func (r *hostRedirect) Run(ctx context.Context) error {
	unsub := r.tables.OnInstall(func(*nametable.Index) {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	})
	defer unsub()
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.backend.Remove(rctx); err != nil {
			r.log.Error("cannot remove the redirect; run onramp redirect remove", "error", err)
		} else if r.backend.Name() != redirect.None {
			r.log.Info("redirect removed", "backend", r.backend.Name())
		}
	}()
	var last *redirect.Plan
	apply := func() {
		p := r.plan()
		if last != nil && last.Equal(p) {
			return
		}
		if err := r.backend.Apply(ctx, p); err != nil {
			r.log.Error("cannot redirect the host's resolver", "backend", r.backend.Name(), "error", err)
			return
		}
		last = &p
		if r.backend.Name() != redirect.None {
			r.log.Info("redirect in place", "backend", r.backend.Name(), "domains", len(p.Domains), "captureAll", p.CaptureAll)
		}
	}
	apply()
	if w, ok := r.backend.(redirect.Watcher); ok {
		go func() {
			if err := w.Run(ctx); err != nil {
				r.log.Error("not keeping the redirect in place", "error", err)
			}
		}()
	}
	retry := time.NewTicker(10 * time.Second)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.kick:
			apply()
		case <-retry.C:
			if last == nil {
				apply() // the first apply failed: try again
			}
		}
	}
}

// Status is the redirect as `onramp status` shows it.
func (r *hostRedirect) Status() *status.Redirect {
	s := r.backend.State()
	if s.Backend == redirect.None && s.Reason == "" {
		s.Reason = r.choice.Reason
	}
	return &s
}
