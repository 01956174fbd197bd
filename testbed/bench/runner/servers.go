package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Table is one generated name table directory (see gentable).
type Table struct {
	Dir   string
	Names int
}

func (t Table) file(name string) string { return filepath.Join(t.Dir, name) }

// Server is one DNS server the benchmark runs.
type Server struct {
	// Name identifies the server in tables and results.json.
	Name string
	// Binary is the executable; empty when the server is not available.
	Binary string
	// Missing says why Binary is empty.
	Missing string
	// Mesh is false for the echo ceiling, whose answers are not checked.
	Mesh bool
	// Command returns the argument vector (after Binary) that serves table
	// on 127.0.0.1:port and forwards to upstream, writing any
	// configuration it needs under work.
	Command func(table Table, port int, upstream string, work string) ([]string, error)
	// Version is the server's own version line, filled at start.
	Version string
	// VersionArgs prints the version.
	VersionArgs []string
}

// servers lists every server in the order the benchmark runs them.
func servers(bins map[string]string) []*Server {
	list := []*Server{
		{Name: "onramp", Mesh: true, Command: onrampCommand, VersionArgs: []string{"version"}},
		{Name: "unbound", Mesh: true, Command: unboundCommand, VersionArgs: []string{"-V"}},
		{Name: "dnsmasq", Mesh: true, Command: dnsmasqCommand, VersionArgs: []string{"--version"}},
		{Name: "coredns", Mesh: true, Command: corednsCommand, VersionArgs: []string{"-version"}},
		{Name: "echo", Mesh: false, Command: echoCommand},
	}
	for _, s := range list {
		b := bins[s.Name]
		switch {
		case b == "":
			s.Missing = "no binary given (-" + s.Name + ")"
		default:
			if _, err := os.Stat(b); err != nil {
				if p, lerr := exec.LookPath(b); lerr == nil {
					s.Binary = p
				} else {
					s.Missing = fmt.Sprintf("%s not found", b)
				}
			} else {
				s.Binary = b
			}
		}
	}
	return list
}

func onrampCommand(t Table, port int, upstream, work string) ([]string, error) {
	state := filepath.Join(work, "onramp-state")
	if err := os.MkdirAll(state, 0o755); err != nil {
		return nil, err
	}
	return []string{"run",
		"--name-table", t.file("onramp.json"),
		"--dns-listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--upstream", upstream,
		"--status-listen", "off",
		"--state-dir", state,
		"--log-level", "warn",
		// The benchmark never points the host's resolver at the server under test.
		"--redirect", "none",
	}, nil
}

// unboundConfig is a forwarding resolver with the table as local-data:
// one thread (it has one core), no DNSSEC validation (the other servers do
// none), caches large enough for every forwarded name.
func unboundConfig(t Table, port int, upstream, work string) string {
	host, uport, _ := strings.Cut(upstream, ":")
	return fmt.Sprintf(`server:
	verbosity: 0
	interface: 127.0.0.1@%[1]d
	port: %[1]d
	do-ip6: no
	num-threads: 1
	access-control: 127.0.0.0/8 allow
	do-not-query-localhost: no
	chroot: ""
	username: ""
	directory: "%[2]s"
	pidfile: ""
	use-syslog: no
	logfile: ""
	module-config: "iterator"
	num-queries-per-thread: 4096
	so-rcvbuf: 4m
	so-sndbuf: 4m
	outgoing-range: 8192
	msg-cache-size: 32m
	rrset-cache-size: 32m
	# The benchmark's names live under .test, which unbound serves as an
	# empty zone by default (RFC 6761); let them through to local-data and
	# the forwarder instead.
	local-zone: "test." nodefault
	include: "%[3]s"
forward-zone:
	name: "."
	forward-addr: %[4]s@%[5]s
`, port, work, t.file("unbound.conf"), host, uport)
}

func unboundCommand(t Table, port int, upstream, work string) ([]string, error) {
	conf := filepath.Join(work, fmt.Sprintf("unbound-%d.conf", t.Names))
	if err := os.WriteFile(conf, []byte(unboundConfig(t, port, upstream, work)), 0o644); err != nil {
		return nil, err
	}
	return []string{"-d", "-c", conf}, nil
}

// dnsmasqCommand runs dnsmasq with no configuration file, the table as an
// additional hosts file and one upstream.
func dnsmasqCommand(t Table, port int, upstream, _ string) ([]string, error) {
	host, uport, _ := strings.Cut(upstream, ":")
	return []string{
		"--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=", "--user=root",
		"--no-resolv", "--no-hosts", "--no-poll",
		"--addn-hosts=" + t.file("hosts"),
		"--server=" + host + "#" + uport,
		"--listen-address=127.0.0.1", "--bind-interfaces",
		fmt.Sprintf("--port=%d", port),
		"--cache-size=20000", "--local-ttl=30", "--dns-forward-max=1000",
		"--log-facility=-",
	}, nil
}

// corefile serves the table with the hosts plugin, caches everything (the
// cache plugin sits before hosts in CoreDNS's plugin order) and forwards
// the rest.
func corefile(t Table, port int, upstream string) string {
	return fmt.Sprintf(`.:%d {
	bind 127.0.0.1
	hosts %s {
		ttl 30
		reload 0
		no_reverse
		fallthrough
	}
	cache 3600 {
		success 65536
		denial 65536
	}
	forward . %s
}
`, port, t.file("hosts"), upstream)
}

func corednsCommand(t Table, port int, upstream, work string) ([]string, error) {
	conf := filepath.Join(work, fmt.Sprintf("Corefile-%d", t.Names))
	if err := os.WriteFile(conf, []byte(corefile(t, port, upstream)), 0o644); err != nil {
		return nil, err
	}
	return []string{"-conf", conf, "-quiet"}, nil
}

func echoCommand(_ Table, port int, _, _ string) ([]string, error) {
	return []string{"-listen", fmt.Sprintf("127.0.0.1:%d", port)}, nil
}
