// Command runner drives `make bench`: it starts each DNS server in turn on
// one core, loads it with dnsperf from the other core, and prints how every
// server compares with onramp (QPS, server CPU per answered query, latency
// percentiles at a fixed rate, resident memory), per workload:
//
//   - mesh: the 10,000 names of the mesh table;
//   - fwd:  names outside the table, forwarded to the loopback upstream once
//     and then answered from the server's cache;
//   - miss: a unique name per query, so every query goes to the upstream.
//
// It writes results.json and per-run dnsperf output under -out, and stops
// every process it started by PID, also on SIGINT/SIGTERM. bench.sh builds
// the inputs and calls it; see README.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the runner's flags.
type options struct {
	out, table10k, table100k  string
	seconds, fixedQPS, rounds int
	serverCPU, clientCPU      int
	clients, outstanding      int
	only                      string
	bins                      map[string]string
	upstreamBin, dnsperfBin   string
	goBench                   string
	rss100k                   string
}

// workload is one kind of query load.
type workload struct {
	Key, Title string
	// Queries and LatQueries are the query files (in the table directory)
	// for the throughput and latency runs.
	Queries, LatQueries string
	// Warm, when set, is run once through before measuring (fills caches).
	Warm bool
	// Once stops dnsperf at the end of the file: a miss must stay a miss.
	Once bool
}

// settle is the pause before each measured run.
const settle = time.Second

var workloads = []workload{
	{Key: "mesh", Title: "mesh-name hits", Queries: "q-mesh.txt", LatQueries: "q-mesh.txt", Warm: true},
	{Key: "fwd", Title: "cache hits for forwarded names", Queries: "q-fwd.txt", LatQueries: "q-fwd.txt", Warm: true},
	{Key: "miss", Title: "cache misses to the loopback upstream", Queries: "q-miss.txt", LatQueries: "q-miss-lat.txt", Once: true},
}

// WorkloadResult is one server's numbers for one workload.
type WorkloadResult struct {
	Skipped string `json:"skipped,omitempty"`
	// Rounds is how many rounds the medians below are taken over (0 in a
	// single round's own result).
	Rounds int `json:"rounds,omitempty"`
	// Throughput is the unthrottled dnsperf run.
	Throughput PerfStats `json:"throughput"`
	// CPUMicrosPerQuery is the server's utime+stime over the throughput
	// run divided by the queries dnsperf saw answered.
	CPUMicrosPerQuery float64 `json:"cpu_us_per_query"`
	// ServerCPUShare is the server's CPU time over the run's wall time
	// (1.0 = its core was busy all the time).
	ServerCPUShare float64 `json:"server_cpu_share"`
	// ClientCPUShare is dnsperf's: near 1.0 means dnsperf was the limit.
	ClientCPUShare float64 `json:"dnsperf_cpu_share"`
	// Latency is the run at the fixed rate (-Q), from per-query output.
	Latency LatencySummary `json:"latency"`
	// LatencyCPUMicrosPerQuery is the server's CPU per query at that rate.
	LatencyCPUMicrosPerQuery float64 `json:"latency_cpu_us_per_query"`
}

// ServerResult is everything measured for one server.
type ServerResult struct {
	Name      string                     `json:"name"`
	Version   string                     `json:"version,omitempty"`
	Binary    string                     `json:"binary,omitempty"`
	Skipped   string                     `json:"skipped,omitempty"`
	Workloads map[string]*WorkloadResult `json:"workloads,omitempty"`
	// MemoryServing is read with the 10k-name table after the mesh
	// workload: the table loaded and served. The RSS target is read here.
	MemoryServing Memory `json:"memory_10k_serving"`
	// Memory is read with the 10k-name table after the mesh and forwarded
	// workloads: the table plus a cache of 10,000 forwarded names.
	Memory Memory `json:"memory_10k"`
	// MemoryAfterMisses is read after the cache-miss workload too, whose
	// unique names fill the cache as far as the server lets it grow.
	MemoryAfterMisses Memory `json:"memory_10k_after_misses"`
	// Memory100k is read after one pass over a 100k-name table.
	Memory100k *Memory `json:"memory_100k,omitempty"`
	// Rounds holds every round's own numbers; Workloads and Memory are
	// their medians (memory: the first round's).
	Rounds      []*RoundResult `json:"rounds,omitempty"`
	RoundErrors []string       `json:"round_errors,omitempty"`
	Error100k   string         `json:"error_100k,omitempty"`
}

// Results is results.json.
type Results struct {
	Started     time.Time       `json:"started"`
	Seconds     int             `json:"seconds_per_run"`
	Rounds      int             `json:"rounds"`
	FixedQPS    int             `json:"fixed_qps"`
	Names       int             `json:"names"`
	Names100k   int             `json:"names_100k"`
	ServerCPU   int             `json:"server_cpu"`
	ClientCPU   int             `json:"dnsperf_cpu"`
	DNSPerf     string          `json:"dnsperf_args"`
	Kernel      string          `json:"kernel"`
	CPUModel    string          `json:"cpu_model"`
	LoadBefore  string          `json:"loadavg_before"`
	LoadAfter   string          `json:"loadavg_after"`
	Baseline    string          `json:"baseline"`
	Servers     []*ServerResult `json:"servers"`
	Targets     []Target        `json:"targets"`
	GoBenchmark []string        `json:"go_benchmark,omitempty"`
}

func main() {
	var o options
	o.bins = map[string]string{}
	flag.StringVar(&o.out, "out", "testbed/bench/out", "directory for results.json, logs and raw dnsperf output")
	flag.StringVar(&o.table10k, "table", "testbed/bench/out/table-10k", "gentable directory of the main table")
	flag.StringVar(&o.table100k, "table-100k", "testbed/bench/out/table-100k", "gentable directory of the 100k-name table (empty: skip)")
	flag.IntVar(&o.seconds, "seconds", 10, "dnsperf -l for every run")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds over all servers; the report gives medians")
	flag.IntVar(&o.fixedQPS, "qps", 20000, "dnsperf -Q of the latency runs")
	flag.IntVar(&o.serverCPU, "server-cpu", 0, "CPU the servers are pinned to")
	flag.IntVar(&o.clientCPU, "client-cpu", 1, "CPU dnsperf and the upstream are pinned to")
	flag.IntVar(&o.clients, "clients", 2, "dnsperf -c (client sockets)")
	flag.IntVar(&o.outstanding, "outstanding", 200, "dnsperf -q (queries in flight)")
	flag.StringVar(&o.only, "servers", "onramp,unbound,dnsmasq,coredns,echo", "servers to run, comma-separated")
	for _, s := range []string{"onramp", "unbound", "dnsmasq", "coredns", "echo"} {
		flag.StringVar(new(string), s, "", s+" binary (not given: "+s+" is skipped)")
	}
	flag.StringVar(&o.upstreamBin, "upstream", "", "loopback upstream responder binary")
	flag.StringVar(&o.dnsperfBin, "dnsperf", "dnsperf", "dnsperf binary")
	flag.StringVar(&o.goBench, "go-bench", "", "file with `go test -bench` output to include")
	flag.StringVar(&o.rss100k, "rss-100k", "onramp,unbound,dnsmasq,coredns", "servers whose RSS is also read with the 100k table")
	flag.Parse()
	flag.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "onramp", "unbound", "dnsmasq", "coredns", "echo":
			o.bins[f.Name] = f.Value.String()
		}
	})

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "runner: %v: stopping every server started\n", s)
		cancel()
		stopAll()
		os.Exit(130)
	}()
	err := run(ctx, o)
	stopAll()
	if err != nil {
		fmt.Fprintf(os.Stderr, "runner: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	if o.seconds < 1 || o.seconds > 120 {
		return fmt.Errorf("-seconds %d: want 1..120", o.seconds)
	}
	// Servers get absolute paths: some change directory before reading files.
	for _, p := range []*string{&o.out, &o.table10k, &o.table100k} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	if o.rounds < 1 || o.rounds > 9 {
		return fmt.Errorf("-rounds %d: want 1..9", o.rounds)
	}
	if o.upstreamBin == "" {
		return fmt.Errorf("-upstream: the loopback upstream binary is required (bench.sh builds it)")
	}
	for _, d := range []string{o.out, filepath.Join(o.out, "raw"), filepath.Join(o.out, "logs"), filepath.Join(o.out, "work")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	want, err := readHosts(filepath.Join(o.table10k, "hosts"))
	if err != nil {
		return err
	}
	res := &Results{
		Started: time.Now().UTC(), Seconds: o.seconds, Rounds: o.rounds, FixedQPS: o.fixedQPS, Names: len(want),
		ServerCPU: o.serverCPU, ClientCPU: o.clientCPU,
		DNSPerf:    fmt.Sprintf("-l %d -c %d -q %d -t 1", o.seconds, o.clients, o.outstanding),
		Kernel:     firstLine("/proc/sys/kernel/osrelease"),
		CPUModel:   cpuModel(),
		LoadBefore: firstLine("/proc/loadavg"),
	}

	// The upstream shares the client core: the server's core runs only
	// the server under test.
	upPort, err := freePort()
	if err != nil {
		return err
	}
	upstream := fmt.Sprintf("127.0.0.1:%d", upPort)
	up, err := startPinned("upstream", o.clientCPU, filepath.Join(o.out, "logs", "upstream.log"), o.upstreamBin, "-listen", upstream)
	if err != nil {
		return err
	}
	defer up.stop()
	if err := waitAnswering(up, upstream, "ready.fwd.upstream.test", 10*time.Second); err != nil {
		return err
	}
	if err := checkForwarded(upstream, []string{"probe.fwd.upstream.test"}); err != nil {
		return fmt.Errorf("the loopback upstream itself answers wrongly: %w", err)
	}

	meshNames, err := firstNames(filepath.Join(o.table10k, "q-mesh.txt"), 25)
	if err != nil {
		return err
	}
	fwdNames, err := firstNames(filepath.Join(o.table10k, "q-fwd.txt"), 5)
	if err != nil {
		return err
	}
	selected := map[string]bool{}
	for _, s := range strings.Split(o.only, ",") {
		selected[strings.TrimSpace(s)] = true
	}
	rss100k := map[string]bool{}
	for _, s := range strings.Split(o.rss100k, ",") {
		rss100k[strings.TrimSpace(s)] = true
	}
	table := Table{Dir: o.table10k, Names: len(want)}
	type entry struct {
		s *Server
		r *ServerResult
	}
	var list []entry
	for _, s := range servers(o.bins) {
		if !selected[s.Name] {
			continue
		}
		r := &ServerResult{Name: s.Name, Binary: s.Binary, Workloads: map[string]*WorkloadResult{}}
		res.Servers = append(res.Servers, r)
		if s.Binary == "" {
			r.Skipped = s.Missing
			fmt.Fprintf(os.Stderr, "runner: %s skipped: %s\n", s.Name, s.Missing)
			continue
		}
		r.Version = version(s)
		list = append(list, entry{s, r})
	}
	// Rounds interleave the servers, so a stretch of interference from
	// other work on the machine lands on different servers in different
	// rounds; the report gives each figure's median over the rounds.
	for round := 1; round <= o.rounds; round++ {
		for _, e := range list {
			if e.r.Skipped != "" {
				continue
			}
			fmt.Fprintf(os.Stderr, "runner: round %d/%d: %s\n", round, o.rounds, e.s.Name)
			resolvBefore, _ := os.ReadFile("/etc/resolv.conf")
			rr, err := benchServer(ctx, o, e.s, round, table, upstream, want, meshNames, fwdNames)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if after, _ := os.ReadFile("/etc/resolv.conf"); string(after) != string(resolvBefore) {
				return fmt.Errorf("/etc/resolv.conf changed while %s ran; the benchmark stops here (restore it from this copy):\n%s", e.s.Name, resolvBefore)
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "runner: %s round %d: %v\n", e.s.Name, round, err)
				e.r.RoundErrors = append(e.r.RoundErrors, fmt.Sprintf("round %d: %v", round, err))
				if len(e.r.Rounds) == 0 {
					e.r.Skipped = err.Error() // it never worked: do not retry
				}
				continue
			}
			e.r.Rounds = append(e.r.Rounds, rr)
		}
	}
	for _, e := range list {
		aggregate(e.r)
		if o.table100k != "" && rss100k[e.s.Name] && e.r.Skipped == "" {
			m, err := memoryWithTable(ctx, o, e.s, Table{Dir: o.table100k}, upstream)
			if err != nil {
				e.r.Error100k = err.Error()
				fmt.Fprintf(os.Stderr, "runner: %s with the 100k table: %v\n", e.s.Name, err)
			} else {
				e.r.Memory100k = &m
			}
		}
	}
	if o.table100k != "" {
		if h, err := readHosts(filepath.Join(o.table100k, "hosts")); err == nil {
			res.Names100k = len(h)
		}
	}
	res.LoadAfter = firstLine("/proc/loadavg")
	if o.goBench != "" {
		if b, err := os.ReadFile(o.goBench); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(l, "Benchmark") || strings.HasPrefix(l, "pkg:") || strings.HasPrefix(l, "cpu:") {
					res.GoBenchmark = append(res.GoBenchmark, strings.TrimSpace(l))
				}
			}
		}
	}
	res.Baseline = baseline(res)
	res.Targets = evaluateTargets(res)
	printReport(os.Stdout, res)
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(o.out, "results.json")
	if err := os.WriteFile(path, js, 0o644); err != nil {
		return err
	}
	fmt.Printf("\nmachine-readable summary: %s\n", path)
	return nil
}

// RoundResult is one server's numbers from one round.
type RoundResult struct {
	Round             int                        `json:"round"`
	Workloads         map[string]*WorkloadResult `json:"workloads"`
	MemoryServing     Memory                     `json:"memory_10k_serving"`
	Memory            Memory                     `json:"memory_10k"`
	MemoryAfterMisses Memory                     `json:"memory_10k_after_misses"`
}

// benchServer starts one server with the main table, runs every workload
// and stops it.
func benchServer(ctx context.Context, o options, s *Server, round int, t Table, upstream string, want map[string][]string, meshNames, fwdNames []string) (*RoundResult, error) {
	r := &RoundResult{Round: round, Workloads: map[string]*WorkloadResult{}}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args, err := s.Command(t, port, upstream, filepath.Join(o.out, "work"))
	if err != nil {
		return nil, fmt.Errorf("configure: %w", err)
	}
	c, err := startPinned(s.Name, o.serverCPU, filepath.Join(o.out, "logs", s.Name+".log"), s.Binary, args...)
	if err != nil {
		return nil, err
	}
	defer c.stop()
	if err := waitAnswering(c, addr, meshNames[0], 30*time.Second); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "runner: %s (pid %d) answering on %s\n", s.Name, c.PID(), addr)
	for _, w := range workloads {
		wr := &WorkloadResult{}
		r.Workloads[w.Key] = wr
		if s.Mesh {
			var cerr error
			switch w.Key {
			case "mesh":
				cerr = checkMesh(addr, meshNames, want)
			case "fwd":
				cerr = checkForwarded(addr, fwdNames)
			case "miss":
				cerr = checkForwarded(addr, []string{fmt.Sprintf("check-%d.miss.upstream.test", time.Now().UnixNano())})
			}
			if cerr != nil {
				wr.Skipped = "wrong answers: " + cerr.Error()
				fmt.Fprintf(os.Stderr, "runner: %s %s skipped: %v\n", s.Name, w.Key, cerr)
				continue
			}
		}
		if err := measure(ctx, o, c, addr, t, w, wr, fmt.Sprintf("%s-r%d", s.Name, round)); err != nil {
			wr.Skipped = err.Error()
			fmt.Fprintf(os.Stderr, "runner: %s %s: %v\n", s.Name, w.Key, err)
		}
		if done, err := c.Exited(); done {
			return nil, fmt.Errorf("exited during the %s workload (%v); log %s:\n%s", w.Key, err, c.logPath, c.logTail())
		}
		if w.Key == "mesh" || w.Key == "fwd" {
			m, err := memory(c.PID())
			if err != nil {
				return nil, err
			}
			if w.Key == "mesh" {
				r.MemoryServing = m
			} else {
				r.Memory = m
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	m, err := memory(c.PID())
	if err != nil {
		return nil, err
	}
	r.MemoryAfterMisses = m
	return r, nil
}

// dnsperf runs one bounded dnsperf against addr on the client core.
func (o options) dnsperf(ctx context.Context, addr, queries, rawPath string, extra ...string) (PerfStats, Latencies, float64, error) {
	host, port, _ := strings.Cut(addr, ":")
	args := []string{"-s", host, "-p", port, "-d", queries, "-l", strconv.Itoa(o.seconds), "-t", "1",
		"-c", strconv.Itoa(o.clients), "-q", strconv.Itoa(o.outstanding)}
	args = append(args, extra...)
	timeout := time.Duration(o.seconds+20) * time.Second
	cpu, wall, err := runPinned(ctx, o.clientCPU, timeout, rawPath, o.dnsperfBin, args...)
	if err != nil {
		return PerfStats{}, Latencies{}, 0, err
	}
	f, err := os.Open(rawPath)
	if err != nil {
		return PerfStats{}, Latencies{}, 0, err
	}
	defer f.Close()
	st, lat, err := ParsePerf(f)
	if err != nil {
		return st, lat, 0, fmt.Errorf("%s (raw output %s)", err, rawPath)
	}
	share := 0.0
	if wall > 0 {
		share = cpu.Seconds() / wall.Seconds()
	}
	return st, lat, share, nil
}

// measure runs the warm-up, throughput and fixed-rate latency runs of one
// workload against a running server.
func measure(ctx context.Context, o options, c *child, addr string, t Table, w workload, wr *WorkloadResult, name string) error {
	raw := func(kind string) string {
		return filepath.Join(o.out, "raw", fmt.Sprintf("%s-%s-%s.txt", name, w.Key, kind))
	}
	if w.Warm {
		if _, _, _, err := o.dnsperf(ctx, addr, t.file(w.Queries), raw("warm"), "-n", "1"); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	time.Sleep(settle)
	once := []string{}
	if w.Once {
		once = []string{"-n", "1"}
	}
	before, err := cpuTicks(c.PID())
	if err != nil {
		return err
	}
	st, _, client, err := o.dnsperf(ctx, addr, t.file(w.Queries), raw("qps"), once...)
	if err != nil {
		return err
	}
	after, err := cpuTicks(c.PID())
	if err != nil {
		return err
	}
	wr.Throughput, wr.ClientCPUShare = st, client
	used := float64(after-before) / clockTicks // seconds
	if st.Completed > 0 {
		wr.CPUMicrosPerQuery = used * 1e6 / float64(st.Completed)
	}
	if st.RunSeconds > 0 {
		wr.ServerCPUShare = used / st.RunSeconds
	}

	// A pause lets a server finish what the last run left in flight
	// (forwarded queries, timers) before the next run starts.
	time.Sleep(settle)
	latRaw := raw("latency")
	before, err = cpuTicks(c.PID())
	if err != nil {
		return err
	}
	lst, lat, _, err := o.dnsperf(ctx, addr, t.file(w.LatQueries), latRaw, append(once, "-Q", strconv.Itoa(o.fixedQPS), "-v")...)
	if err != nil {
		return fmt.Errorf("latency run: %w", err)
	}
	after, err = cpuTicks(c.PID())
	if err != nil {
		return err
	}
	wr.Latency = lat.Summary(lst)
	if lst.Completed > 0 {
		wr.LatencyCPUMicrosPerQuery = float64(after-before) / clockTicks * 1e6 / float64(lst.Completed)
	}
	return dropVerbose(latRaw)
}

// dropVerbose keeps the statistics of a -v run and drops its per-query
// lines, which were only needed for the percentiles.
func dropVerbose(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var keep []string
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "> ") {
			n++
			continue
		}
		keep = append(keep, l)
	}
	keep = append(keep, fmt.Sprintf("(%d per-query lines parsed for percentiles and removed)", n))
	return os.WriteFile(path, []byte(strings.Join(keep, "\n")), 0o644)
}

// memoryWithTable starts the server with another table, answers one pass of
// its names (so lazily built structures exist) and reads its memory.
func memoryWithTable(ctx context.Context, o options, s *Server, t Table, upstream string) (Memory, error) {
	want, err := readHosts(t.file("hosts"))
	if err != nil {
		return Memory{}, err
	}
	t.Names = len(want)
	port, err := freePort()
	if err != nil {
		return Memory{}, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args, err := s.Command(t, port, upstream, filepath.Join(o.out, "work"))
	if err != nil {
		return Memory{}, err
	}
	c, err := startPinned(s.Name+"-100k", o.serverCPU, filepath.Join(o.out, "logs", s.Name+"-100k.log"), s.Binary, args...)
	if err != nil {
		return Memory{}, err
	}
	defer c.stop()
	names, err := firstNames(t.file("q-mesh.txt"), 5)
	if err != nil {
		return Memory{}, err
	}
	if err := waitAnswering(c, addr, names[0], 60*time.Second); err != nil {
		return Memory{}, err
	}
	if err := checkMesh(addr, names, want); err != nil {
		return Memory{}, err
	}
	if _, _, _, err := o.dnsperf(ctx, addr, t.file("q-mesh.txt"), filepath.Join(o.out, "raw", s.Name+"-100k-pass.txt"), "-n", "1"); err != nil {
		return Memory{}, err
	}
	return memory(c.PID())
}

func version(s *Server) string {
	if len(s.VersionArgs) == 0 {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, _ := execOutput(ctx, s.Binary, s.VersionArgs...)
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

func firstLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	l, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(l)
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
