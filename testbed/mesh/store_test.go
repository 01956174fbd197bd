package mesh

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func seYAML(name string, hosts ...string) string {
	return "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: " + name +
		"\n  namespace: ns1\nspec:\n  hosts: [" + strings.Join(hosts, ", ") + "]\n  resolution: DNS\n"
}

func vipOf(t *testing.T, s *Store, host string) []string {
	t.Helper()
	ni := s.NameTable(Proxy{Namespace: "ns1", IPs: dualStack, DNSCapture: true}).Table[host]
	if ni == nil {
		t.Fatalf("%s has no VIP", host)
	}
	return ni.Ips
}

func TestVIPsFreshStateIsSortedFromFirstAddress(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "se.yaml", seYAML("se", "zeta.example.com", "alpha.example.com", "mid.example.com"))
	s := loadT(t, dir, Options{})
	for host, want := range map[string][]string{
		"alpha.example.com": {"240.240.0.1", "2001:2::1"},
		"mid.example.com":   {"240.240.0.2", "2001:2::2"},
		"zeta.example.com":  {"240.240.0.3", "2001:2::3"},
	} {
		if got := vipOf(t, s, host); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: %v, want %v", host, got, want)
		}
	}
}

func TestVIPsStableAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(t.TempDir(), "state", "vips.json")
	writeFile(t, dir, "a.yaml", seYAML("a", "mmm.example.com", "nnn.example.com"))
	s1 := loadT(t, dir, Options{StatePath: state})
	m1, n1 := vipOf(t, s1, "mmm.example.com"), vipOf(t, s1, "nnn.example.com")

	// A host sorting before the existing ones arrives while "down": after
	// the restart old hosts keep their VIPs and the new one gets the next
	// free address.
	writeFile(t, dir, "b.yaml", seYAML("b", "aaa.example.com"))
	s2 := loadT(t, dir, Options{StatePath: state})
	if got := vipOf(t, s2, "mmm.example.com"); strings.Join(got, ",") != strings.Join(m1, ",") {
		t.Fatalf("mmm moved across restart: %v -> %v", m1, got)
	}
	if got := vipOf(t, s2, "nnn.example.com"); strings.Join(got, ",") != strings.Join(n1, ",") {
		t.Fatalf("nnn moved across restart: %v -> %v", n1, got)
	}
	if got := vipOf(t, s2, "aaa.example.com"); strings.Join(got, ",") != "240.240.0.3,2001:2::3" {
		t.Fatalf("new host got %v, want the next free 240.240.0.3,2001:2::3", got)
	}

	// A removed host keeps its reservation; when it comes back it has the
	// same address.
	os.Remove(filepath.Join(dir, "a.yaml"))
	writeFile(t, dir, "a.yaml", seYAML("a", "nnn.example.com"))
	if err := s2.Reload(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "a.yaml", seYAML("a", "mmm.example.com", "nnn.example.com", "ooo.example.com"))
	s3 := loadT(t, dir, Options{StatePath: state})
	if got := vipOf(t, s3, "mmm.example.com"); strings.Join(got, ",") != strings.Join(m1, ",") {
		t.Fatalf("mmm changed after removal and return: %v -> %v", m1, got)
	}
	if got := vipOf(t, s3, "ooo.example.com"); got[0] != "240.240.0.4" {
		t.Fatalf("ooo got %v, want 240.240.0.4", got)
	}

	data, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	var st vipState
	if err := json.Unmarshal(data, &st); err != nil || st.Version != 1 || len(st.Hosts) != 4 {
		t.Fatalf("state file: %v %s", err, data)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(state), ".*tmp*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
}

func TestVIPStateCorrupt(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", seYAML("a", "x.example.com"))
	state := filepath.Join(t.TempDir(), "vips.json")
	for _, bad := range []string{
		"{not json",
		`{"version": 9, "hosts": {}}`,
		`{"version": 1, "hosts": {"a": {"ipv4": "10.0.0.1"}}}`,
		`{"version": 1, "hosts": {"a": {"ipv4": "240.240.0.1"}, "b": {"ipv4": "240.240.0.1"}}}`,
	} {
		os.WriteFile(state, []byte(bad), 0o644)
		_, err := Load(dir, Options{StatePath: state}, hclog.NewNullLogger())
		if err == nil || !strings.Contains(err.Error(), state) {
			t.Fatalf("state %q: error %v, want one naming the file", bad, err)
		}
		if data, _ := os.ReadFile(state); string(data) != bad {
			t.Fatalf("corrupt state overwritten")
		}
	}
}

func TestBadConfigKeepsPrevious(t *testing.T) {
	good := seYAML("good", "good.example.com")
	tests := []struct {
		name    string
		content string
		wantErr []string
	}{
		{"unknown spec field", "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: typo, namespace: ns1}\nspec:\n  hostz: [a.com]\n",
			[]string{"bad.yaml", "document 1", "ServiceEntry ns1/typo", "hostz"}},
		{"bad enum in second document", "---\n" + seYAML("ok", "ok.example.com") + "---\napiVersion: networking.istio.io/v1alpha3\nkind: ServiceEntry\nmetadata: {name: e, namespace: ns1}\nspec:\n  hosts: [e.com]\n  resolution: DNSS\n",
			[]string{"bad.yaml", "document 3", "(line ", "resolution", "DNSS"}},
		{"invalid YAML", "apiVersion: v1\nkind: Service\nmetadata: {name: [\n", []string{"bad.yaml", "document 1", "invalid YAML"}},
		{"bad address", "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: a, namespace: ns1}\nspec:\n  hosts: [a.com]\n  addresses: [10.0.0.300]\n",
			[]string{"spec.addresses[0]", "10.0.0.300"}},
		{"empty hosts", "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: a, namespace: ns1}\nspec:\n  hosts: []\n", []string{"spec.hosts is empty"}},
		{"service without clusterIP", "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: ns1}\nspec: {}\n", []string{"Service ns1/s", "spec.clusterIP"}},
		{"service bad clusterIP", "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: ns1}\nspec: {clusterIP: 10.0.0.300}\n", []string{"spec.clusterIPs[0]", "10.0.0.300"}},
		{"service clusterIP read as a number", "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: ns1}\nspec: {clusterIP: 10.1}\n", []string{"spec.clusterIP", "want string", "number"}},
		{"namespace read as a boolean", "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: y}\nspec: {clusterIP: 10.1.0.1}\n", []string{"metadata.namespace", "bool"}},
		{"bad cluster-ips annotation", "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  namespace: ns1\n  annotations: {testbed.onramp.dev/cluster-ips: \"c2\"}\nspec: {clusterIP: 10.1.0.1}\n", []string{AnnotationClusterIPs}},
		{"endpoint bad ip", "apiVersion: v1\nkind: Endpoints\nmetadata: {name: s, namespace: ns1}\nsubsets:\n- addresses: [{ip: nope}]\n", []string{"subsets[0]", "nope"}},
		{"sidecar host without namespace", "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: d, namespace: ns1}\nspec:\n  egress:\n  - hosts: [\"*\"]\n", []string{"spec.egress[0].hosts[0]"}},
		{"missing name", "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {namespace: ns1}\nspec: {hosts: [a.com]}\n", []string{"metadata.name"}},
		{"duplicate object", seYAML("good", "other.example.com"), []string{"already defined", "good.yaml"}},
		{"workload group bad probe", "apiVersion: networking.istio.io/v1\nkind: WorkloadGroup\nmetadata: {name: g, namespace: vm}\nspec:\n  probe: {httpGet: {port: eighty}}\n", []string{"WorkloadGroup vm/g", "port"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "good.yaml", good)
			s := loadT(t, dir, Options{})
			v := s.Version()
			before := s.NameTable(Proxy{Namespace: "ns1", DNSCapture: true})

			writeFile(t, dir, "bad.yaml", tt.content)
			err := s.Reload()
			if err == nil {
				t.Fatal("bad config accepted")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if s.Version() != v {
				t.Fatalf("version changed on a failed reload: %s -> %s", v, s.Version())
			}
			after := s.NameTable(Proxy{Namespace: "ns1", DNSCapture: true})
			if strings.Join(keys(after), " ") != strings.Join(keys(before), " ") || after.Table["good.example.com"] == nil {
				t.Fatalf("table changed: %v -> %v", keys(before), keys(after))
			}
			// A fresh Load of the same directory fails too.
			if _, err := Load(dir, Options{}, nil); err == nil {
				t.Fatal("Load accepted the bad directory")
			}
			// Fixing the file recovers.
			os.Remove(filepath.Join(dir, "bad.yaml"))
			if err := s.Reload(); err != nil || s.Version() == v {
				t.Fatalf("reload after fix: %v, version %s", err, s.Version())
			}
		})
	}
}

func TestLoadIgnoresOtherKindsAndFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "other.yaml", "# only comments\n---\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: 1}\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: vs}\nspec: {hosts: [x]}\n")
	writeFile(t, dir, "notes.txt", "not yaml: [")
	writeFile(t, dir, ".hidden.yaml", "not yaml: [")
	writeFile(t, dir, "svc.yml", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {clusterIP: 10.0.0.1}\n")
	s := loadT(t, dir, Options{})
	nt := s.NameTable(Proxy{Namespace: "default"})
	if len(nt.Table) != 1 || nt.Table["s.default.svc.cluster.local"] == nil {
		t.Fatalf("table %v", keys(nt))
	}
	if _, err := Load(filepath.Join(dir, "missing"), Options{}, nil); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing dir: %v", err)
	}
}

func TestWorkloadGroup(t *testing.T) {
	s := loadT(t, "testdata/demo", Options{})
	g, ok := s.WorkloadGroup("vm", "vm-group")
	if !ok {
		t.Fatal("vm-group not found")
	}
	if g.Name != "vm-group" || g.Namespace != "vm" || g.Spec.GetTemplate().GetServiceAccount() != "vm-sa" ||
		g.Spec.GetProbe().GetHttpGet().GetPath() != "/ready" || g.Spec.GetMetadata().GetLabels()["app"] != "myvmapi" {
		t.Fatalf("group %+v", g)
	}
	g.Spec.Template.ServiceAccount = "mutated"
	if g2, _ := s.WorkloadGroup("vm", "vm-group"); g2.Spec.Template.ServiceAccount != "vm-sa" {
		t.Fatal("WorkloadGroup returned shared state")
	}
	if _, ok := s.WorkloadGroup("ns1", "vm-group"); ok {
		t.Fatal("group found in the wrong namespace")
	}
}

func TestVersionChangesOnReload(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", seYAML("a", "a.example.com"))
	s := loadT(t, dir, Options{})
	seen := map[string]bool{s.Version(): true}
	for i := 0; i < 3; i++ {
		if err := s.Reload(); err != nil {
			t.Fatal(err)
		}
		if seen[s.Version()] {
			t.Fatalf("version %s repeated", s.Version())
		}
		seen[s.Version()] = true
	}
}

func TestWatchSeesNewFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", seYAML("a", "a.example.com"))
	s := loadT(t, dir, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changed := make(chan struct{}, 16)
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx, func() { changed <- struct{}{} }) }()
	time.Sleep(50 * time.Millisecond) // let the watcher register

	p := Proxy{Namespace: "ns1", DNSCapture: true}
	start := time.Now()
	writeFile(t, dir, "b.yaml", seYAML("b", "b.example.com"))
	select {
	case <-changed:
	case <-time.After(time.Second):
		t.Fatal("Watch did not reload within 1s of a new file")
	}
	if s.NameTable(p).Table["b.example.com"] == nil {
		t.Fatal("new host missing after reload")
	}
	t.Logf("new file visible after %v", time.Since(start))

	// A burst of writes settles into few reloads; a bad file is not applied
	// and does not call onChange.
	var extra atomic.Int32
	for i := 0; i < 5; i++ {
		writeFile(t, dir, "b.yaml", seYAML("b", "b.example.com", "c.example.com"))
	}
	time.Sleep(400 * time.Millisecond)
	for len(changed) > 0 {
		<-changed
		extra.Add(1)
	}
	if n := extra.Load(); n < 1 || n > 2 {
		t.Fatalf("burst of 5 writes gave %d reloads, want 1 or 2", n)
	}
	writeFile(t, dir, "c.yaml", "kind: [")
	select {
	case <-changed:
		t.Fatal("onChange called for a bad file")
	case <-time.After(400 * time.Millisecond):
	}
	if s.NameTable(p).Table["c.example.com"] == nil {
		t.Fatal("bad file dropped the previous config")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Second):
		t.Fatal("Watch did not return after cancel")
	}
}
