package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/onramp-mesh/onramp/agent/config"
	"github.com/onramp-mesh/onramp/installer/bundle"
)

// ErrNotConfigured is returned by Run when the configuration gives the agent
// nothing to serve: no bundle (or a bundle directory that was never filled)
// and no name table. `onramp run` exits with ExitNotConfigured for it, and
// onramp.service does not restart on that status (RestartPreventExitStatus=),
// so a host where the package is installed but never bootstrapped shows one
// failed start with this message instead of a restart loop or an agent that
// serves nothing.
var ErrNotConfigured = errors.New("onramp is not configured")

// ExitNotConfigured is the exit status for ErrNotConfigured: EX_CONFIG of
// sysexits.h.
const ExitNotConfigured = 78

// notConfiguredError says what is missing and what to run.
type notConfiguredError struct{ msg string }

func (e *notConfiguredError) Error() string {
	return e.msg + "; join a mesh with `onramp bootstrap --bundle DIR` (it installs the bundle in /etc/onramp/bundle and sets bundle: in " +
		config.DefaultPath + "), or set nameTable: to serve a name table with no control plane"
}

func (e *notConfiguredError) Is(target error) bool { return target == ErrNotConfigured }

// checkConfigured refuses a configuration with nothing to serve.
func checkConfigured(cfg config.Config) error {
	switch {
	case cfg.Bundle == "" && cfg.NameTable == "":
		return &notConfiguredError{"neither bundle: nor nameTable: is configured, so there is no mesh to join and no name to serve"}
	case cfg.Bundle != "" && cfg.NameTable == "":
		// The shipped configuration names /etc/onramp/bundle: an empty or
		// missing directory there means bootstrap never ran.
		if _, err := os.Stat(filepath.Join(cfg.Bundle, bundle.FileClusterEnv)); errors.Is(err, fs.ErrNotExist) {
			return &notConfiguredError{fmt.Sprintf("no onboarding bundle in %s (%s is missing)", cfg.Bundle, bundle.FileClusterEnv)}
		}
	}
	return nil
}

// bundleHint adds what to do to a bundle the agent's user may not read.
func bundleHint(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w (the agent runs as user %s: the bundle must be readable by its group, as `onramp bootstrap` installs it: root:onramp, 0750 directory, 0640 files)",
			err, currentUser())
	}
	return err
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return fmt.Sprintf("uid %d", os.Getuid())
}
