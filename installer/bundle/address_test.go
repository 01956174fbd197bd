package bundle

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

func TestChooseIP(t *testing.T) {
	gw := netip.MustParseAddr("192.0.2.10")
	hosts := []HostEntry{{IP: gw, Names: []string{"istiod.istio-system.svc"}}}
	cases := []struct {
		name      string
		explicit  string
		discovery string
		hosts     []HostEntry
		setup     func(*fakeNet)
		want      string
		reason    string
	}{
		{"explicit wins", "10.0.0.7", "istiod.istio-system.svc:15012", hosts, nil, "10.0.0.7", "ISTIO_SVC_IP"},
		{"route via hosts file", "", "istiod.istio-system.svc:15012", hosts, func(f *fakeNet) { f.route[gw] = netip.MustParseAddr("192.0.2.50") }, "192.0.2.50", "route"},
		{"route via resolver", "", "istiod.example:15012", nil, func(f *fakeNet) {
			f.resolved["istiod.example"] = []netip.Addr{netip.MustParseAddr("198.51.100.1")}
			f.route[netip.MustParseAddr("198.51.100.1")] = netip.MustParseAddr("192.0.2.50")
		}, "192.0.2.50", "route"},
		{"route via docker bridge is skipped", "", "istiod.istio-system.svc:15012", hosts, func(f *fakeNet) { f.route[gw] = netip.MustParseAddr("172.17.0.1") }, "192.0.2.50", "eth0"},
		{"link-local source is skipped", "", "istiod.istio-system.svc:15012", hosts, func(f *fakeNet) { f.route[gw] = netip.MustParseAddr("169.254.3.3") }, "192.0.2.50", "eth0"},
		{"unresolvable falls back to interface", "", "nowhere.example:15012", nil, nil, "192.0.2.50", "eth0"},
		{"physical preferred over veth", "", "nowhere.example:15012", nil, func(f *fakeNet) {
			f.ifaces = append([]NetInterface{{Name: "veth0", Up: true, Virtual: true, Addrs: []netip.Addr{netip.MustParseAddr("10.9.0.2")}}}, f.ifaces...)
		}, "192.0.2.50", "eth0"},
		{"veth used when nothing else", "", "nowhere.example:15012", nil, func(f *fakeNet) {
			f.ifaces = []NetInterface{f.ifaces[0], f.ifaces[1], {Name: "veth0", Up: true, Virtual: true, Addrs: []netip.Addr{netip.MustParseAddr("fe80::2"), netip.MustParseAddr("2001:db8::2")}}}
		}, "2001:db8::2", "veth0"},
		{"down interface ignored; loopback last resort", "", "127.0.0.1:15012", nil, func(f *fakeNet) {
			f.ifaces[2].Up = false
			f.route[netip.MustParseAddr("127.0.0.1")] = netip.MustParseAddr("127.0.0.1")
		}, "127.0.0.1", "loopback"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fn := newFakeNet()
			if c.setup != nil {
				c.setup(fn)
			}
			ip, notes, err := ChooseIP(context.Background(), c.explicit, c.discovery, c.hosts, fn.source())
			if err != nil {
				t.Fatal(err)
			}
			if ip.String() != c.want {
				t.Errorf("IP = %v, want %v (notes %q)", ip, c.want, notes)
			}
			if len(notes) == 0 || !strings.Contains(notes[len(notes)-1], c.reason) {
				t.Errorf("reason %q lacks %q", notes, c.reason)
			}
		})
	}
	fn := newFakeNet()
	fn.ifaces = fn.ifaces[:2]
	if _, _, err := ChooseIP(context.Background(), "", "nowhere.example:15012", nil, fn.source()); err == nil || !strings.Contains(err.Error(), "set ISTIO_SVC_IP") {
		t.Errorf("no address anywhere: err = %v, want advice to set ISTIO_SVC_IP", err)
	}
}

// TestChooseIPSystem runs the real route lookup and interface listing.
func TestChooseIPSystem(t *testing.T) {
	ip, notes, err := ChooseIP(context.Background(), "", "127.0.0.1:15012", nil, AddressSource{})
	if err != nil {
		t.Skipf("host has no usable address: %v", err)
	}
	if !ip.IsValid() || ip.IsLinkLocalUnicast() {
		t.Errorf("IP = %v (%q)", ip, notes)
	}
	ifs, err := SystemInterfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		if i.Bridged {
			for _, a := range i.Addrs {
				if a == ip {
					t.Errorf("chose %v on bridge %s", ip, i.Name)
				}
			}
		}
	}
	t.Logf("chose %v: %q", ip, notes)
}
