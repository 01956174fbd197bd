package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Target is one of the goals README.md sets for onramp, checked against a run.
type Target struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Limit  float64 `json:"limit"`
	Unit   string  `json:"unit"`
	Pass   bool    `json:"pass"`
	Note   string  `json:"note,omitempty"`
	Missed string  `json:"not_measured,omitempty"`
}

// clientBound is the dnsperf CPU share above which a run is taken as limited
// by dnsperf rather than the server.
const clientBound = 0.90

// tieRatio is how close to a peer's QPS a client-bound run must come to be
// called a tie.
const tieRatio = 0.95

// baseline is the server the ratios divide by: onramp when it ran, else the
// first peer that did.
func baseline(res *Results) string {
	for _, name := range []string{"onramp", "unbound", "dnsmasq", "coredns"} {
		if s := res.server(name); s != nil && s.Skipped == "" {
			return name
		}
	}
	return ""
}

func (res *Results) server(name string) *ServerResult {
	for _, s := range res.Servers {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// workload returns the named server's result for a workload if it was measured.
func (res *Results) workload(server, key string) *WorkloadResult {
	s := res.server(server)
	if s == nil || s.Skipped != "" {
		return nil
	}
	w := s.Workloads[key]
	if w == nil || w.Skipped != "" || w.Throughput.Completed == 0 {
		return nil
	}
	return w
}

// evaluateTargets checks onramp's numbers against README.md's targets.
func evaluateTargets(res *Results) []Target {
	var ts []Target
	on := func(key string) *WorkloadResult { return res.workload("onramp", key) }
	notMeasured := func(t Target, why string) Target {
		t.Missed = why
		return t
	}
	for _, key := range []string{"mesh", "fwd"} {
		label := map[string]string{"mesh": "mesh hits", "fwd": "forwarded cache hits"}[key]
		o, u, c := on(key), res.workload("unbound", key), res.workload("coredns", key)
		t := Target{Name: label + ": CPU/query vs unbound", Limit: 1, Unit: "x unbound"}
		if o == nil || u == nil {
			ts = append(ts, notMeasured(t, "onramp or unbound not measured"))
		} else {
			t.Value = o.CPUMicrosPerQuery / u.CPUMicrosPerQuery
			t.Pass = t.Value <= t.Limit
			ts = append(ts, t)
		}
		t = Target{Name: label + ": QPS vs unbound", Limit: 1, Unit: "x unbound"}
		if o == nil || u == nil {
			ts = append(ts, notMeasured(t, "onramp or unbound not measured"))
		} else {
			t.Value = o.Throughput.QPS / u.Throughput.QPS
			t.Pass = t.Value >= t.Limit
			if !t.Pass && t.Value >= tieRatio && o.ClientCPUShare >= clientBound {
				t.Pass = true
				t.Note = fmt.Sprintf("tie: dnsperf used %.0f%% of its core", o.ClientCPUShare*100)
			}
			ts = append(ts, t)
		}
		t = Target{Name: label + ": QPS vs CoreDNS", Limit: 1.5, Unit: "x coredns"}
		if o == nil || c == nil {
			ts = append(ts, notMeasured(t, "onramp or coredns not measured"))
		} else {
			t.Value = o.Throughput.QPS / c.Throughput.QPS
			t.Pass = t.Value >= t.Limit
			if !t.Pass && o.ClientCPUShare >= clientBound {
				t.Note = fmt.Sprintf("dnsperf used %.0f%% of its core: the ratio is capped by the client", o.ClientCPUShare*100)
			}
			ts = append(ts, t)
		}
	}
	t := Target{Name: "cache misses: QPS vs CoreDNS", Limit: 1, Unit: "x coredns"}
	if o, c := on("miss"), res.workload("coredns", "miss"); o == nil || c == nil {
		ts = append(ts, notMeasured(t, "onramp or coredns not measured"))
	} else {
		t.Value = o.Throughput.QPS / c.Throughput.QPS
		t.Pass = t.Value >= t.Limit
		ts = append(ts, t)
	}
	for _, key := range []string{"mesh", "fwd"} {
		label := map[string]string{"mesh": "mesh hits", "fwd": "forwarded cache hits"}[key]
		o := on(key)
		for _, p := range []struct {
			name  string
			limit float64
			get   func(LatencySummary) float64
		}{{"p50", 0.1, func(l LatencySummary) float64 { return l.P50 }}, {"p99", 0.25, func(l LatencySummary) float64 { return l.P99 }}} {
			t := Target{Name: fmt.Sprintf("%s: %s at %d QPS", label, p.name, res.FixedQPS), Limit: p.limit, Unit: "ms"}
			if o == nil || o.Latency.Answered == 0 {
				ts = append(ts, notMeasured(t, "onramp latency not measured"))
				continue
			}
			t.Value = p.get(o.Latency)
			t.Pass = t.Value <= t.Limit
			if e := res.workload("echo", key); !t.Pass && e != nil && e.Latency.Answered > 0 && p.get(e.Latency) > t.Limit {
				t.Note = fmt.Sprintf("the echo ceiling's %s is %.3f ms in this run: the machine's scheduling sets it, not only onramp", p.name, p.get(e.Latency))
			}
			ts = append(ts, t)
		}
	}
	s := res.server("onramp")
	t = Target{Name: fmt.Sprintf("RSS serving %d names", res.Names), Limit: 25, Unit: "MiB"}
	if s == nil || s.Skipped != "" || s.MemoryServing.RSS == 0 {
		ts = append(ts, notMeasured(t, "onramp not measured"))
	} else {
		t.Value = float64(s.MemoryServing.RSS) / 1024
		t.Pass = t.Value <= t.Limit
		ts = append(ts, t)
	}
	t = Target{Name: fmt.Sprintf("RSS with %d names", res.Names100k), Limit: 80, Unit: "MiB"}
	if s == nil || s.Memory100k == nil {
		why := "onramp not measured with the 100k table"
		if s != nil && s.Error100k != "" {
			why = s.Error100k
		}
		ts = append(ts, notMeasured(t, why))
	} else {
		t.Value = float64(s.Memory100k.RSS) / 1024
		t.Pass = t.Value <= t.Limit
		ts = append(ts, t)
	}
	return ts
}

// ratio formats v/base, or "-" when either is missing.
func ratio(v, base float64) string {
	if v == 0 || base == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", v/base)
}

func num(v float64, format string) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf(format, v)
}

// printReport writes one table per workload, the memory table, the targets
// and the Go micro-benchmark.
func printReport(w io.Writer, res *Results) {
	base := res.Baseline
	fmt.Fprintf(w, "\nonramp DNS benchmark — %s, kernel %s, %s\n", res.Started.Format("2006-01-02 15:04 UTC"), res.Kernel, res.CPUModel)
	fmt.Fprintf(w, "servers pinned to CPU %d; dnsperf and the loopback upstream to CPU %d; dnsperf %s; latency at -Q %d\n",
		res.ServerCPU, res.ClientCPU, res.DNSPerf, res.FixedQPS)
	fmt.Fprintf(w, "load average before: %s; after: %s\n", res.LoadBefore, res.LoadAfter)
	fmt.Fprintf(w, "every figure is the median over %d round(s), the servers taking turns in each; results.json has every round\n", res.Rounds)
	if base != "onramp" {
		fmt.Fprintf(w, "NOTE: onramp did not run; ratios are to %s instead\n", base)
	}
	fmt.Fprintf(w, "ratios are server/%s: QPS above 1.00x is faster than %s, CPU/query and latency above 1.00x cost more\n", base, base)
	fmt.Fprintf(w, "QPS marked * was limited by dnsperf (it used >= %.0f%% of its core): compare CPU us/q there\n", clientBound*100)
	for _, wl := range workloads {
		fmt.Fprintf(w, "\n== %s (%s) ==\n", wl.Title, wl.Queries)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "server\tQPS\tratio\tCPU us/q\tratio\tsrv CPU\tdnsperf CPU\tNOERROR\tlost\tp50 ms\tratio\tp99 ms\tratio\tp99.9 ms\tlat lost\tus/q@%dk\tratio\t\n", res.FixedQPS/1000)
		b := res.workload(base, wl.Key)
		for _, s := range res.Servers {
			if s.Skipped != "" {
				fmt.Fprintf(tw, "%s\tskipped: %s\t\n", s.Name, firstOf(s.Skipped))
				continue
			}
			r := s.Workloads[wl.Key]
			if r == nil || r.Skipped != "" {
				why := "not run"
				if r != nil {
					why = r.Skipped
				}
				fmt.Fprintf(tw, "%s\tskipped: %s\t\n", s.Name, firstOf(why))
				continue
			}
			var bq, bc, b50, b99, blc float64
			if b != nil {
				bq, bc, b50, b99, blc = b.Throughput.QPS, b.CPUMicrosPerQuery, b.Latency.P50, b.Latency.P99, b.LatencyCPUMicrosPerQuery
			}
			mark := ""
			if r.ClientCPUShare >= clientBound {
				mark = "*"
			}
			fmt.Fprintf(tw, "%s\t%.0f%s\t%s\t%s\t%s\t%.0f%%\t%.0f%%\t%.1f%%\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t\n",
				s.Name, r.Throughput.QPS, mark, ratio(r.Throughput.QPS, bq),
				num(r.CPUMicrosPerQuery, "%.2f"), ratio(r.CPUMicrosPerQuery, bc),
				r.ServerCPUShare*100, r.ClientCPUShare*100,
				r.Throughput.NoErrorShare()*100, r.Throughput.Lost,
				num(r.Latency.P50, "%.3f"), ratio(r.Latency.P50, b50),
				num(r.Latency.P99, "%.3f"), ratio(r.Latency.P99, b99),
				num(r.Latency.P999, "%.3f"), r.Latency.Timeouts,
				num(r.LatencyCPUMicrosPerQuery, "%.1f"), ratio(r.LatencyCPUMicrosPerQuery, blc))
		}
		tw.Flush()
	}

	fmt.Fprintf(w, "\n== resident memory, VmRSS in MiB (%d names: serving them, after the mesh workload; + forwarded: with 10,000 forwarded answers cached too; + misses: with the miss workload's names cached as well; %d names: after one pass) ==\n", res.Names, res.Names100k)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "server\t%d names\tratio\t+ forwarded\tratio\t+ misses\tratio\t%d names\tratio\tversion\t\n", res.Names, res.Names100k)
	bs := res.server(base)
	for _, s := range res.Servers {
		if s.Skipped != "" {
			continue
		}
		var bserve, b10, bmiss, b100 float64
		if bs != nil {
			bserve = float64(bs.MemoryServing.RSS)
			b10 = float64(bs.Memory.RSS)
			bmiss = float64(bs.MemoryAfterMisses.RSS)
			if bs.Memory100k != nil {
				b100 = float64(bs.Memory100k.RSS)
			}
		}
		r100 := 0.0
		if s.Memory100k != nil {
			r100 = float64(s.Memory100k.RSS)
		}
		miss := float64(s.MemoryAfterMisses.RSS)
		fmt.Fprintf(tw, "%s\t%.1f\t%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t\n", s.Name,
			float64(s.MemoryServing.RSS)/1024, ratio(float64(s.MemoryServing.RSS), bserve),
			float64(s.Memory.RSS)/1024, ratio(float64(s.Memory.RSS), b10),
			num(miss/1024, "%.1f"), ratio(miss, bmiss),
			num(r100/1024, "%.1f"), ratio(r100, b100), s.Version)
	}
	tw.Flush()

	fmt.Fprintf(w, "\n== onramp targets (README.md) ==\n")
	for _, t := range res.Targets {
		switch {
		case t.Missed != "":
			fmt.Fprintf(w, "  n/a   %-44s not measured: %s\n", t.Name, firstOf(t.Missed))
		default:
			verdict := "FAIL"
			if t.Pass {
				verdict = "PASS"
			}
			cmp := "<="
			if strings.HasPrefix(t.Unit, "x ") && !strings.Contains(t.Name, "CPU") {
				cmp = ">="
			}
			note := ""
			if t.Note != "" {
				note = " (" + t.Note + ")"
			}
			fmt.Fprintf(w, "  %s  %-44s %.3f %s (target %s %.2f)%s\n", verdict, t.Name, t.Value, t.Unit, cmp, t.Limit, note)
		}
	}
	if len(res.GoBenchmark) > 0 {
		fmt.Fprintf(w, "\n== Go handler micro-benchmark (go test -bench ./agent/dnsproxy/...) ==\n")
		for _, l := range res.GoBenchmark {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
}

// firstOf is the first line of a message, cut to fit a table cell.
func firstOf(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 110 {
		s = s[:107] + "..."
	}
	return s
}
