package nametable

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
	"google.golang.org/protobuf/proto"
)

func TestStoreRoundTrip(t *testing.T) {
	s := &Store{Dir: filepath.Join(t.TempDir(), "state")}
	if _, _, err := s.Load(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty store: err = %v, want ErrNotExist", err)
	}
	tab := Synthetic(500)
	if err := s.Save(tab, "2026-11-21T07:00:00Z/42"); err != nil {
		t.Fatal(err)
	}
	got, ver, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if ver != "2026-11-21T07:00:00Z/42" || !proto.Equal(got, tab) {
		t.Fatalf("round trip changed the table or version (%q)", ver)
	}
	st, err := os.Stat(s.Path())
	if err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, err %v", st.Mode(), err)
	}
	// Overwrite; no temporary files remain.
	small := &ndspb.NameTable{Table: map[string]*ndspb.NameInfo{"a.example": {Ips: []string{"1.2.3.4"}}}}
	if err := s.Save(small, "v2"); err != nil {
		t.Fatal(err)
	}
	got, ver, err = s.Load()
	if err != nil || ver != "v2" || !proto.Equal(got, small) {
		t.Fatalf("after overwrite: %v %q %v", got, ver, err)
	}
	ents, _ := os.ReadDir(s.Dir)
	if len(ents) != 1 {
		t.Fatalf("directory holds %d files, want 1", len(ents))
	}
	if (&Store{}).Path() != "/var/lib/onramp/"+StoreFile {
		t.Fatal("default dir")
	}
}

func TestStoreCorrupt(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	if err := s.Save(Synthetic(50), "v1"); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(s.Path())
	cases := map[string][]byte{
		"empty":     {},
		"garbage":   []byte("{\"table\": {}}"),
		"truncated": good[:len(good)/2],
		"flipped":   append(append([]byte{}, good[:len(good)-20]...), append([]byte{good[len(good)-20] ^ 0x40}, good[len(good)-19:]...)...),
		"header":    good[:len(storeMagic)+3],
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(s.Path(), data, 0o644); err != nil {
				t.Fatal(err)
			}
			tab, _, err := s.Load()
			if err == nil || tab != nil {
				t.Fatal("damaged file loaded")
			}
			if errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "damaged") || !strings.Contains(err.Error(), s.Path()) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestStoreSaveFailureKeepsOld(t *testing.T) {
	if os.Geteuid() == 0 {
		// Root ignores directory permissions; use a path that cannot be a
		// directory instead.
		dir := t.TempDir()
		blocker := filepath.Join(dir, "file")
		os.WriteFile(blocker, nil, 0o644)
		if err := (&Store{Dir: filepath.Join(blocker, "sub")}).Save(Synthetic(5), "v"); err == nil {
			t.Fatal("save under a file succeeded")
		}
		return
	}
	dir := t.TempDir()
	s := &Store{Dir: dir}
	if err := s.Save(Synthetic(5), "v1"); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o555)
	defer os.Chmod(dir, 0o755)
	if err := s.Save(Synthetic(10), "v2"); err == nil {
		t.Fatal("save into a read-only dir succeeded")
	}
	if _, v, err := s.Load(); err != nil || v != "v1" {
		t.Fatalf("old table lost: %q %v", v, err)
	}
}

func TestLoadJSON(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	p := write("ok.json", `{"table": {
  "productpage.ns1.svc.cluster.local": {"ips": ["10.96.0.1"], "registry": "Kubernetes", "shortname": "productpage", "namespace": "ns1"},
  "api.example.com": {"ips": ["240.240.0.1"], "registry": "External"}
}}`)
	tab, err := LoadJSON(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Table) != 2 || tab.Table["api.example.com"].Ips[0] != "240.240.0.1" {
		t.Fatalf("table %v", tab)
	}
	for _, c := range []struct{ name, content, want string }{
		{"syntax.json", "{\"table\": {\n  \"a\": {\"ips\": [\"1.2.3.4\"],}\n}}", "syntax.json"},
		{"syntax2.json", "{\"table\": {\n  \"a\": {\"ips\": [\"1.2.3.4\"],}\n}}", "line 2"},
		{"field.json", `{"table": {"a": {"ipz": ["1.2.3.4"]}}}`, "ipz"},
		{"empty.json", "  \n", "is empty"},
	} {
		_, err := LoadJSON(write(c.name, c.content))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", c.name, err, c.want)
		}
	}
	if _, err := LoadJSON(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}
