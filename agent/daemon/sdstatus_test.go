package daemon

import (
	"testing"

	"github.com/onramp-mesh/onramp/agent/status"
)

func TestStatusLine(t *testing.T) {
	var r status.Report
	r.Mode = "control-plane"
	r.ControlPlane.Connected, r.ControlPlane.Address = true, "10.0.0.1:15012"
	r.NameTable.Names, r.NameTable.Source = 3, "control-plane"
	r.WorkloadEntry = "vm/vm-group-10.0.0.2"
	if got, want := statusLine(r), "connected to 10.0.0.1:15012; 3 names from control-plane; entry vm/vm-group-10.0.0.2"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	r.ControlPlane.Connected = false
	if got := statusLine(r); got[:13] != "connecting to" {
		t.Errorf("got %q", got)
	}
	r.ControlPlane.Reconnects = 1
	if got := statusLine(r); got[:28] != "istiod unreachable, retrying" {
		t.Errorf("got %q", got)
	}
}
