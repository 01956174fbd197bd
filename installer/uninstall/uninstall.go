// Package uninstall takes this machine off the mesh and undoes what onramp
// changed: it stops and disables the units, removes the resolver redirect,
// and removes a marked onramp block from /etc/hosts if one exists. With Purge
// it also deletes the bundle (and its token) and the state: the private key,
// the certificates, the last name table; the agent then refuses to start until
// the next bootstrap. The configuration (a conffile) is left as it is, and the
// package's own files stay for the package manager to remove.
package uninstall

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"

	"github.com/onramp-mesh/onramp/agent/atomicfile"
	"github.com/onramp-mesh/onramp/agent/config"
)

// Markers of the block an older install (or an admin following Istio's VM
// guide with onramp's tooling) put into /etc/hosts. bootstrap writes none: the
// agent dials istiod through the bundle's hosts file.
const (
	HostsBegin = "# BEGIN onramp"
	HostsEnd   = "# END onramp"
)

// Options of Run.
type Options struct {
	// Purge also deletes the bundle and the state.
	Purge bool
	// Hosts is the hosts file (default /etc/hosts).
	Hosts string
	// StateDir is the agent's state (default /var/lib/onramp).
	StateDir string
	// BundleDir is the installed bundle (default /etc/onramp/bundle).
	BundleDir string
	// StopUnits stops and disables onramp.service and onramp.socket (default: systemctl).
	StopUnits func(ctx context.Context) error
	// RemoveRedirect undoes the resolver redirect from the record in the
	// state directory; it must be safe with the agent dead.
	RemoveRedirect func(ctx context.Context, stateDir string) error
	// Out receives one line per step.
	Out io.Writer
}

// Run undoes everything; it goes on after a failed step and returns all
// failures together.
func Run(ctx context.Context, o Options) error {
	if o.Hosts == "" {
		o.Hosts = "/etc/hosts"
	}
	if o.StateDir == "" {
		o.StateDir = config.Default().StateDir
	}
	if o.BundleDir == "" {
		o.BundleDir = "/etc/onramp/bundle"
	}
	if o.StopUnits == nil {
		o.StopUnits = stopUnits
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	var errs []error
	step := func(what string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
			fmt.Fprintf(o.Out, "  failed: %s: %v\n", what, err)
			return
		}
		fmt.Fprintf(o.Out, "  done: %s\n", what)
	}
	step("stop and disable onramp.service and onramp.socket", o.StopUnits(ctx))
	if o.RemoveRedirect != nil {
		step("remove the resolver redirect", o.RemoveRedirect(ctx, o.StateDir))
	}
	removed, err := RemoveHostsBlock(o.Hosts)
	if removed || err != nil {
		step("remove the onramp block from "+o.Hosts, err)
	}
	if o.Purge {
		step("delete the bundle "+o.BundleDir, os.RemoveAll(o.BundleDir))
		step("delete the state "+o.StateDir+" (key, certificates, name table)", removeContents(o.StateDir))
	}
	return errors.Join(errs...)
}

func stopUnits(ctx context.Context) error {
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		if out, err := exec.CommandContext(ctx, "systemctl", "stop", "onramp.service", "onramp.socket").CombinedOutput(); err != nil {
			return fmt.Errorf("systemctl stop: %w: %s", err, strings.TrimSpace(string(out)))
		}
	}
	if out, err := exec.CommandContext(ctx, "systemctl", "disable", "--quiet", "onramp.service", "onramp.socket").CombinedOutput(); err != nil {
		return fmt.Errorf("systemctl disable: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// removeContents empties dir and keeps it (the package owns the directory).
func removeContents(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		errs = append(errs, os.RemoveAll(dir+"/"+e.Name()))
	}
	return errors.Join(errs...)
}

// RemoveHostsBlock removes the lines from HostsBegin to HostsEnd (both
// included) from the hosts file at path, and reports whether it did.
func RemoveHostsBlock(path string) (bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var out bytes.Buffer
	in := false
	found := false
	for _, l := range strings.SplitAfter(string(data), "\n") {
		t := strings.TrimSpace(l)
		switch {
		case t == HostsBegin:
			in, found = true, true
		case in && t == HostsEnd:
			in = false
		case !in:
			out.WriteString(l)
		}
	}
	if !found {
		return false, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return true, atomicfile.Write(path, out.Bytes(), fi.Mode().Perm())
}
