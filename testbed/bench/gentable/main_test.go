package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
)

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		out = append(out, s.Text())
	}
	return out
}

// TestFormatsAgree checks that every format carries the same names and
// addresses and that the query files hold what each workload needs.
func TestFormatsAgree(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Names: 1000, Forwarded: 50, Misses: 300, LatMisses: 200, TTL: 30, Seed: 7, Dir: dir}
	if err := Write(cfg); err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile(filepath.Join(dir, "onramp.json"))
	if err != nil {
		t.Fatal(err)
	}
	var nt ndspb.NameTable
	if err := protojson.Unmarshal(js, &nt); err != nil {
		t.Fatalf("onramp.json is not a protojson NameTable: %v", err)
	}
	if len(nt.Table) != 1000 {
		t.Fatalf("table has %d names, want exactly 1000", len(nt.Table))
	}
	// want: "name addr" pairs from onramp.json.
	want := map[string]bool{}
	v4names := map[string]bool{}
	kube, ext := 0, 0
	for name, info := range nt.Table {
		if strings.Contains(name, "*") {
			t.Fatalf("wildcard %s left in the table", name)
		}
		switch info.Registry {
		case ndspb.RegistryKubernetes:
			kube++
		case ndspb.RegistryExternal:
			ext++
		}
		for _, ip := range info.Ips {
			want[name+" "+ip] = true
			if !strings.Contains(ip, ":") {
				v4names[name] = true
			}
		}
	}
	if kube == 0 || ext == 0 {
		t.Fatalf("want both registries, got %d Kubernetes and %d External", kube, ext)
	}

	got := map[string]bool{}
	for _, l := range readLines(t, filepath.Join(dir, "hosts")) {
		f := strings.Fields(l)
		if len(f) != 2 {
			t.Fatalf("hosts line %q", l)
		}
		got[f[1]+" "+f[0]] = true
	}
	if len(got) != len(want) {
		t.Fatalf("hosts has %d pairs, onramp.json %d", len(got), len(want))
	}
	for p := range got {
		if !want[p] {
			t.Fatalf("hosts pair %q is not in onramp.json", p)
		}
	}
	got = map[string]bool{}
	for _, l := range readLines(t, filepath.Join(dir, "unbound.conf")) {
		f := strings.Fields(strings.Trim(strings.TrimPrefix(l, "local-data: "), `"`))
		if len(f) != 5 || f[1] != "30" || f[2] != "IN" || (f[3] != "A") == (f[3] != "AAAA") {
			t.Fatalf("unbound line %q", l)
		}
		if (f[3] == "AAAA") != strings.Contains(f[4], ":") {
			t.Fatalf("unbound line %q: type does not match the address", l)
		}
		got[strings.TrimSuffix(f[0], ".")+" "+f[4]] = true
	}
	if len(got) != len(want) {
		t.Fatalf("unbound.conf has %d pairs, onramp.json %d", len(got), len(want))
	}
	for p := range got {
		if !want[p] {
			t.Fatalf("unbound pair %q is not in onramp.json", p)
		}
	}

	seen := map[string]bool{}
	for _, l := range readLines(t, filepath.Join(dir, "q-mesh.txt")) {
		name, typ, _ := strings.Cut(l, " ")
		if typ != "A" || nt.Table[name] == nil || seen[name] {
			t.Fatalf("q-mesh line %q: not a table name, or repeated", l)
		}
		seen[name] = true
	}
	if len(seen) != len(nt.Table) {
		t.Fatalf("q-mesh covers %d of %d names", len(seen), len(nt.Table))
	}
	for name := range seen {
		if !v4names[name] {
			t.Fatalf("q-mesh asks A of %s, which has no IPv4 address", name)
		}
	}
	all := map[string]bool{}
	for _, file := range []string{"q-fwd.txt", "q-miss.txt", "q-miss-lat.txt"} {
		for _, l := range readLines(t, filepath.Join(dir, file)) {
			name, _, _ := strings.Cut(l, " ")
			if nt.Table[name] != nil || all[name] {
				t.Fatalf("%s: %q is in the table or repeated", file, name)
			}
			if !strings.HasSuffix(name, ".upstream.test") {
				t.Fatalf("%s: %q is outside the upstream's zone", file, name)
			}
			all[name] = true
		}
	}
	if len(all) != 550 {
		t.Fatalf("%d distinct forwarded/miss names, want 550", len(all))
	}
}

func TestDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		if err := Write(Config{Names: 100, Forwarded: 10, Misses: 10, LatMisses: 10, TTL: 30, Seed: 3, Dir: d}); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"onramp.json", "hosts", "q-mesh.txt", "q-miss.txt"} {
		x, _ := os.ReadFile(filepath.Join(a, f))
		y, _ := os.ReadFile(filepath.Join(b, f))
		if string(x) != string(y) {
			t.Fatalf("%s differs between two runs with the same seed", f)
		}
	}
}

func TestRejectsEmptyTable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "x")
	if err := Write(Config{Names: 0, Dir: dir}); err == nil {
		t.Fatal("accepted an empty table")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatal("a rejected run created the output directory")
	}
}
