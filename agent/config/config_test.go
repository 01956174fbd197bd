package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestPrecedenceDefaultsFileFlags(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "onramp.yaml")
	file := `
stateDir: /srv/onramp
dns:
  listen: ["127.0.0.1:5353"]
  meshTTL: 10s
  upstreams: ["10.1.1.1"]
  cache:
    maxTTL: 5m
log:
  level: debug
redirect:
  mode: nftables
`
	if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	f := NewFlags(fs)
	if err := fs.Parse([]string{"--config", path, "--mesh-ttl", "45s", "--stub", "internal=10.0.0.2,10.0.0.3", "--data-plane", "none"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StateDir != "/srv/onramp" {
		t.Errorf("file should override default stateDir, got %q", cfg.StateDir)
	}
	if cfg.DNS.MeshTTL.D() != 45*time.Second {
		t.Errorf("flag should override file meshTTL, got %s", cfg.DNS.MeshTTL)
	}
	if got := cfg.DNS.Listen; len(got) != 1 || got[0] != "127.0.0.1:5353" {
		t.Errorf("listen from file: %v", got)
	}
	if cfg.DNS.Cache.MaxTTL.D() != 5*time.Minute || cfg.DNS.Cache.MaxEntries != Default().DNS.Cache.MaxEntries {
		t.Errorf("nested file keys must overlay, not replace, defaults: %+v", cfg.DNS.Cache)
	}
	if got := cfg.DNS.Stubs["internal."]; len(got) != 2 {
		t.Errorf("stub flag: %v", cfg.DNS.Stubs)
	}
	if cfg.Redirect.Mode != RedirectNftables || cfg.Redirect.CaptureAll || cfg.DataPlane != DataPlaneNone {
		t.Errorf("redirect %+v from the file, dataPlane %q from the flag", cfg.Redirect, cfg.DataPlane)
	}
	if cfg.Status.Listen != "127.0.0.1:15020" {
		t.Errorf("default status listen kept: %q", cfg.Status.Listen)
	}
}

func TestMissingDefaultFileIsFineButExplicitIsNot(t *testing.T) {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	f := NewFlags(fs)
	f.ConfigPath = filepath.Join(t.TempDir(), "absent.yaml")
	if _, err := f.Resolve(); err != nil {
		t.Fatalf("absent default file: %v", err)
	}
	fs = pflag.NewFlagSet("run", pflag.ContinueOnError)
	f = NewFlags(fs)
	_ = fs.Parse([]string{"--config", "/nonexistent/onramp.yaml"})
	if _, err := f.Resolve(); err == nil || !strings.Contains(err.Error(), "/nonexistent/onramp.yaml") {
		t.Fatalf("explicit missing file must fail naming it, got %v", err)
	}
}

func TestBadValuesAreClearErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"dns:\n  listen: [\"localhost\"]\n", "dns.listen"},
		{"dns:\n  meshTTL: forever\n", "forever"},
		{"dns:\n  upstreams: [\"not-an-ip\"]\n", "dns.upstreams"},
		{"dnss: {}\n", "unknown field"},
		{"log:\n  level: loud\n", "log.level"},
		{"identity:\n  keyType: dsa\n", "identity.keyType"},
		{"dns: [1,2\n", "YAML"},
		{"redirect: {mode: iptables}\n", "redirect.mode"},
		{"dataPlane: envoy\n", "dataPlane"},
		{"dns:\n  cache: {minTTL: 2h, maxTTL: 1h}\n", "dns.cache.minTTL: 2h0m0s is not between 0 and maxTTL (1h0m0s)"},
		{"dns:\n  cache: {staleWindow: -1s}\n", "dns.cache.staleWindow"},
		{"dns:\n  cache: {maxEntries: 0}\n", "must be positive"},
	} {
		cfg := Default()
		err := Parse([]byte(tc.yaml), &cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: want error containing %q, got %v", tc.yaml, tc.want, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("dns:\n  listen: [\"127.0.0.1:15053\"]\n"))
	f.Add([]byte("stateDir: /x\nlog: {level: info}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := Default()
		if err := Parse(data, &cfg); err == nil {
			if err := cfg.Validate(); err != nil {
				t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
			}
		}
	})
}
