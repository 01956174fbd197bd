package bundle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteDirFormatAndModes(t *testing.T) {
	dir := t.TempDir()
	f := validFiles(t)
	if err := f.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	modes := map[string]os.FileMode{FileClusterEnv: 0o644, FileMeshYAML: 0o644, FileRootCert: 0o644, FileHosts: 0o644, FileToken: 0o600}
	for name, want := range modes {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", name, st.Mode().Perm(), want)
		}
	}
	env, _ := os.ReadFile(filepath.Join(dir, FileClusterEnv))
	lines := strings.Split(strings.TrimSuffix(string(env), "\n"), "\n")
	if len(lines) != len(f.ClusterEnv) {
		t.Fatalf("%d lines for %d keys", len(lines), len(f.ClusterEnv))
	}
	for i, l := range lines {
		k, v, ok := strings.Cut(l, "=")
		if !ok || !strings.HasPrefix(v, "'") || !strings.HasSuffix(v, "'") {
			t.Errorf("line %q is not KEY='value'", l)
		}
		if i > 0 && lines[i-1] > l {
			t.Errorf("line %q not sorted after %q", l, lines[i-1])
		}
		_ = k
	}
	mesh, _ := os.ReadFile(filepath.Join(dir, FileMeshYAML))
	if !strings.HasPrefix(string(mesh), "defaultConfig:\n  discoveryAddress: istiod.istio-system.svc:15012\n") {
		t.Errorf("mesh.yaml:\n%s", mesh)
	}
	hosts, _ := os.ReadFile(filepath.Join(dir, FileHosts))
	if string(hosts) != "192.0.2.10 istiod.istio-system.svc\n" {
		t.Errorf("hosts = %q", hosts)
	}
}

func TestWriteDirBadInputChangesNothing(t *testing.T) {
	dir := t.TempDir()
	if err := validFiles(t).WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, FileClusterEnv))
	bad := []func(*Files){
		func(f *Files) { f.Token = "not-a-jwt" },
		func(f *Files) { f.ClusterEnv["1BAD"] = "x" },
		func(f *Files) { delete(f.ClusterEnv, "SERVICE_ACCOUNT") },
		func(f *Files) { f.RootCertPEM = nil },
		func(f *Files) { f.Hosts = []HostEntry{{Names: []string{"x"}}} },
		func(f *Files) { f.MeshYAML = []byte("defaultConfig: [") },
	}
	for i, mut := range bad {
		f := validFiles(t)
		f.ClusterEnv["POD_NAMESPACE"] = "changed"
		mut(f)
		if err := f.WriteDir(dir); err == nil {
			t.Errorf("case %d: WriteDir accepted bad input", i)
		}
		after, _ := os.ReadFile(filepath.Join(dir, FileClusterEnv))
		if string(after) != string(before) {
			t.Fatalf("case %d: cluster.env changed by a failed write", i)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 5 {
		t.Errorf("dir has %d entries, want the 5 bundle files", len(ents))
	}
}
