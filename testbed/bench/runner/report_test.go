package main

import (
	"bytes"
	"strings"
	"testing"
)

func wl(qps, cpu, client, p50, p99 float64) *WorkloadResult {
	return &WorkloadResult{
		Throughput:        PerfStats{QPS: qps, Completed: int64(qps * 10), Rcodes: map[string]int64{"NOERROR": int64(qps * 10)}},
		CPUMicrosPerQuery: cpu, ClientCPUShare: client,
		Latency: LatencySummary{Answered: 1000, P50: p50, P99: p99},
	}
}

func sampleResults() *Results {
	return &Results{
		FixedQPS: 20000, Names: 10000, Names100k: 100000,
		Servers: []*ServerResult{
			{Name: "onramp", MemoryServing: Memory{RSS: 20 * 1024}, Memory: Memory{RSS: 30 * 1024}, Memory100k: &Memory{RSS: 90 * 1024}, Workloads: map[string]*WorkloadResult{
				"mesh": wl(150000, 5, 0.97, 0.05, 0.2), // client-bound, 0.97x unbound: a tie
				"fwd":  wl(100000, 7, 0.60, 0.08, 0.3), // slower than unbound, not client-bound
				"miss": wl(30000, 20, 0.3, 0.2, 0.5),
			}},
			{Name: "unbound", Memory: Memory{RSS: 40 * 1024}, Workloads: map[string]*WorkloadResult{
				"mesh": wl(154000, 6, 0.99, 0.06, 0.2),
				"fwd":  wl(120000, 6, 0.9, 0.06, 0.2),
				"miss": wl(20000, 30, 0.2, 0.3, 0.6),
			}},
			{Name: "coredns", Memory: Memory{RSS: 100 * 1024}, Workloads: map[string]*WorkloadResult{
				"mesh": wl(50000, 18, 0.4, 0.1, 0.4),
				"fwd":  wl(45000, 20, 0.4, 0.1, 0.4),
				"miss": wl(31000, 30, 0.3, 0.3, 0.6),
			}},
			{Name: "dnsmasq", Skipped: "dnsmasq not found"},
			{Name: "echo", Workloads: map[string]*WorkloadResult{
				"mesh": wl(160000, 5, 0.98, 0.04, 0.1),
				"fwd":  wl(160000, 5, 0.98, 0.04, 0.6), // a noisy machine
				"miss": wl(160000, 5, 0.98, 0.04, 0.1),
			}},
		},
	}
}

func TestTargets(t *testing.T) {
	res := sampleResults()
	res.Baseline = baseline(res)
	if res.Baseline != "onramp" {
		t.Fatalf("baseline %q", res.Baseline)
	}
	got := map[string]Target{}
	for _, tg := range evaluateTargets(res) {
		got[tg.Name] = tg
	}
	for name, pass := range map[string]bool{
		"mesh hits: CPU/query vs unbound":            true,
		"mesh hits: QPS vs unbound":                  true, // tie
		"mesh hits: QPS vs CoreDNS":                  true,
		"forwarded cache hits: CPU/query vs unbound": false,
		"forwarded cache hits: QPS vs unbound":       false,
		"forwarded cache hits: QPS vs CoreDNS":       true,
		"cache misses: QPS vs CoreDNS":               false,
		"mesh hits: p50 at 20000 QPS":                true,
		"mesh hits: p99 at 20000 QPS":                true,
		"forwarded cache hits: p99 at 20000 QPS":     false,
		"RSS serving 10000 names":                    true,
		"RSS with 100000 names":                      false,
	} {
		tg, ok := got[name]
		if !ok {
			t.Errorf("no target %q", name)
			continue
		}
		if tg.Missed != "" || tg.Pass != pass {
			t.Errorf("%s: pass=%v missed=%q value=%.3f, want pass=%v", name, tg.Pass, tg.Missed, tg.Value, pass)
		}
	}
	if n := got["forwarded cache hits: p99 at 20000 QPS"].Note; !strings.Contains(n, "echo ceiling") {
		t.Errorf("a p99 the echo also misses is not explained: %q", n)
	}
	if n := got["mesh hits: QPS vs unbound"].Note; !strings.Contains(n, "tie") {
		t.Errorf("mesh tie not explained: %q", n)
	}
}

func TestTargetsWithoutOnramp(t *testing.T) {
	res := sampleResults()
	res.Servers = res.Servers[1:]
	res.Baseline = baseline(res)
	if res.Baseline != "unbound" {
		t.Fatalf("baseline %q, want unbound when onramp is missing", res.Baseline)
	}
	for _, tg := range evaluateTargets(res) {
		if tg.Missed == "" || tg.Pass {
			t.Errorf("%s judged without onramp: %+v", tg.Name, tg)
		}
	}
}

func TestReportShowsRatiosAndSkips(t *testing.T) {
	res := sampleResults()
	res.Baseline = baseline(res)
	res.Targets = evaluateTargets(res)
	var b bytes.Buffer
	printReport(&b, res)
	out := b.String()
	for _, want := range []string{"== mesh-name hits", "1.03x", "0.33x", "skipped: dnsmasq not found", "PASS", "FAIL", "10000 names", "150000*"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
