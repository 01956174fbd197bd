package main

import (
	"math"
	"testing"
)

func TestMedianOfRounds(t *testing.T) {
	r := &ServerResult{Name: "x", Workloads: map[string]*WorkloadResult{}}
	for i, q := range []float64{100, 300, 200} {
		w := wl(q, 10-float64(i), 0.5, 0.05*float64(i+1), 0.2)
		r.Rounds = append(r.Rounds, &RoundResult{Round: i + 1, Memory: Memory{RSS: int64(1000 + i)},
			Workloads: map[string]*WorkloadResult{"mesh": w, "fwd": {Skipped: "wrong answers"}}})
	}
	// A round whose latency run answered nothing must not pull percentiles to zero.
	r.Rounds[2].Workloads["mesh"].Latency = LatencySummary{Timeouts: 50}
	aggregate(r)
	m := r.Workloads["mesh"]
	if m.Rounds != 3 || m.Throughput.QPS != 200 || m.CPUMicrosPerQuery != 9 {
		t.Fatalf("median: %+v", m)
	}
	if math.Abs(m.Latency.P50-0.075) > 1e-12 {
		t.Fatalf("latency median over answering rounds: got %v", m.Latency.P50)
	}
	if r.Workloads["fwd"].Skipped != "wrong answers" {
		t.Fatalf("a workload skipped in every round: %+v", r.Workloads["fwd"])
	}
	if r.Workloads["miss"].Skipped == "" {
		t.Fatal("a workload never run is not marked skipped")
	}
	if r.Memory.RSS != 1000 {
		t.Fatalf("memory from the first round: %d", r.Memory.RSS)
	}
}
