// Package daemon wires onramp's components into the running agent. It only
// wires: each component owns its state and reports it for status.
//
//	control plane ──ADS/NDS──► xds.Client ──► tablestate.Tables ──► nametable.Build
//	                                              │   ▲   │
//	                          nametable.Store ◄───┘   │   └──► OnInstall subscribers
//	                                                  │ (at start: file or last good table; search-list rebuilds)
//	applications ──DNS──► dnsproxy: mesh table (Tables) ─► cache ─► forwarder ─► host's upstreams
//
// The identity manager keeps the workload certificate that authenticates the
// ADS stream, the prober reports the WorkloadGroup's readiness probe as
// health, and the status server exposes all of it on 127.0.0.1:15020.
//
// Run first constructs every component, opening every socket (DNS, status),
// and only then starts them. Any error while constructing closes what was
// opened; any component failing once started stops all of them, and Run
// returns when every one has returned.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sync/errgroup"

	"github.com/onramp-mesh/onramp/agent/config"
	"github.com/onramp-mesh/onramp/agent/health"
	"github.com/onramp-mesh/onramp/agent/nametable"
	"github.com/onramp-mesh/onramp/agent/redirect"
	"github.com/onramp-mesh/onramp/agent/resolvconf"
	"github.com/onramp-mesh/onramp/agent/status"
	"github.com/onramp-mesh/onramp/agent/tablestate"
	"github.com/onramp-mesh/onramp/installer/bundle"
)

// NewLogger builds the process logger from the log configuration.
// Under systemd, with stderr connected to the journal, lines go to the
// journal with their keys as fields (journal.go).
func NewLogger(c config.Log) hclog.Logger {
	out, viaJournal := logOutput()
	return hclog.New(&hclog.LoggerOptions{
		Name:       "onramp",
		Level:      hclog.LevelFromString(c.Level),
		JSONFormat: c.JSON || viaJournal,
		Output:     out,
	})
}

// Run runs the agent until ctx ends, or until a component fails.
func Run(ctx context.Context, cfg config.Config, version string) error {
	return run(ctx, cfg, version, hostEnv{activated: activatedSockets})
}

// hostEnv is what the agent takes from the machine; tests give their own.
type hostEnv struct {
	// resolver names the host's resolver files (the system's when empty).
	resolver resolvconf.Paths
	// activated returns the sockets systemd passed, if any.
	activated func() ([]net.PacketConn, []net.Listener, error)
	// redirectHost is what the redirect's detector asks (the real machine when nil).
	redirectHost redirect.Host
	// redirectBackend builds the redirect's backend (redirect.New when nil).
	redirectBackend func(redirect.Choice, redirect.Options) redirect.Backend
}

func run(ctx context.Context, cfg config.Config, version string, env hostEnv) error {
	a, err := assemble(cfg, version, env, NewLogger(cfg.Log))
	if err != nil {
		return err
	}
	return a.serve(ctx)
}

// agent is the assembled components. Each non-nil one is started by serve.
type agent struct {
	cfg     config.Config
	version string
	log     hclog.Logger
	bundle  *bundle.Bundle // nil: no control plane (static table)

	tables   *tablestate.Tables
	dns      *dnsServer
	resolver *hostResolver // nil when both dns.upstreams and dns.searchDomains are set
	redirect *hostRedirect
	cp       *controlPlane  // nil without a bundle
	status   *status.Server // nil when status.listen is "off"
}

// assemble constructs every component and opens every socket, starting
// nothing. On error it closes what it opened.
func assemble(cfg config.Config, version string, env hostEnv, log hclog.Logger) (_ *agent, err error) {
	if err := checkConfigured(cfg); err != nil {
		return nil, err
	}
	a := &agent{cfg: cfg, version: version, log: log}
	defer func() {
		if err != nil {
			a.close()
		}
	}()

	if cfg.Bundle != "" {
		if a.bundle, err = bundle.Load(cfg.Bundle); err != nil {
			return nil, bundleHint(err)
		}
	}
	followSearch, followUpstreams := len(cfg.DNS.SearchDomains) == 0, len(cfg.DNS.Upstreams) == 0
	if followSearch || followUpstreams {
		a.resolver = newHostResolver(env.resolver, log.Named("resolv.conf"))
	}
	a.tables = tablestate.New(tablestate.Config{
		Host:    hostContext(cfg, a.bundle, env.resolver, log),
		Options: nametable.Options{TTL: cfg.DNS.MeshTTL.D(), DataPlane: nametable.DataPlane(cfg.DataPlane)},
		Store:   &nametable.Store{Dir: cfg.StateDir},
		Log:     log.Named("nametable"),
	})
	// A table first, so DNS is ready at boot even with the control plane down.
	if err := a.firstTable(); err != nil {
		return nil, err
	}
	var host *resolvconf.Watcher
	if followUpstreams {
		host = a.resolver.watcher
	}
	if env.redirectHost == nil {
		env.redirectHost = redirect.SystemHost{ResolvConf: env.resolver.ResolvConf}
	}
	choice := detectRedirect(cfg, env.redirectHost, log.Named("redirect"))
	if a.dns, err = newDNSServer(cfg, env.activated, host, a.tables, choice.Backend == redirect.Nftables, log.Named("dns")); err != nil {
		return nil, err
	}
	var watcher *resolvconf.Watcher
	if a.resolver != nil {
		watcher = a.resolver.watcher
	}
	if env.redirectBackend == nil {
		env.redirectBackend = redirect.New
	}
	a.redirect = newHostRedirect(cfg, choice, env.redirectBackend, a.dns, a.tables, watcher, log.Named("redirect"))
	if followSearch {
		a.resolver.followSearch(a.tables)
	}
	if a.bundle != nil {
		if a.cp, err = newControlPlane(cfg, a.bundle, a.tables.Push, log); err != nil {
			return nil, err
		}
	}
	if cfg.Status.Listen != "" && cfg.Status.Listen != "off" {
		if a.status, err = status.Listen(cfg.Status.Listen, a.statusSources(), log.Named("status")); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// firstTable installs the static table file, or the last good table from
// disk when there is a control plane.
func (a *agent) firstTable() error {
	switch {
	case a.cfg.NameTable != "":
		return a.tables.InstallFile(a.cfg.NameTable)
	case a.bundle != nil:
		if err := a.tables.LoadStored(); err != nil && !errors.Is(err, os.ErrNotExist) {
			a.log.Warn("ignoring the stored name table", "dir", a.cfg.StateDir, "error", err)
		}
	}
	return nil
}

// close releases what assemble opened, for an agent that never started
// (serving components close their own on return).
func (a *agent) close() {
	if a.status != nil {
		a.status.Close()
	}
	if a.dns != nil {
		a.dns.Close()
	}
}

// service is one started component: run blocks until ctx ends or it fails.
type service struct {
	name string
	run  func(context.Context) error
	// essential services stop the agent when they return, even with nil.
	essential bool
}

func (a *agent) services() []service {
	s := []service{{"dns", a.dns.Serve, true}}
	if a.resolver != nil {
		s = append(s, service{"resolv.conf", a.resolver.Run, false})
	}
	s = append(s, service{"redirect", a.redirect.Run, false})
	if a.status != nil {
		s = append(s, service{"status", a.status.Serve, true})
	}
	// The DNS and status sockets were opened by assemble, before any of
	// these starts: the host resolves with the last good table while the
	// CA or istiod are away.
	if a.cp != nil {
		s = append(s, a.cp.services()...)
	}
	// Under systemd (Type=notify, WatchdogSec=) the agent says when it is
	// ready and keeps pinging the watchdog; elsewhere both do nothing.
	s = append(s, service{"watchdog", func(ctx context.Context) error { return health.RunWatchdog(ctx, nil, a.log) }, false})
	return s
}

// serve starts every component and waits: for ctx to end, or for the first
// component to fail, which stops the others. It returns once all returned.
func (a *agent) serve(ctx context.Context) error { return a.serveWith(ctx, a.services()) }

func (a *agent) serveWith(ctx context.Context, services []service) error {
	defer a.close()
	g, gctx := errgroup.WithContext(ctx)
	for _, s := range services {
		g.Go(func() error {
			err := s.run(gctx)
			switch {
			case gctx.Err() != nil:
				return nil // stopping: whatever it returns now is not the cause
			case err != nil:
				return fmt.Errorf("%s: %w", s.name, err)
			case s.essential:
				return fmt.Errorf("%s: stopped unexpectedly", s.name)
			}
			return nil
		})
	}
	// READY=1 once DNS serves a table: at once with a table file or the
	// stored table (a reboot with istiod down), else with the first push.
	// STATUS= (systemctl status onramp): one line, again with every table.
	unsubscribe := notifyServing(a.tables, a.statusLine, health.Notify)
	defer unsubscribe()
	a.log.Info("onramp is running", "version", a.version, "dns", strings.Join(a.dns.Addrs(), ","), "status", a.cfg.Status.Listen, "mode", a.mode())
	<-gctx.Done()
	health.Notify(health.NotifyStopping)
	return g.Wait()
}

// notifyServing sends READY=1 to systemd with the first table installed
// (the DNS sockets are open and served before serve calls it) and STATUS=
// with every table; before the first, STATUS= says the agent waits.
func notifyServing(tables *tablestate.Tables, statusLine func(*nametable.Index) string, notify func(string) error) (unsubscribe func()) {
	var ready sync.Once
	if tables.Index() == nil {
		notify("STATUS=" + statusLine(nil))
	}
	return tables.OnInstall(func(ix *nametable.Index) {
		notify("STATUS=" + statusLine(ix))
		ready.Do(func() { notify(health.NotifyReady) })
	})
}

// statusLine is the agent's state in one line, for systemd's STATUS=.
func (a *agent) statusLine(ix *nametable.Index) string {
	addrs := strings.Join(a.dns.Addrs(), " ")
	if ix == nil {
		return "DNS on " + addrs + "; no name table yet, waiting for the control plane"
	}
	return fmt.Sprintf("%d mesh names on %s (%s)", ix.Len(), addrs, a.mode())
}

func (a *agent) mode() string {
	if a.bundle != nil {
		return "control-plane"
	}
	return "static"
}

// hostContext is what the host adds to the name table: the proxy's namespace
// and the resolv.conf search list for one-round-trip CNAMEs.
func hostContext(cfg config.Config, b *bundle.Bundle, resolver resolvconf.Paths, log hclog.Logger) nametable.HostContext {
	hc := nametable.HostContext{Namespace: cfg.DNS.Namespace, ClusterDomain: nametable.DefaultClusterDomain, Ndots: 1}
	if b != nil {
		hc.Namespace = b.Namespace
	}
	if hc.Namespace == "" {
		hc.Namespace = "default"
	}
	if len(cfg.DNS.SearchDomains) > 0 {
		hc.Search = slices.Clone(cfg.DNS.SearchDomains)
		return hc
	}
	if h := resolver.ReadHost(); h.ResolvErr == nil {
		hc.Search, hc.Ndots = h.Search, h.Ndots
	} else {
		log.Debug("no search list from resolv.conf", "error", h.ResolvErr)
	}
	return hc
}
