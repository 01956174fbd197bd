package daemon

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/onramp-mesh/onramp/agent/health"
	"github.com/onramp-mesh/onramp/agent/status"
)

// statusLine is the one-line state `systemctl status onramp` shows (STATUS=).
func statusLine(r status.Report) string {
	var parts []string
	switch {
	case r.Mode == "static":
		parts = append(parts, "static table")
	case r.ControlPlane.Connected:
		parts = append(parts, "connected to "+r.ControlPlane.Address)
	case r.ControlPlane.LastError == "" && r.ControlPlane.Reconnects == 0:
		parts = append(parts, "connecting to "+r.ControlPlane.Address)
	default:
		parts = append(parts, "istiod unreachable, retrying")
	}
	parts = append(parts, fmt.Sprintf("%d names from %s", r.NameTable.Names, orDash(r.NameTable.Source)))
	if r.WorkloadEntry != "" {
		parts = append(parts, "entry "+r.WorkloadEntry)
	}
	return strings.Join(parts, "; ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// runStatusLine sends STATUS= at start and whenever the line changes
// (checked every second) until ctx ends. Without systemd it does nothing.
func (a *agent) runStatusLine(ctx context.Context) error {
	last := ""
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if line := statusLine(a.report()); line != last {
			health.NotifyStatus(line)
			last = line
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
