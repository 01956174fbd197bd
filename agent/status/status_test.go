package status

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/onramp-mesh/onramp/agent/nametable"
)

func TestServerEndpoints(t *testing.T) {
	ready := errors.New("no name table yet")
	src := Sources{
		Ready:     func() error { return ready },
		Report:    func() Report { return Report{Version: "1.2.3", Mode: "static", NameTable: NameTable{Names: 7}} },
		Metrics:   []func(io.Writer){func(w io.Writer) { fmt.Fprintln(w, "onramp_dns_queries_total 5") }},
		NameTable: func() any { return []string{"a.example."} },
		Config:    map[string]string{"stateDir": "/var/lib/onramp"},
	}
	s, err := Listen("127.0.0.1:0", src, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Serve(ctx)

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz/ready"); code != 503 || !strings.Contains(body, "no name table yet") {
		t.Errorf("not ready: %d %q", code, body)
	}
	ready = nil
	if code, _ := get("/healthz/ready"); code != 200 {
		t.Errorf("ready: %d", code)
	}
	if _, body := get("/metrics"); !strings.Contains(body, "onramp_dns_queries_total 5") {
		t.Errorf("metrics: %q", body)
	}
	if _, body := get("/debug/nametable"); !strings.Contains(body, "a.example.") {
		t.Errorf("nametable: %q", body)
	}
	if _, body := get("/debug/config"); !strings.Contains(body, "/var/lib/onramp") {
		t.Errorf("config: %q", body)
	}
	rep, err := Fetch(ctx, s.Addr())
	if err != nil || rep.Version != "1.2.3" || rep.NameTable.Names != 7 {
		t.Fatalf("Fetch: %+v %v", rep, err)
	}
	var buf bytes.Buffer
	rep.WriteText(&buf)
	if !strings.Contains(buf.String(), "7 names") {
		t.Errorf("text: %s", buf.String())
	}
}

func TestFetchNoAgent(t *testing.T) {
	_, err := Fetch(context.Background(), "127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "is onramp running") {
		t.Fatalf("want a clear error, got %v", err)
	}
}

// TestTextNotServedAndWithheld: what the table does not serve is listed,
// at most ten lines each, the withheld names looked up most first.
func TestTextNotServedAndWithheld(t *testing.T) {
	var r Report
	r.DataPlane = "none"
	for i := range 12 {
		r.NameTable.Skipped = append(r.NameTable.Skipped, nametable.Skip{Host: fmt.Sprintf("h%02d.internal", i), Address: "fe80::1%eth0", Reason: "has a zone"})
	}
	r.NameTable.Withheld = []nametable.Withheld{
		{Host: "a.example.", VIPs: []string{"240.240.0.1"}},
		{Host: "istio.io.", VIPs: []string{"240.240.0.2"}, Lookups: 3},
	}
	var buf bytes.Buffer
	r.WriteText(&buf)
	out := buf.String()
	for _, want := range []string{
		"data plane:      none\n",
		`not served:      entry "h00.internal": address "fe80::1%eth0" dropped: has a zone` + "\n",
		"not served:      and 2 more (onramp status -o json lists them)\n",
		"withheld:        istio.io. (only auto-allocated VIPs 240.240.0.2; forwarded upstream, 3 lookups)\nwithheld:        a.example.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "h10.internal") {
		t.Errorf("more than ten lines of skipped entries:\n%s", out)
	}
}
