package daemon

import (
	"errors"
	"testing"
)

func TestJournalFields(t *testing.T) {
	got := journalFields("onramp.identity", []interface{}{"spiffe_id", "spiffe://x", "error", errors.New("boom"), "_pid", 1, "not-after", 2, "message", "m", "odd"})
	want := map[string]string{
		"SYSLOG_IDENTIFIER": "onramp", "ONRAMP_COMPONENT": "onramp.identity",
		"SPIFFE_ID": "spiffe://x", "ERROR": "boom", "PID": "1", "NOT_AFTER": "2", "ONRAMP_MESSAGE": "m",
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
}
