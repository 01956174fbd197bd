package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onramp-mesh/onramp/agent/status"
	"github.com/onramp-mesh/onramp/testbed/demo"
	"github.com/onramp-mesh/onramp/testbed/harness"
)

// metric returns the line of the agent's /metrics that starts with name.
func (e *env) metric(a *harness.Agent, name string) string {
	e.t.Helper()
	code, body, err := harness.HTTPGet(e.ctx, e.vmNS.DialContext, "http://"+a.StatusAddr+"/metrics")
	if err != nil || code != 200 {
		e.t.Fatalf("metrics: %d %v", code, err)
	}
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, name+" ") {
			return l
		}
	}
	return ""
}

func skipped(rep status.Report) []string {
	var out []string
	for _, s := range rep.NameTable.Skipped {
		out = append(out, s.String())
	}
	return out
}

const paymentsSE = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: payments, namespace: ns1}
spec:
  hosts: [payments.corp.example]
  addresses: [10.77.0.9]
  ports: [{number: 443, name: https, protocol: TLS}]
  resolution: STATIC
  endpoints: [{address: 10.77.0.9}]
`

// oddSEs are ServiceEntries Istio's validation accepts and istiod puts in
// the NameTable as written: once, any one of them made onramp NACK every
// table from then on.
const oddSEs = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: mapped, namespace: ns1}
spec:
  hosts: [mapped.internal]
  addresses: ["::ffff:10.105.0.1"]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.105.0.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: zoned, namespace: ns1}
spec:
  hosts: [zoned.internal]
  addresses: ["fe80::1%eth0"]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: DNS
`

// TestOddServiceEntryIsSkippedNotNACKed: a push with odd entries among good
// ones is ACKed; the good ones, old and new, resolve; what is not served is
// in status and the metrics; the next push without it clears the report.
func TestOddServiceEntryIsSkippedNotNACKed(t *testing.T) {
	e := newEnv(t, 10*time.Second)
	a := e.agent(e.bundle(harness.BundleOptions{}), filepath.Join(e.work, "vm-state"))
	if err := a.WaitReady(e.ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	before := e.status(a)

	// One push: a new good entry and two odd ones.
	e.writeMesh("odd.yaml", paymentsSE+"---"+oddSEs)
	e.eventually(5*time.Second, "the new ServiceEntry resolves", func() string {
		if r := e.dig("payments.corp.example", "A"); len(r.Answers) != 1 || r.Answers[0] != "A 10.77.0.9" {
			return fmt.Sprintf("%+v", r)
		}
		return ""
	})
	rep := e.status(a)
	if rep.ControlPlane.Rejected != 0 || rep.ControlPlane.Accepted <= before.ControlPlane.Accepted {
		t.Errorf("want the push ACKed: %+v", rep.ControlPlane)
	}
	if r := e.dig("productpage.ns1.svc.cluster.local", "A"); len(r.Answers) != 1 || r.Answers[0] != "A 10.96.0.12" {
		t.Errorf("old entry: %+v", r)
	}
	// The IPv4-mapped address is served as the IPv4 address it names.
	if r := e.dig("mapped.internal", "A"); len(r.Answers) != 1 || r.Answers[0] != "A 10.105.0.1" {
		t.Errorf("mapped.internal: %+v", r)
	}
	want := []string{
		`entry "zoned.internal": address "fe80::1%eth0" dropped: "fe80::1%eth0" has a zone (%eth0); a DNS answer cannot carry it, and the address is unusable without it`,
		`entry "zoned.internal" skipped: no usable address left`,
	}
	if got := skipped(rep); !slices.Equal(got, want) {
		t.Errorf("status lists as not served:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, m := range []string{"onramp_nametable_dropped_addresses 1", "onramp_nametable_skipped_entries 1"} {
		if got := e.metric(a, strings.Fields(m)[0]); got != m {
			t.Errorf("metric %q, want %q", got, m)
		}
	}
	if n := strings.Count(a.Output(), "name table entry not fully served"); n != 2 {
		t.Errorf("%d log lines about what is not served, want 2 (once per address and entry)", n)
	}

	// The next push without the odd entries clears the report.
	e.writeMesh("odd.yaml", paymentsSE)
	e.eventually(5*time.Second, "the report cleared", func() string {
		if got := skipped(e.status(a)); len(got) != 0 {
			return strings.Join(got, "; ")
		}
		return ""
	})
	if got := e.metric(a, "onramp_nametable_dropped_addresses"); got != "onramp_nametable_dropped_addresses 0" {
		t.Errorf("metric %q after the clean push", got)
	}
	if r := e.dig("payments.corp.example", "A"); len(r.Answers) != 1 {
		t.Errorf("payments after the clean push: %+v", r)
	}
	if rep := e.status(a); rep.ControlPlane.Rejected != 0 {
		t.Errorf("a push was NACKed: %+v", rep.ControlPlane)
	}
}

// TestUnusableAddressIsDroppedNotNACKed: a table that decodes is applied
// even with an entry whose address is not an IP (the control plane's
// "invalid" fault); the entry is reported, not the table refused.
func TestUnusableAddressIsDroppedNotNACKed(t *testing.T) {
	e := newEnv(t, 10*time.Second)
	a := e.agent(e.bundle(harness.BundleOptions{}), filepath.Join(e.work, "vm-state"))
	if err := a.WaitReady(e.ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	before := e.status(a)
	e.post("/debug/fault?nds=invalid")
	e.post("/debug/push")
	e.eventually(5*time.Second, "the table ACKed, the entry reported", func() string {
		rep := e.status(a)
		if rep.ControlPlane.Accepted > before.ControlPlane.Accepted && strings.Contains(strings.Join(skipped(rep), ";"), `"broken.fault.test": address "not-an-ip" dropped`) {
			return ""
		}
		return fmt.Sprintf("%+v %v", rep.ControlPlane, skipped(rep))
	})
	if rep := e.status(a); rep.ControlPlane.Rejected != 0 {
		t.Errorf("NACKed: %+v", rep.ControlPlane)
	}
	if r := e.dig("productpage.ns1.svc.cluster.local", "A"); len(r.Answers) != 1 || r.Answers[0] != "A 10.96.0.12" {
		t.Errorf("table no longer served: %+v", r)
	}
}

const vipAndRealSEs = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: istio-io, namespace: ns1}
spec:
  hosts: [istio.io]
  location: MESH_EXTERNAL
  ports: [{number: 443, name: https, protocol: TLS}]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: my-fruits, namespace: ns1}
spec:
  hosts: [my-fruits.internal]
  addresses: [10.103.1.1]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  endpoints: [{address: 10.103.1.1}]
`

// TestDataPlaneModes runs the same VM in both data-plane modes against a
// table that mixes an auto-allocated VIP (istio.io) with real addresses (a
// ServiceEntry address, a ClusterIP). Without a proxy the VIP-only name is
// forwarded: the site's DNS answers it (counted there) and onramp caches
// it; with a proxy the VIP is answered from the table. The names with real
// addresses come from the table in both.
func TestDataPlaneModes(t *testing.T) {
	e := newEnv(t, 10*time.Second)
	site, err := demo.StartSiteDNS(e.cpNS, demo.ControlPlaneIP)
	if err != nil {
		t.Fatal(err)
	}
	defer site.Shutdown()
	e.writeMesh("external.yaml", vipAndRealSEs)
	bundle, state := e.bundle(harness.BundleOptions{}), filepath.Join(e.work, "vm-state")
	real := func(mode string) {
		t.Helper()
		for name, ip := range map[string]string{"my-fruits.internal": "10.103.1.1", "productpage.ns1.svc.cluster.local": "10.96.0.12"} {
			if r := e.dig(name, "A"); !r.Authoritative || len(r.Answers) != 1 || r.Answers[0] != "A "+ip {
				t.Errorf("%s: %s: %+v, want A %s from the table", mode, name, r, ip)
			}
		}
	}

	a := e.agent(bundle, state, "--data-plane", "none")
	if err := a.WaitReady(e.ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// Ready comes with the first table, which may predate external.yaml:
	// look istio.io up only once the table that withholds it is served.
	e.eventually(5*time.Second, "istio.io withheld", func() string {
		if w := e.status(a).NameTable.Withheld; len(w) != 1 || w[0].Host != "istio.io." {
			return fmt.Sprintf("withheld %+v", w)
		}
		return ""
	})
	for i := 0; i < 2; i++ {
		if r := e.dig("istio.io", "A"); r.Authoritative || len(r.Answers) != 1 || r.Answers[0] != "A "+demo.SiteIstioIO {
			t.Errorf("none: istio.io: %+v, want the site's A %s", r, demo.SiteIstioIO)
		}
	}
	if n := site.Queries("istio.io"); n != 1 {
		t.Errorf("none: the site's DNS saw %d queries for istio.io, want 1 (then onramp's cache)", n)
	}
	real("none")
	rep := e.status(a)
	if rep.DataPlane != "none" || len(rep.NameTable.Withheld) != 1 || rep.NameTable.Withheld[0].Host != "istio.io." || rep.NameTable.Withheld[0].Lookups != 2 {
		t.Errorf("none: status data plane %q, withheld %+v; want istio.io looked up twice", rep.DataPlane, rep.NameTable.Withheld)
	}
	if got := e.metric(a, "onramp_nametable_withheld_lookups_total"); got != "onramp_nametable_withheld_lookups_total 2" {
		t.Errorf("none: %q", got)
	}
	a.Stop()

	a = e.agent(bundle, state, "--data-plane", "proxy")
	if err := a.WaitReady(e.ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	e.eventually(5*time.Second, "istio.io answered with its VIP", func() string {
		if r := e.dig("istio.io", "A"); !r.Authoritative || len(r.Answers) != 1 || !strings.HasPrefix(r.Answers[0], "A 240.240.") {
			return fmt.Sprintf("%+v", r)
		}
		return ""
	})
	real("proxy")
	if n := site.Queries("istio.io"); n != 1 {
		t.Errorf("proxy: the site's DNS saw %d queries for istio.io, want still 1", n)
	}
	if rep := e.status(a); rep.DataPlane != "proxy" || len(rep.NameTable.Withheld) != 0 {
		t.Errorf("proxy: status data plane %q, withheld %+v", rep.DataPlane, rep.NameTable.Withheld)
	}
}
