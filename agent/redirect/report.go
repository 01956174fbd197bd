package redirect

import (
	"fmt"
	"io"
	"strings"
)

// Report is what `onramp redirect status` prints: the redirect as the
// running agent reports it, or, with the agent not answering, as its record
// under the state directory says.
type Report struct {
	// From is "agent" (the running agent's report), "record" (the agent is
	// not answering; the record is what a removal would undo) or "none"
	// (neither: nothing is in place).
	From  string `json:"from"`
	State State  `json:"state"`
	// AgentError is why the agent could not be asked, when From is not "agent".
	AgentError string `json:"agentError,omitempty"`
}

// WriteText prints the report for humans.
func (r Report) WriteText(w io.Writer) {
	row := func(k, v string) { fmt.Fprintf(w, "%-12s %s\n", k+":", v) }
	switch r.From {
	case "none":
		row("redirect", "nothing in place (no agent answering, no record)")
		if r.AgentError != "" {
			row("agent", r.AgentError)
		}
		return
	case "record":
		row("agent", "not answering ("+r.AgentError+"); showing the record; onramp redirect remove undoes it")
	}
	s := r.State
	row("backend", s.Backend)
	if s.Backend == None {
		row("reason", s.Reason)
		return
	}
	row("in place", fmt.Sprint(s.InPlace))
	row("to", strings.Join(s.Listen, ", "))
	if s.Table != "" {
		row("table", "inet "+s.Table)
		if s.CaptureAll {
			row("redirects", "all UDP and TCP port-53 traffic")
		} else {
			row("redirects", "UDP and TCP port 53 to "+strings.Join(s.Nameservers, ", "))
		}
		row("exempt", fmt.Sprintf("sockets marked %#x (the proxy's own upstream queries)", s.Mark))
		if s.Repairs > 0 {
			row("restored", fmt.Sprintf("%d times after the table was removed or changed", s.Repairs))
		}
	}
	if s.Link != "" {
		created := ""
		if s.LinkCreated {
			created = ", created by onramp"
		}
		row("link", fmt.Sprintf("%s (index %d, %s%s)", s.Link, s.Ifindex, s.LinkKind, created))
		if s.CaptureAll {
			row("domains", "~. (every name)")
		} else {
			row("domains", fmt.Sprintf("%d routing-only: %s", len(s.Domains), strings.Join(abbrev(s.Domains, 8), " ")))
		}
		if len(s.Upstreams) > 0 {
			row("upstreams", strings.Join(s.Upstreams, ", ")+" (resolved's servers on the other links)")
		}
	}
	if !s.Applied.IsZero() {
		row("applied", s.Applied.Format("2006-01-02T15:04:05Z07:00"))
	}
	if s.LastError != "" {
		row("error", s.LastError)
	}
}

func abbrev(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(s[:n:n], fmt.Sprintf("... (%d more)", len(s)-n))
}
