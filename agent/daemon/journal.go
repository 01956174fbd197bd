package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/hashicorp/go-hclog"
)

// logOutput is where the process logger writes: the journal's native
// protocol when stderr is connected to the journal (systemd sets
// JOURNAL_STREAM for a service whose stderr is the journal), so that every
// key/value of a log line is a field of its journal entry
// (`journalctl -u onramp -o json` shows DNS, MODE, VERSION...), else stderr.
// The second result says whether the logger must write JSON (the journal
// writer parses hclog's JSON lines).
func logOutput() (io.Writer, bool) {
	if ok, err := journal.StderrIsJournalStream(); err != nil || !ok || !journal.Enabled() {
		return os.Stderr, false
	}
	return &journalWriter{send: journal.Send, fallback: os.Stderr}, true
}

// journalWriter turns hclog's JSON lines into journal entries:
//
//	MESSAGE            "module: message key=value ..." (what journalctl prints)
//	PRIORITY           from @level (trace and debug 7, info 6, warn 4, error 3)
//	SYSLOG_IDENTIFIER  onramp
//	LOGGER             @module (onramp.dns, onramp.xds...)
//	KEY                every other key, upper-cased, other characters as _
//
// A line it cannot parse or send goes to the fallback as it is.
type journalWriter struct {
	mu       sync.Mutex
	send     func(message string, priority journal.Priority, vars map[string]string) error
	fallback io.Writer
	partial  []byte
}

func (w *journalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := w.partial[:i]
		if len(bytes.TrimSpace(line)) > 0 {
			if err := w.sendLine(line); err != nil {
				w.fallback.Write(append(line, '\n'))
			}
		}
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) == 0 {
		w.partial = nil
	}
	return len(p), nil
}

func (w *journalWriter) sendLine(line []byte) error {
	var entry map[string]any
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&entry); err != nil {
		return err
	}
	msg, _ := entry["@message"].(string)
	module, _ := entry["@module"].(string)
	level, _ := entry["@level"].(string)
	vars := map[string]string{"SYSLOG_IDENTIFIER": "onramp"}
	if module != "" {
		vars["LOGGER"] = module
	}
	keys := make([]string, 0, len(entry))
	for k := range entry {
		if !strings.HasPrefix(k, "@") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var text strings.Builder
	if module != "" {
		text.WriteString(module + ": ")
	}
	text.WriteString(msg)
	for _, k := range keys {
		v := fieldValue(entry[k])
		fmt.Fprintf(&text, " %s=%s", k, quoteIfNeeded(v))
		vars[fieldName(k)] = v
	}
	return w.send(text.String(), levelPriority(hclog.LevelFromString(level)), vars)
}

// fieldValue is a value as the journal field's text: strings as they are,
// everything else as JSON.
func fieldValue(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\"=") {
		return fmt.Sprintf("%q", s)
	}
	return s
}

// reservedFields are set by the writer or by journald itself; a key of a
// log line with one of these names gets an ONRAMP_ prefix instead.
var reservedFields = map[string]bool{
	"MESSAGE": true, "MESSAGE_ID": true, "PRIORITY": true, "SYSLOG_IDENTIFIER": true, "LOGGER": true,
	"CODE_FILE": true, "CODE_LINE": true, "CODE_FUNC": true, "ERRNO": true, "SYSLOG_FACILITY": true, "SYSLOG_PID": true,
}

// fieldName makes a journal field name of a log key: upper case letters,
// digits and underscores, starting with a letter (journald drops others).
func fieldName(k string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(k) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	name := b.String()
	if name == "" || name[0] < 'A' || name[0] > 'Z' || reservedFields[name] {
		name = "ONRAMP_" + name
	}
	if len(name) > 64 { // journald's limit on field names
		name = name[:64]
	}
	return name
}

func levelPriority(l hclog.Level) journal.Priority {
	switch l {
	case hclog.Trace, hclog.Debug:
		return journal.PriDebug
	case hclog.Warn:
		return journal.PriWarning
	case hclog.Error:
		return journal.PriErr
	default:
		return journal.PriInfo
	}
}
