package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onramp-mesh/onramp/agent/status"
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
