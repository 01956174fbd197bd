package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/onramp-mesh/onramp/testbed/harness"
)

// child is a process the runner started; every child is stopped by its PID
// when the runner ends, however it ends.
type child struct {
	*harness.Process
	name    string
	logPath string
	log     *os.File
}

var (
	childrenMu sync.Mutex
	children   = map[int]*child{}
)

// startPinned starts bin with args on the given CPU (taskset -c cpu exec's
// the program, so the PID is the program's), its output going to logPath.
func startPinned(name string, cpu int, logPath, bin string, args ...string) (*child, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: log file: %w", name, err)
	}
	p, err := harness.Start(name, nil, log, append([]string{"taskset", "-c", strconv.Itoa(cpu), bin}, args...)...)
	if err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, bin, err)
	}
	c := &child{Process: p, name: name, logPath: logPath, log: log}
	childrenMu.Lock()
	children[p.PID()] = c
	childrenMu.Unlock()
	return c, nil
}

// logTail is the end of the child's output, for error messages.
func (c *child) logTail() string {
	b := []byte(c.Output())
	if len(b) > 800 {
		b = b[len(b)-800:]
	}
	return string(bytes.TrimSpace(b))
}

// stop ends the child (SIGTERM, then SIGKILL) and closes its log.
func (c *child) stop() {
	childrenMu.Lock()
	delete(children, c.PID())
	childrenMu.Unlock()
	c.Stop()
	c.log.Close()
}

// stopAll stops every child still running.
func stopAll() {
	childrenMu.Lock()
	list := make([]*child, 0, len(children))
	for _, c := range children {
		list = append(list, c)
	}
	childrenMu.Unlock()
	for _, c := range list {
		c.stop()
	}
}

// runPinned runs a command to completion on cpu with its stdout written to
// outPath, bounded by timeout, and returns the CPU it used (user+system)
// and its wall time.
func runPinned(ctx context.Context, cpu int, timeout time.Duration, outPath string, bin string, args ...string) (cpuTime, wall time.Duration, err error) {
	out, err := os.Create(outPath)
	if err != nil {
		return 0, 0, err
	}
	defer out.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "taskset", append([]string{"-c", strconv.Itoa(cpu), bin}, args...)...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = out, &stderr
	start := time.Now()
	err = cmd.Run()
	wall = time.Since(start)
	if cmd.ProcessState != nil {
		cpuTime = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return cpuTime, wall, fmt.Errorf("%s did not finish within %s (is the server under test hung?): %w", bin, timeout, ctx.Err())
	}
	if ctx.Err() != nil {
		return cpuTime, wall, fmt.Errorf("%s stopped: %w", bin, ctx.Err())
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return cpuTime, wall, fmt.Errorf("%s %v: %w: %s", bin, args, err, bytes.TrimSpace(stderr.Bytes()))
		}
		return cpuTime, wall, fmt.Errorf("%s: %w", bin, err)
	}
	return cpuTime, wall, nil
}

// execOutput runs a short command and returns its combined output.
func execOutput(ctx context.Context, bin string, args ...string) (string, error) {
	b, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(b), err
}
