package resolvconf

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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
		{name: "only own listener", etc: "nameserver 127.0.0.1:15053\n", wantPath: "etc", wantErr: "would loop", noUp: true},
		{name: "no nameserver", etc: "search x.example\n", wantPath: "etc", wantErr: "lists no nameserver", noUp: true},
		{name: "resolved lists its stub too", etc: "nameserver 127.0.0.53\n", resolved: "nameserver 127.0.0.53\nnameserver 10.9.9.9\n", wantPath: "resolved", servers: aps("10.9.9.9:53")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := Paths{ResolvConf: filepath.Join(dir, "etc-resolv.conf"), ResolvedUpstream: filepath.Join(dir, "resolve", "resolv.conf")}
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

func TestWatchSeesAtomicRename(t *testing.T) {
	old := Debounce
	Debounce = 20 * time.Millisecond
	t.Cleanup(func() { Debounce = old })
	dir := t.TempDir()
	path := filepath.Join(dir, "resolv.conf")
	write(t, path, "nameserver 10.0.0.1\n")

	var mu sync.Mutex
	var got []*Config
	ch := make(chan struct{}, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- Watch(ctx, path, func(c *Config) {
			mu.Lock()
			got = append(got, c)
			mu.Unlock()
			ch <- struct{}{}
		})
	}()
	wait := func(what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("no onChange after %s", what)
		}
	}
	wait("start")
	// Atomic replace as resolvconf(8) does it: write a temp file, rename over.
	tmp := filepath.Join(dir, ".resolv.conf.tmp")
	write(t, tmp, "nameserver 10.0.0.2\nsearch b.example\n")
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	wait("rename")
	// Rewriting the same content is not a change.
	write(t, path, "nameserver 10.0.0.2\nsearch b.example\n")
	// An unrelated file in the directory is ignored.
	write(t, filepath.Join(dir, "other"), "nameserver 1.1.1.1\n")
	select {
	case <-ch:
		t.Fatal("onChange called for unchanged content or another file")
	case <-time.After(300 * time.Millisecond):
	}
	// In-place write is seen too.
	write(t, path, "nameserver 10.0.0.3\n")
	wait("write")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"10.0.0.1:53", "10.0.0.2:53", "10.0.0.3:53"}
	if len(got) != len(want) {
		t.Fatalf("got %d configs, want %d", len(got), len(want))
	}
	for i, c := range got {
		if c.Servers[0].String() != want[i] {
			t.Errorf("change %d: servers %v, want %s", i, c.Servers, want[i])
		}
	}
	if !slices.Equal(got[1].Search, []string{"b.example"}) {
		t.Errorf("search after rename = %v", got[1].Search)
	}
}

func TestWatchHostFollowsResolved(t *testing.T) {
	old := Debounce
	Debounce = 20 * time.Millisecond
	t.Cleanup(func() { Debounce = old })
	dir := t.TempDir()
	p := Paths{ResolvConf: filepath.Join(dir, "etc", "resolv.conf"), ResolvedUpstream: filepath.Join(dir, "run", "resolv.conf")}
	os.Mkdir(filepath.Join(dir, "etc"), 0o755)
	os.Mkdir(filepath.Join(dir, "run"), 0o755)
	write(t, p.ResolvConf, "nameserver 127.0.0.53\n")
	write(t, p.ResolvedUpstream, "nameserver 10.0.0.1\n")
	type res struct {
		path string
		cfg  *Config
		err  error
	}
	ch := make(chan res, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.WatchHost(ctx, func(path string, cfg *Config, err error) { ch <- res{path, cfg, err} })
	next := func() res {
		t.Helper()
		select {
		case r := <-ch:
			return r
		case <-time.After(5 * time.Second):
			t.Fatal("no onChange")
		}
		return res{}
	}
	r := next()
	if r.err != nil || r.path != p.ResolvedUpstream || r.cfg.Servers[0].String() != "10.0.0.1:53" {
		t.Fatalf("start: %+v", r)
	}
	// resolved learns a new upstream (DHCP renew): written by rename.
	tmp := p.ResolvedUpstream + ".tmp"
	write(t, tmp, "nameserver 10.0.0.7\n")
	os.Rename(tmp, p.ResolvedUpstream)
	r = next()
	if r.err != nil || r.cfg.Servers[0].String() != "10.0.0.7:53" {
		t.Fatalf("after resolved change: %+v", r)
	}
	// The host stops using resolved.
	write(t, p.ResolvConf, "nameserver 10.5.5.5\n")
	r = next()
	if r.err != nil || r.path != p.ResolvConf || r.cfg.Servers[0].String() != "10.5.5.5:53" {
		t.Fatalf("after switch: %+v", r)
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
