package bundle

import (
	"net/netip"
	"testing"
)

func TestDialAddressUsesHostsFile(t *testing.T) {
	b := &Bundle{Hosts: []HostEntry{{IP: netip.MustParseAddr("10.250.0.1"), Names: []string{"istiod.istio-system.svc"}}}}
	if got := b.DialAddress("istiod.istio-system.svc:15012"); got != "10.250.0.1:15012" {
		t.Errorf("mapped: %s", got)
	}
	if got := b.DialAddress("ISTIOD.istio-system.svc.:15010"); got != "10.250.0.1:15010" {
		t.Errorf("case and trailing dot: %s", got)
	}
	if got := b.DialAddress("other.example:15012"); got != "other.example:15012" {
		t.Errorf("unmapped: %s", got)
	}
}
