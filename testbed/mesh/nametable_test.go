package mesh

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
)

func ips(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, v := range s {
		out = append(out, netip.MustParseAddr(v))
	}
	return out
}

var (
	v4Only    = ips("10.0.0.5")
	v6Only    = ips("fd00::5")
	dualStack = ips("10.0.0.5", "fd00::5")
)

func loadT(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	if opts.StatePath == "" {
		opts.StatePath = t.TempDir() + "/vips.json"
	}
	s, err := Load(dir, opts, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// info is the expected NameInfo; ips are compared as a set, "240.240.0.x"
// matches any address of the IPv4 VIP range and "2001:2::x" any of the IPv6.
type info struct {
	ips       []string
	registry  string
	shortname string
	namespace string
}

func checkTable(t *testing.T, nt *ndspb.NameTable, want map[string]info, absent []string) {
	t.Helper()
	for host, w := range want {
		got, ok := nt.Table[host]
		if !ok {
			t.Errorf("%s missing from table", host)
			continue
		}
		gotIPs := slices.Clone(got.Ips)
		if len(gotIPs) != len(w.ips) {
			t.Errorf("%s: ips %v, want %v", host, got.Ips, w.ips)
		}
		for _, wip := range w.ips {
			i := slices.IndexFunc(gotIPs, func(g string) bool { return ipMatch(wip, g) })
			if i < 0 {
				t.Errorf("%s: ips %v, want %v", host, got.Ips, w.ips)
				break
			}
			gotIPs = slices.Delete(gotIPs, i, i+1)
		}
		if w.registry != "" && got.Registry != w.registry {
			t.Errorf("%s: registry %q, want %q", host, got.Registry, w.registry)
		}
		if got.Shortname != w.shortname {
			t.Errorf("%s: shortname %q, want %q", host, got.Shortname, w.shortname)
		}
		if w.namespace != "" && got.Namespace != w.namespace {
			t.Errorf("%s: namespace %q, want %q", host, got.Namespace, w.namespace)
		}
	}
	for _, host := range absent {
		if got, ok := nt.Table[host]; ok {
			t.Errorf("%s present (%v), want absent", host, got)
		}
	}
}

func ipMatch(want, got string) bool {
	switch want {
	case "240.240.0.x":
		a, err := netip.ParseAddr(got)
		return err == nil && netip.MustParsePrefix("240.240.0.0/24").Contains(a)
	case "2001:2::x":
		a, err := netip.ParseAddr(got)
		return err == nil && vipRangeV6.Contains(a)
	}
	return want == got
}

const (
	k8s = ndspb.RegistryKubernetes
	ext = ndspb.RegistryExternal
)

func TestNameTable(t *testing.T) {
	tests := []struct {
		name   string
		dir    string
		proxy  Proxy
		want   map[string]info
		absent []string
	}{
		{
			name:  "demo: seed scenarios for a DNS-capturing VM",
			dir:   "testdata/demo",
			proxy: Proxy{Namespace: "vm", IPs: v4Only, DNSCapture: true},
			want: map[string]info{
				"istio.io": {ips: []string{"240.240.0.x"}, registry: ext, namespace: "ns1"},
				"mysql-instance1.us-east-1.rds.amazonaws.com": {ips: []string{"240.240.0.x"}, registry: ext, namespace: "ns1"},
				"mysql-instance2.us-east-1.rds.amazonaws.com": {ips: []string{"240.240.0.x"}, registry: ext, namespace: "ns1"},
				"my-fruits.internal":                          {ips: []string{"10.103.1.1"}, registry: ext, namespace: "ns1"},
				"productpage.ns1.svc.cluster.local":           {ips: []string{"10.96.10.20"}, registry: k8s, shortname: "productpage", namespace: "ns1"},
				"my-vm.vm.svc.cluster.local":                  {ips: []string{"10.96.20.10"}, registry: k8s, shortname: "my-vm", namespace: "vm"},
				"my-vm.com":                                   {ips: []string{"240.240.0.x"}, registry: ext, namespace: "vm"},
				"*.corp.internal":                             {ips: []string{"10.200.0.10"}, registry: ext, namespace: "istio-system"},
				"istiod.istio-system.svc.cluster.local":       {ips: []string{"10.96.0.15"}, registry: k8s, shortname: "istiod", namespace: "istio-system"},
			},
			absent: []string{
				"*.wikipedia.org",              // wildcard without address
				"payments.legacy.example.com",  // opted out, DNS, no address
				"redis.data.svc.cluster.local", // exportTo "."
			},
		},
		{
			name:  "demo: no DNS capture, no auto-allocated VIPs",
			dir:   "testdata/demo",
			proxy: Proxy{Namespace: "vm", IPs: v4Only},
			want: map[string]info{
				"my-fruits.internal":                {ips: []string{"10.103.1.1"}, registry: ext},
				"productpage.ns1.svc.cluster.local": {ips: []string{"10.96.10.20"}, registry: k8s, shortname: "productpage"},
			},
			absent: []string{"istio.io", "mysql-instance1.us-east-1.rds.amazonaws.com", "my-vm.com", "api.tetrate.io"},
		},
		{
			name:  "demo: dual-stack proxy gets both families",
			dir:   "testdata/demo",
			proxy: Proxy{Namespace: "ns1", IPs: dualStack, DNSCapture: true},
			want: map[string]info{
				"productpage.ns1.svc.cluster.local": {ips: []string{"10.96.10.20", "fd00:10:96::a14"}, registry: k8s, shortname: "productpage"},
				"istio.io":                          {ips: []string{"240.240.0.x", "2001:2::x"}, registry: ext},
				"reviews.ns1.svc.cluster.local":     {ips: []string{"10.96.10.21"}, registry: k8s, shortname: "reviews"},
			},
		},
		{
			name:  "demo: IPv6-only proxy gets no IPv4",
			dir:   "testdata/demo",
			proxy: Proxy{Namespace: "ns1", IPs: v6Only, DNSCapture: true},
			want: map[string]info{
				"productpage.ns1.svc.cluster.local": {ips: []string{"fd00:10:96::a14"}, registry: k8s, shortname: "productpage"},
				"istio.io":                          {ips: []string{"2001:2::x"}, registry: ext},
				// A ServiceEntry's own addresses are not filtered by family (istiod's DefaultAddress).
				"my-fruits.internal": {ips: []string{"10.103.1.1"}, registry: ext, namespace: "ns1"},
			},
			absent: []string{"reviews.ns1.svc.cluster.local"},
		},
		{
			name:  "demo: headless service lists ready endpoints and per-pod names",
			dir:   "testdata/demo",
			proxy: Proxy{Namespace: "data", IPs: v4Only},
			want: map[string]info{
				"mysql.data.svc.cluster.local":         {ips: []string{"10.244.1.10", "10.244.2.11"}, registry: k8s, shortname: "mysql", namespace: "data"},
				"mysql-0.mysql.data.svc.cluster.local": {ips: []string{"10.244.1.10"}, registry: k8s, shortname: "mysql-0.mysql", namespace: "data"},
				"mysql-1.mysql.data.svc.cluster.local": {ips: []string{"10.244.2.11"}, registry: k8s, shortname: "mysql-1.mysql", namespace: "data"},
				"redis.data.svc.cluster.local":         {ips: []string{"10.96.30.5"}, registry: k8s, shortname: "redis"},
			},
			absent: []string{"mysql-2.mysql.data.svc.cluster.local"},
		},
		{
			name:  "demo: tenant Sidecar scopes to own namespace and istio-system",
			dir:   "testdata/demo",
			proxy: Proxy{Namespace: "tenant", IPs: v4Only, DNSCapture: true},
			want: map[string]info{
				"istiod.istio-system.svc.cluster.local": {ips: []string{"10.96.0.15"}, registry: k8s, shortname: "istiod"},
				"*.corp.internal":                       {ips: []string{"10.200.0.10"}, registry: ext},
			},
			absent: []string{"productpage.ns1.svc.cluster.local", "istio.io", "my-vm.vm.svc.cluster.local"},
		},
		{
			name:  "multicluster: ClusterIPs of the proxy's cluster",
			dir:   "testdata/multicluster",
			proxy: Proxy{Namespace: "ns1", ClusterID: "cluster2", IPs: v4Only},
			want: map[string]info{
				"reviews.ns1.svc.cluster.local":      {ips: []string{"10.2.0.10"}, registry: k8s, shortname: "reviews"},
				"ratings.ns1.svc.cluster.local":      {ips: []string{"10.2.0.20"}, registry: k8s, shortname: "ratings"},
				"remote-only.ns1.svc.cluster.local":  {ips: []string{"10.2.0.30"}, registry: k8s, shortname: "remote-only"},
				"mysql.db.svc.cluster.local":         {ips: []string{"10.1.5.1", "10.2.5.1", "10.2.5.2"}, registry: k8s, shortname: "mysql"},
				"mysql-0.mysql.db.svc.cluster.local": {ips: []string{"10.2.5.1"}, registry: k8s, shortname: "mysql-0.mysql"},
				"mysql-1.mysql.db.svc.cluster.local": {ips: []string{"10.2.5.2"}, registry: k8s, shortname: "mysql-1.mysql"},
			},
		},
		{
			name:  "multicluster: cluster1 and the remote-only fallback",
			dir:   "testdata/multicluster",
			proxy: Proxy{Namespace: "ns1", ClusterID: "cluster1", IPs: dualStack},
			want: map[string]info{
				"reviews.ns1.svc.cluster.local":      {ips: []string{"10.1.0.10"}, registry: k8s, shortname: "reviews"},
				"ratings.ns1.svc.cluster.local":      {ips: []string{"10.1.0.20"}, registry: k8s, shortname: "ratings"},
				"remote-only.ns1.svc.cluster.local":  {ips: []string{"10.2.0.30"}, registry: k8s, shortname: "remote-only"},
				"mysql-0.mysql.db.svc.cluster.local": {ips: []string{"10.1.5.1"}, registry: k8s, shortname: "mysql-0.mysql"},
			},
		},
		{
			name:  "multicluster: annotation ClusterIPs with a second family",
			dir:   "testdata/multicluster",
			proxy: Proxy{Namespace: "ns1", ClusterID: "cluster2", IPs: dualStack},
			want: map[string]info{
				"ratings.ns1.svc.cluster.local": {ips: []string{"10.2.0.20", "fd00:2::20"}, registry: k8s, shortname: "ratings"},
			},
		},
		{
			name:  "visibility: namespace a",
			dir:   "testdata/visibility",
			proxy: Proxy{Namespace: "a", IPs: v4Only},
			want: map[string]info{
				"private.a.example.com": {ips: []string{"192.0.2.1"}, registry: ext, namespace: "a"},
				"public.example.com":    {ips: []string{"192.0.2.4"}, registry: ext, namespace: "b"},
				"shared.example.com":    {ips: []string{"192.0.2.10"}, registry: ext, namespace: "a"},
			},
			absent: []string{"to-b.example.com", "hidden.example.com", "web.b.svc.cluster.local"},
		},
		{
			name:  "visibility: namespace b",
			dir:   "testdata/visibility",
			proxy: Proxy{Namespace: "b", IPs: v4Only},
			want: map[string]info{
				"to-b.example.com":        {ips: []string{"192.0.2.2"}, registry: ext},
				"shared.example.com":      {ips: []string{"192.0.2.11"}, registry: ext, namespace: "b"},
				"web.b.svc.cluster.local": {ips: []string{"10.96.0.50"}, registry: k8s, shortname: "web"},
			},
			absent: []string{"private.a.example.com", "hidden.example.com"},
		},
		{
			name:  "visibility: Sidecar egress hosts",
			dir:   "testdata/visibility",
			proxy: Proxy{Namespace: "scoped", IPs: v4Only},
			want: map[string]info{
				"own.scoped.svc.cluster.local": {ips: []string{"10.96.0.60"}, registry: k8s, shortname: "own"},
				"public.example.com":           {ips: []string{"192.0.2.4"}, registry: ext},
				"shared.example.com":           {ips: []string{"192.0.2.11"}, registry: ext, namespace: "b"},
			},
			absent: []string{"api.example.org", "web.b.svc.cluster.local", "private.a.example.com"},
		},
		{
			name:  "visibility: Sidecar with workloadSelector",
			dir:   "testdata/visibility",
			proxy: Proxy{Namespace: "scoped", IPs: v4Only, Labels: map[string]string{"app": "narrow"}},
			want: map[string]info{
				"api.example.org": {ips: []string{"192.0.2.4"}, registry: ext},
			},
			absent: []string{"own.scoped.svc.cluster.local", "public.example.com"},
		},
		{
			name:  "root namespace Sidecar is the default",
			dir:   "testdata/rootsidecar",
			proxy: Proxy{Namespace: "x", IPs: v4Only},
			want: map[string]info{
				"app.x.svc.cluster.local":               {ips: []string{"10.96.1.1"}, registry: k8s, shortname: "app"},
				"istiod.istio-system.svc.cluster.local": {ips: []string{"10.96.0.15"}, registry: k8s, shortname: "istiod"},
			},
			absent: []string{"app.y.svc.cluster.local"},
		},
		{
			name:  "namespace Sidecar overrides the root one",
			dir:   "testdata/rootsidecar",
			proxy: Proxy{Namespace: "y", IPs: v4Only},
			want: map[string]info{
				"app.x.svc.cluster.local": {ips: []string{"10.96.1.1"}, registry: k8s, shortname: "app"},
				"app.y.svc.cluster.local": {ips: []string{"10.96.1.2"}, registry: k8s, shortname: "app"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := loadT(t, tt.dir, Options{})
			checkTable(t, s.NameTable(tt.proxy), tt.want, tt.absent)
		})
	}
}

func TestNameTableDistinctVIPs(t *testing.T) {
	s := loadT(t, "testdata/demo", Options{})
	nt := s.NameTable(Proxy{Namespace: "ns1", IPs: dualStack, DNSCapture: true})
	seen := map[string]string{}
	for host, ni := range nt.Table {
		if ni.Registry != ext {
			continue
		}
		for _, ip := range ni.Ips {
			a := netip.MustParseAddr(ip)
			if !vipRangeV4.Contains(a) && !vipRangeV6.Contains(a) {
				continue
			}
			if other, dup := seen[ip]; dup {
				t.Fatalf("VIP %s given to both %s and %s", ip, other, host)
			}
			seen[ip] = host
		}
	}
	db1 := nt.Table["mysql-instance1.us-east-1.rds.amazonaws.com"].GetIps()
	db2 := nt.Table["mysql-instance2.us-east-1.rds.amazonaws.com"].GetIps()
	if len(db1) != 2 || len(db2) != 2 || db1[0] == db2[0] || db1[1] == db2[1] {
		t.Fatalf("two RDS databases on 3306 need distinct VIPs: %v %v", db1, db2)
	}
}

func TestNameTableIsFreshCopy(t *testing.T) {
	s := loadT(t, "testdata/demo", Options{})
	p := Proxy{Namespace: "ns1", IPs: v4Only}
	a := s.NameTable(p)
	a.Table["productpage.ns1.svc.cluster.local"].Ips[0] = "1.1.1.1"
	delete(a.Table, "reviews.ns1.svc.cluster.local")
	b := s.NameTable(p)
	if b.Table["productpage.ns1.svc.cluster.local"].Ips[0] != "10.96.10.20" || b.Table["reviews.ns1.svc.cluster.local"] == nil {
		t.Fatal("NameTable shares state between calls")
	}
}

func TestClusterDomain(t *testing.T) {
	s := loadT(t, "testdata/demo", Options{ClusterDomain: "corp.example"})
	nt := s.NameTable(Proxy{Namespace: "ns1"})
	if _, ok := nt.Table["productpage.ns1.svc.corp.example"]; !ok {
		t.Fatalf("cluster domain not applied: %v", strings.Join(keys(nt), " "))
	}
}

func keys(nt *ndspb.NameTable) []string {
	var out []string
	for k := range nt.Table {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
