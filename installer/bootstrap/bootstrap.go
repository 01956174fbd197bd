package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/onramp-mesh/onramp/agent/config"
	"github.com/onramp-mesh/onramp/agent/identity"
	"github.com/onramp-mesh/onramp/agent/status"
	"github.com/onramp-mesh/onramp/installer/bundle"
)

// Defaults of Options.
const (
	DefaultInstallDir = "/etc/onramp/bundle"
	DefaultGroup      = "onramp"
	DefaultTimeout    = 90 * time.Second
)

// Options of Run. Bundle is required; the rest have defaults.
type Options struct {
	// Bundle is the directory istioctl x workload entry configure -o wrote.
	Bundle string
	// IP is the VM's address for its WorkloadEntry (ISTIO_SVC_IP); empty
	// keeps the bundle's, or the source address of the route to istiod.
	IP string
	// DataPlane is "none" or "proxy"; empty keeps the configuration's, and
	// is an error when the configuration has none either.
	DataPlane string

	// Config is the agent's configuration file (default /etc/onramp/onramp.yaml).
	Config string
	// InstallDir is where the bundle goes (default /etc/onramp/bundle).
	InstallDir string
	// StateDir is the agent's state (default /var/lib/onramp): a stored
	// certificate there lets an expired token pass.
	StateDir string
	// Group reads the installed bundle (default onramp).
	Group string
	// Units drives systemd (default Systemctl{}).
	Units Units
	// StatusAddr is the agent's status HTTP address (default: from Config).
	StatusAddr string
	// Timeout bounds the wait for READY (default 90 s).
	Timeout time.Duration
	// Out receives the progress display and the summary (default io.Discard).
	Out io.Writer
	// Now is the time the bundle is checked at (default time.Now).
	Now func() time.Time
}

// Result is what Run did and what the agent reports once READY.
type Result struct {
	BundleChanged bool   `json:"bundleChanged"`
	ConfigChanged bool   `json:"configChanged"`
	Restarted     bool   `json:"restarted"`
	Started       bool   `json:"started"`
	InstallDir    string `json:"installDir"`
	DataPlane     string `json:"dataPlane"`
	// Warnings are the bundle's oddities that did not stop the install.
	Warnings []string `json:"warnings,omitempty"`
	// Wait is how long the agent took to be READY.
	Wait time.Duration `json:"wait"`
	// Status is the agent's own report (nil when the status server is off).
	Status *Report `json:"status,omitempty"`
}

// Report is the agent's /debug/status, as bootstrap prints it.
type Report = status.Report

// DefectsError lists every defect of a bundle.
type DefectsError struct {
	Dir  string
	Errs []error
}

func (e *DefectsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the bundle in %s has %d defect(s); nothing was changed:", e.Dir, len(e.Errs))
	for _, err := range e.Errs {
		b.WriteString("\n  - ")
		b.WriteString(err.Error())
	}
	return b.String()
}

// Unwrap returns the defects.
func (e *DefectsError) Unwrap() []error { return e.Errs }

func (o *Options) defaults() {
	if o.Config == "" {
		o.Config = config.DefaultPath
	}
	if o.InstallDir == "" {
		o.InstallDir = DefaultInstallDir
	}
	if o.StateDir == "" {
		o.StateDir = config.Default().StateDir
	}
	if o.Group == "" {
		o.Group = DefaultGroup
	}
	if o.Units == nil {
		o.Units = Systemctl{}
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Run installs the bundle, configures and starts the agent and waits for it
// to be READY. A defective bundle changes nothing.
func Run(ctx context.Context, o Options) (*Result, error) {
	o.defaults()
	if o.Bundle == "" {
		return nil, errors.New("bootstrap: no bundle directory given")
	}
	if o.IP != "" {
		if _, err := netip.ParseAddr(o.IP); err != nil {
			return nil, fmt.Errorf("bootstrap: --ip %q is not an IP address", o.IP)
		}
	}
	dataPlane := o.DataPlane
	if dataPlane == "" {
		dataPlane = configuredDataPlane(o.Config)
	}
	switch dataPlane {
	case "none", "proxy":
	case "":
		return nil, errors.New("bootstrap: say whether a data-plane proxy (Envoy, ztunnel) runs on this machine: --data-plane none answers only names with real addresses and forwards VIP-only names upstream; --data-plane proxy answers auto-allocated VIPs too, for the proxy to carry")
	default:
		return nil, fmt.Errorf("bootstrap: --data-plane %q: want none or proxy", dataPlane)
	}
	grp, err := user.LookupGroup(o.Group)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: group %s: %w; is the onramp package installed?", o.Group, err)
	}
	gid, _ := strconv.Atoi(grp.Gid)

	// 1. Validate: every defect at once, and nothing changed on any.
	src, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, err
	}
	dst, _ := filepath.Abs(o.InstallDir)
	fmt.Fprintf(o.Out, "Checking the bundle in %s\n", src)
	b, errs := bundle.Check(src, bundle.Options{Now: o.Now, Context: ctx})
	errs = dropExpiredTokenIfCertified(errs, o.StateDir)
	if len(errs) > 0 {
		return nil, &DefectsError{Dir: src, Errs: errs}
	}
	if b == nil { // only an expired token, with a stored certificate
		if b, err = bundle.LoadWith(src, bundle.Options{Now: o.Now, Context: ctx}); err != nil {
			return nil, &DefectsError{Dir: src, Errs: []error{err}}
		}
	}
	res := &Result{InstallDir: dst, DataPlane: dataPlane, Warnings: b.Warnings}
	for _, w := range b.Warnings {
		fmt.Fprintf(o.Out, "  warning: %s\n", w)
	}

	// 2. Install the bundle, unless it is there already as it would be.
	files, err := readBundle(src, o.IP)
	if err != nil {
		return nil, err
	}
	// (The files are in memory now: src may be dst itself, e.g. to fix
	// owners and modes of a bundle copied there by hand.)
	res.BundleChanged = !sameInstalled(dst, files, gid)
	if res.BundleChanged {
		if err := install(dst, files, gid); err != nil {
			return nil, err
		}
		fmt.Fprintf(o.Out, "Installed the bundle into %s (root:%s, files 0640)\n", dst, o.Group)
	} else {
		fmt.Fprintf(o.Out, "The bundle in %s is already this one\n", dst)
	}

	// 3. The configuration names the bundle and the data plane.
	res.ConfigChanged, err = writeConfig(o.Config, [][2]string{{"bundle", dst}, {"dataPlane", dataPlane}})
	if err != nil {
		return nil, err
	}
	if res.ConfigChanged {
		fmt.Fprintf(o.Out, "Set bundle: %s and dataPlane: %s in %s\n", dst, dataPlane, o.Config)
	}

	// 4. Enable and start (or restart for a change).
	if err := o.Units.Enable(ctx); err != nil {
		return nil, fmt.Errorf("bootstrap: enable the units: %w", err)
	}
	before, err := o.Units.State(ctx)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	changed := res.BundleChanged || res.ConfigChanged
	switch {
	case before.Ready() && !changed:
		fmt.Fprintln(o.Out, "The agent already runs with this bundle: nothing changed")
	default:
		res.Restarted = before.Active == "active" || before.Active == "activating"
		res.Started = !res.Restarted
		if err := o.Units.Start(ctx, true); err != nil {
			return nil, fmt.Errorf("bootstrap: start the agent: %w", err)
		}
		verb := "Starting"
		if res.Restarted {
			verb = "Restarting"
		}
		fmt.Fprintf(o.Out, "%s onramp.service\n", verb)
		start := time.Now()
		if err := waitReady(ctx, o, before.Invocation); err != nil {
			return res, err
		}
		res.Wait = time.Since(start).Round(time.Millisecond)
	}

	// 5. What the agent joined as.
	res.Status = readStatus(ctx, o)
	return res, nil
}

// dropExpiredTokenIfCertified removes an expired-token defect when the state
// directory holds a certificate: the agent renews with it and needs no token.
func dropExpiredTokenIfCertified(errs []error, stateDir string) []error {
	if _, err := os.Stat(filepath.Join(stateDir, identity.FileCertChain)); err != nil {
		return errs
	}
	out := errs[:0]
	for _, e := range errs {
		var te *bundle.TokenError
		if !errors.As(e, &te) {
			out = append(out, e)
		}
	}
	return out
}

// waitReady polls the service until it is READY under a new invocation,
// printing each new STATUS= line, and fails with the journal's tail when the
// agent exits or the time is up.
func waitReady(ctx context.Context, o Options, oldInvocation string) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	last := ""
	start := time.Now()
	for {
		st, err := o.Units.State(ctx)
		if err == nil {
			fresh := st.Invocation != "" && st.Invocation != oldInvocation
			if fresh && st.Status != "" && st.Status != last {
				fmt.Fprintf(o.Out, "  [%4.1fs] %s\n", time.Since(start).Seconds(), st.Status)
				last = st.Status
			}
			switch {
			case fresh && st.Ready():
				fmt.Fprintf(o.Out, "  [%4.1fs] READY\n", time.Since(start).Seconds())
				return nil
			case fresh && (st.Active == "failed" || st.Sub == "auto-restart"):
				return fmt.Errorf("bootstrap: the agent exited before it was ready (%s, %s); its log:\n%s", st.Active, st.Result, indent(o.Units.Journal(context.Background(), 15)))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bootstrap: the agent was not ready after %s (systemctl status onramp; journalctl -u onramp); its log:\n%s", o.Timeout, indent(o.Units.Journal(context.Background(), 15)))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "  (no log)"
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// readStatus asks the agent's status server for its report (nil when off or
// unreachable).
func readStatus(ctx context.Context, o Options) *Report {
	addr := o.StatusAddr
	if addr == "" {
		cfg, err := config.Load(o.Config, true)
		if err != nil || cfg.Status.Listen == "off" || cfg.Status.Listen == "" {
			return nil
		}
		addr = cfg.Status.Listen
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var rep Report
	if err := status.Get(ctx, addr, "/debug/status", &rep); err != nil {
		return nil
	}
	return &rep
}

// WriteText prints the summary of a bootstrap.
func (r *Result) WriteText(w io.Writer) error {
	if r.Status == nil {
		_, err := fmt.Fprintln(w, "The agent is ready (its status server is off: no report)")
		return err
	}
	s := r.Status
	redirect := "none reported"
	if rd := s.Redirect; rd != nil {
		redirect = rd.Backend
		if !rd.InPlace {
			redirect += " (not in place"
			if rd.Reason != "" {
				redirect += ": " + rd.Reason
			}
			redirect += ")"
		}
	}
	we := s.WorkloadEntry
	if we == "" {
		we = "(none yet)"
	}
	_, err := fmt.Fprintf(w, `This machine is on the mesh:
  identity        %s
  workload entry  %s
  control plane   %s (connected: %t)
  name table      %d names, %d hosts (from %s)
  DNS             %s
  data plane      %s
  redirect        %s
`, orNone(s.Identity.SPIFFEID), we, orNone(s.ControlPlane.Address), s.ControlPlane.Connected,
		s.NameTable.Names, s.NameTable.Hosts, orNone(s.NameTable.Source), strings.Join(s.DNS.Listen, " "), r.DataPlane, redirect)
	return err
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
