// Package config holds onramp's configuration: the defaults, the file
// /etc/onramp/onramp.yaml, and the command-line flags that override it.
//
// Precedence, lowest to highest: built-in defaults, then the configuration
// file, then flags given on the command line. A flag that is not given leaves
// the file's value in place; a file key that is absent leaves the default.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/onramp-mesh/onramp/agent/resolvconf"
)

// DefaultPath is where the agent looks for its configuration file.
const DefaultPath = "/etc/onramp/onramp.yaml"

// Config is the agent's whole configuration.
type Config struct {
	// Bundle is the onboarding bundle directory (cluster.env, mesh.yaml, ...).
	// Empty means no control plane: the agent serves NameTable only.
	Bundle string `json:"bundle,omitempty"`
	// NameTable is a protojson NameTable file served as a static table, for
	// tests, benchmarks and air-gapped hosts. It is used when Bundle is empty.
	NameTable string `json:"nameTable,omitempty"`
	// StateDir keeps the key, certificate chain, root, and the last good name table.
	StateDir string `json:"stateDir,omitempty"`

	// DataPlane says whether a data-plane proxy on the VM (Envoy, ztunnel)
	// carries traffic to the mesh's auto-allocated VIPs: "none" (the
	// default: names known only by VIPs are forwarded upstream, since
	// nothing on the host could reach a VIP) or "proxy" (VIPs answered as
	// Istio's agent answers them).
	DataPlane string `json:"dataPlane,omitempty"`

	DNS      DNS      `json:"dns"`
	Redirect Redirect `json:"redirect"`
	Status   Status   `json:"status"`
	Identity Identity `json:"identity"`
	Log      Log      `json:"log"`
}

// DNS configures the local DNS proxy.
type DNS struct {
	// Listen are the UDP and TCP addresses the proxy serves on.
	Listen []string `json:"listen,omitempty"`
	// Upstreams are the servers non-mesh names go to. Empty means the host's
	// own upstreams, followed as they change (systemd-resolved's real upstream
	// list, never its 127.0.0.53 stub).
	Upstreams []string `json:"upstreams,omitempty"`
	// Stubs forward whole zones to given servers, e.g. "internal." -> ["10.0.0.2:53"].
	Stubs map[string][]string `json:"stubs,omitempty"`
	// MeshTTL is the TTL of answers from the mesh name table.
	MeshTTL Duration `json:"meshTTL,omitempty"`
	// Timeout bounds one try against one upstream.
	Timeout Duration `json:"timeout,omitempty"`
	// UDPSize is the largest UDP answer the proxy sends, whatever the client advertises.
	UDPSize int `json:"udpSize,omitempty"`
	// SearchDomains override the search list of /etc/resolv.conf used for one-round-trip CNAMEs.
	SearchDomains []string `json:"searchDomains,omitempty"`
	// Namespace is the proxy's namespace for short names when there is no bundle.
	Namespace string `json:"namespace,omitempty"`
	Cache     Cache  `json:"cache"`
}

// Cache configures the cache of forwarded answers.
type Cache struct {
	// MaxEntries bounds the number of cached answers.
	MaxEntries int `json:"maxEntries,omitempty"`
	// MaxBytes bounds the memory the cached answers take.
	MaxBytes int `json:"maxBytes,omitempty"`
	// MinTTL and MaxTTL clamp the TTL of cached answers.
	MinTTL Duration `json:"minTTL,omitempty"`
	MaxTTL Duration `json:"maxTTL,omitempty"`
	// StaleWindow is how long past expiry an answer may be served when every upstream fails (RFC 8767). 0 turns it off.
	StaleWindow Duration `json:"staleWindow,omitempty"`
}

// Redirect configures how the host's resolver is pointed at the proxy.
type Redirect struct {
	// Mode is auto (pick from what the host runs), resolved, nftables or none.
	Mode string `json:"mode,omitempty"`
	// CaptureAll sends every query of the host to onramp, not only the mesh's domains.
	CaptureAll bool `json:"captureAll,omitempty"`
}

// Redirect modes.
const (
	RedirectAuto     = "auto"
	RedirectResolved = "resolved"
	RedirectNftables = "nftables"
	RedirectNone     = "none"
)

// Data plane modes.
const (
	// DataPlaneNone: no proxy on the VM; names whose only addresses are
	// auto-allocated VIPs are not answered from the table.
	DataPlaneNone = "none"
	// DataPlaneProxy: a proxy on the VM captures VIP traffic; VIPs are
	// answered as Istio's agent answers them.
	DataPlaneProxy = "proxy"
)

func (c Cache) validate() error {
	switch {
	case c.MaxEntries <= 0 || c.MaxBytes <= 0:
		return errors.New("dns.cache: maxEntries and maxBytes must be positive")
	case c.MaxTTL.D() < time.Second:
		return fmt.Errorf("dns.cache.maxTTL: %s is below one second", c.MaxTTL)
	case c.MinTTL.D() < 0 || c.MinTTL.D() > c.MaxTTL.D():
		return fmt.Errorf("dns.cache.minTTL: %s is not between 0 and maxTTL (%s)", c.MinTTL, c.MaxTTL)
	case c.StaleWindow.D() < 0:
		return fmt.Errorf("dns.cache.staleWindow: %s is negative; 0 turns serve-stale off", c.StaleWindow)
	}
	return nil
}

// Status configures the status HTTP server.
type Status struct {
	// Listen is the address of /healthz/ready, /metrics and /debug/*. "off" disables it.
	Listen string `json:"listen,omitempty"`
}

// Identity configures the workload certificate.
type Identity struct {
	// KeyType is "ecdsa" (P-256) or "rsa" (2048 bits).
	KeyType string `json:"keyType,omitempty"`
	// Validity is the certificate lifetime asked of the CA.
	Validity Duration `json:"validity,omitempty"`
}

// Log configures logging.
type Log struct {
	// Level is trace, debug, info, warn or error.
	Level string `json:"level,omitempty"`
	// JSON switches to JSON lines (for journald and log shippers).
	JSON bool `json:"json,omitempty"`
}

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		StateDir: "/var/lib/onramp",
		DNS: DNS{
			Listen:  []string{"127.0.0.1:15053", "[::1]:15053"},
			MeshTTL: Duration(30 * time.Second),
			Timeout: Duration(2 * time.Second),
			UDPSize: 1232,
			Cache: Cache{
				MaxEntries:  100000,
				MaxBytes:    8 << 20,
				MinTTL:      0,
				MaxTTL:      Duration(time.Hour),
				StaleWindow: Duration(24 * time.Hour),
			},
		},
		DataPlane: DataPlaneNone,
		Redirect:  Redirect{Mode: RedirectAuto},
		Status:    Status{Listen: "127.0.0.1:15020"},
		Identity:  Identity{KeyType: "ecdsa", Validity: Duration(24 * time.Hour)},
		Log:       Log{Level: "info"},
	}
}

// Load returns the defaults overlaid with the file at path. A missing file is
// not an error when optional is true (the default path need not exist).
func Load(path string, optional bool) (Config, error) {
	cfg := Default()
	data, err := os.ReadFile(path)
	if err != nil {
		if optional && errors.Is(err, os.ErrNotExist) {
			return cfg, nil
		}
		return cfg, fmt.Errorf("config: read %s: %w", path, err)
	}
	if err := Parse(data, &cfg); err != nil {
		return cfg, fmt.Errorf("config: %s: %w", path, err)
	}
	return cfg, nil
}

// Parse overlays the YAML document data on cfg. Unknown keys are errors, so a
// typo is reported instead of silently ignored.
func Parse(data []byte, cfg *Config) error {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return fmt.Errorf("not valid YAML: %w", err)
	}
	if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		return fmt.Errorf("%w; see the configuration reference in the README", err)
	}
	return cfg.Validate()
}

// Validate checks the values that can be checked without touching the host.
func (c *Config) Validate() error {
	if len(c.DNS.Listen) == 0 {
		return errors.New("dns.listen: at least one address is needed")
	}
	for _, a := range c.DNS.Listen {
		if _, err := netip.ParseAddrPort(a); err != nil {
			return fmt.Errorf("dns.listen: %q is not IP:port (e.g. 127.0.0.1:15053): %v", a, err)
		}
	}
	for _, a := range c.DNS.Upstreams {
		if _, err := resolvconf.ParseServer(a); err != nil {
			return fmt.Errorf("dns.upstreams: %w", err)
		}
	}
	for zone, servers := range c.DNS.Stubs {
		if zone == "" || len(servers) == 0 {
			return fmt.Errorf("dns.stubs: zone %q needs a name and at least one server", zone)
		}
		for _, a := range servers {
			if _, err := resolvconf.ParseServer(a); err != nil {
				return fmt.Errorf("dns.stubs[%s]: %w", zone, err)
			}
		}
	}
	if c.DNS.MeshTTL.D() <= 0 || c.DNS.MeshTTL.D() > 24*time.Hour {
		return fmt.Errorf("dns.meshTTL: %s is out of range (1s to 24h)", c.DNS.MeshTTL)
	}
	if c.DNS.Timeout.D() <= 0 {
		return fmt.Errorf("dns.timeout: %s must be positive", c.DNS.Timeout)
	}
	if c.DNS.UDPSize < 512 || c.DNS.UDPSize > 65535 {
		return fmt.Errorf("dns.udpSize: %d is out of range (512 to 65535)", c.DNS.UDPSize)
	}
	if err := c.DNS.Cache.validate(); err != nil {
		return err
	}
	switch c.Redirect.Mode {
	case RedirectAuto, RedirectResolved, RedirectNftables, RedirectNone:
	default:
		return fmt.Errorf("redirect.mode: %q is not auto, resolved, nftables or none", c.Redirect.Mode)
	}
	switch c.DataPlane {
	case DataPlaneNone, DataPlaneProxy:
	default:
		return fmt.Errorf("dataPlane: %q is not none or proxy (is a proxy such as Envoy on this VM carrying the mesh's VIPs?)", c.DataPlane)
	}
	if c.Status.Listen != "off" && c.Status.Listen != "" {
		if _, err := netip.ParseAddrPort(c.Status.Listen); err != nil {
			return fmt.Errorf("status.listen: %q is not IP:port or \"off\": %v", c.Status.Listen, err)
		}
	}
	switch c.Identity.KeyType {
	case "ecdsa", "rsa":
	default:
		return fmt.Errorf("identity.keyType: %q is not ecdsa or rsa", c.Identity.KeyType)
	}
	switch strings.ToLower(c.Log.Level) {
	case "trace", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: %q is not trace, debug, info, warn or error", c.Log.Level)
	}
	return nil
}

// Duration is a time.Duration written as "30s", "5m" or "1h" in YAML.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a Go duration string ("30s") or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err2 := json.Unmarshal(b, &secs); err2 != nil {
			return fmt.Errorf("duration %s: want a string such as \"30s\" or a number of seconds", b)
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %v", s, err)
	}
	*d = Duration(v)
	return nil
}
