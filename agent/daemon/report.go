package daemon

import (
	"io"

	"github.com/onramp-mesh/onramp/agent/status"
)

// statusSources is what the status server reads, from each component.
func (a *agent) statusSources() status.Sources {
	return status.Sources{
		Ready:     a.tables.Ready,
		Report:    a.report,
		Metrics:   []func(w io.Writer){a.dns.proxy.WritePrometheus, a.tables.WritePrometheus},
		NameTable: func() any { return a.tables.Snapshot() },
		Config:    a.cfg,
	}
}

func (a *agent) report() status.Report {
	r := status.Report{
		Version:   a.version,
		Mode:      a.mode(),
		DataPlane: a.cfg.DataPlane,
		DNS:       a.dns.Status(),
		NameTable: a.tables.Status(),
	}
	if a.redirect != nil {
		r.Redirect = a.redirect.Status()
	}
	if a.cp != nil {
		a.cp.report(&r)
	}
	return r
}
