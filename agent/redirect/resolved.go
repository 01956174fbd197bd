package redirect

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/onramp-mesh/onramp/agent/resolvconf"
)

const (
	resolvedBusName = "org.freedesktop.resolve1"
	resolvedPath    = dbus.ObjectPath("/org/freedesktop/resolve1")
	resolvedManager = "org.freedesktop.resolve1.Manager"
	resolvedLinkIf  = "org.freedesktop.resolve1.Link"
)

// MaxLinkDomains is the most domains resolved keeps on one link
// (LINK_SEARCH_DOMAINS_MAX); SetLinkDomains refuses more.
const MaxLinkDomains = 256

// DefaultResolvedCheckInterval is how often the resolved backend checks
// that its link is configured and re-reads resolved's upstream servers.
const DefaultResolvedCheckInterval = 5 * time.Second

// ResolvedConfig configures the resolved backend.
type ResolvedConfig struct {
	// StateDir is the agent's state directory (the record goes under
	// StateDir/redirect). Empty keeps no record (tests).
	StateDir string
	// Link is the name of onramp's link; DefaultLink when empty.
	Link string
	// LinkAddr is the address given to the link; DefaultLinkAddr when not valid.
	LinkAddr netip.Prefix
	// OnUpstreams is told resolved's real upstream servers, those of the
	// other links and the global ones (never its stub, never onramp's
	// link), each time they change; the daemon hands them to the proxy
	// (dnsproxy.Proxy.SetUpstreams).
	OnUpstreams func([]netip.AddrPort)
	// CheckInterval is how often Run checks the link and the upstreams;
	// DefaultResolvedCheckInterval when zero.
	CheckInterval time.Duration
	Log           hclog.Logger
}

// res is the resolved backend. It configures one link of onramp's own over
// D-Bus (org.freedesktop.resolve1), never resolved's files, and never
// restarts resolved:
//
//   - SetLinkDNSEx: the proxy's IPv4 listener (127.0.0.1:15053) as the
//     link's only server;
//   - SetLinkDomains: the mesh's domains as routing-only domains
//     (~cluster.local, every ServiceEntry suffix, the reverse zones, the
//     stub zones), or ~. with CaptureAll;
//   - SetLinkDefaultRoute(false), unless CaptureAll: other names keep
//     their path and never reach the proxy;
//   - LLMNR, mDNS, DNSSEC and DNS-over-TLS off on that link (the proxy's
//     answers are unsigned and plain).
//
// Why a link of its own, and why this one, from systemd's issue tracker
// and measured on Debian 12 (systemd 252) and 13 (257):
//
//   - a global DNS= server (resolved.conf or SetDNS) also becomes a default
//     route for names outside its domains (seen on 252); per-link servers
//     with routing-only domains and DefaultRoute=no do not leak;
//   - resolved refuses SetLink* on the loopback link and on links that
//     systemd-networkd manages ("Link ... is managed"), and a host's own
//     uplink is configured by whoever runs DHCP on it: overwriting its
//     servers would break the host. So onramp makes its own: a dummy link
//     where the kernel has dummy interfaces (real VMs), else a veth pair
//     (some container kernels have no dummy), up, with an address of global
//     scope (resolved makes no unicast DNS scope on a link without one),
//     and deletes it on removal;
//   - per-link servers are contacted bound to that link; 127.0.0.1 as a
//     per-link server works from systemd 252.3 on (systemd#25438), other
//     127.x addresses do not (systemd#23010): the server is the proxy's
//     127.0.0.1 listener, which onramp.socket holds open while the agent
//     restarts, so a restart costs waits, not failures;
//   - names under .local go to mDNS unless cluster.local is routed
//     explicitly: it always is.
//
// resolved keeps per-link settings in /run/systemd/resolve/netif/ and
// reads them back when it restarts; Run also re-applies when resolved's
// bus name gets a new owner and whenever the link lost its configuration.
type res struct {
	cfg ResolvedConfig
	log hclog.Logger

	mu        sync.Mutex
	conn      *dbus.Conn
	plan      *Plan
	link      ownLink
	state     State
	upstreams []netip.AddrPort
}

// NewResolved returns the resolved backend.
func NewResolved(cfg ResolvedConfig) Backend {
	if cfg.Link == "" {
		cfg.Link = DefaultLink
	}
	if !cfg.LinkAddr.IsValid() {
		cfg.LinkAddr = DefaultLinkAddr
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = DefaultResolvedCheckInterval
	}
	if cfg.Log == nil {
		cfg.Log = hclog.NewNullLogger()
	}
	return &res{cfg: cfg, log: cfg.Log, state: State{Backend: Resolved, Link: cfg.Link}}
}

func (r *res) Name() string { return Resolved }

func (r *res) busLocked() (*dbus.Conn, error) {
	if r.conn != nil && r.conn.Connected() {
		return r.conn, nil
	}
	c, err := dbus.ConnectSystemBus()
	if err != nil {
		return nil, fmt.Errorf("redirect: resolved: system bus: %w", err)
	}
	r.conn = c
	return c, nil
}

// Apply configures onramp's link for p.
func (r *res) Apply(ctx context.Context, p Plan) error {
	p = p.Normalize()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.plan = &p
	return r.applyLocked(ctx)
}

// linkServers are the proxy's listeners resolved is given: the IPv4
// loopback ones (see res), else the IPv6 ones.
func linkServers(listen []netip.AddrPort) []netip.AddrPort {
	var v4, v6 []netip.AddrPort
	for _, l := range listen {
		a := l.Addr().Unmap()
		switch {
		case a.Is4() && (a.IsLoopback() || a.IsUnspecified()):
			v4 = append(v4, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), l.Port()))
		case a.Is6() && (a.IsLoopback() || a.IsUnspecified()):
			v6 = append(v6, netip.AddrPortFrom(netip.IPv6Loopback(), l.Port()))
		}
	}
	if len(v4) > 0 {
		return slices.Compact(v4)
	}
	return slices.Compact(v6)
}

// routingDomains are the link's domains for p, at most MaxLinkDomains.
func routingDomains(p Plan) []string {
	if p.CaptureAll {
		return []string{"."}
	}
	d := p.Domains
	if len(d) > MaxLinkDomains {
		d = d[:MaxLinkDomains]
	}
	return d
}

func (r *res) applyLocked(ctx context.Context) error {
	p := *r.plan
	servers := linkServers(p.Listen)
	prev, _, _ := Recorded(r.cfg.StateDir)
	st := State{
		Backend: Resolved, Link: r.cfg.Link, Listen: addrStrings(servers), Domains: routingDomains(p), CaptureAll: p.CaptureAll,
		LinkCreated: r.link.created || prev.LinkCreated || linkIndex(r.cfg.Link) == 0,
		Upstreams:   addrStrings(r.upstreams),
	}
	if len(servers) == 0 {
		return r.failLocked(st, errors.New("redirect: resolved: the proxy listens on no loopback address; add 127.0.0.1:15053 to dns.listen"))
	}
	if len(p.Domains) > MaxLinkDomains && !p.CaptureAll {
		r.log.Warn("more mesh domains than resolved keeps on a link; the rest are not routed to onramp", "domains", len(p.Domains), "max", MaxLinkDomains)
	}
	// Record first: a crash after creating the link still leaves what to undo.
	if err := record(r.cfg.StateDir, st); err != nil {
		return err
	}
	l, err := ensureLink(r.cfg.Link, r.cfg.LinkAddr)
	if err != nil {
		return r.failLocked(st, err)
	}
	l.created = st.LinkCreated
	r.link = l
	st.Ifindex, st.LinkKind = l.index, l.kind
	conn, err := r.busLocked()
	if err != nil {
		return r.failLocked(st, err)
	}
	if err := configureLink(ctx, conn, l.index, servers, st.Domains, p.CaptureAll); err != nil {
		return r.failLocked(st, err)
	}
	st.InPlace, st.Applied = true, time.Now()
	r.state = st
	r.refreshUpstreamsLocked(ctx)
	return record(r.cfg.StateDir, r.state)
}

func (r *res) failLocked(st State, err error) error {
	st.LastError = err.Error()
	r.state = st
	_ = record(r.cfg.StateDir, st)
	return err
}

type dnsServerEx struct {
	Family int32
	Addr   []byte
	Port   uint16
	Name   string
}

type linkDomain struct {
	Domain  string
	Routing bool
}

func manager(conn *dbus.Conn) dbus.BusObject { return conn.Object(resolvedBusName, resolvedPath) }

func call(ctx context.Context, conn *dbus.Conn, method string, args ...any) error {
	if err := manager(conn).CallWithContext(ctx, resolvedManager+"."+method, 0, args...).Err; err != nil {
		return fmt.Errorf("redirect: resolved: %s: %w%s", method, err, permissionHint(err))
	}
	return nil
}

// permissionHint says what to do when resolved refuses an unprivileged
// caller (polkit's org.freedesktop.resolve1.set-dns-servers and friends).
func permissionHint(err error) string {
	if n := busErrorName(err); strings.Contains(n, "AccessDenied") || strings.Contains(n, "InteractiveAuthorizationRequired") {
		return "; the agent's user may not configure resolved: install the polkit rule of the onramp package (/usr/share/polkit-1/rules.d/50-onramp.rules) or run the agent as root"
	}
	return ""
}

func configureLink(ctx context.Context, conn *dbus.Conn, ifindex int, servers []netip.AddrPort, domains []string, captureAll bool) error {
	idx := int32(ifindex)
	var sx []dnsServerEx
	for _, s := range servers {
		fam := int32(unix.AF_INET)
		if s.Addr().Is6() {
			fam = unix.AF_INET6
		}
		sx = append(sx, dnsServerEx{fam, s.Addr().AsSlice(), s.Port(), ""})
	}
	ds := make([]linkDomain, 0, len(domains))
	for _, d := range domains {
		ds = append(ds, linkDomain{d, true})
	}
	steps := []struct {
		method string
		arg    any
	}{
		{"SetLinkDNSEx", sx},
		{"SetLinkDomains", ds},
		{"SetLinkDefaultRoute", captureAll},
		{"SetLinkLLMNR", "no"},
		{"SetLinkMulticastDNS", "no"},
		{"SetLinkDNSSEC", "no"},
		{"SetLinkDNSOverTLS", "no"},
	}
	for _, s := range steps {
		if err := call(ctx, conn, s.method, idx, s.arg); err != nil {
			return err
		}
	}
	// Answers resolved cached before (NXDOMAIN for a mesh name) must go.
	return call(ctx, conn, "FlushCaches")
}

// linkConfigured reports whether resolved still has the proxy as the
// link's server.
func linkConfigured(ctx context.Context, conn *dbus.Conn, ifindex int, servers []netip.AddrPort) (bool, error) {
	var path dbus.ObjectPath
	if err := manager(conn).CallWithContext(ctx, resolvedManager+".GetLink", 0, int32(ifindex)).Store(&path); err != nil {
		return false, err
	}
	v, err := conn.Object(resolvedBusName, path).GetProperty(resolvedLinkIf + ".DNSEx")
	if err != nil {
		return false, err
	}
	var got []dnsServerEx
	if err := v.Store(&got); err != nil {
		return false, err
	}
	for _, s := range servers {
		if !slices.ContainsFunc(got, func(g dnsServerEx) bool {
			a, _ := netip.AddrFromSlice(g.Addr)
			return a.Unmap() == s.Addr() && g.Port == s.Port()
		}) {
			return false, nil
		}
	}
	return true, nil
}

type managerServerEx struct {
	Ifindex int32
	Family  int32
	Addr    []byte
	Port    uint16
	Name    string
}

// resolvedUpstreams reads resolved's servers, global and per link, and
// keeps those onramp may forward any name to: the global ones and those of
// links that are a default route (not a VPN's link that serves only its
// own domains), never onramp's link, resolved's stubs or the proxy itself.
// With none, every other link's servers; then resolved's fallback servers.
func resolvedUpstreams(conn *dbus.Conn, ownIfindex int, self []netip.AddrPort) ([]netip.AddrPort, error) {
	defaultRoute := map[int32]bool{}
	isDefault := func(ifindex int32) bool {
		if ifindex == 0 {
			return true
		}
		if d, ok := defaultRoute[ifindex]; ok {
			return d
		}
		d := true // older resolved without the property: every link counts
		var path dbus.ObjectPath
		if err := manager(conn).Call(resolvedManager+".GetLink", 0, ifindex).Store(&path); err == nil {
			if v, err := conn.Object(resolvedBusName, path).GetProperty(resolvedLinkIf + ".DefaultRoute"); err == nil {
				if b, ok := v.Value().(bool); ok {
					d = b
				}
			}
		}
		defaultRoute[ifindex] = d
		return d
	}
	var out []netip.AddrPort
	for _, prop := range []string{"DNSEx", "DNSEx (any link)", "FallbackDNSEx"} {
		onlyDefault := prop == "DNSEx"
		prop, _, _ = strings.Cut(prop, " ")
		v, err := manager(conn).GetProperty(resolvedManager + "." + prop)
		if err != nil {
			return nil, fmt.Errorf("redirect: resolved: %s: %w", prop, err)
		}
		var servers []managerServerEx
		if err := v.Store(&servers); err != nil {
			return nil, fmt.Errorf("redirect: resolved: %s: %w", prop, err)
		}
		for _, s := range servers {
			a, ok := netip.AddrFromSlice(s.Addr)
			if !ok || (ownIfindex != 0 && int(s.Ifindex) == ownIfindex) || (onlyDefault && !isDefault(s.Ifindex)) {
				continue
			}
			port := s.Port
			if port == 0 {
				port = 53
			}
			ap := netip.AddrPortFrom(a.Unmap(), port)
			if resolvconf.IsResolvedStub(ap) || slices.Contains(self, ap) || slices.Contains(out, ap) {
				continue
			}
			out = append(out, ap)
		}
		if len(out) > 0 {
			break
		}
	}
	return out, nil
}

func (r *res) refreshUpstreamsLocked(ctx context.Context) {
	if r.conn == nil || r.plan == nil {
		return
	}
	up, err := resolvedUpstreams(r.conn, r.link.index, linkServers(r.plan.Listen))
	if err != nil {
		r.log.Warn("cannot read resolved's upstream servers", "error", err)
		return
	}
	if slices.Equal(up, r.upstreams) {
		return
	}
	r.upstreams = up
	r.state.Upstreams = addrStrings(up)
	r.log.Info("resolved's upstream servers (the proxy forwards other names to these)", "servers", fmt.Sprint(up))
	if r.cfg.OnUpstreams != nil {
		r.cfg.OnUpstreams(slices.Clone(up))
	}
}

// Run keeps the link configured until ctx ends: it re-applies when
// resolved's bus name gets a new owner (a restart) and when a check finds
// the link unconfigured or gone, and follows resolved's upstream servers.
func (r *res) Run(ctx context.Context) error {
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		return fmt.Errorf("redirect: resolved: system bus: %w", err)
	}
	defer conn.Close()
	if err := conn.AddMatchSignal(dbus.WithMatchInterface("org.freedesktop.DBus"), dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, resolvedBusName)); err != nil {
		return fmt.Errorf("redirect: resolved: watch NameOwnerChanged: %w", err)
	}
	sig := make(chan *dbus.Signal, 8)
	conn.Signal(sig)
	t := time.NewTicker(r.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case s := <-sig:
			if s == nil || len(s.Body) < 3 {
				continue
			}
			if owner, _ := s.Body[2].(string); owner != "" {
				r.log.Info("systemd-resolved is back on the bus; re-applying the redirect", "owner", owner)
				r.reapply(ctx, true)
			}
		case <-t.C:
			r.reapply(ctx, false)
		}
	}
}

// reapply applies the plan again when forced or when the link lost its
// configuration, and re-reads the upstreams.
func (r *res) reapply(ctx context.Context, force bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.plan == nil {
		return
	}
	if !force {
		conn, err := r.busLocked()
		if err != nil {
			r.log.Warn("cannot check the redirect", "error", err)
			return
		}
		idx := linkIndex(r.cfg.Link)
		ok := false
		if idx != 0 && idx == r.link.index {
			ok, err = linkConfigured(ctx, conn, idx, linkServers(r.plan.Listen))
		}
		if ok {
			r.refreshUpstreamsLocked(ctx)
			return
		}
		r.log.Warn("onramp's link lost its resolved configuration (resolved restarted, the link was reverted or deleted); re-applying", "link", r.cfg.Link, "error", err)
	}
	if err := r.applyLocked(ctx); err != nil {
		r.log.Error("cannot re-apply the redirect", "error", err)
	}
}

func (r *res) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.state
	s.Listen, s.Domains, s.Upstreams = slices.Clone(s.Listen), slices.Clone(s.Domains), slices.Clone(s.Upstreams)
	return s
}

// Remove reverts the link in resolved, deletes it if onramp created it,
// and tells OnUpstreams there are none (the proxy returns to its own).
func (r *res) Remove(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.plan = nil
	st := r.state
	if st.Link == "" {
		st.Link = r.cfg.Link
	}
	if prev, ok, _ := Recorded(r.cfg.StateDir); ok && prev.LinkCreated {
		st.LinkCreated = true
	}
	conn, _ := r.busLocked()
	if err := undoLink(ctx, conn, st); err != nil {
		r.state.LastError = err.Error()
		return err
	}
	if r.conn != nil {
		r.conn.Close()
		r.conn = nil
	}
	if r.upstreams != nil && r.cfg.OnUpstreams != nil {
		r.cfg.OnUpstreams(nil)
	}
	r.upstreams = nil
	r.link = ownLink{}
	r.state = State{Backend: Resolved, Link: r.cfg.Link}
	return forget(r.cfg.StateDir)
}

// undoLink reverts s.Link in resolved (when resolved is there) and deletes
// it when onramp created it. conn nil: connect to the system bus.
func undoLink(ctx context.Context, conn *dbus.Conn, s State) error {
	name := s.Link
	if name == "" {
		name = DefaultLink
	}
	idx := linkIndex(name)
	if idx == 0 {
		return nil
	}
	if conn == nil {
		if c, err := dbus.ConnectSystemBus(); err == nil {
			defer c.Close()
			conn = c
		}
	}
	var revertErr error
	if conn != nil {
		if err := call(ctx, conn, "RevertLink", int32(idx)); err != nil && !isNoResolved(err) {
			revertErr = err
		}
		_ = call(ctx, conn, "FlushCaches")
	}
	if s.LinkCreated {
		// Deleting the link takes it out of resolved too, reverted or not.
		return deleteLink(name)
	}
	return revertErr
}

// isNoResolved reports whether err means resolved is not running (nothing
// to revert) or does not know the link.
func isNoResolved(err error) bool {
	n := busErrorName(err)
	return strings.Contains(n, "ServiceUnknown") || strings.Contains(n, "NameHasNoOwner") || strings.Contains(n, "NoSuchLink")
}

// busErrorName is the D-Bus error name in err's chain, or "".
func busErrorName(err error) string {
	var de dbus.Error
	if errors.As(err, &de) {
		return de.Name
	}
	var dp *dbus.Error
	if errors.As(err, &dp) && dp != nil {
		return dp.Name
	}
	return ""
}
