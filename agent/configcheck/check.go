// Package configcheck validates an onramp configuration file without starting
// anything: the file itself, then what it names that can be checked from
// disk (the onboarding bundle, the name table, the state directory).
package configcheck

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/onramp-mesh/onramp/agent/config"
	"github.com/onramp-mesh/onramp/agent/nametable"
	"github.com/onramp-mesh/onramp/installer/bundle"
)

// Severity of a Finding.
const (
	Error   = "error"   // the agent would refuse to start, or serve nothing
	Warning = "warning" // the agent starts, but something is likely wrong
)

// Finding is one problem, naming the file and the configuration key.
type Finding struct {
	Severity string `json:"severity"`
	File     string `json:"file"`          // the configuration file
	Key      string `json:"key,omitempty"` // the key at fault, e.g. "bundle" or "dns.listen"
	Message  string `json:"message"`
}

func (f Finding) String() string {
	s := f.File + ": " + f.Severity + ": "
	if f.Key != "" {
		s += f.Key + ": "
	}
	return s + f.Message
}

// Report is the result of Check.
type Report struct {
	File     string    `json:"file"`
	OK       bool      `json:"ok"` // no Error finding
	Findings []Finding `json:"findings"`
}

// Options adjust Check; the zero value checks against the running host.
type Options struct {
	// Bundle adjusts how the bundle is read: the time certificates and the
	// token are checked at, and how the VM's address is found.
	Bundle bundle.Options
	// Agent is the account the agent runs as, for checking that it can read
	// the bundle and the table and write its state. Nil means the system
	// user AgentUser when it exists, else no such check.
	Agent *Account
}

// AgentUser is the system user onramp.service runs the agent as.
const AgentUser = "onramp"

// Account is a user's identity for file access: its uid and its groups.
type Account struct {
	Name   string
	UID    uint32
	Groups []uint32 // the primary group and the supplementary ones
}

// Check validates the configuration file at path. It never starts anything
// and never writes.
func Check(path string, opts Options) Report {
	if opts.Bundle.Now == nil {
		opts.Bundle.Now = time.Now
	}
	r := Report{File: path, Findings: []Finding{}}
	add := func(sev, key, format string, args ...any) {
		r.Findings = append(r.Findings, Finding{Severity: sev, File: path, Key: key, Message: fmt.Sprintf(format, args...)})
	}
	cfg, err := config.Load(path, false)
	if err != nil {
		add(Error, "", "%v", err)
		r.OK = false
		return r
	}
	switch {
	case cfg.Bundle != "" && cfg.NameTable != "":
		add(Error, "nameTable", "both bundle and nameTable are set; the agent serves nameTable only without a bundle, so remove one")
	case cfg.Bundle == "" && cfg.NameTable == "":
		add(Error, "bundle", "neither bundle nor nameTable is set: the agent would serve no mesh names; set bundle: /etc/onramp/bundle (after onramp bootstrap) or nameTable: FILE.json")
	}
	if opts.Agent == nil {
		opts.Agent = lookupAccount(AgentUser)
	}
	if cfg.Bundle != "" {
		checkBundle(cfg.Bundle, opts, add)
	}
	if cfg.NameTable != "" && cfg.Bundle == "" {
		checkNameTable(cfg, add)
		checkAccess(opts.Agent, "nameTable", cfg.NameTable, read, add)
	}
	checkStateDir(cfg.StateDir, add)
	checkAccess(opts.Agent, "stateDir", cfg.StateDir, read|write|search, add)
	r.OK = true
	for _, f := range r.Findings {
		if f.Severity == Error {
			r.OK = false
		}
	}
	return r
}

// trimPrefix drops the package prefix of err's message: the finding's key
// already says which part of the configuration it is about.
func trimPrefix(err error, prefix string) string {
	return strings.TrimPrefix(err.Error(), prefix)
}

type addFunc func(sev, key, format string, args ...any)

func checkBundle(dir string, opts Options, add addFunc) {
	st, err := os.Stat(dir)
	switch {
	case err != nil:
		add(Error, "bundle", "%v", err)
		return
	case !st.IsDir():
		add(Error, "bundle", "%s is not a directory; the bundle is the directory istioctl x workload entry configure -o DIR wrote", dir)
		return
	}
	// Once the directory is out of reach, one finding says so, not one per file.
	if checkAccess(opts.Agent, "bundle", dir, read|search, add) {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.Type().IsRegular() {
				checkAccess(opts.Agent, "bundle", filepath.Join(dir, e.Name()), read, add)
			}
		}
	}
	b, err := bundle.LoadWith(dir, opts.Bundle)
	if err != nil {
		add(Error, "bundle", "%s", trimPrefix(err, "bundle: "))
		return
	}
	if err := b.ValidateToken(opts.Bundle.Now()); err != nil {
		add(Warning, "bundle", "%s (an agent that already holds a valid certificate in stateDir runs without it)", trimPrefix(err, "bundle: "))
	}
}

func checkNameTable(cfg config.Config, add addFunc) {
	t, err := nametable.LoadJSON(cfg.NameTable)
	if err != nil {
		add(Error, "nameTable", "%s", trimPrefix(err, "nametable: "))
		return
	}
	hc := nametable.HostContext{Namespace: cfg.DNS.Namespace, ClusterDomain: nametable.DefaultClusterDomain}
	_, problems := nametable.Lint(t, hc, nametable.Options{TTL: cfg.DNS.MeshTTL.D()})
	for _, p := range problems {
		add(Error, "nameTable", "%s: %s", cfg.NameTable, p)
	}
}

func checkStateDir(dir string, add addFunc) {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		add(Warning, "stateDir", "%s does not exist; the agent creates it if it may (the packages create it, owned by onramp)", dir)
	case err != nil:
		add(Error, "stateDir", "%v", err)
	case !st.IsDir():
		add(Error, "stateDir", "%s is not a directory", dir)
	}
}

// WriteText prints the findings, one a line, then a verdict.
func (r Report) WriteText(w io.Writer) {
	for _, f := range r.Findings {
		fmt.Fprintln(w, f)
	}
	errs := 0
	for _, f := range r.Findings {
		if f.Severity == Error {
			errs++
		}
	}
	if r.OK {
		fmt.Fprintf(w, "%s: ok (%d warning(s))\n", r.File, len(r.Findings))
	} else {
		fmt.Fprintf(w, "%s: %d error(s), %d warning(s)\n", r.File, errs, len(r.Findings)-errs)
	}
}
