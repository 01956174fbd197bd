package mesh

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary file contents through parsing, model building,
// VIP allocation and name-table computation: none may panic, and a file
// that parses gives a table whose addresses are all valid IPs.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.yaml")
	for _, p := range seeds {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {clusterIP: None}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		objs := &objects{}
		if err := parseFile("fuzz.yaml", data, "Kubernetes", objs, map[string]source{}); err != nil {
			return
		}
		opts := Options{ClusterDomain: "cluster.local", DefaultCluster: "Kubernetes", RootNamespace: "istio-system"}
		snap := build(objs, opts)
		alloc, _, err := allocateVIPs(nil, snap.vipHosts())
		if err != nil {
			return
		}
		snap.applyVIPs(alloc)
		s := &Store{opts: opts}
		s.snap.Store(snap)
		for _, p := range []Proxy{
			{Namespace: "default", IPs: dualStack, DNSCapture: true},
			{Namespace: "ns1", IPs: v6Only},
		} {
			for host, ni := range s.NameTable(p).Table {
				if len(ni.Ips) == 0 {
					t.Fatalf("%s has no addresses", host)
				}
				for _, ip := range ni.Ips {
					if _, err := netip.ParseAddr(ip); err != nil {
						t.Fatalf("%s: invalid address %q", host, ip)
					}
				}
			}
		}
	})
}

// FuzzVIPState checks that any state file is either rejected or loads into
// allocations that never give one address to two hosts.
func FuzzVIPState(f *testing.F) {
	f.Add([]byte(`{"version":1,"hosts":{"a.com":{"ipv4":"240.240.0.1","ipv6":"2001:2::1"}}}`))
	f.Add([]byte(`{"version":1,"hosts":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "vips.json")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		prev, err := loadVIPs(path)
		if err != nil {
			return
		}
		alloc, _, err := allocateVIPs(prev, []string{"new1.example.com", "new2.example.com"})
		if err != nil {
			return
		}
		seen := map[string]string{}
		for host, p := range alloc {
			for _, a := range []string{p.V4, p.V6} {
				if a == "" {
					continue
				}
				if other, dup := seen[a]; dup {
					t.Fatalf("%s given to %s and %s", a, other, host)
				}
				seen[a] = host
			}
		}
	})
}
