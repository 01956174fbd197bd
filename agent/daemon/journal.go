package daemon

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/hashicorp/go-hclog"

	"github.com/onramp-mesh/onramp/agent/config"
)

// journalLogger returns a logger that sends each entry to the systemd
// journal as one native entry whose key/value pairs are journal fields
// (`journalctl -u onramp -o json` shows e.g. "SPIFFE_ID", "ONRAMP_COMPONENT"),
// or nil when stderr is not the journal (not run by systemd, or redirected).
func journalLogger(c config.Log) hclog.Logger {
	if ok, err := journal.StderrIsJournalStream(); err != nil || !ok || !journal.Enabled() {
		return nil
	}
	level := hclog.LevelFromString(c.Level)
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	l := hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: "onramp", Level: level, Output: io.Discard})
	l.RegisterSink(&journalSink{level: level, fallback: os.Stderr})
	return l
}

// journalSink is an hclog sink that writes to the journal.
type journalSink struct {
	level    hclog.Level
	fallback io.Writer // where an entry goes when the journal refuses it
}

func (s *journalSink) Accept(name string, level hclog.Level, msg string, args ...interface{}) {
	if level < s.level {
		return
	}
	vars := journalFields(name, args)
	if err := journal.Send(msg, journalPriority(level), vars); err != nil {
		fmt.Fprintf(s.fallback, "[%s] %s: %s %v\n", strings.ToUpper(level.String()), name, msg, args)
	}
}

// journalFields turns hclog's key/value pairs into journal fields: names
// upper-cased with every character outside [A-Z0-9_] made '_', and a
// leading '_' (reserved for journald's trusted fields) dropped.
func journalFields(name string, args []interface{}) map[string]string {
	vars := map[string]string{"SYSLOG_IDENTIFIER": "onramp", "ONRAMP_COMPONENT": name}
	for i := 0; i+1 < len(args); i += 2 {
		k := journalFieldName(fmt.Sprint(args[i]))
		if k == "" {
			continue
		}
		var v string
		switch x := args[i+1].(type) {
		case error:
			v = x.Error()
		case fmt.Stringer:
			v = x.String()
		default:
			v = fmt.Sprint(x)
		}
		vars[k] = v
	}
	return vars
}

func journalFieldName(k string) string {
	b := []byte(strings.ToUpper(k))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	s := strings.TrimLeft(string(b), "_")
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		s = "F_" + s
	}
	if len(s) > 64 {
		s = s[:64]
	}
	switch s {
	case "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "CODE_FILE", "CODE_LINE", "CODE_FUNC":
		s = "ONRAMP_" + s
	}
	return s
}

func journalPriority(l hclog.Level) journal.Priority {
	switch l {
	case hclog.Trace, hclog.Debug:
		return journal.PriDebug
	case hclog.Info:
		return journal.PriInfo
	case hclog.Warn:
		return journal.PriWarning
	default:
		return journal.PriErr
	}
}
