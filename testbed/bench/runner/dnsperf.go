package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// PerfStats is what one dnsperf run reports in its closing statistics.
type PerfStats struct {
	Sent       int64            `json:"sent"`
	Completed  int64            `json:"completed"`
	Lost       int64            `json:"lost"`
	QPS        float64          `json:"qps"`
	RunSeconds float64          `json:"run_seconds"`
	AvgLatency float64          `json:"avg_latency_s"`
	Rcodes     map[string]int64 `json:"rcodes"`
}

// NoErrorShare is the fraction of completed queries answered NOERROR.
func (p PerfStats) NoErrorShare() float64 {
	if p.Completed == 0 {
		return 0
	}
	return float64(p.Rcodes["NOERROR"]) / float64(p.Completed)
}

// Latencies is the per-query outcome of a dnsperf -v run.
type Latencies struct {
	// Seconds holds one latency per answered query, sorted ascending.
	Seconds []float64
	// Timeouts counts queries dnsperf reported as timed out ("T") or
	// interrupted ("I") at the end of the run.
	Timeouts int64
}

// LatencySummary is the distribution of a latency run, in milliseconds.
type LatencySummary struct {
	Answered int64   `json:"answered"`
	Timeouts int64   `json:"timeouts"`
	P50      float64 `json:"p50_ms"`
	P90      float64 `json:"p90_ms"`
	P99      float64 `json:"p99_ms"`
	P999     float64 `json:"p999_ms"`
	Max      float64 `json:"max_ms"`
	QPS      float64 `json:"achieved_qps"`
}

// ParsePerf reads dnsperf's output: the per-query lines of -v
// ("> NOERROR name A 0.000123", "> T name A") and the statistics block.
// Lines of neither kind are ignored, so stderr may be mixed in.
func ParsePerf(r io.Reader) (PerfStats, Latencies, error) {
	var st PerfStats
	var lat Latencies
	st.Rcodes = map[string]int64{}
	seenStats := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "> ") {
			f := strings.Fields(line[2:])
			if len(f) == 0 {
				continue
			}
			if f[0] == "T" || f[0] == "I" {
				lat.Timeouts++
				continue
			}
			if len(f) < 4 {
				continue
			}
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			lat.Seconds = append(lat.Seconds, v)
			continue
		}
		key, val, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		first := val
		if i := strings.IndexByte(val, ' '); i > 0 {
			first = val[:i]
		}
		var err error
		switch key {
		case "Queries sent":
			st.Sent, err = strconv.ParseInt(first, 10, 64)
			seenStats = true
		case "Queries completed":
			st.Completed, err = strconv.ParseInt(first, 10, 64)
		case "Queries lost":
			st.Lost, err = strconv.ParseInt(first, 10, 64)
		case "Queries per second":
			st.QPS, err = strconv.ParseFloat(first, 64)
		case "Run time (s)":
			st.RunSeconds, err = strconv.ParseFloat(first, 64)
		case "Average Latency (s)":
			st.AvgLatency, err = strconv.ParseFloat(first, 64)
		case "Response codes":
			// "NOERROR 2 (50.00%), REFUSED 2 (50.00%)"
			for _, part := range strings.Split(val, ",") {
				g := strings.Fields(part)
				if len(g) >= 2 {
					n, perr := strconv.ParseInt(g[1], 10, 64)
					if perr == nil {
						st.Rcodes[g[0]] += n
					}
				}
			}
		}
		if err != nil {
			return st, lat, fmt.Errorf("dnsperf output: cannot read %q in line %q: %w", key, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return st, lat, fmt.Errorf("dnsperf output: %w", err)
	}
	if !seenStats {
		return st, lat, fmt.Errorf("dnsperf output has no statistics block (did dnsperf fail to start? see its stderr)")
	}
	slices.Sort(lat.Seconds)
	return st, lat, nil
}

// Quantile is the q-quantile (0..1) of sorted values by the nearest-rank
// method: the smallest value with at least q of all values at or below it.
func Quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}

// Summary reduces a latency run to its percentiles, in milliseconds; they
// are zero when nothing was answered.
func (l Latencies) Summary(st PerfStats) LatencySummary {
	s := LatencySummary{Answered: int64(len(l.Seconds)), Timeouts: l.Timeouts, QPS: st.QPS}
	if len(l.Seconds) == 0 {
		return s // Answered 0: no percentiles
	}
	s.P50 = Quantile(l.Seconds, 0.50) * 1e3
	s.P90 = Quantile(l.Seconds, 0.90) * 1e3
	s.P99 = Quantile(l.Seconds, 0.99) * 1e3
	s.P999 = Quantile(l.Seconds, 0.999) * 1e3
	s.Max = l.Seconds[len(l.Seconds)-1] * 1e3
	return s
}
