// Package status serves the agent's status HTTP endpoints on 127.0.0.1:15020
// and defines the report that `onramp status` prints.
//
//	/healthz/ready    200 when the agent serves DNS with a name table, 503 with the reason otherwise
//	/metrics          Prometheus text exposition of every component
//	/debug/status     the Report as JSON (what `onramp status -o json` prints)
//	/debug/nametable  the names the proxy answers, as JSON
//	/debug/config     the effective configuration, as JSON
package status

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/onramp-mesh/onramp/agent/nametable"
)

// Report is the agent's state as `onramp status` shows it.
type Report struct {
	Version string `json:"version"`
	Mode    string `json:"mode"` // "control-plane" or "static"
	// DataPlane is the dataPlane setting: "proxy" when a proxy on the VM
	// carries the mesh's VIPs, "none" otherwise.
	DataPlane    string       `json:"dataPlane,omitempty"`
	DNS          DNS          `json:"dns"`
	ControlPlane ControlPlane `json:"controlPlane"`
	Identity     Identity     `json:"identity"`
	NameTable    NameTable    `json:"nameTable"`
	Health       Health       `json:"health"`
	// Redirect is what the resolver redirect put in place; nil when the
	// agent runs without one.
	Redirect *Redirect `json:"redirect,omitempty"`
	// WorkloadEntry is the name istiod gives this VM's auto-registered entry.
	WorkloadEntry string `json:"workloadEntry,omitempty"`
}

// Redirect is what the resolver redirect (agent/redirect) put in place:
// `onramp redirect status`, `onramp status` and `onramp doctor` show it,
// and the record under StateDir/redirect keeps it. It is the same for every
// backend; fields that do not apply are empty.
type Redirect struct {
	// Backend is resolved, nftables or none.
	Backend string `json:"backend"`
	// InPlace is true while the plan is in place as far as the last apply or
	// check found.
	InPlace bool `json:"inPlace"`
	// Reason says why there is no redirect (backend none), or what failed.
	Reason string `json:"reason,omitempty"`
	// Listen, Domains and CaptureAll are the plan in place.
	Listen     []string `json:"listen,omitempty"`
	Domains    []string `json:"domains,omitempty"`
	CaptureAll bool     `json:"captureAll,omitempty"`
	Mark       uint32   `json:"mark,omitempty"`

	// Table is the nftables table onramp owns (family inet), Nameservers the
	// addresses whose port-53 traffic it redirects.
	Table       string   `json:"table,omitempty"`
	Nameservers []string `json:"redirected,omitempty"`
	// Repairs counts the times the table was found missing or changed and
	// restored.
	Repairs int `json:"repairs,omitempty"`

	// Link and Ifindex name the link resolved routes the mesh's domains
	// through; LinkCreated says onramp created it (and deletes it on removal).
	Link        string `json:"link,omitempty"`
	Ifindex     int    `json:"ifindex,omitempty"`
	LinkCreated bool   `json:"linkCreated,omitempty"`
	LinkKind    string `json:"linkKind,omitempty"`
	// Upstreams are resolved's real servers on the other links, which the
	// proxy forwards non-mesh names to.
	Upstreams []string `json:"upstreams,omitempty"`

	// Applied is when the plan was last applied.
	Applied time.Time `json:"applied,omitzero"`
	// LastError is the last failure to apply or keep the plan in place.
	LastError string `json:"error,omitempty"`
}

// Clone returns a copy of r that shares no slices with it.
func (r Redirect) Clone() Redirect {
	r.Listen, r.Domains = slices.Clone(r.Listen), slices.Clone(r.Domains)
	r.Nameservers, r.Upstreams = slices.Clone(r.Nameservers), slices.Clone(r.Upstreams)
	return r
}

// DNS describes the proxy.
type DNS struct {
	// Listen are the sockets actually served: dns.listen, or the sockets
	// systemd passed when the agent is socket-activated.
	Listen []string `json:"listen"`
	// SocketActivated is true when systemd passed the sockets.
	SocketActivated bool     `json:"socketActivated,omitempty"`
	Upstreams       []string `json:"upstreams,omitempty"`
}

// ControlPlane describes the ADS link.
type ControlPlane struct {
	Address    string    `json:"address,omitempty"`
	Connected  bool      `json:"connected"`
	Since      time.Time `json:"since,omitzero"`
	LastError  string    `json:"lastError,omitempty"`
	Reconnects int       `json:"reconnects"`
	// Accepted and Rejected count name tables ACKed and NACKed; LastRejection says why the last one was NACKed.
	Accepted      int    `json:"accepted"`
	Rejected      int    `json:"rejected"`
	LastRejection string `json:"lastRejection,omitempty"`
}

// Identity describes the workload certificate.
type Identity struct {
	SPIFFEID     string    `json:"spiffeID,omitempty"`
	NotAfter     time.Time `json:"notAfter,omitzero"`
	NextRotation time.Time `json:"nextRotation,omitzero"`
	LastError    string    `json:"lastError,omitempty"`
}

// NameTable describes the table the proxy answers from.
type NameTable struct {
	Names   int    `json:"names"`
	Hosts   int    `json:"hosts"`
	Version string `json:"version,omitempty"`
	Source  string `json:"source,omitempty"` // "control-plane", "disk", "file"
	// LastPush is when the control plane pushed the table in use, also when
	// it was read back from disk after a restart; zero for a file.
	LastPush time.Time `json:"lastPush,omitzero"`
	// Installed is when the index in use was built (a push, the load at
	// start, or a rebuild for a new search list).
	Installed time.Time `json:"installed,omitzero"`
	// Search and Ndots are the host's resolv.conf settings the index follows.
	Search []string `json:"search,omitempty"`
	Ndots  int      `json:"ndots"`
	// SaveError is why the table in use could not be kept on disk.
	SaveError string `json:"saveError,omitempty"`
	// Skipped is what of the table is not served: each address dropped and
	// each entry skipped, with the reason.
	Skipped []nametable.Skip `json:"skipped,omitempty"`
	// Withheld are the names not answered because their only addresses are
	// auto-allocated VIPs and dataPlane is none, with their lookups.
	Withheld []nametable.Withheld `json:"withheld,omitempty"`
}

// Health is the readiness probe state reported to the control plane.
type Health struct {
	Probe    bool   `json:"probe"`
	Reported bool   `json:"reported"` // false until the probe has reached a threshold
	Healthy  bool   `json:"healthy"`
	Message  string `json:"message,omitempty"`
}

// Sources are what the server reads on each request.
type Sources struct {
	// Ready returns nil when the agent is ready, or why it is not.
	Ready func() error
	// Report builds the current report.
	Report func() Report
	// Metrics write Prometheus text for each component.
	Metrics []func(io.Writer)
	// NameTable returns a JSON-encodable view of the served names.
	NameTable func() any
	// Config is the effective configuration.
	Config any
}

// Server is the status HTTP server.
type Server struct {
	srv *http.Server
	ln  net.Listener
	log hclog.Logger
}

// Listen opens the status server on addr (e.g. 127.0.0.1:15020).
func Listen(addr string, src Sources, log hclog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("status: listen on %s: %w; set status.listen to a free address or \"off\"", addr, err)
	}
	return &Server{srv: &http.Server{Handler: Handler(src), ReadHeaderTimeout: 5 * time.Second}, ln: ln, log: log}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Serve serves until ctx ends, and returns once the server has shut down.
func (s *Server) Serve(ctx context.Context) error {
	served, shutDown := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(shutDown)
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = s.srv.Shutdown(sctx)
		case <-served:
		}
	}()
	err := s.srv.Serve(s.ln)
	close(served)
	<-shutDown
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Handler returns the HTTP handler for src.
func Handler(src Sources) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz/ready", func(w http.ResponseWriter, r *http.Request) {
		if src.Ready != nil {
			if err := src.Ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		io.WriteString(w, "ready\n")
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		for _, m := range src.Metrics {
			m(w)
		}
	})
	mux.HandleFunc("GET /debug/status", func(w http.ResponseWriter, r *http.Request) {
		var rep Report
		if src.Report != nil {
			rep = src.Report()
		}
		writeJSON(w, rep)
	})
	mux.HandleFunc("GET /debug/nametable", func(w http.ResponseWriter, r *http.Request) {
		var v any
		if src.NameTable != nil {
			v = src.NameTable()
		}
		writeJSON(w, v)
	})
	mux.HandleFunc("GET /debug/config", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, src.Config)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Fetch reads the report from a running agent's status server.
func Fetch(ctx context.Context, addr string) (Report, error) {
	var rep Report
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/status", nil)
	if err != nil {
		return rep, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return rep, fmt.Errorf("status: no agent answers on %s (is onramp running? systemctl status onramp): %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return rep, fmt.Errorf("status: %s answered %s", addr, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return rep, fmt.Errorf("status: bad report from %s: %w", addr, err)
	}
	return rep, nil
}

// WriteText prints the report for humans.
func (r Report) WriteText(w io.Writer) {
	row := func(k, v string) { fmt.Fprintf(w, "%-16s %s\n", k+":", v) }
	row("version", r.Version)
	row("mode", r.Mode)
	if r.DataPlane != "" {
		row("data plane", r.DataPlane)
	}
	dns := fmt.Sprint(r.DNS.Listen)
	if r.DNS.SocketActivated {
		dns += " (sockets from systemd)"
	}
	row("dns", dns)
	if rd := r.Redirect; rd != nil {
		row("redirect", rd.Summary())
		if rd.LastError != "" && rd.Backend != "none" {
			row("redirect error", rd.LastError)
		}
	}
	if r.Mode == "control-plane" {
		state := "disconnected"
		if r.ControlPlane.Connected {
			state = "connected since " + r.ControlPlane.Since.Format(time.RFC3339)
		}
		row("control plane", r.ControlPlane.Address+" ("+state+")")
		if r.ControlPlane.LastError != "" {
			row("last error", r.ControlPlane.LastError)
		}
		if r.ControlPlane.LastRejection != "" {
			row("last rejected", r.ControlPlane.LastRejection)
		}
		id := r.Identity.SPIFFEID
		if id == "" {
			id = "none"
		} else if !r.Identity.NotAfter.IsZero() {
			id += fmt.Sprintf(" (expires %s, rotates %s)", r.Identity.NotAfter.Format(time.RFC3339), r.Identity.NextRotation.Format(time.RFC3339))
		}
		row("identity", id)
		if r.Identity.LastError != "" {
			row("identity error", r.Identity.LastError)
		}
	}
	nt := fmt.Sprintf("%d names", r.NameTable.Names)
	if r.NameTable.Version != "" {
		nt += ", version " + r.NameTable.Version
	}
	if r.NameTable.Source != "" {
		nt += ", from " + r.NameTable.Source
	}
	if !r.NameTable.LastPush.IsZero() {
		nt += ", last push " + r.NameTable.LastPush.Format(time.RFC3339)
	}
	row("name table", nt)
	// At most ten lines each; -o json lists all.
	const most = 10
	for i, sk := range r.NameTable.Skipped {
		if i == most {
			row("not served", fmt.Sprintf("and %d more (onramp status -o json lists them)", len(r.NameTable.Skipped)-most))
			break
		}
		row("not served", sk.String())
	}
	withheld := slices.Clone(r.NameTable.Withheld) // the names looked up first
	slices.SortStableFunc(withheld, func(a, b nametable.Withheld) int { return cmp.Compare(b.Lookups, a.Lookups) })
	for i, w := range withheld {
		if i == most {
			row("withheld", fmt.Sprintf("and %d more (onramp status -o json lists them)", len(withheld)-most))
			break
		}
		row("withheld", fmt.Sprintf("%s (only auto-allocated VIPs %s; forwarded upstream, %d lookups)", w.Host, strings.Join(w.VIPs, ","), w.Lookups))
	}
	if r.NameTable.SaveError != "" {
		row("table not saved", r.NameTable.SaveError)
	}
	if r.Health.Probe {
		h := "unhealthy"
		switch {
		case !r.Health.Reported:
			h = "pending (probe has not reached a threshold yet)"
		case r.Health.Healthy:
			h = "healthy"
		}
		if r.Health.Message != "" {
			h += " (" + r.Health.Message + ")"
		}
		row("health", h)
	}
	if r.WorkloadEntry != "" {
		row("workload entry", r.WorkloadEntry)
	}
}

// Close closes the listener of a server that may never have served.
func (s *Server) Close() error {
	err := s.srv.Close()
	s.ln.Close()
	return err
}

// Summary is the redirect in one line: the backend and what it put in place.
func (r Redirect) Summary() string {
	switch r.Backend {
	case "none", "":
		s := "none"
		if r.Reason != "" {
			s += " (" + r.Reason + ")"
		}
		return s
	}
	s := r.Backend
	if !r.InPlace {
		s += ", NOT in place"
	}
	switch {
	case r.Table != "":
		s += ", table inet " + r.Table
		if r.CaptureAll {
			s += ", all port-53 traffic"
		} else {
			s += fmt.Sprintf(", port 53 to %v", r.Nameservers)
		}
		if r.Repairs > 0 {
			s += fmt.Sprintf(", restored %d times", r.Repairs)
		}
	case r.Link != "":
		s += fmt.Sprintf(", link %s", r.Link)
		if r.CaptureAll {
			s += ", every domain (~.)"
		} else {
			s += fmt.Sprintf(", %d routing domains", len(r.Domains))
		}
		if len(r.Upstreams) > 0 {
			s += fmt.Sprintf(", upstreams %v", r.Upstreams)
		}
	}
	return s + " -> " + strings.Join(r.Listen, ",")
}
