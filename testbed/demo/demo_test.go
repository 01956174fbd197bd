package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/onramp-mesh/onramp/testbed/harness"
	"github.com/onramp-mesh/onramp/testbed/netns"
)

// TestDemo runs `make demo` end to end: real binaries, real TLS and gRPC,
// a namespace VM, and dig as the client.
func TestDemo(t *testing.T) {
	if err := netns.Available(); err != nil {
		t.Skip(err)
	}
	if testing.Short() {
		t.Skip("end to end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	repo, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := harness.Build(ctx, repo, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Run(ctx, Options{Bin: bin, Out: &out}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"all scenarios passed", `"type": "Healthy"`, "vm-group-10.250.0.2", "spiffe://cluster.local/ns/vm/sa/vm-sa",
		"data plane:      proxy", "data plane:      none", "A " + SiteIstioIO, "withheld:        istio.io. (only auto-allocated VIPs 240.240."} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}
