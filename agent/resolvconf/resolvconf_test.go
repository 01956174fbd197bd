package resolvconf

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func aps(s ...string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, x := range s {
		out = append(out, netip.MustParseAddrPort(x))
	}
	return out
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		servers []netip.AddrPort
		search  []string
		ndots   int
		check   func(t *testing.T, c *Config)
	}{
		{name: "empty", in: "", ndots: 1},
		{
			name:    "typical",
			in:      "# generated\nnameserver 10.0.0.2\nnameserver 2001:db8::53\nsearch ns1.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n",
			servers: aps("10.0.0.2:53", "[2001:db8::53]:53"),
			search:  []string{"ns1.svc.cluster.local", "svc.cluster.local", "cluster.local"},
			ndots:   5,
		},
		{
			name:    "zone id kept",
			in:      "nameserver fe80::1%eth0\n",
			servers: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("fe80::1%eth0"), 53)},
			ndots:   1,
		},
		{
			name:    "explicit ports",
			in:      "nameserver 127.0.0.1:5353\nnameserver [::1]:5354\n",
			servers: aps("127.0.0.1:5353", "[::1]:5354"),
			ndots:   1,
		},
		{
			name:    "bad lines skipped like glibc",
			in:      "nameserver\nnameserver not-an-ip\nnameserver 1.2.3\nnameserver 1.1.1.1 # cloudflare\nbogus line\n\t\n;comment\nnameserver 1.1.1.1:0\n",
			servers: aps("1.1.1.1:53"),
			ndots:   1,
		},
		{name: "domain then search: search wins", in: "domain a.example\nsearch b.example c.example\n", search: []string{"b.example", "c.example"}, ndots: 1},
		{name: "search then domain: domain wins", in: "search b.example c.example\ndomain A.Example.\n", search: []string{"a.example"}, ndots: 1},
		{name: "search lowercased, deduped, root dropped", in: "search Foo.COM. foo.com . bar..baz ok.org\n", search: []string{"foo.com", "ok.org"}, ndots: 1},
		{name: "ndots capped", in: "options ndots:40\n", ndots: 15},
		{name: "ndots zero", in: "options ndots:0\n", ndots: 0},
		{name: "ndots garbage ignored", in: "options ndots:x ndots:-1 ndots\n", ndots: 1},
		{name: "last options win", in: "options ndots:2\noptions ndots:3\n", ndots: 3},
		{
			name: "other options", in: "options timeout:99 attempts:9 rotate edns0 use-vc trust-ad single-request-reopen no-tld-query weird:1\n", ndots: 1,
			check: func(t *testing.T, c *Config) {
				o := c.Options
				if o.Timeout != 30*time.Second || o.Attempts != 5 || !o.Rotate || !o.EDNS0 || !o.UseVC || !o.TrustAD || !o.SingleRequest || !o.NoTLDQuery {
					t.Errorf("options = %+v", o)
				}
				if !slices.Equal(o.Unknown, []string{"weird:1"}) {
					t.Errorf("unknown = %v", o.Unknown)
				}
			},
		},
		{
			name: "defaults", in: "nameserver 9.9.9.9", servers: aps("9.9.9.9:53"), ndots: 1,
			check: func(t *testing.T, c *Config) {
				if c.Options.Timeout != DefaultTimeout || c.Options.Attempts != DefaultAttempts {
					t.Errorf("options = %+v", c.Options)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Servers, tt.servers) {
				t.Errorf("servers = %v, want %v", c.Servers, tt.servers)
			}
			if !slices.Equal(c.Search, tt.search) {
				t.Errorf("search = %q, want %q", c.Search, tt.search)
			}
			if c.Ndots != tt.ndots {
				t.Errorf("ndots = %d, want %d", c.Ndots, tt.ndots)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestParseTooLong(t *testing.T) {
	_, err := Parse(strings.NewReader("search " + strings.Repeat("a", 70000)))
	if err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("err = %v, want a line-too-long error", err)
	}
}

func TestParseFileMissing(t *testing.T) {
	_, err := ParseFile(filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want ErrNotExist", err)
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestHostUpstreams(t *testing.T) {
	tests := []struct {
		name     string
		etc      string
		resolved string // "" = file absent
		wantPath string // "etc" or "resolved"
		servers  []netip.AddrPort
		wantErr  string
		noUp     bool
	}{
		{name: "plain file", etc: "nameserver 10.0.0.2\nsearch a.example\n", wantPath: "etc", servers: aps("10.0.0.2:53")},
		{
			name: "resolved stub uses real upstreams", etc: "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch corp.example\n",
			resolved: "nameserver 192.168.1.1\nnameserver 2001:db8::1\nsearch corp.example\n", wantPath: "resolved",
			servers: aps("192.168.1.1:53", "[2001:db8::1]:53"),
		},
		{name: "resolved proxy stub 127.0.0.54", etc: "nameserver 127.0.0.54\n", resolved: "nameserver 10.1.1.1\n", wantPath: "resolved", servers: aps("10.1.1.1:53")},
		{name: "stub but resolved file missing", etc: "nameserver 127.0.0.53\n", wantErr: "start systemd-resolved"},
		{
			name: "own listener and duplicates filtered", etc: "nameserver 127.0.0.1:15053\nnameserver [::1]:15053\nnameserver 10.0.0.2\nnameserver 10.0.0.2\nnameserver 127.0.0.1\n",
			wantPath: "etc", servers: aps("10.0.0.2:53", "127.0.0.1:53"),
		},
		{name: "only excluded or stubs", etc: "nameserver 127.0.0.1:15053\nnameserver [::1]:15053\n", wantPath: "etc", wantErr: "would loop", noUp: true},
		{name: "no nameserver", etc: "search x.example\n", wantPath: "etc", wantErr: "lists no nameserver", noUp: true},
		{name: "resolved lists its stub too", etc: "nameserver 127.0.0.53\n", resolved: "nameserver 127.0.0.53\nnameserver 10.9.9.9\n", wantPath: "resolved", servers: aps("10.9.9.9:53")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := Paths{ResolvConf: filepath.Join(dir, "etc-resolv.conf"), ResolvedUpstream: filepath.Join(dir, "resolve", "resolv.conf"),
				Exclude: aps("127.0.0.1:15053", "[::1]:15053")}
			write(t, p.ResolvConf, tt.etc)
			if tt.resolved != "" {
				os.Mkdir(filepath.Dir(p.ResolvedUpstream), 0o755)
				write(t, p.ResolvedUpstream, tt.resolved)
			}
			path, cfg, err := p.HostUpstreams()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if tt.noUp && (!errors.Is(err, ErrNoUpstreams) || cfg == nil) {
					t.Fatalf("err = %v cfg = %v, want ErrNoUpstreams with a config", err, cfg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"etc": p.ResolvConf, "resolved": p.ResolvedUpstream}[tt.wantPath]
			if path != want {
				t.Errorf("path = %s, want %s", path, want)
			}
			if !slices.Equal(cfg.Servers, tt.servers) {
				t.Errorf("servers = %v, want %v", cfg.Servers, tt.servers)
			}
		})
	}
}

// watchHost runs a Watcher with a short debounce over p and returns a
// channel of every state it reports and one signal per read.
func watchHost(t *testing.T, p Paths) (states <-chan Host, reads <-chan struct{}) {
	t.Helper()
	st := make(chan Host, 16)
	rd := make(chan struct{}, 64)
	w := &Watcher{Paths: p, Debounce: 20 * time.Millisecond, checked: func() { rd <- struct{}{} }}
	w.Subscribe(func(h Host) { st <- h })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return st, rd
}

func next[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("nothing after %s", what)
	}
	var zero T
	return zero
}

func TestWatcherSeesAtomicRename(t *testing.T) {
	dir := t.TempDir()
	p := Paths{ResolvConf: filepath.Join(dir, "resolv.conf"), ResolvedUpstream: filepath.Join(dir, "none", "resolv.conf")}
	write(t, p.ResolvConf, "nameserver 10.0.0.1\nsearch a.example\noptions ndots:2\n")
	states, reads := watchHost(t, p)
	h := next(t, states, "start")
	if !slices.Equal(h.Upstreams, aps("10.0.0.1:53")) || !slices.Equal(h.Search, []string{"a.example"}) || h.Ndots != 2 || h.UpstreamsFrom != p.ResolvConf {
		t.Fatalf("start: %+v", h)
	}
	next(t, reads, "start")

	// Atomic replace as resolvconf(8) does it: write a temp file, rename over.
	tmp := filepath.Join(dir, ".resolv.conf.tmp")
	write(t, tmp, "nameserver 10.0.0.2\nsearch b.example\n")
	if err := os.Rename(tmp, p.ResolvConf); err != nil {
		t.Fatal(err)
	}
	h = next(t, states, "rename")
	if !slices.Equal(h.Upstreams, aps("10.0.0.2:53")) || !slices.Equal(h.Search, []string{"b.example"}) || h.Ndots != 1 {
		t.Fatalf("after rename: %+v", h)
	}
	next(t, reads, "rename")

	// An unrelated file in the directory is not read; rewriting the same
	// content is read and is no change.
	write(t, filepath.Join(dir, "other"), "nameserver 1.1.1.1\n")
	write(t, p.ResolvConf, "nameserver 10.0.0.2\nsearch b.example\n")
	next(t, reads, "rewrite")
	select {
	case h := <-states:
		t.Fatalf("a state for unchanged content: %+v", h)
	default:
	}

	// In-place write is seen too; an unreadable file is reported, keeping
	// nothing valid.
	write(t, p.ResolvConf, "nameserver 10.0.0.3\n")
	if h = next(t, states, "write"); !slices.Equal(h.Upstreams, aps("10.0.0.3:53")) {
		t.Fatalf("after write: %+v", h)
	}
	os.Remove(p.ResolvConf)
	h = next(t, states, "remove")
	if !errors.Is(h.ResolvErr, os.ErrNotExist) || !errors.Is(h.UpstreamErr, os.ErrNotExist) || h.Upstreams != nil {
		t.Fatalf("after remove: %+v", h)
	}
}

func TestWatcherFollowsResolved(t *testing.T) {
	dir := t.TempDir()
	p := Paths{ResolvConf: filepath.Join(dir, "etc", "resolv.conf"), ResolvedUpstream: filepath.Join(dir, "run", "resolv.conf")}
	os.Mkdir(filepath.Join(dir, "etc"), 0o755)
	os.Mkdir(filepath.Join(dir, "run"), 0o755)
	write(t, p.ResolvConf, "nameserver 127.0.0.53\nsearch corp.example\noptions ndots:3\n")
	write(t, p.ResolvedUpstream, "nameserver 10.0.0.1\nsearch other.example\n")
	states, _ := watchHost(t, p)
	h := next(t, states, "start")
	// Upstreams from resolved's list; the search list applications use.
	if h.UpstreamErr != nil || h.UpstreamsFrom != p.ResolvedUpstream || !slices.Equal(h.Upstreams, aps("10.0.0.1:53")) ||
		!slices.Equal(h.Search, []string{"corp.example"}) || h.Ndots != 3 {
		t.Fatalf("start: %+v", h)
	}
	// resolved learns a new upstream (DHCP renew): written by rename.
	tmp := p.ResolvedUpstream + ".tmp"
	write(t, tmp, "nameserver 10.0.0.7\n")
	os.Rename(tmp, p.ResolvedUpstream)
	if h = next(t, states, "resolved change"); h.UpstreamErr != nil || !slices.Equal(h.Upstreams, aps("10.0.0.7:53")) {
		t.Fatalf("after resolved change: %+v", h)
	}
	// The host stops using resolved.
	write(t, p.ResolvConf, "nameserver 10.5.5.5\n")
	h = next(t, states, "switch")
	if h.UpstreamErr != nil || h.UpstreamsFrom != p.ResolvConf || !slices.Equal(h.Upstreams, aps("10.5.5.5:53")) || h.Search != nil {
		t.Fatalf("after switch: %+v", h)
	}
	// resolved's stub without its file: the search list stays valid.
	write(t, p.ResolvConf, "nameserver 127.0.0.53\nsearch x.example\n")
	os.Remove(p.ResolvedUpstream)
	for h = next(t, states, "stub without resolved"); h.UpstreamErr == nil; h = next(t, states, "stub without resolved") {
	}
	if h.ResolvErr != nil || !slices.Equal(h.Search, []string{"x.example"}) || !strings.Contains(h.UpstreamErr.Error(), "start systemd-resolved") {
		t.Fatalf("stub without resolved: %+v", h)
	}
}

// A late subscriber gets the current state at once; a cancelled one gets
// nothing more.
func TestWatcherSubscribe(t *testing.T) {
	dir := t.TempDir()
	p := Paths{ResolvConf: filepath.Join(dir, "resolv.conf"), ResolvedUpstream: filepath.Join(dir, "none")}
	write(t, p.ResolvConf, "nameserver 10.0.0.1\n")
	w := &Watcher{Paths: p}
	if _, ok := w.Current(); ok {
		t.Fatal("a current state before the first read")
	}
	var first []Host
	cancel := w.Subscribe(func(h Host) { first = append(first, h) })
	w.check()
	var late []Host
	w.Subscribe(func(h Host) { late = append(late, h) })
	if len(first) != 1 || len(late) != 1 || !first[0].Equal(late[0]) {
		t.Fatalf("first %v late %v", first, late)
	}
	cancel()
	write(t, p.ResolvConf, "nameserver 10.0.0.2\n")
	w.check()
	if cur, _ := w.Current(); len(first) != 1 || len(late) != 2 || !slices.Equal(cur.Upstreams, aps("10.0.0.2:53")) {
		t.Fatalf("after cancel: first %d late %d current %+v", len(first), len(late), cur)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("nameserver 10.0.0.2\nsearch a b c\noptions ndots:5 timeout:2\n")
	f.Add("nameserver fe80::1%eth0\ndomain x\n")
	f.Add("nameserver [::1]:5353\n#c\n;c\noptions rotate attempts:99\n")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(strings.NewReader(s))
		if err != nil {
			return
		}
		if c.Ndots < 0 || c.Ndots > MaxNdots {
			t.Fatalf("ndots %d out of range", c.Ndots)
		}
		if c.Options.Attempts < 1 || c.Options.Attempts > MaxAttempts || c.Options.Timeout <= 0 || c.Options.Timeout > MaxTimeout {
			t.Fatalf("options out of range: %+v", c.Options)
		}
		for _, s := range c.Servers {
			if !s.IsValid() || s.Port() == 0 {
				t.Fatalf("invalid server %v", s)
			}
		}
		for _, d := range c.Search {
			if d == "" || strings.HasSuffix(d, ".") || d != strings.ToLower(d) {
				t.Fatalf("bad search domain %q", d)
			}
		}
		// Parsing is deterministic.
		c2, _ := Parse(strings.NewReader(s))
		if !c.Equal(c2) {
			t.Fatal("two parses differ")
		}
		(Paths{}).Filter(c2)
	})
}

func TestParseServer(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.2":         "10.0.0.2:53",
		"10.0.0.2:5353":    "10.0.0.2:5353",
		"[fd00::2]":        "[fd00::2]:53",
		"fd00::2":          "[fd00::2]:53",
		"[fd00::2]:54":     "[fd00::2]:54",
		"::ffff:10.0.0.9":  "10.0.0.9:53",
		"fe80::1%eth0":     "[fe80::1%eth0]:53",
		"[::ffff:1.2.3.4]": "1.2.3.4:53",
	} {
		got, err := ParseServer(in)
		if err != nil || got.String() != want {
			t.Errorf("ParseServer(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "host.example", "10.0.0.2:0", "[fd00::2", "10.0.0.2:x", "1.2.3"} {
		if ap, err := ParseServer(in); err == nil || !strings.Contains(err.Error(), "is not IP or IP:port") {
			t.Errorf("ParseServer(%q) = %v, %v; want the not-IP error", in, ap, err)
		}
	}
}
