package main

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// upstreamNet is where the loopback upstream puts its synthetic addresses.
var upstreamNet = netip.MustParsePrefix("198.18.0.0/15")

// readHosts loads a gentable hosts file: name → its IPv4 addresses, sorted.
func readHosts(path string) (map[string][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read table %s (run gentable first): %w", path, err)
	}
	defer f.Close()
	m := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) == 2 && !strings.Contains(fl[0], ":") {
			m[fl[1]] = append(m[fl[1]], fl[0])
		}
	}
	for _, v := range m {
		slices.Sort(v)
	}
	return m, sc.Err()
}

// firstNames returns the names on the first n lines of a dnsperf query file.
func firstNames(path string, n int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read queries %s (run gentable first): %w", path, err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for len(out) < n && sc.Scan() {
		if name, _, ok := strings.Cut(sc.Text(), " "); ok {
			out = append(out, name)
		}
	}
	return out, sc.Err()
}

// lookupA asks addr for name's A record, trying three times: on a busy
// machine one datagram may be late, and the check is about answers.
func lookupA(addr, name string) (r *dns.Msg, err error) {
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	for try := 0; try < 3; try++ {
		if r, _, err = c.Exchange(q, addr); err == nil {
			return r, nil
		}
	}
	return nil, err
}

func answerIPs(r *dns.Msg) []string {
	var ips []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			ips = append(ips, a.A.String())
		}
	}
	return ips
}

// waitAnswering polls addr until it answers any query or timeout passes.
func waitAnswering(c *child, addr, name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	cl := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	for time.Now().Before(deadline) {
		if done, err := c.Exited(); done {
			return fmt.Errorf("%s exited before answering (%v); its log %s ends with:\n%s", c.name, err, c.logPath, c.logTail())
		}
		if _, _, err := cl.Exchange(q, addr); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer on %s within %s; its log %s ends with:\n%s", c.name, addr, timeout, c.logPath, c.logTail())
}

// checkMesh asks for sample table names and compares with the table.
func checkMesh(addr string, names []string, want map[string][]string) error {
	for _, n := range names {
		r, err := lookupA(addr, n)
		if err != nil {
			return fmt.Errorf("mesh name %s: %w", n, err)
		}
		ips := answerIPs(r)
		slices.Sort(ips)
		if r.Rcode != dns.RcodeSuccess || !slices.Equal(ips, want[n]) {
			return fmt.Errorf("mesh name %s: got %s %v, want NOERROR %v", n, dns.RcodeToString[r.Rcode], ips, want[n])
		}
	}
	return nil
}

// checkForwarded asks for names only the upstream knows.
func checkForwarded(addr string, names []string) error {
	for _, n := range names {
		r, err := lookupA(addr, n)
		if err != nil {
			return fmt.Errorf("forwarded name %s: %w", n, err)
		}
		ips := answerIPs(r)
		ok := r.Rcode == dns.RcodeSuccess && len(ips) == 1
		if ok {
			ip, perr := netip.ParseAddr(ips[0])
			ok = perr == nil && upstreamNet.Contains(ip)
		}
		if !ok {
			return fmt.Errorf("forwarded name %s: got %s %v, want NOERROR with one address in %s", n, dns.RcodeToString[r.Rcode], ips, upstreamNet)
		}
	}
	return nil
}

// freePort finds a loopback port free for both UDP and TCP right now.
func freePort() (int, error) {
	for i := 0; i < 20; i++ {
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free loopback port: %w", err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		t, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		u.Close()
		if err != nil {
			continue
		}
		t.Close()
		return port, nil
	}
	return 0, fmt.Errorf("find a free loopback port: none free for UDP and TCP after 20 tries")
}
