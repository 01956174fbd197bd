// Command gentable writes one synthetic mesh name table in the format of every
// server the benchmark runs, plus the dnsperf query files, so that onramp and
// its peers answer exactly the same names with exactly the same addresses:
//
//	onramp.json      protojson NameTable for `onramp run --name-table`
//	unbound.conf     unbound local-data lines (included from its server: clause)
//	hosts            hosts(5) lines, read by dnsmasq (--addn-hosts) and CoreDNS (hosts plugin)
//	q-mesh.txt       every table name once, shuffled: the mesh-hit workload
//	q-fwd.txt        names outside the table, answered by the upstream and then cached
//	q-miss.txt       unique names under the upstream's zone: the cache-miss workload
//	q-miss-lat.txt   more unique names, disjoint from q-miss.txt, for the latency run
//
//	gentable -n 10000 -out testbed/bench/out/10k
//
// Nine names in ten are Kubernetes services (svc-NNNNNN.ns-NNN.svc.cluster.local
// in 10.96.0.0/12, 100 namespaces); every tenth is an External ServiceEntry
// host (ext-NNNNNN.external.test in 240.240.0.0/16, Istio's auto-allocation
// range). The output depends only on the flags.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
)

// Entry is one mesh name with its single address.
type Entry struct {
	Name      string // without the trailing dot
	IP        netip.Addr
	Registry  string // "Kubernetes" or "External"
	Shortname string
	Namespace string
}

// Namespaces is how many namespaces the Kubernetes names are spread over.
const Namespaces = 100

// Entries returns the n synthetic table entries, in index order.
func Entries(n int) []Entry {
	out := make([]Entry, 0, n)
	for i := 0; i < n; i++ {
		if i%10 == 9 {
			out = append(out, Entry{
				Name:     fmt.Sprintf("ext-%06d.external.test", i),
				IP:       netip.AddrFrom4([4]byte{240, 240, byte(i >> 8), byte(i)}),
				Registry: "External",
			})
			continue
		}
		ns := fmt.Sprintf("ns-%03d", i%Namespaces)
		short := fmt.Sprintf("svc-%06d", i)
		v := uint32(10)<<24 | uint32(96)<<16 | uint32(i+1) // 10.96.0.0/12 holds a million names
		out = append(out, Entry{
			Name:      short + "." + ns + ".svc.cluster.local",
			IP:        netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}),
			Registry:  "Kubernetes",
			Shortname: short,
			Namespace: ns,
		})
	}
	return out
}

// NameTable is the entries as the NDS message onramp serves.
func NameTable(entries []Entry) *ndspb.NameTable {
	t := &ndspb.NameTable{Table: make(map[string]*ndspb.NameInfo, len(entries))}
	for _, e := range entries {
		t.Table[e.Name] = &ndspb.NameInfo{
			Ips:       []string{e.IP.String()},
			Registry:  e.Registry,
			Shortname: e.Shortname,
			Namespace: e.Namespace,
		}
	}
	return t
}

// Zones of the names the upstream answers.
const (
	ForwardZone = "fwd.upstream.test"
	MissZone    = "miss.upstream.test"
)

// Config says what to write.
type Config struct {
	Names       int    // mesh table size
	Forwarded   int    // distinct names in q-fwd.txt
	Misses      int    // lines in q-miss.txt
	LatMisses   int    // lines in q-miss-lat.txt
	TTL         int    // TTL of mesh answers in the peers' configs
	Seed        uint64 // shuffle and random-label seed
	Dir         string // output directory
	QueriesOnly bool   // skip the server formats
}

// Write writes every file of cfg into cfg.Dir, creating it.
func Write(cfg Config) error {
	if cfg.Names < 1 {
		return fmt.Errorf("gentable: -n %d: the table needs at least one name", cfg.Names)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("gentable: create output directory: %w", err)
	}
	entries := Entries(cfg.Names)
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6f6e72616d70))

	if !cfg.QueriesOnly {
		js, err := protojson.MarshalOptions{Multiline: false}.Marshal(NameTable(entries))
		if err != nil {
			return fmt.Errorf("gentable: marshal NameTable: %w", err)
		}
		if err := os.WriteFile(filepath.Join(cfg.Dir, "onramp.json"), js, 0o644); err != nil {
			return fmt.Errorf("gentable: %w", err)
		}
		if err := writeLines(cfg.Dir, "unbound.conf", len(entries), func(w *bufio.Writer, i int) {
			fmt.Fprintf(w, "local-data: \"%s. %d IN A %s\"\n", entries[i].Name, cfg.TTL, entries[i].IP)
		}); err != nil {
			return err
		}
		if err := writeLines(cfg.Dir, "hosts", len(entries), func(w *bufio.Writer, i int) {
			fmt.Fprintf(w, "%s %s\n", entries[i].IP, entries[i].Name)
		}); err != nil {
			return err
		}
	}

	order := rng.Perm(len(entries))
	if err := writeLines(cfg.Dir, "q-mesh.txt", len(order), func(w *bufio.Writer, i int) {
		fmt.Fprintf(w, "%s A\n", entries[order[i]].Name)
	}); err != nil {
		return err
	}
	fwd := rng.Perm(cfg.Forwarded)
	if err := writeLines(cfg.Dir, "q-fwd.txt", len(fwd), func(w *bufio.Writer, i int) {
		fmt.Fprintf(w, "name-%06d.%s A\n", fwd[i], ForwardZone)
	}); err != nil {
		return err
	}
	// Unique by construction: a per-file prefix and a counter, plus random
	// hex so that names share no prefix structure a server could exploit.
	for _, f := range []struct {
		file, prefix string
		n            int
	}{{"q-miss.txt", "t", cfg.Misses}, {"q-miss-lat.txt", "l", cfg.LatMisses}} {
		if err := writeLines(cfg.Dir, f.file, f.n, func(w *bufio.Writer, i int) {
			fmt.Fprintf(w, "%s%08d-%016x.%s A\n", f.prefix, i, rng.Uint64(), MissZone)
		}); err != nil {
			return err
		}
	}
	return nil
}

func writeLines(dir, name string, n int, line func(*bufio.Writer, int)) error {
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("gentable: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := 0; i < n; i++ {
		line(w, i)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("gentable: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("gentable: write %s: %w", path, err)
	}
	return nil
}

func main() {
	var cfg Config
	flag.IntVar(&cfg.Names, "n", 10000, "names in the mesh table")
	flag.IntVar(&cfg.Forwarded, "fwd", 10000, "distinct forwarded names (cache-hit workload)")
	flag.IntVar(&cfg.Misses, "miss", 1_500_000, "unique names for the cache-miss throughput run")
	flag.IntVar(&cfg.LatMisses, "miss-lat", 220_000, "unique names for the cache-miss latency run")
	flag.IntVar(&cfg.TTL, "ttl", 30, "TTL of mesh answers in the peers' configurations (onramp's default is 30s)")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "seed for the query order and random labels")
	flag.StringVar(&cfg.Dir, "out", "testbed/bench/out/table", "output directory")
	flag.BoolVar(&cfg.QueriesOnly, "queries-only", false, "write only the dnsperf query files")
	flag.Parse()
	if err := Write(cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
