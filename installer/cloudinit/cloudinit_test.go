package cloudinit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/onramp-mesh/onramp/installer/bundle"
	"github.com/onramp-mesh/onramp/installer/bundle/bundletest"
)

func TestUserData(t *testing.T) {
	dir := bundletest.Write(t, t.TempDir())
	for _, o := range []Options{
		{Bundle: dir, PackageURL: "https://example.com/onramp_0.1.0-1_amd64.deb", DataPlane: "none"},
		{Bundle: dir, PackageURL: "https://example.com/onramp-0.1.0-1.x86_64.rpm", DataPlane: "proxy", IP: "10.0.0.7"},
		{Bundle: dir, AptRepo: "deb [signed-by=/usr/share/keyrings/onramp.gpg] https://example.com/apt stable main", DataPlane: "none"},
	} {
		data, err := UserData(o)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(data), "#cloud-config\n") || len(data) > MaxSize {
			t.Fatalf("%d bytes:\n%s", len(data), data)
		}
		var doc struct {
			Packages   []string `yaml:"packages"`
			WriteFiles []struct {
				Path, Permissions, Content string
			} `yaml:"write_files"`
			Runcmd [][]string `yaml:"runcmd"`
		}
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		token, _ := os.ReadFile(filepath.Join(dir, bundle.FileToken))
		found := false
		for _, f := range doc.WriteFiles {
			if f.Path == SeedDir+"/istio-token" {
				found = f.Permissions == "0600" && f.Content == string(token)
			}
		}
		if !found || len(doc.WriteFiles) != 5 {
			t.Errorf("write_files: %+v", doc.WriteFiles)
		}
		boot := strings.Join(doc.Runcmd[len(doc.Runcmd)-2], " ")
		if !strings.HasPrefix(boot, "onramp bootstrap --bundle "+SeedDir+" --data-plane "+o.DataPlane) {
			t.Errorf("runcmd: %v", doc.Runcmd)
		}
		if o.AptRepo != "" && (len(doc.Packages) != 1 || doc.Packages[0] != "onramp") {
			t.Errorf("packages: %v", doc.Packages)
		}
	}
}

func TestUserDataRefuses(t *testing.T) {
	dir := bundletest.Write(t, t.TempDir())
	bad := t.TempDir()
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Bundle: dir, DataPlane: "none"}, "exactly one of"},
		{Options{Bundle: dir, PackageURL: "https://x/y.tgz", DataPlane: "none"}, ".deb or .rpm"},
		{Options{Bundle: dir, PackageURL: "https://x/y.deb", DataPlane: "maybe"}, "none or proxy"},
		{Options{Bundle: dir, AptRepo: "rm -rf /", DataPlane: "none"}, "one line like deb"},
		{Options{Bundle: bad, PackageURL: "https://x/y.deb", DataPlane: "none"}, "5 defect(s)"},
	} {
		if _, err := UserData(c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err = %v, want %q", c.o, err, c.want)
		}
	}
}
