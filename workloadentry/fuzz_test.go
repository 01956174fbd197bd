package workloadentry

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// FuzzFromGroup feeds node metadata from the wire (group name, address
// bytes, network, labels) through naming and entry building.
func FuzzFromGroup(f *testing.F) {
	f.Add("vm-group", []byte{10, 0, 0, 5}, "net1", "app", "v1")
	f.Add(strings.Repeat("g", 300), []byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, "", "", "")
	f.Fuzz(func(t *testing.T, group string, ipBytes []byte, network, lk, lv string) {
		ip, ok := netip.AddrFromSlice(ipBytes)
		name := Name(group, ip, network)
		if len(name) > MaxNameLength {
			t.Fatalf("name of %d characters", len(name))
		}
		if ok && len(group)+len(network) < 200 && !strings.Contains(name, strings.ReplaceAll(ip.String(), ":", "-")) {
			t.Fatalf("name %q lost the address %s", name, ip)
		}
		g := testGroup()
		g.Name = group
		e, err := FromGroup(g, Node{IP: ip, Network: network, Labels: map[string]string{lk: lv}}, "c", time.Unix(0, 0))
		if err != nil {
			return
		}
		if e.Labels[lk] != lv || e.Spec.Address != ip.Unmap().String() || e.Annotations[AnnotationAutoRegistrationGroup] != group {
			t.Fatalf("entry %+v", e)
		}
	})
}
