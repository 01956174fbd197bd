package daemon

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/hashicorp/go-hclog"
)

func TestJournalWriterFields(t *testing.T) {
	type sent struct {
		msg  string
		pri  journal.Priority
		vars map[string]string
	}
	var got []sent
	var fallback bytes.Buffer
	w := &journalWriter{fallback: &fallback, send: func(m string, p journal.Priority, v map[string]string) error {
		if strings.Contains(m, "refuse") {
			return errors.New("journal away")
		}
		got = append(got, sent{m, p, v})
		return nil
	}}
	log := hclog.New(&hclog.LoggerOptions{Name: "onramp", JSONFormat: true, Output: w, Level: hclog.Debug})
	log.Info("onramp is running", "version", "0.1.0", "dns", "127.0.0.1:15053,[::1]:15053", "dns-listen", 2, "message", "x")
	log.Named("xds").Warn("stream ended", "error", "EOF")
	log.Debug("refuse this one")

	if len(got) != 2 {
		t.Fatalf("sent %d entries, want 2: %+v", len(got), got)
	}
	e := got[0]
	if e.pri != journal.PriInfo || e.vars["VERSION"] != "0.1.0" || e.vars["DNS"] != "127.0.0.1:15053,[::1]:15053" ||
		e.vars["DNS_LISTEN"] != "2" || e.vars["ONRAMP_MESSAGE"] != "x" || e.vars["LOGGER"] != "onramp" || e.vars["SYSLOG_IDENTIFIER"] != "onramp" {
		t.Errorf("first entry: %+v", e)
	}
	if want := "onramp: onramp is running dns=127.0.0.1:15053,[::1]:15053 dns-listen=2 message=x version=0.1.0"; e.msg != want {
		t.Errorf("MESSAGE = %q, want %q", e.msg, want)
	}
	if e := got[1]; e.pri != journal.PriWarning || e.vars["LOGGER"] != "onramp.xds" || e.vars["ERROR"] != "EOF" {
		t.Errorf("second entry: %+v", e)
	}
	if !strings.Contains(fallback.String(), `"@message":"refuse this one"`) {
		t.Errorf("an entry the journal refused is not on the fallback: %q", fallback.String())
	}
}

func TestFieldName(t *testing.T) {
	for in, want := range map[string]string{"dns.listen": "DNS_LISTEN", "version": "VERSION", "1st": "ONRAMP_1ST", "_x": "ONRAMP__X", "priority": "ONRAMP_PRIORITY"} {
		if got := fieldName(in); got != want {
			t.Errorf("fieldName(%q) = %q, want %q", in, got, want)
		}
	}
}
