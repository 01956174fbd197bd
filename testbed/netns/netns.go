// Package netns makes simulated hosts out of Linux network namespaces: a VM,
// a control plane, an upstream DNS server, each with its own interfaces,
// addresses and resolv.conf, joined by veth pairs. It drives iproute2 (`ip`)
// and needs root. Nothing it creates touches the host's own network or
// /etc/resolv.conf: `ip netns exec` bind-mounts /etc/netns/NAME/resolv.conf over
// /etc/resolv.conf only inside the namespace.
package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// NS is one network namespace.
type NS struct {
	Name string
}

var seq atomic.Int64

// Available says why namespaces cannot be made here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("iproute2 (ip) is not installed: apt-get install iproute2")
	}
	return nil
}

// UniqueName returns a name that is unique to this process and short enough
// for an interface name (15 bytes), built from prefix.
func UniqueName(prefix string) string {
	n := fmt.Sprintf("%s%d%d", prefix, os.Getpid()%100000, seq.Add(1))
	if len(n) > 15 {
		n = n[len(n)-15:]
	}
	return n
}

// New creates a namespace with its loopback up.
func New(name string) (*NS, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if err := run("ip", "netns", "add", name); err != nil {
		return nil, err
	}
	ns := &NS{Name: name}
	if err := run("ip", "-n", name, "link", "set", "lo", "up"); err != nil {
		ns.Close()
		return nil, err
	}
	return ns, nil
}

// Close deletes the namespace (and its end of every veth pair) and its resolv.conf.
func (ns *NS) Close() error {
	os.RemoveAll(filepath.Join("/etc/netns", ns.Name))
	return run("ip", "netns", "del", ns.Name)
}

// Connect joins two namespaces with a veth pair and gives each end its
// address, so each can reach the other's address (on the prefix's subnet) and
// nothing else.
func Connect(a *NS, aAddr netip.Prefix, b *NS, bAddr netip.Prefix) error {
	return ConnectNamed(a, UniqueName("va"), aAddr, b, UniqueName("vb"), bAddr)
}

// ConnectNamed is Connect with the interface names chosen by the caller: ifa
// in a, ifb in b. A name need only be unique inside its own namespace.
func ConnectNamed(a *NS, ifa string, aAddr netip.Prefix, b *NS, ifb string, bAddr netip.Prefix) error {
	steps := [][]string{
		{"ip", "link", "add", ifa, "netns", a.Name, "type", "veth", "peer", "name", ifb, "netns", b.Name},
		{"ip", "-n", a.Name, "addr", "add", aAddr.String(), "dev", ifa},
		{"ip", "-n", b.Name, "addr", "add", bAddr.String(), "dev", ifb},
		{"ip", "-n", a.Name, "link", "set", ifa, "up"},
		{"ip", "-n", b.Name, "link", "set", ifb, "up"},
	}
	if aAddr.Addr().Is6() {
		// No duplicate address detection: addresses are usable at once.
		steps = append(steps,
			[]string{"ip", "netns", "exec", a.Name, "sysctl", "-qw", "net.ipv6.conf." + ifa + ".accept_dad=0"},
			[]string{"ip", "netns", "exec", b.Name, "sysctl", "-qw", "net.ipv6.conf." + ifb + ".accept_dad=0"})
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// SetResolvConf writes the resolv.conf that commands started with Command see.
func (ns *NS) SetResolvConf(content string) error {
	dir := filepath.Join("/etc/netns", ns.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte(content), 0o644)
}

// Command returns a command that runs inside the namespace.
func (ns *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Do runs f on an OS thread that has entered the namespace. Sockets that f
// opens stay in the namespace after Do returns.
func (ns *NS) Do(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return err
	}
	defer orig.Close()
	target, err := os.Open(filepath.Join("/run/netns", ns.Name))
	if err != nil {
		return fmt.Errorf("netns %s: %w", ns.Name, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("netns %s: setns: %w", ns.Name, err)
	}
	ferr := f()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread is in the wrong namespace: leave it locked so it dies with the goroutine.
		runtime.LockOSThread()
		return fmt.Errorf("netns: return to the original namespace: %w", err)
	}
	return ferr
}

// DialContext dials addr from inside the namespace. It fits
// http.Transport.DialContext and dns.Client's Dialer use.
func (ns *NS) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// ListenPacket opens a packet listener inside the namespace.
func (ns *NS) ListenPacket(network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := ns.Do(func() error {
		var err error
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	return pc, err
}

// Listen opens a stream listener inside the namespace.
func (ns *NS) Listen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := ns.Do(func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
