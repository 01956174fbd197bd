package redirect

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

type fakeHost struct {
	onBus  bool
	busErr error
	ns     []string
	nsErr  error
	nftErr error
}

func (h fakeHost) ResolvedOnBus() (bool, error) { return h.onBus, h.busErr }
func (h fakeHost) Nftables() error              { return h.nftErr }
func (h fakeHost) Nameservers() ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, s := range h.ns {
		out = append(out, netip.AddrPortFrom(netip.MustParseAddr(s), 53))
	}
	return out, h.nsErr
}

func TestDetect(t *testing.T) {
	noNft := errors.New("nftables: operation not permitted")
	for _, tc := range []struct {
		name    string
		mode    string
		host    fakeHost
		want    string
		wantErr string
		reason  string
	}{
		{"resolved host", Auto, fakeHost{onBus: true, ns: []string{"127.0.0.53"}}, Resolved, "", "stub"},
		{"resolved running, plain resolv.conf", Auto, fakeHost{onBus: true, ns: []string{"10.0.0.2"}}, Nftables, "", "does not point"},
		{"no resolved", Auto, fakeHost{ns: []string{"10.0.0.2"}}, Nftables, "", "not running"},
		{"no bus", Auto, fakeHost{busErr: errors.New("no such file"), ns: []string{"10.0.0.2"}}, Nftables, "", "not reachable"},
		{"stub but resolved gone", Auto, fakeHost{ns: []string{"127.0.0.53"}}, Nftables, "", "not running"},
		{"neither", Auto, fakeHost{ns: []string{"10.0.0.2"}, nftErr: noNft}, None, "", "CAP_NET_ADMIN"},
		{"empty mode is auto", "", fakeHost{onBus: true, ns: []string{"127.0.0.53"}}, Resolved, "", ""},
		{"none", None, fakeHost{onBus: true, ns: []string{"127.0.0.53"}}, None, "", "redirect.mode is none"},
		{"forced resolved", Resolved, fakeHost{onBus: true, ns: []string{"10.0.0.2"}}, Resolved, "", "may not ask resolved"},
		{"forced resolved, absent", Resolved, fakeHost{ns: []string{"10.0.0.2"}}, "", "start systemd-resolved", ""},
		{"forced nftables", Nftables, fakeHost{onBus: true, ns: []string{"127.0.0.53"}}, Nftables, "", ""},
		{"forced nftables, unusable", Nftables, fakeHost{nftErr: noNft}, "", "CAP_NET_ADMIN", ""},
		{"unknown mode", "iptables", fakeHost{}, "", "unknown mode", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Detect(tc.mode, tc.host)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Detect = %+v, %v; want error with %q", c, err, tc.wantErr)
				}
				return
			}
			if err != nil || c.Backend != tc.want || !strings.Contains(c.Reason, tc.reason) {
				t.Fatalf("Detect = %+v, %v; want %s with reason containing %q", c, err, tc.want, tc.reason)
			}
		})
	}
}

func TestPlanNormalize(t *testing.T) {
	p := Plan{Domains: []string{"Cluster.Local.", "~example.com", "cluster.local", ""}}.Normalize()
	if len(p.Domains) != 2 || p.Domains[0] != "cluster.local" || p.Domains[1] != "example.com" || p.Mark != DefaultMark {
		t.Fatalf("Normalize = %+v", p)
	}
}

func TestRecord(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := Recorded(dir); ok || err != nil {
		t.Fatalf("empty dir: ok %v err %v", ok, err)
	}
	if s, err := RemoveRecorded(t.Context(), dir); err != nil || s.Backend != "" {
		t.Fatalf("RemoveRecorded with no record = %+v, %v", s, err)
	}
	want := State{Backend: None, Reason: "test", Domains: []string{"cluster.local"}}
	if err := record(dir, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := Recorded(dir)
	if !ok || err != nil || got.Backend != None || got.Domains[0] != "cluster.local" {
		t.Fatalf("Recorded = %+v, %v, %v", got, ok, err)
	}
	if _, err := RemoveRecorded(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := Recorded(dir); ok {
		t.Fatal("the record outlived RemoveRecorded")
	}
	for _, tc := range []struct {
		s    State
		want bool
	}{
		{State{Backend: Resolved}, true},
		{State{Backend: Resolved, CaptureAll: true}, false},
		{State{Backend: Nftables}, false},
	} {
		if got := HarmlessWhileDown(tc.s); got != tc.want {
			t.Errorf("HarmlessWhileDown(%+v) = %v", tc.s, got)
		}
	}
}
