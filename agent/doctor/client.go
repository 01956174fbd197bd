package doctor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// StatusClient reads the agent's status server.
type StatusClient interface {
	// Addr is the status address, for messages.
	Addr() string
	// Get fetches path. It returns the HTTP status code and the body; err
	// is set only when no answer came.
	Get(ctx context.Context, path string) (code int, body []byte, err error)
}

// HTTPStatus is the StatusClient of a status server at an address.
type HTTPStatus struct {
	Address string
	// Client is the HTTP client; nil: a client with no proxy and a 5 s timeout.
	Client *http.Client
}

// Addr returns the address.
func (h HTTPStatus) Addr() string { return h.Address }

// Get fetches path.
func (h HTTPStatus) Get(ctx context.Context, path string) (int, []byte, error) {
	c := h.Client
	if c == nil {
		c = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+h.Address+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, body, err
}

// getJSON fetches path and decodes it into v.
func getJSON(ctx context.Context, c StatusClient, path string, v any) error {
	code, body, err := c.Get(ctx, path)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("%s answered %d for %s: %s", c.Addr(), code, path, firstLine(body))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s answered %s with a body that is not the expected JSON: %w", c.Addr(), path, err)
	}
	return nil
}

// metrics are the samples of a Prometheus text exposition, keyed by the
// series as written ("onramp_dns_queries_total{source=\"mesh\"}").
type metrics map[string]float64

func getMetrics(ctx context.Context, c StatusClient) (metrics, error) {
	code, body, err := c.Get(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("%s answered %d for /metrics", c.Addr(), code)
	}
	return parseMetrics(string(body)), nil
}

func parseMetrics(text string) metrics {
	m := metrics{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[strings.TrimSpace(line[:i])] = v
	}
	return m
}

func (m metrics) has(series string) bool { _, ok := m[series]; return ok }

// Series doctor reads.
const (
	metricMeshAnswers     = `onramp_dns_queries_total{source="mesh"}`
	metricRequests        = `onramp_dns_requests_total`
	metricWithheldNames   = `onramp_nametable_withheld_names`
	metricWithheldLookups = `onramp_nametable_withheld_lookups_total`
)

// ErrNotFound is what a Resolver returns for a name that does not resolve.
var ErrNotFound = errors.New("name not found")

// GetentResolver looks names up with `getent ahosts NAME`: glibc's
// getaddrinfo with nsswitch, /etc/hosts and /etc/resolv.conf, which is what
// applications on the host get (the onramp binary itself is static and
// does not use glibc). argv is the command before the name, e.g.
// {"getent", "ahosts"}, or {"ip", "netns", "exec", NS, "getent", "ahosts"}.
func GetentResolver(argv ...string) Resolver {
	return func(ctx context.Context, name string) ([]netip.Addr, error) {
		cmd := exec.CommandContext(ctx, argv[0], append(argv[1:len(argv):len(argv)], name)...)
		out, err := cmd.Output()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee) && ee.ExitCode() == 2:
			return nil, fmt.Errorf("%s %s: %w", strings.Join(argv, " "), name, ErrNotFound)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("%s %s: no answer in time: %w", strings.Join(argv, " "), name, ctx.Err())
		case err != nil:
			return nil, fmt.Errorf("%s %s: %v %s", strings.Join(argv, " "), name, err, stderrOf(err))
		}
		return parseAhosts(string(out)), nil
	}
}

// parseAhosts reads getent ahosts's lines ("ADDR STREAM name"), each address once.
func parseAhosts(out string) []netip.Addr {
	var addrs []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		a, err := netip.ParseAddr(f[0])
		if err != nil {
			continue
		}
		a = a.Unmap()
		if !seen[a] {
			seen[a] = true
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// DNSExchange is the Exchanger of the command: UDP, then TCP when truncated.
// A non-zero mark is set as SO_MARK on its sockets, so that an nftables
// redirect that exempts onramp's own queries by mark lets the query reach the
// real server; setting it needs CAP_NET_ADMIN and is skipped without it.
func DNSExchange(ctx context.Context, server netip.AddrPort, name string, mark uint32) (int, []netip.Addr, error) {
	{
		d := &net.Dialer{Timeout: 3 * time.Second}
		if mark != 0 {
			d.Control = func(_, _ string, c syscall.RawConn) error {
				_ = c.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark)) })
				return nil
			}
		}
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeA)
		var r *dns.Msg
		var err error
		for _, network := range []string{"udp", "tcp"} {
			c := &dns.Client{Net: network, Dialer: d, Timeout: 3 * time.Second}
			r, _, err = c.ExchangeContext(ctx, m, server.String())
			if err != nil || !r.Truncated {
				break
			}
		}
		if err != nil {
			return 0, nil, err
		}
		var addrs []netip.Addr
		for _, rr := range r.Answer {
			if a, ok := rr.(*dns.A); ok {
				if ip, ok := netip.AddrFromSlice(a.A); ok {
					addrs = append(addrs, ip.Unmap())
				}
			}
		}
		return r.Rcode, addrs, nil
	}
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
