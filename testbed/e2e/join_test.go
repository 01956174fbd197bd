package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onramp-mesh/onramp/testbed/harness"
)

// TestJoinRegisterResolveAndLeave follows one VM through its life in the
// mesh: bootstrap, registration, DNS, a config change, health flips, and
// the entry's removal after disconnect plus the grace period.
func TestJoinRegisterResolveAndLeave(t *testing.T) {
	const grace = 2 * time.Second
	e := newEnv(t, grace)
	state := filepath.Join(e.work, "vm-state")
	a := e.agent(e.bundle(harness.BundleOptions{}), state)
	if err := a.WaitReady(e.ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	// Bootstrap: a certificate for the token's identity, on disk.
	const spiffe = "spiffe://cluster.local/ns/vm/sa/vm-sa"
	if got := leafURI(t, state); got != spiffe {
		t.Errorf("certificate identity %s, want %s", got, spiffe)
	}
	if rep := e.status(a); rep.Identity.SPIFFEID != spiffe || !rep.ControlPlane.Connected {
		t.Errorf("status: identity %q connected %v", rep.Identity.SPIFFEID, rep.ControlPlane.Connected)
	}

	// Registration: istiod's name, labels and annotations.
	var we entry
	e.eventually(5*time.Second, "WorkloadEntry registered", func() string {
		list := e.entries()
		if len(list) != 1 {
			return fmt.Sprintf("%d entries", len(list))
		}
		we = list[0]
		return ""
	})
	if we.Metadata.Name != "vm-group-10.250.0.2" || we.Metadata.Namespace != "vm" || we.Spec.Address != "10.250.0.2" {
		t.Errorf("entry %s/%s address %s", we.Metadata.Namespace, we.Metadata.Name, we.Spec.Address)
	}
	if we.Metadata.Labels["app"] != "myvmapi" || we.Metadata.Labels["version"] != "v1" {
		t.Errorf("labels %v", we.Metadata.Labels)
	}
	for k, want := range map[string]string{
		"istio.io/autoRegistrationGroup":       "vm-group",
		"proxy.istio.io/health-checks-enabled": "true",
	} {
		if got := we.Metadata.Annotations[k]; got != want {
			t.Errorf("annotation %s = %q, want %q", k, got, want)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, we.Metadata.Annotations["istio.io/connectedAt"]); err != nil {
		t.Errorf("connectedAt: %v", err)
	}
	if we.Metadata.Annotations["istio.io/workloadController"] == "" {
		t.Error("no workloadController annotation")
	}
	if rep := e.status(a); rep.WorkloadEntry != "vm/vm-group-10.250.0.2" {
		t.Errorf("status names the entry %q", rep.WorkloadEntry)
	}

	// DNS: a mesh name through the agent.
	if r := e.dig("productpage.ns1.svc.cluster.local", "A"); !r.Authoritative || len(r.Answers) != 1 || r.Answers[0] != "A 10.96.0.12" {
		t.Errorf("productpage: %+v", r)
	}

	// A ServiceEntry added to the config directory resolves within 1 s.
	e.writeMesh("new.yaml", `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: payments, namespace: ns1}
spec:
  hosts: [payments.corp.example]
  addresses: [10.77.0.9]
  ports: [{number: 443, name: https, protocol: TLS}]
  resolution: STATIC
  endpoints: [{address: 10.77.0.9}]
`)
	took := e.eventually(3*time.Second, "new ServiceEntry resolvable", func() string {
		r := e.dig("payments.corp.example", "A")
		if len(r.Answers) == 1 && r.Answers[0] == "A 10.77.0.9" {
			return ""
		}
		return fmt.Sprintf("%+v", r)
	})
	t.Logf("new ServiceEntry resolvable after %s", took)
	if took > time.Second {
		t.Errorf("new ServiceEntry took %s to resolve, want at most 1s", took)
	}

	// Health: nothing listens on the probe's port yet, then something does, then not.
	healthy := func(want string) func() string {
		return func() string {
			list := e.entries()
			if len(list) == 1 {
				for _, c := range list[0].Status.Conditions {
					if c.Type == "Healthy" && c.Status == want {
						return ""
					}
				}
				return fmt.Sprintf("conditions %+v", list[0].Status.Conditions)
			}
			return fmt.Sprintf("%d entries", len(list))
		}
	}
	e.eventually(10*time.Second, "Healthy=False while the app is down", healthy("False"))
	ln, err := e.vmNS.Listen("tcp", "127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	e.eventually(10*time.Second, "Healthy=True once the app listens", healthy("True"))
	ln.Close()
	e.eventually(10*time.Second, "Healthy=False after the app stops", healthy("False"))

	// Leaving: disconnectedAt at once, the entry gone after the grace period.
	a.Stop()
	e.eventually(5*time.Second, "disconnectedAt set", func() string {
		list := e.entries()
		if len(list) == 1 && list[0].Metadata.Annotations["istio.io/disconnectedAt"] != "" {
			return ""
		}
		return fmt.Sprintf("%+v", list)
	})
	gone := e.eventually(grace+5*time.Second, "entry removed after the grace period", func() string {
		if n := len(e.entries()); n != 0 {
			return fmt.Sprintf("%d entries", n)
		}
		return ""
	})
	t.Logf("entry removed %s after disconnectedAt (grace %s)", gone, grace)
}

// TestRestartKeepsIdentityAfterTokenExpiry: the token is needed only once;
// after it expired, a restart starts from the stored certificate.
func TestRestartKeepsIdentityAfterTokenExpiry(t *testing.T) {
	e := newEnv(t, 10*time.Second)
	state := filepath.Join(e.work, "vm-state")
	dir := e.bundle(harness.BundleOptions{TokenTTL: 4 * time.Second})
	a := e.agent(dir, state)
	if err := a.WaitReady(e.ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	a.Stop()
	time.Sleep(5 * time.Second) // the token is now expired
	a = e.agent(dir, state)
	if err := a.WaitReady(e.ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// Ready comes at once from the table on disk; the stream follows.
	e.eventually(10*time.Second, "reconnected with the stored certificate", func() string {
		if rep := e.status(a); !rep.ControlPlane.Connected || rep.Identity.SPIFFEID == "" {
			return fmt.Sprintf("%+v %+v", rep.ControlPlane, rep.Identity)
		}
		return ""
	})
	if !strings.Contains(a.Output(), "stored") {
		t.Errorf("agent should say it used the stored certificate:\n%s", harness.Tail(a.Output(), 20))
	}
}

// TestPlaintextDevelopmentMode: with controlPlaneAuthPolicy NONE the agent
// speaks plaintext ADS to :15010 with no certificate; registration and NDS
// still work.
func TestPlaintextDevelopmentMode(t *testing.T) {
	e := newEnv(t, 10*time.Second)
	state := filepath.Join(e.work, "vm-state")
	a := e.agent(e.bundle(harness.BundleOptions{Plaintext: true}), state)
	if err := a.WaitReady(e.ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	rep := e.status(a)
	if !rep.ControlPlane.Connected || !strings.HasSuffix(rep.ControlPlane.Address, ":15010") || rep.Identity.SPIFFEID != "" {
		t.Errorf("plaintext mode: %+v %+v", rep.ControlPlane, rep.Identity)
	}
	if r := e.dig("productpage.ns1.svc.cluster.local", "A"); len(r.Answers) != 1 || r.Answers[0] != "A 10.96.0.12" {
		t.Errorf("productpage: %+v", r)
	}
	e.eventually(5*time.Second, "registered", func() string {
		if n := len(e.entries()); n != 1 {
			return fmt.Sprintf("%d entries", n)
		}
		return ""
	})
	if _, err := os.Stat(filepath.Join(state, "cert-chain.pem")); err == nil {
		t.Error("a certificate was requested although the bundle names no CA")
	}
}
