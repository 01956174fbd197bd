package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onramp-mesh/onramp/installer/bundle"
	"github.com/onramp-mesh/onramp/installer/bundle/bundletest"
)

// fakeUnits is systemd as far as bootstrap sees it: a start makes a new
// invocation that becomes ready after two polls.
type fakeUnits struct {
	enabled, starts, polls int
	state                  UnitState
	failStart              bool
}

func (f *fakeUnits) Enable(context.Context) error { f.enabled++; return nil }
func (f *fakeUnits) Start(_ context.Context, restart bool) error {
	f.starts++
	f.polls = 0
	f.state = UnitState{Active: "activating", Sub: "start", Invocation: fmt.Sprint("inv", f.starts)}
	return nil
}
func (f *fakeUnits) State(context.Context) (UnitState, error) {
	f.polls++
	if f.state.Active == "activating" && f.polls > 2 {
		if f.failStart {
			f.state.Active, f.state.Sub, f.state.Result = "activating", "auto-restart", "exit-code"
		} else {
			f.state.Active, f.state.Sub, f.state.Status = "active", "running", "serving 3 names"
		}
	}
	return f.state, nil
}
func (f *fakeUnits) Journal(context.Context, int) string { return "onramp: no bundle\n" }

func testOptions(t *testing.T, units Units) Options {
	t.Helper()
	g, err := user.LookupGroupId(fmt.Sprint(os.Getegid()))
	if err != nil {
		t.Skip(err)
	}
	root := t.TempDir()
	cfg := filepath.Join(root, "onramp.yaml")
	os.WriteFile(cfg, []byte("# onramp configuration\n#\n# bundle: /etc/onramp/bundle\n#\n# log:\n#   level: info\n"), 0o644)
	return Options{
		Bundle:     bundletest.Write(t, filepath.Join(root, "src")),
		Config:     cfg,
		InstallDir: filepath.Join(root, "etc", "bundle"),
		StateDir:   filepath.Join(root, "state"),
		Group:      g.Name,
		Units:      units,
		StatusAddr: "127.0.0.1:1", // nothing listens: no report
		Timeout:    5 * time.Second,
	}
}

func TestBootstrapInstallsThenChangesNothing(t *testing.T) {
	u := &fakeUnits{state: UnitState{Active: "inactive", Sub: "dead"}}
	o := testOptions(t, u)
	o.DataPlane = "none"
	var progress bytes.Buffer
	o.Out = &progress
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.BundleChanged || !res.ConfigChanged || !res.Started || u.starts != 1 || u.enabled != 1 {
		t.Fatalf("first run: %+v, units %+v", res, u)
	}
	if !strings.Contains(progress.String(), "serving 3 names") || !strings.Contains(progress.String(), "READY") {
		t.Errorf("progress display:\n%s", progress.String())
	}
	for _, f := range []string{bundle.FileToken, bundle.FileClusterEnv} {
		fi, err := os.Stat(filepath.Join(o.InstallDir, f))
		if err != nil || fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: %v %v", f, fi.Mode(), err)
		}
	}
	if fi, _ := os.Stat(o.InstallDir); fi.Mode().Perm() != 0o750 {
		t.Errorf("bundle dir mode %v", fi.Mode())
	}
	cfg, _ := os.ReadFile(o.Config)
	if !strings.Contains(string(cfg), "\nbundle: "+o.InstallDir+"\n") || !strings.Contains(string(cfg), "\ndataPlane: none\n") || strings.Contains(string(cfg), "# bundle:") {
		t.Errorf("config:\n%s", cfg)
	}

	// Again, same bundle, no --data-plane (kept in the configuration): nothing changes.
	o.DataPlane = ""
	res, err = Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.BundleChanged || res.ConfigChanged || res.Started || res.Restarted || u.starts != 1 {
		t.Fatalf("second run changed something: %+v", res)
	}
	cfg2, _ := os.ReadFile(o.Config)
	if !bytes.Equal(cfg, cfg2) {
		t.Errorf("config changed:\n%s", cfg2)
	}

	// A new bundle (another IP) replaces the old one whole and restarts.
	os.WriteFile(filepath.Join(o.InstallDir, "stale"), []byte("x"), 0o644)
	o.IP = "192.0.2.77"
	res, err = Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.BundleChanged || !res.Restarted || u.starts != 2 {
		t.Fatalf("third run: %+v", res)
	}
	env, _ := os.ReadFile(filepath.Join(o.InstallDir, bundle.FileClusterEnv))
	if !strings.Contains(string(env), "ISTIO_SVC_IP='192.0.2.77'") {
		t.Errorf("cluster.env:\n%s", env)
	}
	if _, err := os.Stat(filepath.Join(o.InstallDir, "stale")); err == nil {
		t.Error("a file of the old bundle survived")
	}
}

func TestBootstrapDefectsChangeNothing(t *testing.T) {
	u := &fakeUnits{}
	o := testOptions(t, u)
	o.DataPlane = "none"
	os.Remove(filepath.Join(o.Bundle, bundle.FileToken))
	os.WriteFile(filepath.Join(o.Bundle, bundle.FileHosts), []byte("not-an-ip istiod\n"), 0o644)
	before, _ := os.ReadFile(o.Config)
	_, err := Run(context.Background(), o)
	var de *DefectsError
	if !errors.As(err, &de) || len(de.Errs) != 2 {
		t.Fatalf("err = %v", err)
	}
	after, _ := os.ReadFile(o.Config)
	if _, serr := os.Stat(o.InstallDir); serr == nil || !bytes.Equal(before, after) || u.starts+u.enabled != 0 {
		t.Fatal("a defective bundle changed something")
	}
}

func TestBootstrapNeedsDataPlane(t *testing.T) {
	o := testOptions(t, &fakeUnits{})
	_, err := Run(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "--data-plane none") {
		t.Fatalf("err = %v", err)
	}
}

func TestBootstrapReportsAFailingAgent(t *testing.T) {
	o := testOptions(t, &fakeUnits{failStart: true})
	o.DataPlane = "proxy"
	_, err := Run(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") || !strings.Contains(err.Error(), "no bundle") {
		t.Fatalf("err = %v", err)
	}
}

func TestSetKeys(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "bundle: /b\n"},
		{"# bundle: /etc/onramp/bundle\nlog:\n  level: info\n", "bundle: /b\nlog:\n  level: info\n"},
		{"bundle: /old\n# bundle: /x\n", "bundle: /b\n# bundle: /x\n"},
		{"log: {}", "log: {}\nbundle: /b\n"},
	} {
		got := string(setKeys([]byte(c.in), [][2]string{{"bundle", "/b"}}))
		if got != c.want {
			t.Errorf("setKeys(%q) = %q, want %q", c.in, got, c.want)
		}
		if again := string(setKeys([]byte(got), [][2]string{{"bundle", "/b"}})); again != got {
			t.Errorf("not idempotent: %q -> %q", got, again)
		}
	}
}
