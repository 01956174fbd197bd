package nspawn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/onramp-mesh/onramp/testbed/netns"
)

// Bind is a host file or directory mounted into the machine.
type Bind struct {
	Src string // on the host
	Dst string // in the machine; Src when empty
	RW  bool   // read-write; read-only otherwise
}

// Opts says what to boot.
type Opts struct {
	// Root is the rootfs directory (from Rootfs). Boot never writes to it.
	Root string
	// Name is the machine (and host) name; unique when empty.
	Name string
	// Binds are mounted into the machine.
	Binds []Bind
	// Args go to systemd in the machine as its kernel command line, e.g.
	// "systemd.wants=x.service", "systemd.mask=systemd-resolved.service".
	Args []string
	// Peer is the namespace at the other end of the machine's veth (host0
	// inside). When nil, Boot makes one and Stop removes it.
	Peer *netns.NS
	// Addr and PeerAddr are the addresses of the two ends (defaults
	// 10.213.0.2/24 and 10.213.0.1/24). The peer is the machine's default route.
	Addr, PeerAddr netip.Prefix
	// Addr6 and PeerAddr6, when both set, add IPv6 addresses (usable at once,
	// no duplicate detection) and the peer as the IPv6 default route.
	Addr6, PeerAddr6 netip.Prefix
	// StateDir, when set, holds a writable layer over Root that outlives the
	// machine: files written in one boot are there in the next Boot with the
	// same StateDir, and Reboot keeps them. When empty the machine boots with
	// --volatile=overlay and every change is lost at Stop.
	StateDir string
	// DNS are the name servers the machine's network gives it, as DHCP
	// would: with resolved, host0's per-link servers (set again whenever
	// resolved restarts, as networkd would); with NoResolved, the nameserver
	// lines of /etc/resolv.conf. None by default.
	DNS []netip.Addr
	// NoResolved boots the machine as a host without systemd-resolved: the
	// service is masked and /etc/resolv.conf is a plain file with ResolvConf.
	NoResolved bool
	// ResolvConf is that file's content (default: a nameserver line for each
	// of DNS, or for PeerAddr when DNS is empty).
	ResolvConf string
	// Capabilities are kept for the machine on top of nspawn's default set
	// (--capability=), e.g. CAP_NET_ADMIN for services that configure the
	// network: with a network namespace given by path, nspawn does not keep
	// it, and services in the machine cannot get it.
	Capabilities []string
	// Timeout bounds the boot (default 60s).
	Timeout time.Duration
}

// Machine is a booted container.
type Machine struct {
	Name     string
	Peer     *netns.NS // the host end of the veth
	NS       *netns.NS // the machine's own network namespace
	Addr     netip.Addr
	PeerAddr netip.Addr
	// PeerLink is the name of the veth's end in Peer (for tc netem, say).
	PeerLink string
	// State is what `systemctl is-system-running` said once boot finished:
	// running or degraded.
	State string

	opts    Opts
	ownPeer bool
	merged  string // the overlay mount for StateDir
	tmp     string // host files bound into the machine

	mu      sync.Mutex
	cmd     *exec.Cmd // unshare, which runs nspawn
	nspawn  *os.Process
	init    *os.Process
	initPID int
	exited  chan struct{}
	console *console
}

// Available says why machines cannot be booted here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("nspawn: systemd-nspawn machines need root")
	}
	for _, tool := range []struct{ bin, pkg string }{
		{"systemd-nspawn", "systemd-container"}, {"debootstrap", "debootstrap"}, {"zstd", "zstd"},
		{"nsenter", "util-linux"}, {"unshare", "util-linux"}, {"tar", "tar"},
	} {
		if _, err := exec.LookPath(tool.bin); err != nil {
			return fmt.Errorf("nspawn: %s is not installed: apt-get install %s (make deps)", tool.bin, tool.pkg)
		}
	}
	return netns.Available()
}

// Boot starts a machine and waits until systemd in it has finished booting
// (running or degraded). The machine's network is a namespace of its own with
// one veth, host0, whose other end is in Opts.Peer; lo is up; the peer is the
// default route. Stop it with Stop.
func Boot(ctx context.Context, o Opts) (*Machine, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if o.Root == "" {
		return nil, errors.New("nspawn: Opts.Root is empty; get one from Rootfs")
	}
	if _, err := os.Stat(filepath.Join(o.Root, ".onramp-rootfs")); err != nil {
		return nil, fmt.Errorf("nspawn: %s is not a rootfs made by Rootfs", o.Root)
	}
	if o.Name == "" {
		o.Name = netns.UniqueName("onramp")
	}
	if !o.Addr.IsValid() {
		o.Addr = netip.MustParsePrefix("10.213.0.2/24")
	}
	if !o.PeerAddr.IsValid() {
		o.PeerAddr = netip.MustParsePrefix("10.213.0.1/24")
	}
	if o.ResolvConf == "" {
		servers := o.DNS
		if len(servers) == 0 {
			servers = []netip.Addr{o.PeerAddr.Addr()}
		}
		for _, a := range servers {
			o.ResolvConf += "nameserver " + a.String() + "\n"
		}
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	m := &Machine{Name: o.Name, Addr: o.Addr.Addr(), PeerAddr: o.PeerAddr.Addr(), opts: o, Peer: o.Peer}
	if err := m.network(); err != nil {
		m.Stop()
		return nil, err
	}
	if len(o.DNS) > 0 && !o.NoResolved {
		if err := m.linkDNSUnit(); err != nil {
			m.Stop()
			return nil, err
		}
	}
	if o.StateDir != "" {
		if err := m.mountState(); err != nil {
			m.Stop()
			return nil, err
		}
	}
	if err := m.start(ctx); err != nil {
		m.Stop()
		return nil, err
	}
	return m, nil
}

// network makes the machine's namespace and its veth to the peer.
func (m *Machine) network() error {
	ns, err := netns.New(netns.UniqueName("nspm"))
	if err != nil {
		return err
	}
	m.NS = ns
	if m.Peer == nil {
		if m.Peer, err = netns.New(netns.UniqueName("nspp")); err != nil {
			return err
		}
		m.ownPeer = true
	}
	m.PeerLink = netns.UniqueName("ve")
	if err := netns.ConnectNamed(m.NS, "host0", m.opts.Addr, m.Peer, m.PeerLink, m.opts.PeerAddr); err != nil {
		return err
	}
	steps := [][]string{{"-n", m.NS.Name, "route", "add", "default", "via", m.PeerAddr.String(), "dev", "host0"}}
	if a, p := m.opts.Addr6, m.opts.PeerAddr6; a.IsValid() && p.IsValid() {
		steps = append(steps,
			[]string{"-n", m.NS.Name, "-6", "addr", "add", a.String(), "dev", "host0", "nodad"},
			[]string{"-n", m.Peer.Name, "-6", "addr", "add", p.String(), "dev", m.PeerLink, "nodad"},
			[]string{"-n", m.NS.Name, "-6", "route", "add", "default", "via", p.Addr().String(), "dev", "host0"})
	}
	for _, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			return fmt.Errorf("nspawn: ip %s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
	return nil
}

// linkDNSUnit makes a unit that gives host0 its DNS servers in resolved,
// started at boot and again whenever resolved restarts (PartOf), and binds it
// into the machine.
func (m *Machine) linkDNSUnit() error {
	dir, err := os.MkdirTemp("", "onramp-nspawn-")
	if err != nil {
		return err
	}
	m.tmp = dir
	servers := make([]string, len(m.opts.DNS))
	for i, a := range m.opts.DNS {
		servers[i] = a.String()
	}
	unit := fmt.Sprintf(`[Unit]
Description=DNS servers of host0, as the network gave them
After=systemd-resolved.service
PartOf=systemd-resolved.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/resolvectl dns host0 %s
`, strings.Join(servers, " "))
	name := linkDNSUnit
	if err := os.WriteFile(filepath.Join(dir, name), []byte(unit), 0o644); err != nil {
		return err
	}
	m.opts.Binds = append(slices.Clip(m.opts.Binds), Bind{Src: filepath.Join(dir, name), Dst: "/etc/systemd/system/" + name})
	m.opts.Args = append(slices.Clip(m.opts.Args), "systemd.wants="+name)
	return nil
}

// linkDNSUnit is the unit that sets Opts.DNS on host0.
const linkDNSUnit = "onramp-testbed-link-dns.service"

// mountState mounts StateDir's writable layer over Root at StateDir/root.
func (m *Machine) mountState() error {
	d := m.opts.StateDir
	for _, sub := range []string{"upper", "work", "root"} {
		if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
			return err
		}
	}
	merged := filepath.Join(d, "root")
	data := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", m.opts.Root, filepath.Join(d, "upper"), filepath.Join(d, "work"))
	if err := unix.Mount("overlay", merged, "overlay", 0, data); err != nil {
		return fmt.Errorf("nspawn: mount the state overlay at %s: %w", merged, err)
	}
	m.merged = merged
	return nil
}

func (m *Machine) start(ctx context.Context) error {
	o := m.opts
	args := []string{"--boot", "--register=no", "--keep-unit", "--machine=" + o.Name,
		"--network-namespace-path=/run/netns/" + m.NS.Name,
		"--resolv-conf=off", "--timezone=off", "--link-journal=no"}
	if len(o.Capabilities) > 0 {
		args = append(args, "--capability="+strings.Join(o.Capabilities, ","))
	}
	if m.merged != "" {
		args = append(args, "-D", m.merged)
	} else {
		args = append(args, "-D", o.Root, "--volatile=overlay")
	}
	for _, b := range o.Binds {
		dst := b.Dst
		if dst == "" {
			dst = b.Src
		}
		flag := "--bind-ro="
		if b.RW {
			flag = "--bind="
		}
		args = append(args, flag+b.Src+":"+dst)
	}
	kargs := o.Args
	if o.NoResolved {
		kargs = append([]string{"systemd.mask=systemd-resolved.service"}, kargs...)
	}
	args = append(args, "--")
	args = append(args, kargs...)

	m.console = &console{}
	// nspawn runs as PID 1 of a pid namespace of its own, which holds the
	// machine's. If this process dies, unshare dies (Pdeathsig), then nspawn
	// (--kill-child), and with it every process of the machine: a machine
	// never outlives its test, even one killed by a timeout. (A killed nspawn
	// alone leaves its machine running.)
	cmd := exec.Command("unshare", append([]string{"--pid", "--fork", "--kill-child=SIGKILL", "systemd-nspawn"}, args...)...)
	cmd.Stdout, cmd.Stderr = m.console, m.console
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("nspawn: start systemd-nspawn: %w", err)
	}
	exited := make(chan struct{})
	m.mu.Lock()
	m.cmd, m.exited = cmd, exited
	m.mu.Unlock()
	go func() { cmd.Wait(); close(exited) }()

	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if err := m.findInit(ctx); err != nil {
		return err
	}
	if err := m.waitBooted(ctx); err != nil {
		return err
	}
	if o.NoResolved {
		script := `rm -f /etc/resolv.conf && cat > /etc/resolv.conf`
		if _, stderr, err := m.execIn(ctx, strings.NewReader(o.ResolvConf), "sh", "-c", script); err != nil {
			return fmt.Errorf("nspawn: write resolv.conf in %s: %v: %s", o.Name, err, stderr)
		}
	}
	return nil
}

// findInit finds nspawn (unshare's child) and the machine's PID 1 (nspawn's
// child that is PID 1 of the innermost of three pid namespaces).
func (m *Machine) findInit(ctx context.Context) error {
	for {
		if nspawn := childWhere(m.cmd.Process.Pid, 2); nspawn > 0 {
			if pid := childWhere(nspawn, 3); pid > 0 {
				// pidfds: signals never reach a reused pid.
				np, err := os.FindProcess(nspawn)
				if err != nil {
					return err
				}
				p, err := os.FindProcess(pid)
				if err != nil {
					np.Release()
					return err
				}
				m.mu.Lock()
				m.nspawn, m.init, m.initPID = np, p, pid
				m.mu.Unlock()
				return nil
			}
		}
		select {
		case <-m.exited:
			return m.bootError("systemd-nspawn exited before the machine started")
		case <-ctx.Done():
			return m.bootError("no init process appeared")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// childWhere returns the pid of a child of parent that is PID 1 of a pid
// namespace depth levels below the host's, or 0.
func childWhere(parent, depth int) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", parent))
	for _, t := range tasks {
		data, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(data)) {
			pid, _ := strconv.Atoi(f)
			status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			for _, line := range strings.Split(string(status), "\n") {
				if ids, ok := strings.CutPrefix(line, "NSpid:"); ok {
					if f := strings.Fields(ids); len(f) == depth && f[depth-1] == "1" {
						return pid
					}
				}
			}
		}
	}
	return 0
}

func (m *Machine) waitBooted(ctx context.Context) error {
	var last string
	for {
		out, stderr, _ := m.Exec(ctx, "systemctl", "is-system-running", "--wait")
		state := strings.TrimSpace(out)
		switch state {
		case "running", "degraded":
			m.State = state
			return nil
		}
		last = strings.TrimSpace(state + " " + stderr)
		select {
		case <-m.exited:
			return m.bootError("systemd-nspawn exited during boot (last state: " + last + ")")
		case <-ctx.Done():
			return m.bootError("boot did not finish in " + m.opts.Timeout.String() + " (last state: " + last + ")")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (m *Machine) bootError(what string) error {
	return fmt.Errorf("nspawn: machine %s: %s; console:\n%s", m.Name, what, tail(m.Console(), 4000))
}

// Console returns what the machine printed on its console (the tail, plain text).
func (m *Machine) Console() string {
	if m.console == nil {
		return ""
	}
	return m.console.String()
}

// PID is the host pid of the machine's init, for nsenter -t PID -m -u -i -n -p -C -r -w.
func (m *Machine) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.initPID
}

// ExitError is a command in the machine that exited non-zero.
type ExitError struct {
	Machine string
	Args    []string
	Code    int
	Stderr  string
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("in %s: %s: exit status %d: %s", e.Machine, strings.Join(e.Args, " "), e.Code, strings.TrimSpace(e.Stderr))
}

// ExitCode is err's exit status when err is an *ExitError, 0 when err is
// nil, and -1 otherwise.
func ExitCode(err error) int {
	var e *ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &e):
		return e.Code
	}
	return -1
}

// Command returns a command that runs args inside the machine (all its
// namespaces, its root and cwd /) with a clean environment. Use it to stream
// input or output; Exec for the common case.
func (m *Machine) Command(ctx context.Context, args ...string) *exec.Cmd {
	nsargs := []string{"-t", strconv.Itoa(m.PID()), "-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w",
		"/usr/bin/env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root", "LANG=C.UTF-8", "TERM=dumb"}
	return exec.CommandContext(ctx, "nsenter", append(nsargs, args...)...)
}

// Exec runs args inside the machine and returns its stdout and stderr. A
// non-zero exit is an *ExitError (see ExitCode).
func (m *Machine) Exec(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	return m.execIn(ctx, nil, args...)
}

func (m *Machine) execIn(ctx context.Context, stdin io.Reader, args ...string) (string, string, error) {
	if m.PID() == 0 {
		return "", "", fmt.Errorf("nspawn: machine %s is not running", m.Name)
	}
	cmd := m.Command(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() > 0 {
		err = &ExitError{Machine: m.Name, Args: args, Code: ee.ExitCode(), Stderr: errb.String()}
	} else if err != nil {
		err = fmt.Errorf("nspawn: in %s: %s: %w: %s", m.Name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), errb.String(), err
}

// Run is Exec for commands that must succeed: it returns stdout, or an error
// with stderr.
func (m *Machine) Run(ctx context.Context, args ...string) (string, error) {
	out, _, err := m.Exec(ctx, args...)
	return out, err
}

// WriteFile writes a file inside the machine (creating its directory), with
// mode perm. It goes through the machine's own root, so symlinks resolve
// there, never on the host.
func (m *Machine) WriteFile(ctx context.Context, path string, data []byte, perm os.FileMode) error {
	script := `mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1"`
	_, stderr, err := m.execIn(ctx, bytes.NewReader(data), "sh", "-c", script, "sh", path, fmt.Sprintf("%o", perm.Perm()))
	if err != nil {
		return fmt.Errorf("nspawn: write %s in %s: %w: %s", path, m.Name, err, stderr)
	}
	return nil
}

// CopyIn copies the host file src to dst inside the machine, keeping its mode.
func (m *Machine) CopyIn(ctx context.Context, src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	return m.WriteFile(ctx, dst, data, st.Mode())
}

// Reboot powers the machine off and boots it again on the same network. With
// Opts.StateDir everything written survives; without it the machine comes
// back as fresh as its rootfs.
func (m *Machine) Reboot(ctx context.Context) error {
	if err := m.shutdown(); err != nil {
		return err
	}
	return m.start(ctx)
}

// shutdown powers the machine off (as nspawn does on SIGTERM) and, if that
// takes too long, kills nspawn and the machine's whole pid namespace.
func (m *Machine) shutdown() error {
	m.mu.Lock()
	cmd, exited, nspawn, init := m.cmd, m.exited, m.nspawn, m.init
	m.cmd, m.nspawn, m.init, m.initPID = nil, nil, nil, 0
	m.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if nspawn != nil {
		nspawn.Signal(syscall.SIGTERM)
		nspawn.Release()
	}
	var err error
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		err = fmt.Errorf("nspawn: machine %s did not power off in 15s; killed", m.Name)
	}
	// Killing unshare kills nspawn, the PID 1 of the namespace that holds
	// every process of the machine.
	cmd.Process.Kill()
	if init != nil {
		init.Release()
	}
	<-exited
	return err
}

// Stop powers the machine off, kills what is left of it, unmounts its state
// overlay (keeping StateDir for another Boot) and removes its network
// namespace (and the peer's, if Boot made it). It is safe to call twice.
func (m *Machine) Stop() error {
	err := m.shutdown()
	if m.merged != "" {
		if uerr := unix.Unmount(m.merged, 0); uerr != nil {
			unix.Unmount(m.merged, unix.MNT_DETACH)
		}
		m.merged = ""
	}
	if m.tmp != "" {
		os.RemoveAll(m.tmp)
		m.tmp = ""
	}
	if m.NS != nil {
		m.NS.Close()
		m.NS = nil
	}
	if m.ownPeer && m.Peer != nil {
		m.Peer.Close()
		m.Peer = nil
	}
	return err
}

// console keeps the last 256 KiB of the machine's console, without colours.
type console struct {
	mu  sync.Mutex
	buf []byte
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]|\r`)

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, p...)
	if over := len(c.buf) - 256<<10; over > 0 {
		c.buf = append(c.buf[:0], c.buf[over:]...)
	}
	return len(p), nil
}

func (c *console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ansi.ReplaceAllString(string(c.buf), "")
}
