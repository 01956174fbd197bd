package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Flags are the command-line flags of `onramp run`. Only the flags actually
// given override the file; see the package comment for precedence.
type Flags struct {
	fs *pflag.FlagSet

	// ConfigPath is the configuration file (--config).
	ConfigPath string

	bundle, nameTable, stateDir string
	listen, upstreams, search   string
	stubs                       stubList
	meshTTL, timeout            time.Duration
	statusListen, logLevel      string
	namespace                   string
	logJSON                     bool
	redirect, dataPlane         string
}

// NewFlags defines the run flags on fs.
func NewFlags(fs *pflag.FlagSet) *Flags {
	f := &Flags{fs: fs}
	fs.StringVar(&f.ConfigPath, "config", DefaultPath, "configuration file (optional when it is the default path)")
	fs.StringVar(&f.bundle, "bundle", "", "onboarding bundle directory written by istioctl x workload entry configure")
	fs.StringVar(&f.nameTable, "name-table", "", "serve this protojson NameTable file, with no control plane")
	fs.StringVar(&f.stateDir, "state-dir", "", "state directory (default /var/lib/onramp)")
	fs.StringVar(&f.listen, "dns-listen", "", "DNS listen addresses, comma-separated (default 127.0.0.1:15053,[::1]:15053)")
	fs.StringVar(&f.upstreams, "upstream", "", "upstream DNS servers, comma-separated (default: the host's own)")
	fs.Var(&f.stubs, "stub", "forward a zone to servers: ZONE=IP[:PORT][,IP...] (repeatable)")
	fs.StringVar(&f.search, "search", "", "search domains for one-round-trip CNAMEs, comma-separated (default: resolv.conf's)")
	fs.StringVar(&f.namespace, "namespace", "", "namespace for short names when running without a bundle")
	fs.DurationVar(&f.meshTTL, "mesh-ttl", 0, "TTL of mesh answers (default 30s)")
	fs.DurationVar(&f.timeout, "upstream-timeout", 0, "timeout of one upstream try (default 2s)")
	fs.StringVar(&f.statusListen, "status-listen", "", `status HTTP address, or "off" (default 127.0.0.1:15020)`)
	fs.StringVar(&f.logLevel, "log-level", "", "trace, debug, info, warn or error (default info)")
	fs.BoolVar(&f.logJSON, "log-json", false, "log JSON lines")
	fs.StringVar(&f.redirect, "redirect", "", "point the host's resolver at onramp: auto, resolved, nftables or none (default auto)")
	fs.StringVar(&f.dataPlane, "data-plane", "", "none, or proxy when a proxy on the VM (Envoy, ztunnel) carries the mesh's auto-allocated VIPs (default "+DataPlaneNone+")")
	return f
}

// Resolve loads the configuration file named by --config and overlays the
// flags that were given. The default path may be absent; a path given
// explicitly must exist.
func (f *Flags) Resolve() (Config, error) {
	explicit := f.fs.Changed("config")
	if f.fs.Changed("bundle") && f.fs.Changed("name-table") {
		return Config{}, fmt.Errorf("--bundle and --name-table exclude each other: give the bundle to join a mesh, or the name table to serve it with no control plane")
	}
	cfg, err := Load(f.ConfigPath, !explicit)
	if err != nil {
		return cfg, err
	}
	f.fs.Visit(func(fl *pflag.Flag) {
		switch fl.Name {
		case "bundle":
			cfg.Bundle, cfg.NameTable = f.bundle, ""
		case "name-table":
			cfg.Bundle, cfg.NameTable = "", f.nameTable
		case "state-dir":
			cfg.StateDir = f.stateDir
		case "dns-listen":
			cfg.DNS.Listen = splitList(f.listen)
		case "upstream":
			cfg.DNS.Upstreams = splitList(f.upstreams)
		case "stub":
			cfg.DNS.Stubs = f.stubs.m
		case "search":
			cfg.DNS.SearchDomains = splitList(f.search)
		case "namespace":
			cfg.DNS.Namespace = f.namespace
		case "mesh-ttl":
			cfg.DNS.MeshTTL = Duration(f.meshTTL)
		case "upstream-timeout":
			cfg.DNS.Timeout = Duration(f.timeout)
		case "status-listen":
			cfg.Status.Listen = f.statusListen
		case "log-level":
			cfg.Log.Level = f.logLevel
		case "log-json":
			cfg.Log.JSON = f.logJSON
		case "redirect":
			cfg.Redirect.Mode = f.redirect
		case "data-plane":
			cfg.DataPlane = f.dataPlane
		}
	})
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// stubList collects repeated --stub ZONE=SERVERS flags.
type stubList struct{ m map[string][]string }

func (s *stubList) String() string {
	var parts []string
	for z, v := range s.m {
		parts = append(parts, z+"="+strings.Join(v, ","))
	}
	return strings.Join(parts, " ")
}

// Type names the value in help output.
func (s *stubList) Type() string { return "ZONE=SERVERS" }

func (s *stubList) Set(v string) error {
	zone, servers, ok := strings.Cut(v, "=")
	if !ok || zone == "" || servers == "" {
		return fmt.Errorf("want ZONE=IP[:PORT][,IP...], e.g. internal.=10.0.0.2, got %q", v)
	}
	if s.m == nil {
		s.m = map[string][]string{}
	}
	if !strings.HasSuffix(zone, ".") {
		zone += "."
	}
	s.m[strings.ToLower(zone)] = append(s.m[strings.ToLower(zone)], splitList(servers)...)
	return nil
}
