// Package doctor checks the path a DNS query of an application on this host
// takes to onramp and back, link by link, and names the first broken link
// with what to do about it. It is what `onramp doctor` prints.
//
// The checks, in the order of the path:
//
//	agent        the agent answers on its status address, is ready and has a name table
//	redirect     the redirect the agent reports is in place and matches its plan
//	mesh-name    a mesh name looked up through the system resolver (getent ahosts,
//	             i.e. glibc's getaddrinfo) gets the mesh's addresses and reaches onramp
//	             (onramp's count of mesh answers moves)
//	public-name  a name outside the mesh still resolves through the real upstream
//	loop         the proxy's upstreams are none of its own listeners nor resolved's stub
//	vips         with no data-plane proxy, applications looked up names whose only
//	             mesh addresses are auto-allocated VIPs (issue 9): they got the
//	             upstream's answer, not the mesh's
//
// `onramp doctor -o json` prints the Report; status is ok, warn, fail,
// unknown or skipped, broken names the first failed check:
//
//	{"healthy": false, "broken": "mesh-name",
//	 "checks": [
//	   {"name": "agent", "status": "ok", "detail": "ready on 127.0.0.1:15020, ...", "facts": {"names": 4, ...}},
//	   {"name": "redirect", "status": "ok", "detail": "backend nftables, in place as planned", "facts": {...}},
//	   {"name": "mesh-name", "status": "fail", "detail": "getent ahosts productpage.ns1.svc.cluster.local. ... found nothing; ...",
//	    "fix": "the host's resolver does not send mesh names to onramp: ...",
//	    "facts": {"name": "productpage.ns1.svc.cluster.local.", "want": ["10.96.0.12"], "got": [],
//	              "meshAnswersBefore": 2, "meshAnswersAfter": 2}},
//	   ...],
//	 "statusAddr": "127.0.0.1:15020", "started": "2026-12-03T12:30:00Z", "elapsedMs": 31}
//
// Every input comes from Options (the status client, the system resolver, the
// DNS client for direct upstream queries, the clock), so tests run the checks
// against fakes or against a real agent in a network namespace.
package doctor

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"
)

// Status is the verdict of one check.
type Status string

const (
	OK      Status = "ok"
	Warn    Status = "warn"    // works, with something to look at
	Fail    Status = "fail"    // this link is broken
	Unknown Status = "unknown" // could not be told (e.g. the agent reports no redirect state)
	Skipped Status = "skipped" // not run: an earlier link it needs is broken
)

// Check names, in path order.
const (
	CheckAgent      = "agent"
	CheckRedirect   = "redirect"
	CheckMeshName   = "mesh-name"
	CheckPublicName = "public-name"
	CheckLoop       = "loop"
	CheckVIPs       = "vips"
)

// Check is the result of one check.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Detail is what was seen, in one sentence.
	Detail string `json:"detail"`
	// Fix is what to do, when the status is not ok.
	Fix string `json:"fix,omitempty"`
	// Facts are the figures behind the verdict (addresses, counters), for programs.
	Facts map[string]any `json:"facts,omitempty"`
}

// Report is the whole diagnosis.
type Report struct {
	// Healthy is false when a check failed.
	Healthy bool `json:"healthy"`
	// Broken is the name of the first failed check, the first broken link of the path.
	Broken string  `json:"broken,omitempty"`
	Checks []Check `json:"checks"`
	// StatusAddr is the agent's status address that was asked.
	StatusAddr string    `json:"statusAddr"`
	Started    time.Time `json:"started"`
	ElapsedMs  int64     `json:"elapsedMs"`
}

// Resolver looks name up as applications on the host do and returns the
// addresses found. It returns ErrNotFound (wrapped) when the name does not
// resolve.
type Resolver func(ctx context.Context, name string) ([]netip.Addr, error)

// Exchanger asks one DNS server directly for name's A records and returns the
// response code (dns.RcodeSuccess, ...) and the addresses. A non-zero mark is
// the socket mark the redirect exempts (onramp's own queries carry it), so
// that the query reaches the server itself rather than onramp.
type Exchanger func(ctx context.Context, server netip.AddrPort, name string, mark uint32) (rcode int, addrs []netip.Addr, err error)

// Options are the checks' inputs.
type Options struct {
	// Agent reads the agent's status server.
	Agent StatusClient
	// Resolve is the system resolver (GetentResolver in the command).
	Resolve Resolver
	// Exchange asks an upstream directly (DNSExchanger in the command).
	Exchange Exchanger
	// Inspect looks at the redirect on the host itself (NftablesInspector
	// in the command); nil: only the agent's report is read.
	Inspect Inspector
	// Now is the clock.
	Now func() time.Time
	// ResolvConf is the content of the host's /etc/resolv.conf, for the
	// fixes (which servers applications ask); empty when unreadable.
	ResolvConf string
	// MeshName is the mesh name to look up; empty: one picked from the table.
	MeshName string
	// PublicName is a name outside the mesh that the host's upstream resolves.
	PublicName string
	// Timeout bounds each lookup; 0 means 15 s.
	Timeout time.Duration
}

// DefaultPublicName is the name outside the mesh looked up when none is given.
const DefaultPublicName = "example.com"

// Run runs every check and returns the report. It never fails: what it
// cannot find out is a check's verdict.
func Run(ctx context.Context, o Options) Report {
	if o.Timeout == 0 {
		o.Timeout = 15 * time.Second
	}
	if o.PublicName == "" {
		o.PublicName = DefaultPublicName
	}
	start := o.Now()
	r := &run{o: o, ctx: ctx}
	rep := Report{StatusAddr: o.Agent.Addr(), Started: start}
	for _, c := range []func() Check{r.agent, r.redirect, r.meshName, r.publicName, r.loop, r.vips} {
		rep.Checks = append(rep.Checks, c())
	}
	rep.Healthy = true
	for _, c := range rep.Checks {
		if c.Status == Fail {
			rep.Healthy = false
			if rep.Broken == "" {
				rep.Broken = c.Name
			}
		}
	}
	rep.ElapsedMs = o.Now().Sub(start).Milliseconds()
	return rep
}

// Check returns the check named name, or the zero Check.
func (r Report) Check(name string) Check {
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	return Check{}
}

// WriteText prints one line per check, then the first broken link and its fix.
func (r Report) WriteText(w io.Writer) {
	for _, c := range r.Checks {
		mark := map[Status]string{OK: "ok", Warn: "warn", Fail: "FAIL", Unknown: "?", Skipped: "-"}[c.Status]
		fmt.Fprintf(w, "%-5s %-12s %s\n", mark, c.Name, c.Detail)
	}
	if r.Healthy {
		n := 0
		for _, c := range r.Checks {
			if c.Status == Warn || c.Status == Unknown {
				n++
			}
		}
		if n == 0 {
			fmt.Fprintln(w, "\nhealthy: applications on this host get mesh answers from onramp")
		} else {
			fmt.Fprintf(w, "\nhealthy, with %d thing(s) to look at:\n", n)
			for _, c := range r.Checks {
				if (c.Status == Warn || c.Status == Unknown) && c.Fix != "" {
					fmt.Fprintf(w, "  %s: %s\n", c.Name, c.Fix)
				}
			}
		}
		return
	}
	b := r.Check(r.Broken)
	fmt.Fprintf(w, "\nbroken: %s: %s\nfix:    %s\n", b.Name, b.Detail, b.Fix)
}

// Err is nil when the report is healthy, else an error naming the first
// broken link (the command's exit status 1).
func (r Report) Err() error {
	if r.Healthy {
		return nil
	}
	return fmt.Errorf("the DNS path is broken at %q: %s", r.Broken, r.Check(r.Broken).Fix)
}

// nameservers are the nameserver lines of a resolv.conf.
func nameservers(resolvConf string) []string {
	var out []string
	for _, line := range strings.Split(resolvConf, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			out = append(out, f[1])
		}
	}
	return out
}
