// Package harness runs onramp's real binaries for the demo and the end-to-end
// suites: the testbed control plane, bundle minting, and the agent, each as a
// process, optionally inside a network namespace (a simulated host). Every
// process it starts it ends itself, by PID.
package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/onramp-mesh/onramp/testbed/netns"
)

// Binaries are the paths of the built onramp and onramp-testbed.
type Binaries struct {
	Onramp, Testbed string
}

// Build compiles both binaries into dir with the go tool.
func Build(ctx context.Context, repo, dir string) (Binaries, error) {
	b := Binaries{Onramp: filepath.Join(dir, "onramp"), Testbed: filepath.Join(dir, "onramp-testbed")}
	for out, pkg := range map[string]string{b.Onramp: "./agent/cmd/onramp", b.Testbed: "./testbed/cmd/onramp-testbed"} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
		cmd.Dir = repo
		if o, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("go build %s: %v\n%s", pkg, err, o)
		}
	}
	return b, nil
}

// RepoRoot finds the module root from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Process is a started binary with its combined output kept.
type Process struct {
	Name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

// Start starts argv (in ns when not nil) and keeps its output. When echo is
// not nil, output is copied there too.
func Start(name string, ns *netns.NS, echo io.Writer, argv ...string) (*Process, error) {
	var cmd *exec.Cmd
	if ns != nil {
		cmd = exec.Command("ip", append([]string{"netns", "exec", ns.Name}, argv...)...)
	} else {
		cmd = exec.Command(argv[0], argv[1:]...)
	}
	p := &Process{Name: name, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	var w io.Writer = p.out
	if echo != nil {
		w = io.MultiWriter(p.out, echo)
	}
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// PID is the process ID (of `ip netns exec`, which execs the binary in place).
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Output is everything the process wrote so far.
func (p *Process) Output() string { return p.out.String() }

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM, waits up to 5 s, then kills.
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Kill ends the process at once, as a crash would.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Dialer dials from the host, or from inside a namespace.
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// DialerFor returns the dialer for ns (nil: the host).
func DialerFor(ns *netns.NS) Dialer {
	if ns != nil {
		return ns.DialContext
	}
	var d net.Dialer
	return d.DialContext
}

// HTTPGet fetches url through dial.
func HTTPGet(ctx context.Context, dial Dialer, url string) (int, []byte, error) {
	c := &http.Client{Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}, Timeout: 5 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// WaitHTTP polls url until it answers 200, p exits, or timeout passes.
func WaitHTTP(ctx context.Context, dial Dialer, url string, p *Process, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if p != nil {
			if done, err := p.Exited(); done {
				return fmt.Errorf("%s exited (%v) before %s was ready:\n%s", p.Name, err, url, Tail(p.Output(), 40))
			}
		}
		code, body, err := HTTPGet(ctx, dial, url)
		if err == nil && code == 200 {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%d %s", code, strings.TrimSpace(string(body)))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	out := ""
	if p != nil {
		out = "\n" + Tail(p.Output(), 40)
	}
	return fmt.Errorf("%s not ready after %s (last: %s)%s", url, timeout, last, out)
}

// Tail is the last lines of s, for error messages and test logs.
func Tail(s string, lines int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
