package main

import "sort"

// aggregate fills a server's Workloads and Memory from its rounds.
func aggregate(r *ServerResult) {
	if len(r.Rounds) == 0 {
		return
	}
	r.MemoryServing = r.Rounds[0].MemoryServing
	r.Memory = r.Rounds[0].Memory
	r.MemoryAfterMisses = r.Rounds[0].MemoryAfterMisses
	for _, w := range workloads {
		var ok []*WorkloadResult
		last := "not run"
		for _, rr := range r.Rounds {
			x := rr.Workloads[w.Key]
			switch {
			case x == nil:
			case x.Skipped != "":
				last = x.Skipped
			default:
				ok = append(ok, x)
			}
		}
		if len(ok) == 0 {
			r.Workloads[w.Key] = &WorkloadResult{Skipped: last}
			continue
		}
		r.Workloads[w.Key] = medianOf(ok)
	}
}

// median of values (the mean of the middle two for an even count).
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medianOf takes the median of every figure over the rounds, each on its
// own. Throughput counts (sent, lost, rcodes) are the median-QPS round's.
// Latency percentiles come only from rounds that answered at all.
func medianOf(ws []*WorkloadResult) *WorkloadResult {
	byQPS := append([]*WorkloadResult(nil), ws...)
	sort.Slice(byQPS, func(i, j int) bool { return byQPS[i].Throughput.QPS < byQPS[j].Throughput.QPS })
	m := *byQPS[len(byQPS)/2]
	m.Rounds = len(ws)
	pick := func(from []*WorkloadResult, get func(*WorkloadResult) float64) float64 {
		v := make([]float64, len(from))
		for i, w := range from {
			v[i] = get(w)
		}
		return median(v)
	}
	m.Throughput.QPS = pick(ws, func(w *WorkloadResult) float64 { return w.Throughput.QPS })
	m.CPUMicrosPerQuery = pick(ws, func(w *WorkloadResult) float64 { return w.CPUMicrosPerQuery })
	m.ServerCPUShare = pick(ws, func(w *WorkloadResult) float64 { return w.ServerCPUShare })
	m.ClientCPUShare = pick(ws, func(w *WorkloadResult) float64 { return w.ClientCPUShare })
	m.LatencyCPUMicrosPerQuery = pick(ws, func(w *WorkloadResult) float64 { return w.LatencyCPUMicrosPerQuery })
	var answered []*WorkloadResult
	for _, w := range ws {
		if w.Latency.Answered > 0 {
			answered = append(answered, w)
		}
	}
	if len(answered) == 0 {
		return &m
	}
	m.Latency.P50 = pick(answered, func(w *WorkloadResult) float64 { return w.Latency.P50 })
	m.Latency.P90 = pick(answered, func(w *WorkloadResult) float64 { return w.Latency.P90 })
	m.Latency.P99 = pick(answered, func(w *WorkloadResult) float64 { return w.Latency.P99 })
	m.Latency.P999 = pick(answered, func(w *WorkloadResult) float64 { return w.Latency.P999 })
	m.Latency.Max = pick(answered, func(w *WorkloadResult) float64 { return w.Latency.Max })
	m.Latency.QPS = pick(answered, func(w *WorkloadResult) float64 { return w.Latency.QPS })
	return &m
}
