// Package redirect tests the agent's redirect of the host's resolver with
// real components: nftables in network namespaces whose resolv.conf names
// an upstream dnsmasq on a veth peer, and systemd-resolved in Debian 12 and
// 13 machines booted with systemd-nspawn. The agent is the real onramp
// binary.
package redirect

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onramp-mesh/onramp/testbed/harness"
	"github.com/onramp-mesh/onramp/testbed/netns"
)

// onrampBin is the onramp binary built for the suite ("" when not built).
var onrampBin string

func TestMain(m *testing.M) {
	code := func() int {
		if os.Geteuid() != 0 {
			return m.Run() // every test skips
		}
		dir, err := os.MkdirTemp("", "onramp-redirect-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		repo, err := harness.RepoRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		onrampBin = filepath.Join(dir, "onramp")
		cmd := exec.Command("go", "build", "-o", onrampBin, "./agent/cmd/onramp")
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build onramp: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

const meshTable = `{"table": {
  "productpage.ns1.svc.cluster.local": {"ips": ["10.96.0.12", "fd00::12"], "registry": "Kubernetes", "shortname": "productpage", "namespace": "ns1"},
  "api.external.test": {"ips": ["10.96.0.20"], "registry": "External"}
}}`

// metric reads one counter from the agent's /metrics (0 when absent).
func metric(t *testing.T, get func(path string) (string, error), name string) int {
	t.Helper()
	body, err := get("/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\d+)`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// nsGetter fetches the agent's status pages from inside ns.
func nsGetter(ns *netns.NS, addr string) func(string) (string, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		return ns.DialContext(ctx, network, a)
	}}}
	return func(path string) (string, error) {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
}

// waitFor polls cond every 50 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < d {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s", what, d)
	return 0
}

// countLines counts the lines of file containing every one of subs.
func countLines(path string, subs ...string) int {
	b, _ := os.ReadFile(path)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		ok := l != ""
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			n++
		}
	}
	return n
}
