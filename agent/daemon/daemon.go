// Package daemon wires onramp's components into the running agent. The whole
// data path is assembled here, in Run:
//
//	control plane ──ADS/NDS──► xds.Client ──► install ──► nametable.Build ──► proxy.SetTable
//	                                              │                              ▲
//	                                              └──► nametable.Store.Save      │ (at start: last good table)
//	                                                                             │
//	applications ──DNS──► dnsproxy: mesh table ─► cache ─► forwarder ─► host's upstreams
//
// The identity manager keeps the workload certificate that authenticates the
// ADS stream, the prober reports the WorkloadGroup's readiness probe as
// health, and the status server exposes all of it on 127.0.0.1:15020.
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/onramp-mesh/onramp/agent/config"
	"github.com/onramp-mesh/onramp/agent/dnsproxy"
	"github.com/onramp-mesh/onramp/agent/health"
	"github.com/onramp-mesh/onramp/agent/identity"
	"github.com/onramp-mesh/onramp/agent/nametable"
	"github.com/onramp-mesh/onramp/agent/resolvconf"
	"github.com/onramp-mesh/onramp/agent/status"
	"github.com/onramp-mesh/onramp/agent/xds"
	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
	"github.com/onramp-mesh/onramp/installer/bundle"
	"github.com/onramp-mesh/onramp/workloadentry"
)

// IstioVersion is the ISTIO_VERSION the agent reports in its node metadata.
const IstioVersion = "1.28.0"

// NewLogger builds the process logger from the log configuration.
func NewLogger(c config.Log) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "onramp",
		Level:      hclog.LevelFromString(c.Level),
		JSONFormat: c.JSON,
		Output:     os.Stderr,
	})
}

// agent holds the running components and what status reports about them.
type agent struct {
	cfg     config.Config
	version string
	log     hclog.Logger
	proxy   *dnsproxy.Proxy
	store   *nametable.Store

	// installMu orders table installs: pushes, and rebuilds for a new search list.
	installMu sync.Mutex

	mu       sync.Mutex // guards host and what status reports below
	index    *nametable.Index
	tableVer string
	source   string
	lastPush time.Time
	host     nametable.HostContext

	bundle *bundle.Bundle
	ids    *identity.Manager
	ads    *xds.Client
}

// Run runs the agent until ctx ends.
func Run(ctx context.Context, cfg config.Config, version string) error {
	log := NewLogger(cfg.Log)
	a := &agent{cfg: cfg, version: version, log: log, store: &nametable.Store{Dir: cfg.StateDir}}

	if cfg.Bundle != "" {
		b, err := bundle.Load(cfg.Bundle)
		if err != nil {
			return err
		}
		a.bundle = b
	}
	a.host = hostContext(cfg, a.bundle, log)

	pcfg, err := proxyConfig(cfg)
	if err != nil {
		return err
	}
	proxy, err := dnsproxy.New(pcfg, log.Named("dns"))
	if err != nil {
		return err
	}
	a.proxy = proxy

	// A table first, so DNS is ready at boot even with the control plane down.
	switch {
	case cfg.NameTable != "":
		t, err := nametable.LoadJSON(cfg.NameTable)
		if err != nil {
			return err
		}
		if err := a.install("file", t, "file"); err != nil {
			return fmt.Errorf("name table %s: %w", cfg.NameTable, err)
		}
	case a.bundle != nil:
		if t, ver, err := a.store.Load(); err == nil {
			if err := a.install(ver, t, "disk"); err != nil {
				log.Warn("ignoring the stored name table", "dir", cfg.StateDir, "error", err)
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			log.Warn("ignoring the stored name table", "dir", cfg.StateDir, "error", err)
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 4)
	var wg sync.WaitGroup
	goRun := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}

	goRun("dns", proxy.Serve)
	if len(cfg.DNS.SearchDomains) == 0 {
		goRun("resolv.conf", func(ctx context.Context) error {
			if err := resolvconf.Watch(ctx, resolvConfPath, a.followSearchList); err != nil {
				log.Warn("not following the search list; it stays as read at start", "file", resolvConfPath, "error", err)
			}
			return nil
		})
	}

	if cfg.Status.Listen != "" && cfg.Status.Listen != "off" {
		srv, err := status.Listen(cfg.Status.Listen, a.statusSources(), log.Named("status"))
		if err != nil {
			return err
		}
		goRun("status", srv.Serve)
	}

	// DNS and status are up before the control plane is reached: the host
	// resolves with the last good table while the CA or istiod are away.
	if a.bundle != nil {
		if err := a.startControlPlane(goRun); err != nil {
			return err
		}
	}

	// Under systemd (Type=notify, WatchdogSec=) the agent says when it is
	// ready and keeps pinging the watchdog; elsewhere both do nothing.
	goRun("watchdog", func(ctx context.Context) error { return health.RunWatchdog(ctx, nil, log) })
	health.Notify(health.NotifyReady)
	log.Info("onramp is running", "dns", strings.Join(cfg.DNS.Listen, ","), "status", cfg.Status.Listen, "mode", a.mode())

	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	health.Notify(health.NotifyStopping)
	cancel()
	wg.Wait()
	return err
}

func (a *agent) mode() string {
	if a.bundle != nil {
		return "control-plane"
	}
	return "static"
}

// startControlPlane starts identity, the ADS client and the readiness prober.
func (a *agent) startControlPlane(goRun func(string, func(context.Context) error)) error {
	b, log := a.bundle, a.log
	token := func() (string, error) { return b.Token, nil }

	var clientCert func() (*tls.Certificate, error)
	if !b.Plaintext || b.CAAddressExplicit {
		ids, err := identity.New(identity.Config{
			// istiod's plaintext port serves the CA without TLS too (development only).
			CAAddress: b.DialAddress(b.CAAddress), ServerName: b.ServerName, Plaintext: strings.HasSuffix(b.CAAddress, ":15010"),
			Roots: b.Roots, ClusterID: b.ClusterID,
			TrustDomain: b.TrustDomain, Namespace: b.Namespace, ServiceAccount: b.ServiceAccount,
			Token: token, KeyType: a.cfg.Identity.KeyType, Validity: a.cfg.Identity.Validity.D(),
			StateDir: a.cfg.StateDir,
		}, log.Named("identity"))
		if err != nil {
			return err
		}
		a.ids = ids
		clientCert = ids.ClientCertificate
	}

	node, err := xds.NodeFromBundle(b, IstioVersion)
	if err != nil {
		return err
	}
	ads, err := xds.New(xds.Config{
		Address: b.DialAddress(b.DiscoveryAddress), ServerName: b.ServerName, Plaintext: b.Plaintext, Roots: b.Roots,
		ClientCertificate: clientCert, Token: token, ClusterID: b.ClusterID, Node: node,
		OnNameTable: func(version string, t *ndspb.NameTable) error {
			return a.install(version, t, "control-plane")
		},
	}, log.Named("xds"))
	if err != nil {
		return err
	}
	a.ads = ads
	// The certificate first (from disk, or the CA with the bundle token), then the ADS stream it authenticates.
	goRun("control plane", func(ctx context.Context) error {
		if a.ids != nil {
			if err := a.ids.Start(ctx); err != nil {
				return err
			}
		}
		return ads.Run(ctx)
	})

	if b.ReadinessProbe != nil {
		prober, err := health.NewProber(b.ReadinessProbe, log.Named("health"))
		if err != nil {
			return err
		}
		goRun("health", func(ctx context.Context) error {
			prober.Run(ctx, ads.SetHealth)
			return nil
		})
	}
	return nil
}

// install builds an index from t off the query path, swaps it into the proxy
// and, for tables from the control plane, keeps t on disk as the last good
// table. A table that does not build changes nothing and returns the reason
// (which ADS sends back as a NACK).
func (a *agent) install(version string, t *ndspb.NameTable, source string) error {
	a.installMu.Lock()
	defer a.installMu.Unlock()
	return a.installLocked(version, t, source, source == "control-plane")
}

// installLocked is install with installMu held; save says whether t is new
// and goes to disk.
func (a *agent) installLocked(version string, t *ndspb.NameTable, source string, save bool) error {
	start := time.Now()
	a.mu.Lock()
	host := a.host
	a.mu.Unlock()
	ix, err := nametable.Build(t, host, nametable.Options{TTL: a.cfg.DNS.MeshTTL.D()})
	if err != nil {
		a.log.Error("rejected name table; keeping the previous one", "version", version, "source", source, "error", err)
		return err
	}
	a.proxy.SetTable(ix)
	a.mu.Lock()
	logSkips := version != a.tableVer || source != a.source
	a.index, a.tableVer, a.source, a.lastPush = ix, version, source, time.Now()
	a.mu.Unlock()
	if logSkips { // once per table version, not again on a rebuild for the search list
		for _, sk := range ix.Skipped() {
			a.log.Warn("name table entry not fully served", "version", version, "host", sk.Host, "address", sk.Address, "skipped", sk.Entry, "reason", sk.Reason)
		}
	}
	a.log.Info("name table installed", "version", version, "source", source, "hosts", len(t.GetTable()), "names", ix.Len(), "took", time.Since(start).Round(time.Microsecond))
	if save {
		if err := a.store.Save(t, version); err != nil {
			a.log.Warn("could not keep the name table on disk; DNS still serves it", "dir", a.cfg.StateDir, "error", err)
		}
	}
	// Decoding and indexing a table leaves several times the index in
	// garbage. Hand it back to the OS now instead of keeping it resident,
	// and once more when the caller has let go of the decoded table.
	debug.FreeOSMemory()
	time.AfterFunc(time.Second, debug.FreeOSMemory)
	return nil
}

// followSearchList rebuilds the index when resolv.conf's search list or
// ndots change, so every search domain keeps its one-round-trip CNAMEs. The
// table is read again from where it came (the file, or the copy on disk)
// rather than kept decoded in memory.
func (a *agent) followSearchList(rc *resolvconf.Config) {
	a.installMu.Lock()
	defer a.installMu.Unlock()
	a.mu.Lock()
	if slices.Equal(a.host.Search, rc.Search) && a.host.Ndots == rc.Ndots {
		a.mu.Unlock()
		return
	}
	a.host.Search, a.host.Ndots = rc.Search, rc.Ndots
	source, version := a.source, a.tableVer
	a.mu.Unlock()
	a.log.Info("search list changed", "file", resolvConfPath, "search", strings.Join(rc.Search, " "), "ndots", rc.Ndots)

	var t *ndspb.NameTable
	var err error
	switch source {
	case "":
		return // no table yet; the next one is built with the new list
	case "file":
		t, err = nametable.LoadJSON(a.cfg.NameTable)
	default:
		t, version, err = a.store.Load()
	}
	if err != nil {
		a.log.Warn("cannot rebuild the name table for the new search list; the old one stays", "source", source, "error", err)
		return
	}
	_ = a.installLocked(version, t, source, false)
}

func (a *agent) statusSources() status.Sources {
	return status.Sources{
		Ready: func() error {
			a.mu.Lock()
			defer a.mu.Unlock()
			if a.index == nil {
				return errors.New("no name table yet (waiting for the control plane)")
			}
			return nil
		},
		Report: a.report,
		Metrics: []func(w io.Writer){a.proxy.WritePrometheus, func(w io.Writer) {
			a.mu.Lock()
			ix := a.index
			a.mu.Unlock()
			ix.WritePrometheus(w)
		}},
		NameTable: func() any {
			a.mu.Lock()
			ix := a.index
			a.mu.Unlock()
			return ix.Snapshot()
		},
		Config: a.cfg,
	}
}

func (a *agent) report() status.Report {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := status.Report{
		Version: a.version,
		Mode:    a.mode(),
		DNS:     status.DNS{Listen: a.cfg.DNS.Listen, Upstreams: a.cfg.DNS.Upstreams},
		NameTable: status.NameTable{
			Version: a.tableVer, Source: a.source, LastPush: a.lastPush,
		},
	}
	if a.index != nil {
		r.NameTable.Names = a.index.Len()
		r.NameTable.Skipped = a.index.Skipped()
	}
	if a.bundle != nil {
		b := a.bundle
		r.WorkloadEntry = b.Namespace + "/" + workloadentry.Name(b.AutoRegisterGroup, b.IP, b.Network)
		if b.AutoRegisterGroup == "" {
			r.WorkloadEntry = ""
		}
		if a.ads != nil {
			s := a.ads.Status()
			r.ControlPlane = status.ControlPlane{
				Address: b.DiscoveryAddress, Connected: s.Connected, Since: s.ConnectedSince,
				LastError: s.LastError, Reconnects: s.Reconnects,
				Accepted: s.Accepted, Rejected: s.Rejected, LastRejection: s.LastRejection,
			}
			if b.ReadinessProbe != nil {
				r.Health = status.Health{Probe: true, Reported: s.HealthReported, Healthy: s.Healthy, Message: s.HealthMessage}
			}
		}
		if a.ids != nil {
			s := a.ids.Status()
			r.Identity = status.Identity{SPIFFEID: s.SPIFFEID, NotAfter: s.NotAfter, NextRotation: s.NextRotation, LastError: s.LastError}
		}
	}
	return r
}

// resolvConfPath is where the host's search list is read and followed.
var resolvConfPath = "/etc/resolv.conf"

// hostContext is what the host adds to the name table: the proxy's namespace
// and the resolv.conf search list for one-round-trip CNAMEs.
func hostContext(cfg config.Config, b *bundle.Bundle, log hclog.Logger) nametable.HostContext {
	hc := nametable.HostContext{Namespace: cfg.DNS.Namespace, ClusterDomain: "cluster.local", Ndots: 1}
	if b != nil {
		hc.Namespace = b.Namespace
	}
	if hc.Namespace == "" {
		hc.Namespace = "default"
	}
	if rc, err := resolvconf.ParseFile(resolvConfPath); err == nil {
		hc.Search, hc.Ndots = rc.Search, rc.Ndots
	} else {
		log.Debug("no search list from resolv.conf", "file", resolvConfPath, "error", err)
	}
	if len(cfg.DNS.SearchDomains) > 0 {
		hc.Search = cfg.DNS.SearchDomains
	}
	return hc
}
