package daemon

import "github.com/onramp-mesh/onramp/agent/config"

// ExitNotConfigured is the exit status of an agent given neither a bundle nor
// a name table (EX_CONFIG of sysexits.h). onramp.service lists it in
// RestartPreventExitStatus=: such an agent fails once, saying why, instead of
// restarting forever on a host where onramp is installed but not yet joined.
const ExitNotConfigured = 78

// NotConfiguredError is returned by Run when the configuration names neither
// a bundle nor a name table: an agent without either would serve nothing and
// only pretend to run.
type NotConfiguredError struct{ Config string }

func (e *NotConfiguredError) Error() string {
	return "neither a bundle nor a name table is configured, so there is nothing to serve: join a mesh with onramp bootstrap --bundle DIR (or set bundle: in " + e.Config + "), or serve a static table with nameTable:"
}

// ExitCode is the process's exit status for this error.
func (e *NotConfiguredError) ExitCode() int { return ExitNotConfigured }

func checkConfigured(cfg config.Config) error {
	if cfg.Bundle == "" && cfg.NameTable == "" {
		return &NotConfiguredError{Config: config.DefaultPath}
	}
	return nil
}
