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

// TestFormatsAgree checks that every format carries the same name→address
// pairs and that the query files hold what each workload needs.
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
		t.Fatalf("table has %d names, want 1000", len(nt.Table))
	}
	want := map[string]string{}
	kube := 0
	for name, info := range nt.Table {
		if len(info.Ips) != 1 {
			t.Fatalf("%s: %d addresses", name, len(info.Ips))
		}
		want[name] = info.Ips[0]
		switch info.Registry {
		case "Kubernetes":
			kube++
			if !strings.HasPrefix(name, info.Shortname+"."+info.Namespace+".svc.") {
				t.Fatalf("%s: shortname %q namespace %q do not match", name, info.Shortname, info.Namespace)
			}
		case "External":
		default:
			t.Fatalf("%s: registry %q", name, info.Registry)
		}
	}
	if kube != 900 {
		t.Fatalf("%d Kubernetes names, want 900", kube)
	}
	seenIP := map[string]bool{}
	for _, ip := range want {
		if seenIP[ip] {
			t.Fatalf("address %s used twice", ip)
		}
		seenIP[ip] = true
	}

	hosts := readLines(t, filepath.Join(dir, "hosts"))
	if len(hosts) != len(want) {
		t.Fatalf("hosts has %d lines", len(hosts))
	}
	for _, l := range hosts {
		f := strings.Fields(l)
		if len(f) != 2 || want[f[1]] != f[0] {
			t.Fatalf("hosts line %q disagrees with onramp.json (%s)", l, want[f[1]])
		}
	}
	ub := readLines(t, filepath.Join(dir, "unbound.conf"))
	if len(ub) != len(want) {
		t.Fatalf("unbound.conf has %d lines", len(ub))
	}
	for _, l := range ub {
		f := strings.Fields(strings.Trim(strings.TrimPrefix(l, "local-data: "), `"`))
		if len(f) != 5 || f[1] != "30" || f[3] != "A" || want[strings.TrimSuffix(f[0], ".")] != f[4] {
			t.Fatalf("unbound line %q disagrees with onramp.json", l)
		}
	}
	mesh := readLines(t, filepath.Join(dir, "q-mesh.txt"))
	seen := map[string]bool{}
	for _, l := range mesh {
		name, typ, _ := strings.Cut(l, " ")
		if typ != "A" || want[name] == "" || seen[name] {
			t.Fatalf("q-mesh line %q: not a table name, or repeated", l)
		}
		seen[name] = true
	}
	if len(seen) != len(want) {
		t.Fatalf("q-mesh covers %d of %d names", len(seen), len(want))
	}
	fwd := readLines(t, filepath.Join(dir, "q-fwd.txt"))
	if len(fwd) != 50 {
		t.Fatalf("q-fwd has %d lines", len(fwd))
	}
	all := map[string]bool{}
	for _, file := range []string{"q-fwd.txt", "q-miss.txt", "q-miss-lat.txt"} {
		for _, l := range readLines(t, filepath.Join(dir, file)) {
			name, _, _ := strings.Cut(l, " ")
			if want[name] != "" || all[name] {
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
