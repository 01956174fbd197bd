package dnsproxy

import (
	"testing"

	"github.com/miekg/dns"
)

// TestThreeStubZones sends each zone's names to its own server: with more
// than one zone, no zone may get another zone's servers.
func TestThreeStubZones(t *testing.T) {
	def := startUpstream(t, answerA("192.0.2.1", 60))
	zones := map[string]string{"a.internal.": "10.0.0.1", "b.corp.": "10.0.0.2", "c.example.": "10.0.0.3"}
	ups := map[string]*testUpstream{}
	stubs := map[string][]string{}
	for z, ip := range zones {
		ups[z] = startUpstream(t, answerA(ip, 60))
		stubs[z] = []string{ups[z].addr}
	}
	_, addr := startProxy(t, Config{Upstreams: []string{def.addr}, Stubs: stubs})
	for range 3 {
		for z, ip := range zones {
			for _, host := range []string{"x.", "y.z."} {
				r := ask(t, addr, host+z, dns.TypeA)
				if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != ip {
					t.Fatalf("%s%s: want %s from its zone's server, got %v", host, z, ip, r.Answer)
				}
			}
		}
	}
	for z, u := range ups {
		// Two names per zone, each asked three times: the cache answers
		// the second and third time.
		if n := u.queries.Load(); n != 2 {
			t.Errorf("server of %s saw %d queries, want 2", z, n)
		}
	}
	if n := def.queries.Load(); n != 0 {
		t.Errorf("default server saw %d queries, want 0", n)
	}
}
