package nametable

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
	"google.golang.org/protobuf/proto"
)

func TestStoreRoundTrip(t *testing.T) {
	s := &Store{Dir: filepath.Join(t.TempDir(), "state")}
	if _, err := s.Load(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty store: err = %v, want ErrNotExist", err)
	}
	tab := Synthetic(500)
	pushed := time.Date(2026, 11, 21, 7, 0, 0, 123, time.UTC)
	if err := s.Save(Stored{Table: tab, Version: "2026-11-21T07:00:00Z/42", Pushed: pushed}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != "2026-11-21T07:00:00Z/42" || !proto.Equal(got.Table, tab) || !got.Pushed.Equal(pushed) {
		t.Fatalf("round trip changed the table, version (%q) or push time (%v)", got.Version, got.Pushed)
	}
	st, err := os.Stat(s.Path())
	if err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, err %v", st.Mode(), err)
	}
	// Overwrite; no temporary files remain.
	small := &ndspb.NameTable{Table: map[string]*ndspb.NameInfo{"a.example": {Ips: []string{"1.2.3.4"}}}}
	if err := s.Save(Stored{Table: small, Version: "v2"}); err != nil {
		t.Fatal(err)
	}
	got, err = s.Load()
	if err != nil || got.Version != "v2" || !proto.Equal(got.Table, small) {
		t.Fatalf("after overwrite: %v %q %v", got.Table, got.Version, err)
	}
	ents, _ := os.ReadDir(s.Dir)
	if len(ents) != 1 {
		t.Fatalf("directory holds %d files, want 1", len(ents))
	}
	if (&Store{}).Path() != "/var/lib/onramp/"+StoreFile {
		t.Fatal("default dir")
	}
}

// TestStoreReadsVersion1 reads a file written before the push time was
// kept: its push time is the file's modification time.
func TestStoreReadsVersion1(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	payload, err := proto.Marshal(Synthetic(3))
	if err != nil {
		t.Fatal(err)
	}
	b := append([]byte{}, storeMagicV1...)
	b = binary.BigEndian.AppendUint32(b, 2)
	b = append(b, "v9"...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
	b = append(b, payload...)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	if err := os.WriteFile(s.Path(), b, 0o644); err != nil {
		t.Fatal(err)
	}
	saved := time.Date(2026, 11, 1, 9, 30, 0, 0, time.UTC)
	if err := os.Chtimes(s.Path(), saved, saved); err != nil {
		t.Fatal(err)
	}
	st, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != "v9" || len(st.Table.GetTable()) != 3 || !st.Pushed.Equal(saved) {
		t.Fatalf("version 1 file read as %q, %d entries, pushed %v", st.Version, len(st.Table.GetTable()), st.Pushed)
	}
}

func TestStoreCorrupt(t *testing.T) {
	s := &Store{Dir: t.TempDir()}
	if err := s.Save(Stored{Table: Synthetic(50), Version: "v1"}); err != nil {
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
			st, err := s.Load()
			if err == nil || st.Table != nil {
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
		if err := (&Store{Dir: filepath.Join(blocker, "sub")}).Save(Stored{Table: Synthetic(5), Version: "v"}); err == nil {
			t.Fatal("save under a file succeeded")
		}
		return
	}
	dir := t.TempDir()
	s := &Store{Dir: dir}
	if err := s.Save(Stored{Table: Synthetic(5), Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o555)
	defer os.Chmod(dir, 0o755)
	if err := s.Save(Stored{Table: Synthetic(10), Version: "v2"}); err == nil {
		t.Fatal("save into a read-only dir succeeded")
	}
	if st, err := s.Load(); err != nil || st.Version != "v1" {
		t.Fatalf("old table lost: %q %v", st.Version, err)
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
