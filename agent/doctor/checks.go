package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/onramp-mesh/onramp/agent/nametable"
	"github.com/onramp-mesh/onramp/agent/status"
)

// Live is what is in place on the host now, as an Inspector found it,
// whatever the agent last reported.
type Live struct {
	// Present is false when what the backend puts in place is gone.
	Present bool
	// Detail says what was found.
	Detail string
	// Redirected are the addresses whose port-53 traffic is redirected now
	// (nftables); nil when not known.
	Redirected []netip.Addr
}

// Inspector looks at what the redirect of rv put in place on the host
// (e.g. the nftables table). It returns ErrNotInspected when it cannot tell
// (another backend, no permission).
type Inspector func(ctx context.Context, rv status.Redirect) (Live, error)

// ErrNotInspected is what an Inspector returns when it cannot look.
var ErrNotInspected = errors.New("not inspected")

// agentReport is the agent's status report. Its redirect section
// (status.Redirect, nil for an agent without one) is what the redirect
// check reads.
type agentReport = status.Report

// agentConfig is what doctor reads of /debug/config.
type agentConfig struct {
	DataPlane string `json:"dataPlane"`
	Redirect  struct {
		Mode       string `json:"mode"`
		CaptureAll bool   `json:"captureAll"`
	} `json:"redirect"`
}

// VIP ranges istiod auto-allocates from (ServiceEntry hosts without addresses).
var vipRanges = []netip.Prefix{netip.MustParsePrefix("240.240.0.0/16"), netip.MustParsePrefix("2001:2::/48")}

func isVIP(a netip.Addr) bool {
	for _, p := range vipRanges {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// run holds what the checks learned from the agent, read once.
type run struct {
	o   Options
	ctx context.Context

	alive          bool // the status server answered
	rep            *agentReport
	snap           *nametable.Snapshot
	cfg            *agentConfig
	withheld       []nametable.Withheld
	redirectStatus Status // verdict of the redirect check
	meshOK         bool
}

func (r *run) agent() Check {
	c := Check{Name: CheckAgent}
	ctx, cancel := context.WithTimeout(r.ctx, r.o.Timeout)
	defer cancel()
	addr := r.o.Agent.Addr()
	code, body, err := r.o.Agent.Get(ctx, "/healthz/ready")
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		c.Status, c.Detail = Fail, fmt.Sprintf("no agent answers on %s: %v", addr, err)
		c.Fix = "start the agent (systemctl start onramp) and read why it stopped (journalctl -u onramp); " +
			"if it runs with another status.listen, give doctor --addr"
		return c
	}
	r.alive = true
	var rep agentReport
	if err := getJSON(ctx, r.o.Agent, "/debug/status", &rep); err == nil {
		r.rep = &rep
	}
	var snap nametable.Snapshot
	if err := getJSON(ctx, r.o.Agent, "/debug/nametable", &snap); err == nil {
		r.snap = &snap
		r.withheld = snap.Withheld
	}
	var cfg agentConfig
	if err := getJSON(ctx, r.o.Agent, "/debug/config", &cfg); err == nil {
		r.cfg = &cfg
	}
	if code != http.StatusOK {
		c.Status, c.Detail = Fail, fmt.Sprintf("the agent on %s is not ready: %s", addr, firstLine(body))
		c.Fix = "see onramp status and the agent's log (journalctl -u onramp): it serves DNS once it has a name table " +
			"from the control plane, from its state directory or from --name-table"
		return c
	}
	if r.rep == nil {
		c.Status, c.Detail = Fail, fmt.Sprintf("the agent on %s is ready but its report (/debug/status) is unreadable", addr)
		c.Fix = "is --addr the agent's status address, and is the agent as new as this command (onramp version)?"
		return c
	}
	nt := r.rep.NameTable
	c.Facts = map[string]any{"listen": r.rep.DNS.Listen, "names": nt.Names, "tableVersion": nt.Version, "tableSource": nt.Source, "agentVersion": r.rep.Version}
	if nt.Names == 0 {
		c.Status, c.Detail = Fail, fmt.Sprintf("the agent on %s is ready but its name table is empty", addr)
		c.Fix = "see onramp status: the control plane sent an empty table, or the --name-table file has no names"
		return c
	}
	table := fmt.Sprintf("%d names", nt.Names)
	if nt.Version != "" {
		table += ", version " + nt.Version
	}
	if nt.Source != "" {
		table += ", from " + nt.Source
	}
	c.Status = OK
	c.Detail = fmt.Sprintf("ready on %s, DNS on %s, name table %s", addr, strings.Join(r.rep.DNS.Listen, " "), table)
	return c
}

func (r *run) redirect() Check {
	c := Check{Name: CheckRedirect}
	defer func() { r.redirectStatus = c.Status }()
	if r.rep == nil {
		c.Status, c.Detail = Skipped, "needs the agent's report"
		return c
	}
	rv := r.rep.Redirect
	ns := nameservers(r.o.ResolvConf)
	if rv == nil {
		c.Status = Unknown
		c.Detail = "the agent reports no redirect state, so whether the host's resolver is pointed at onramp is not known here; " +
			"the mesh-name check tells whether lookups reach it"
		if direct := r.pointsAtListener(ns); direct != "" {
			c.Detail += fmt.Sprintf(" (resolv.conf names %s, onramp's own listener)", direct)
		}
		c.Fix = "run an agent that reports its redirect (onramp status shows it), or point the resolver at onramp by hand"
		c.Facts = map[string]any{"resolvConfNameservers": ns}
		return c
	}
	c.Facts = map[string]any{"backend": rv.Backend, "inPlace": rv.InPlace, "reason": rv.Reason, "lastError": rv.LastError,
		"nameservers": rv.Nameservers, "domains": rv.Domains, "repairs": rv.Repairs, "link": rv.Link, "resolvConfNameservers": ns}
	why := rv.LastError
	if why == "" {
		why = rv.Reason
	}
	if rv.Backend == "none" || rv.Backend == "" {
		c.Status = Warn
		c.Detail = "no redirect (backend none): applications reach onramp only if their resolver is pointed at it by hand"
		if why != "" {
			c.Detail += " (" + why + ")"
		}
		c.Fix = fmt.Sprintf("set redirect.mode: auto (or resolved, or nftables) in the configuration and restart the agent; "+
			"or point clients at onramp yourself: ask %s directly (dig @%s -p %d), or, on a host without systemd-resolved, "+
			"listen on port 53 (dns.listen: [127.0.0.1:53], dns.upstreams: your real servers) and put nameserver 127.0.0.1 first in /etc/resolv.conf",
			r.firstListen(), netip.MustParseAddrPort(r.firstListen()).Addr(), netip.MustParseAddrPort(r.firstListen()).Port())
		return c
	}
	again := "see onramp redirect status and the agent's log (journalctl -u onramp); systemctl restart onramp applies it again"
	if !rv.InPlace {
		c.Status, c.Detail, c.Fix = Fail, fmt.Sprintf("the %s redirect is not in place", rv.Backend), again
		if why != "" {
			c.Detail += ": " + why
		}
		return c
	}
	// The plan against onramp's own listeners and the host's resolver.
	var problems []string
	if len(rv.Listen) > 0 {
		for _, l := range rv.Listen {
			if ap, err := netip.ParseAddrPort(l); err == nil && !slices.Contains(r.listens(), ap) {
				problems = append(problems, fmt.Sprintf("it sends queries to %s, where onramp does not listen (%s)", l, strings.Join(r.rep.DNS.Listen, " ")))
			}
		}
	}
	switch {
	case rv.CaptureAll:
	case rv.Backend == "nftables":
		for _, n := range ns {
			if a, ok := parseAddrLoose(n); ok && !slices.ContainsFunc(rv.Nameservers, func(s string) bool {
				b, ok := parseAddrLoose(s)
				return ok && b == a
			}) && !slices.Contains(r.listenAddrs(), a) {
				problems = append(problems, fmt.Sprintf("/etc/resolv.conf names %s, whose queries it does not redirect (it redirects %s)", n, orNone(rv.Nameservers)))
			}
		}
	case rv.Backend == "resolved":
		if cd := r.clusterDomain(); cd != "" && !slices.ContainsFunc(rv.Domains, func(d string) bool { return strings.EqualFold(strings.Trim(d, "~."), cd) }) {
			problems = append(problems, fmt.Sprintf("it does not route the cluster domain %s to onramp (it routes %s)", cd, orNone(rv.Domains)))
		}
	}
	if len(problems) > 0 {
		c.Status, c.Detail, c.Fix = Fail, fmt.Sprintf("the %s redirect does not match what the host needs: %s", rv.Backend, strings.Join(problems, "; ")), again
		return c
	}
	// What is on the host now, whatever the agent last saw.
	if r.o.Inspect != nil {
		ctx, cancel := context.WithTimeout(r.ctx, r.o.Timeout)
		defer cancel()
		live, err := r.o.Inspect(ctx, *rv)
		switch {
		case err == nil && !live.Present:
			c.Status = Fail
			c.Detail = fmt.Sprintf("the agent reports its %s redirect in place, but it is gone from the host: %s", rv.Backend, live.Detail)
			how := "a ruleset flush, a firewall reload, configuration management"
			if rv.Backend == "resolved" {
				how = "resolvectl revert, a systemd-networkd reconfiguration, configuration management"
			}
			c.Fix = "something removed it behind onramp's back (" + how + "); " +
				"the agent puts it back within seconds (onramp redirect status counts the repairs); if it does not, systemctl restart onramp"
			return c
		case err == nil:
			c.Facts["live"] = live.Detail
			if live.Redirected != nil && !rv.CaptureAll {
				for _, n := range ns {
					if a, ok := parseAddrLoose(n); ok && !slices.Contains(live.Redirected, a) && !slices.Contains(r.listenAddrs(), a) {
						c.Status = Fail
						c.Detail = fmt.Sprintf("/etc/resolv.conf names %s, but the %s redirect on the host does not capture its queries (%s)", n, rv.Backend, live.Detail)
						c.Fix = "the agent follows /etc/resolv.conf and updates its table within seconds; if it does not, " + again
						return c
					}
				}
			}
		case errors.Is(err, ErrNotInspected):
		default:
			c.Facts["liveError"] = err.Error()
		}
	}
	c.Status, c.Detail = OK, fmt.Sprintf("backend %s, in place as planned", rv.Backend)
	if rv.Repairs > 0 {
		c.Detail += fmt.Sprintf(" (restored %d time(s) after being removed behind onramp's back)", rv.Repairs)
	}
	return c
}

// pointsAtListener returns the resolv.conf nameserver that is one of
// onramp's port-53 listeners, if any.
func (r *run) pointsAtListener(ns []string) string {
	for _, l := range r.listens() {
		if l.Port() != 53 {
			continue
		}
		for _, n := range ns {
			if a, err := netip.ParseAddr(n); err == nil && a == l.Addr() {
				return n
			}
		}
	}
	return ""
}

func (r *run) listens() []netip.AddrPort {
	var out []netip.AddrPort
	if r.rep == nil {
		return nil
	}
	for _, s := range r.rep.DNS.Listen {
		if ap, err := netip.ParseAddrPort(s); err == nil {
			out = append(out, ap)
		}
	}
	return out
}

// listenAddrs are the addresses of onramp's port-53 listeners, which a
// resolv.conf nameserver line can name directly.
func (r *run) listenAddrs() []netip.Addr {
	var out []netip.Addr
	for _, l := range r.listens() {
		if l.Port() == 53 {
			out = append(out, l.Addr().Unmap())
		}
	}
	return out
}

func (r *run) clusterDomain() string {
	if r.snap != nil {
		return strings.Trim(r.snap.ClusterDomain, ".")
	}
	return ""
}

func (r *run) firstListen() string {
	if l := r.listens(); len(l) > 0 {
		return l[0].String()
	}
	return "127.0.0.1:15053"
}

// probe picks the mesh name to look up and the addresses the mesh gives it.
func (r *run) probe() (name string, want []netip.Addr, err error) {
	if r.snap == nil {
		return "", nil, errors.New("the agent's name table (/debug/nametable) is unreadable")
	}
	parse := func(e nametable.Entry) []netip.Addr {
		var out []netip.Addr
		for _, s := range e.IPs {
			if a, err := netip.ParseAddr(s); err == nil {
				out = append(out, a.Unmap())
			}
		}
		return out
	}
	if r.o.MeshName != "" {
		q := dns.Fqdn(strings.ToLower(r.o.MeshName))
		for _, e := range r.snap.Entries {
			if strings.EqualFold(e.Name, q) || slices.ContainsFunc(e.Aliases, func(a string) bool { return strings.EqualFold(dns.Fqdn(a), q) }) {
				return q, parse(e), nil
			}
		}
		return "", nil, fmt.Errorf("%s is not in the agent's name table", r.o.MeshName)
	}
	// A host with an IPv4 address first (glibc asks AAAA only where the host
	// has IPv6), a Kubernetes name before others.
	best, bestScore := -1, -1
	for i, e := range r.snap.Entries {
		if strings.HasPrefix(e.Name, "*.") {
			continue
		}
		score := 0
		for _, a := range parse(e) {
			if a.Is4() {
				score = 2
				break
			}
			score = 1
		}
		if score > 0 && r.snap.ClusterDomain != "" && strings.HasSuffix(strings.TrimSuffix(e.Name, "."), "."+r.snap.ClusterDomain) {
			score += 2
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	if best < 0 || bestScore == 0 {
		return "", nil, errors.New("the agent's name table has no name with an address to look up")
	}
	return r.snap.Entries[best].Name, parse(r.snap.Entries[best]), nil
}

// uniqueProbe returns a name under one of the table's wildcard hosts that
// no one has asked before (a label with the time in it), with the addresses
// the mesh gives it.
func (r *run) uniqueProbe() (probeName, bool) {
	if r.snap == nil {
		return probeName{}, false
	}
	for _, e := range r.snap.Entries {
		if !strings.HasPrefix(e.Name, "*.") {
			continue
		}
		var want []netip.Addr
		v4 := false
		for _, s := range e.IPs {
			if a, err := netip.ParseAddr(s); err == nil {
				want = append(want, a.Unmap())
				v4 = v4 || a.Unmap().Is4()
			}
		}
		if v4 {
			return probeName{fmt.Sprintf("onramp-doctor-%d.%s", r.o.Now().UnixNano(), dns.Fqdn(strings.TrimPrefix(e.Name, "*."))), want}, true
		}
	}
	return probeName{}, false
}

// probeName is a name to look up and the addresses the mesh gives it.
type probeName struct {
	name string
	want []netip.Addr
}

// alternates are up to n other names of the table with an IPv4 address,
// starting at a place that changes with the clock, so that runs one after
// the other do not ask the same names.
func (r *run) alternates(not string, n int) []probeName {
	var all []probeName
	for _, e := range r.snap.Entries {
		if strings.HasPrefix(e.Name, "*.") || strings.EqualFold(e.Name, not) {
			continue
		}
		p := probeName{name: e.Name}
		v4 := false
		for _, s := range e.IPs {
			if a, err := netip.ParseAddr(s); err == nil {
				p.want = append(p.want, a.Unmap())
				v4 = v4 || a.Unmap().Is4()
			}
		}
		if v4 {
			all = append(all, p)
		}
	}
	if len(all) <= n {
		return all
	}
	start := int(uint64(r.o.Now().UnixNano()) % uint64(len(all)))
	out := make([]probeName, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, all[(start+i)%len(all)])
	}
	return out
}

func (r *run) meshName() Check {
	c := Check{Name: CheckMeshName}
	if !r.alive || r.rep == nil {
		c.Status, c.Detail = Skipped, "needs a running agent"
		return c
	}
	name, want, err := r.probe()
	if err != nil {
		c.Status, c.Detail = Fail, "no mesh name to look up: "+err.Error()
		c.Fix = "give doctor --name NAME with a name the mesh answers (onramp nametable)"
		return c
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.o.Timeout)
	defer cancel()
	before, merr := getMetrics(ctx, r.o.Agent)
	got, lerr := r.o.Resolve(ctx, name)
	after, merr2 := getMetrics(ctx, r.o.Agent)
	c.Facts = map[string]any{"name": name, "want": addrStrings(want), "got": addrStrings(got)}
	if merr == nil && merr2 == nil {
		c.Facts["meshAnswersBefore"], c.Facts["meshAnswersAfter"] = before[metricMeshAnswers], after[metricMeshAnswers]
	}
	ns := nameservers(r.o.ResolvConf)
	if lerr != nil || len(got) == 0 {
		why := "found nothing"
		if lerr != nil && !errors.Is(lerr, ErrNotFound) {
			why = lerr.Error()
		}
		c.Status = Fail
		c.Detail = fmt.Sprintf("getent ahosts %s (what applications get) %s; the mesh answers %s", name, why, strings.Join(addrStrings(want), " "))
		c.Fix = r.notReachedFix(ns)
		return c
	}
	var foreign []string
	for _, a := range got {
		if !slices.Contains(want, a) {
			foreign = append(foreign, a.String())
		}
	}
	if len(foreign) > 0 {
		c.Status = Fail
		c.Detail = fmt.Sprintf("getent ahosts %s gives %s, not the mesh's %s", name, strings.Join(addrStrings(got), " "), strings.Join(addrStrings(want), " "))
		c.Fix = "something other than onramp answers this name: look in /etc/hosts and at the hosts line of /etc/nsswitch.conf, " +
			"and at the servers /etc/resolv.conf names (" + strings.Join(ns, " ") + ")"
		if r.redirectStatus != OK {
			c.Fix += "; " + r.notReachedFix(ns)
		}
		return c
	}
	if merr != nil || merr2 != nil || !after.has(metricMeshAnswers) {
		c.Status = Warn
		c.Detail = fmt.Sprintf("getent ahosts %s gives the mesh's %s, but onramp's counters are unreadable, so it is not proven that the query reached onramp", name, strings.Join(addrStrings(got), " "))
		c.Fix = "see the agent's /metrics (" + r.o.Agent.Addr() + ")"
		return c
	}
	if after[metricMeshAnswers] <= before[metricMeshAnswers] {
		// A cache between answered. A name under a wildcard host, unique to
		// this run, is in no cache; other names of the table may not be.
		var tries []probeName
		if u, ok := r.uniqueProbe(); ok {
			tries = append(tries, u)
		}
		tries = append(tries, r.alternates(name, 3)...)
		var asked []string
		for _, p := range tries {
			b, err1 := getMetrics(ctx, r.o.Agent)
			pgot, perr := r.o.Resolve(ctx, p.name)
			a, err2 := getMetrics(ctx, r.o.Agent)
			asked = append(asked, p.name)
			if err1 != nil || err2 != nil || perr != nil || len(pgot) == 0 || slices.ContainsFunc(pgot, func(x netip.Addr) bool { return !slices.Contains(p.want, x) }) ||
				a[metricMeshAnswers] <= b[metricMeshAnswers] {
				continue
			}
			r.meshOK = true
			c.Facts["confirmedWith"], c.Facts["confirmedGot"] = p.name, addrStrings(pgot)
			c.Status = OK
			c.Detail = fmt.Sprintf("getent ahosts %s gives the mesh's %s from a cache; %s gives the mesh's %s, answered by onramp (mesh answers %v -> %v)",
				name, strings.Join(addrStrings(got), " "), p.name, strings.Join(addrStrings(pgot), " "), b[metricMeshAnswers], a[metricMeshAnswers])
			return c
		}
		if len(asked) > 0 {
			c.Facts["alsoAsked"] = asked
		}
		c.Status = Warn
		c.Detail = fmt.Sprintf("getent ahosts %s gives the mesh's %s, but onramp counted no mesh answer for it: a cache between the application and onramp answered", name, strings.Join(addrStrings(got), " "))
		c.Fix = "a cache (nscd, systemd-resolved) holds the answer: run doctor again after the mesh TTL, or give --name another mesh name"
		return c
	}
	r.meshOK = true
	c.Status = OK
	c.Detail = fmt.Sprintf("getent ahosts %s gives the mesh's %s, answered by onramp (mesh answers %v -> %v)",
		name, strings.Join(addrStrings(got), " "), before[metricMeshAnswers], after[metricMeshAnswers])
	return c
}

// notReachedFix says what to do when lookups through the system resolver
// do not get onramp's answers.
func (r *run) notReachedFix(ns []string) string {
	listen := strings.Join(r.rep.DNS.Listen, " ")
	switch r.redirectStatus {
	case OK:
		return fmt.Sprintf("the agent reports its redirect in place, yet lookups do not reach onramp (listening on %s): "+
			"see onramp redirect status and whether something changed the resolver setup; systemctl restart onramp applies it again", listen)
	case Fail:
		return "the redirect is broken (see the redirect check): systemctl restart onramp applies it again; onramp redirect status shows what is in place"
	}
	return fmt.Sprintf("the host's resolver does not send mesh names to onramp: /etc/resolv.conf names %s, onramp listens on %s. "+
		"Turn the redirect on (redirect.mode: auto, then systemctl restart onramp), or point the resolver at onramp by hand",
		orNone(ns), listen)
}

func (r *run) publicName() Check {
	c := Check{Name: CheckPublicName}
	name := dns.Fqdn(r.o.PublicName)
	if r.snap != nil {
		for _, e := range r.snap.Entries {
			if strings.EqualFold(e.Name, name) {
				c.Status, c.Detail = Unknown, fmt.Sprintf("%s is a mesh name; this check needs a name outside the mesh", name)
				c.Fix = "give --public-name a name outside the mesh that your network resolves"
				return c
			}
		}
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.o.Timeout)
	defer cancel()
	got, lerr := r.o.Resolve(ctx, name)
	c.Facts = map[string]any{"name": name, "got": addrStrings(got)}
	if lerr == nil && len(got) > 0 {
		var vips []string
		for _, a := range got {
			if isVIP(a) {
				vips = append(vips, a.String())
			}
		}
		if len(vips) > 0 {
			c.Status = Fail
			c.Detail = fmt.Sprintf("getent ahosts %s gives auto-allocated VIPs %s: the mesh, not the real upstream, answers it", name, strings.Join(vips, " "))
			c.Fix = "a ServiceEntry in the mesh declares this host; without a data-plane proxy on this VM set dataPlane: none so that it goes upstream"
			return c
		}
		c.Status, c.Detail = OK, fmt.Sprintf("getent ahosts %s gives %s", name, strings.Join(addrStrings(got), " "))
		return c
	}
	// Not resolved: is the upstream itself there?
	ups := r.upstreams()
	c.Facts["upstreams"] = addrPortStrings(ups)
	var answered, nx []string
	for _, u := range ups {
		var mark uint32
		if r.rep != nil && r.rep.Redirect != nil {
			mark = r.rep.Redirect.Mark
		}
		rcode, addrs, err := r.o.Exchange(ctx, u, name, mark)
		switch {
		case err == nil && rcode == dns.RcodeSuccess && len(addrs) > 0:
			answered = append(answered, u.String())
		case err == nil:
			nx = append(nx, u.String()+" ("+dns.RcodeToString[rcode]+")")
		}
	}
	why := "found nothing"
	if lerr != nil && !errors.Is(lerr, ErrNotFound) {
		why = lerr.Error()
	}
	switch {
	case !r.alive:
		c.Status = Fail
		c.Detail = fmt.Sprintf("getent ahosts %s %s while the agent is down: the host's DNS goes to a dead agent", name, why)
		c.Fix = "onramp redirect remove gives the host its resolver back until the agent runs again"
	case len(answered) > 0:
		c.Status = Fail
		c.Detail = fmt.Sprintf("getent ahosts %s %s, yet the upstream %s answers it directly: names outside the mesh are broken on this host", name, why, strings.Join(answered, " "))
		c.Fix = "see the agent's log (journalctl -u onramp) and onramp lookup " + name + "; onramp redirect remove gives the host its resolver back at once"
	case len(nx) > 0:
		c.Status = Warn
		c.Detail = fmt.Sprintf("getent ahosts %s %s, and the upstream does not know it either: %s", name, why, strings.Join(nx, " "))
		c.Fix = "give --public-name a name outside the mesh that your network resolves"
	default:
		c.Status = Warn
		c.Detail = fmt.Sprintf("getent ahosts %s %s, and no upstream answers (%s): this host has no working upstream DNS, which is not onramp's doing", name, why, orNone(addrPortStrings(ups)))
		c.Fix = "check the host's network and its DNS servers (dns.upstreams, or the resolver onramp follows)"
	}
	return c
}

// upstreams are the proxy's upstream servers as it reports them, else the
// resolv.conf nameservers that are not onramp's own.
func (r *run) upstreams() []netip.AddrPort {
	var out []netip.AddrPort
	if r.rep != nil {
		for _, s := range r.rep.DNS.Upstreams {
			if ap, err := netip.ParseAddrPort(s); err == nil {
				out = append(out, ap)
			} else if a, err := netip.ParseAddr(s); err == nil {
				out = append(out, netip.AddrPortFrom(a, 53))
			}
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, n := range nameservers(r.o.ResolvConf) {
		if a, err := netip.ParseAddr(n); err == nil {
			ap := netip.AddrPortFrom(a.Unmap(), 53)
			if !slices.Contains(r.listens(), ap) {
				out = append(out, ap)
			}
		}
	}
	return out
}

func (r *run) loop() Check {
	c := Check{Name: CheckLoop}
	if r.rep == nil {
		c.Status, c.Detail = Skipped, "needs the agent's report"
		return c
	}
	var ups []netip.AddrPort
	for _, s := range r.rep.DNS.Upstreams {
		if ap, err := netip.ParseAddrPort(s); err == nil {
			ups = append(ups, ap)
		}
	}
	listens := r.listens()
	c.Facts = map[string]any{"upstreams": addrPortStrings(ups), "listen": addrPortStrings(listens)}
	var loops []string
	for _, u := range ups {
		for _, l := range listens {
			if u.Port() == l.Port() && (u.Addr() == l.Addr() || l.Addr().IsUnspecified() && (u.Addr().IsLoopback() || u.Addr().IsUnspecified())) {
				loops = append(loops, fmt.Sprintf("%s is onramp's own listener", u))
			}
		}
		if u.Port() == 53 && (u.Addr() == netip.MustParseAddr("127.0.0.53") || u.Addr() == netip.MustParseAddr("127.0.0.54")) && r.backend() == "resolved" {
			loops = append(loops, fmt.Sprintf("%s is systemd-resolved's stub, which sends mesh domains back to onramp", u))
		}
	}
	if rv := r.rep.Redirect; rv != nil && rv.InPlace && rv.Mark == 0 {
		for _, u := range ups {
			for _, s := range rv.Nameservers {
				if a, ok := parseAddrLoose(s); ok && a == u.Addr().Unmap() && u.Port() == 53 {
					loops = append(loops, fmt.Sprintf("%s is redirected to onramp and onramp's own queries carry no exempting mark", u))
				}
			}
		}
	}
	if len(loops) > 0 {
		c.Status = Fail
		c.Detail = "onramp forwards to itself: " + strings.Join(loops, "; ")
		c.Fix = "set dns.upstreams to the real upstream servers (or leave it empty to follow the host's), never onramp's own listen addresses or resolved's stub"
		return c
	}
	if len(ups) == 0 {
		c.Status, c.Detail = Warn, "the proxy has no upstream server: names outside the mesh get no answer from onramp"
		c.Fix = "set dns.upstreams, or give the host a nameserver in /etc/resolv.conf that onramp can follow"
		return c
	}
	c.Status, c.Detail = OK, fmt.Sprintf("upstreams %s are none of onramp's listeners (%s)", strings.Join(addrPortStrings(ups), " "), strings.Join(addrPortStrings(listens), " "))
	return c
}

func (r *run) backend() string {
	if r.rep != nil && r.rep.Redirect != nil {
		return r.rep.Redirect.Backend
	}
	return ""
}

func (r *run) vips() Check {
	c := Check{Name: CheckVIPs}
	if !r.alive {
		c.Status, c.Detail = Skipped, "needs a running agent"
		return c
	}
	ctx, cancel := context.WithTimeout(r.ctx, r.o.Timeout)
	defer cancel()
	m, merr := getMetrics(ctx, r.o.Agent)
	dataPlane := ""
	switch {
	case r.rep != nil && r.rep.DataPlane != "":
		dataPlane = r.rep.DataPlane
	case r.cfg != nil:
		dataPlane = r.cfg.DataPlane
	}
	// VIP answers the table gives now.
	var answered []string
	vipNames := 0
	if r.snap != nil {
		for _, e := range r.snap.Entries {
			has := false
			for _, s := range e.IPs {
				if a, err := netip.ParseAddr(s); err == nil && isVIP(a) {
					has = true
				}
			}
			if has {
				vipNames++
				if len(answered) < 3 {
					answered = append(answered, strings.TrimSuffix(e.Name, "."))
				}
			}
		}
	}
	c.Facts = map[string]any{"dataPlane": dataPlane, "namesAnsweredWithVIPs": vipNames}
	withheld, lookups := 0.0, 0.0
	if merr == nil && m.has(metricWithheldNames) {
		withheld, lookups = m[metricWithheldNames], m[metricWithheldLookups]
		c.Facts["withheldNames"], c.Facts["withheldLookups"] = withheld, lookups
	}
	switch dataPlane {
	case "proxy":
		c.Status = OK
		c.Detail = fmt.Sprintf("dataPlane: proxy; %s answered with auto-allocated VIPs, for the proxy on this VM to carry", names(vipNames))
	case "none":
		switch {
		case vipNames > 0:
			c.Status = Warn
			c.Detail = fmt.Sprintf("dataPlane: none, yet %s answered with auto-allocated VIPs (%s), which nothing on this host can reach", names(vipNames), strings.Join(answered, ", "))
			c.Fix = "run an agent that withholds VIP-only names with dataPlane: none (onramp version), or run a data-plane proxy and set dataPlane: proxy"
		case lookups > 0:
			c.Status = Warn
			c.Detail = fmt.Sprintf("dataPlane: none; applications on this host asked %v times for names the mesh knows only by auto-allocated VIPs (%v such names), and got the upstream's answer, not the mesh service",
				lookups, withheld)
			var looked []string
			for _, w := range r.withheld {
				if w.Lookups > 0 && len(looked) < 5 {
					looked = append(looked, fmt.Sprintf("%s (%d)", strings.TrimSuffix(w.Host, "."), w.Lookups))
				}
			}
			if len(looked) > 0 {
				c.Detail += ": " + strings.Join(looked, ", ")
				c.Facts["lookedUp"] = looked
			}
			c.Fix = "if those applications mean the mesh service, run a data-plane proxy on this VM (Envoy or ztunnel) and set dataPlane: proxy; onramp status lists the names"
		case withheld > 0:
			c.Status = OK
			c.Detail = fmt.Sprintf("dataPlane: none; %v names known only by auto-allocated VIPs are forwarded upstream, and no application has looked one up", withheld)
		default:
			c.Status, c.Detail = OK, "dataPlane: none; the table holds no auto-allocated VIPs"
		}
	default:
		if vipNames > 0 {
			c.Status = Warn
			c.Detail = fmt.Sprintf("%s answered with auto-allocated VIPs (%s), and the agent does not say whether a data-plane proxy on this VM carries them", names(vipNames), strings.Join(answered, ", "))
			c.Fix = "without a proxy on this VM (Envoy, ztunnel) those addresses lead nowhere: set dataPlane: none"
		} else {
			c.Status, c.Detail = OK, "the table holds no auto-allocated VIPs"
		}
	}
	return c
}

func addrStrings(as []netip.Addr) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

func addrPortStrings(as []netip.AddrPort) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "no server"
	}
	return strings.Join(s, " ")
}

// names is "1 name is" or "N names are".
func names(n int) string {
	if n == 1 {
		return "1 name is"
	}
	return fmt.Sprintf("%d names are", n)
}

// parseAddrLoose reads "10.0.0.2", "10.0.0.2:53" or "[::1]:53" as an address.
func parseAddrLoose(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}
