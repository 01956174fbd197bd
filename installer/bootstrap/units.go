package bootstrap

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// Units is how bootstrap drives systemd; Systemctl is the real one.
type Units interface {
	// Enable enables onramp.service (which enables onramp.socket through Also=).
	Enable(ctx context.Context) error
	// Start starts the socket and the service; with restart, the service is
	// restarted if it runs (the socket keeps its listeners either way).
	Start(ctx context.Context, restart bool) error
	// State reads the service's state.
	State(ctx context.Context) (UnitState, error)
	// Journal returns the service's last n log lines, for an error message.
	Journal(ctx context.Context, n int) string
}

// UnitState is what `systemctl show onramp.service` says.
type UnitState struct {
	Active    string // ActiveState: active, activating, failed, inactive...
	Sub       string // SubState: running, start, auto-restart...
	Status    string // StatusText, the agent's STATUS= line
	Result    string // Result: success, exit-code, watchdog...
	NRestarts int
	// Invocation is the InvocationID: a new one for each start.
	Invocation string
}

// Ready reports whether the agent sent READY=1 and runs.
func (s UnitState) Ready() bool { return s.Active == "active" && s.Sub == "running" }

// Systemctl drives the units with systemctl and journalctl.
type Systemctl struct {
	// Service and Socket are the unit names (default onramp.service, onramp.socket).
	Service, Socket string
}

func (s Systemctl) names() (string, string) {
	svc, sock := s.Service, s.Socket
	if svc == "" {
		svc = "onramp.service"
	}
	if sock == "" {
		sock = "onramp.socket"
	}
	return svc, sock
}

func run(ctx context.Context, name string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

func (s Systemctl) Enable(ctx context.Context) error {
	svc, _ := s.names()
	_, err := run(ctx, "systemctl", "enable", "--quiet", svc)
	return err
}

func (s Systemctl) Start(ctx context.Context, restart bool) error {
	svc, sock := s.names()
	if _, err := run(ctx, "systemctl", "start", sock); err != nil {
		return err
	}
	verb := "start"
	if restart {
		verb = "restart"
	}
	// --no-block: bootstrap waits for READY itself, with a progress display.
	_, err := run(ctx, "systemctl", verb, "--no-block", svc)
	return err
}

func (s Systemctl) State(ctx context.Context) (UnitState, error) {
	svc, _ := s.names()
	out, err := run(ctx, "systemctl", "show", svc, "-p", "ActiveState,SubState,StatusText,Result,NRestarts,InvocationID")
	if err != nil {
		return UnitState{}, err
	}
	var st UnitState
	for _, l := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(l, "=")
		switch k {
		case "ActiveState":
			st.Active = v
		case "SubState":
			st.Sub = v
		case "StatusText":
			st.Status = v
		case "Result":
			st.Result = v
		case "InvocationID":
			st.Invocation = v
		case "NRestarts":
			st.NRestarts, _ = strconv.Atoi(v)
		}
	}
	return st, nil
}

func (s Systemctl) Journal(ctx context.Context, n int) string {
	svc, _ := s.names()
	out, _ := run(ctx, "journalctl", "-u", svc, "-n", strconv.Itoa(n), "--no-pager", "-o", "cat")
	return out
}
