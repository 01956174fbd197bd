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
// The table is nametable.Synthetic(n) (Kubernetes services, dual-stack and
// headless ones, per-pod names, ServiceEntry hosts with auto-allocated VIPs),
// without its few wildcard hosts. Every name's addresses, IPv4 and IPv6, are
// in every format; the queries ask for A. The output depends only on the flags.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/onramp-mesh/onramp/agent/nametable"
	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
)

// Table is the mesh table every server gets: nametable.Synthetic(n), the
// generator the agent's own benchmarks use, less its wildcard ServiceEntry
// hosts ("*.wild-N.example.org"), which hosts files and unbound local-data
// cannot express the same way.
// It holds exactly n names: Synthetic is asked for as many more as there
// were wildcards.
func Table(n int) *ndspb.NameTable {
	m := n
	for {
		t := nametable.Synthetic(m)
		for name := range t.Table {
			if strings.HasPrefix(name, "*.") {
				delete(t.Table, name)
			}
		}
		// Each step of m adds at most one name, so this never overshoots.
		if len(t.Table) >= n || m > 2*n+10 {
			return t
		}
		m += n - len(t.Table)
	}
}

// Names is the table's names, sorted.
func Names(t *ndspb.NameTable) []string {
	names := make([]string, 0, len(t.Table))
	for name := range t.Table {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// addrs parses a name's addresses, IPv4 first, and says which are which.
func addrs(info *ndspb.NameInfo) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, s := range info.GetIps() {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Is4() && !out[j].Is4() })
	return out, nil
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
	table := Table(cfg.Names)
	names := Names(table)
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6f6e72616d70))

	if !cfg.QueriesOnly {
		js, err := protojson.Marshal(table)
		if err != nil {
			return fmt.Errorf("gentable: marshal NameTable: %w", err)
		}
		if err := os.WriteFile(filepath.Join(cfg.Dir, "onramp.json"), js, 0o644); err != nil {
			return fmt.Errorf("gentable: %w", err)
		}
		parsed := make([][]netip.Addr, len(names))
		for i, name := range names {
			a, err := addrs(table.Table[name])
			if err != nil {
				return fmt.Errorf("gentable: %s: %w", name, err)
			}
			parsed[i] = a
		}
		if err := writeLines(cfg.Dir, "unbound.conf", len(names), func(w *bufio.Writer, i int) {
			for _, a := range parsed[i] {
				typ := "A"
				if !a.Is4() {
					typ = "AAAA"
				}
				fmt.Fprintf(w, "local-data: \"%s. %d IN %s %s\"\n", names[i], cfg.TTL, typ, a)
			}
		}); err != nil {
			return err
		}
		if err := writeLines(cfg.Dir, "hosts", len(names), func(w *bufio.Writer, i int) {
			for _, a := range parsed[i] {
				fmt.Fprintf(w, "%s %s\n", a, names[i])
			}
		}); err != nil {
			return err
		}
	}

	order := rng.Perm(len(names))
	if err := writeLines(cfg.Dir, "q-mesh.txt", len(order), func(w *bufio.Writer, i int) {
		fmt.Fprintf(w, "%s A\n", names[order[i]])
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
