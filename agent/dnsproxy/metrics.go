package dnsproxy

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// counter is a monotonically increasing count padded to its own cache line
// so that hot counters do not share one.
type counter struct {
	n atomic.Uint64
	_ [56]byte
}

func (c *counter) inc()         { c.n.Add(1) }
func (c *counter) load() uint64 { return c.n.Load() }

// latencyBuckets are the upper bounds, in seconds, of the upstream latency
// histogram.
var latencyBuckets = []float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5}

// histogram counts observations into latencyBuckets.
type histogram struct {
	counts [14]atomic.Uint64 // one per bucket, then +Inf
	sumNs  atomic.Uint64
	total  atomic.Uint64
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(latencyBuckets) && s > latencyBuckets[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNs.Add(uint64(d))
	h.total.Add(1)
}

// WritePrometheus writes the proxy's metrics in the Prometheus text
// exposition format:
//
//	onramp_dns_queries_total{source="mesh|cache|upstream|stale|refused|formerr|servfail"}
//	onramp_dns_requests_total                  every query received
//	onramp_dns_coalesced_total                 misses that joined a query in flight
//	onramp_dns_prefetches_total                answers refreshed before expiry
//	onramp_dns_upstream_latency_seconds        histogram of upstream round trips
//	onramp_dns_upstream_failures_total         tries that timed out or failed
//	onramp_dns_rejected_total{limit="in_flight|flight_waiters"}  queries answered SERVFAIL by a bound
//	onramp_dns_upstream_in_flight              queries being forwarded now
//	onramp_dns_cache_entries, onramp_dns_cache_bytes, onramp_dns_cache_hit_ratio
func (p *Proxy) WritePrometheus(w io.Writer) {
	m := &p.metrics
	hits, misses := p.cache.hits.load(), p.cache.misses.load()
	stale := p.cache.stale.load()
	ew := &errWriter{w: w}
	ew.printf("# HELP onramp_dns_requests_total DNS queries received.\n# TYPE onramp_dns_requests_total counter\n")
	ew.printf("onramp_dns_requests_total %d\n", m.requests.load())
	ew.printf("# HELP onramp_dns_queries_total DNS queries by where the answer came from.\n# TYPE onramp_dns_queries_total counter\n")
	for _, s := range []struct {
		name string
		v    uint64
	}{
		{"mesh", p.mesh.hits.load()},
		{"cache", hits},
		{"upstream", p.fwd.answered.load()},
		{"stale", stale},
		{"refused", m.refused.load()},
		{"formerr", m.formerr.load()},
		{"servfail", p.fwd.servfail.load()},
	} {
		ew.printf("onramp_dns_queries_total{source=%q} %d\n", s.name, s.v)
	}
	ew.printf("# HELP onramp_dns_coalesced_total Cache misses that joined an identical query already in flight.\n# TYPE onramp_dns_coalesced_total counter\n")
	ew.printf("onramp_dns_coalesced_total %d\n", p.cache.coalesced.load())
	ew.printf("# HELP onramp_dns_prefetches_total Cached answers refreshed before they expired.\n# TYPE onramp_dns_prefetches_total counter\n")
	ew.printf("onramp_dns_prefetches_total %d\n", p.cache.prefetches.load())
	ew.printf("# HELP onramp_dns_upstream_failures_total Upstream tries that timed out or failed.\n# TYPE onramp_dns_upstream_failures_total counter\n")
	ew.printf("onramp_dns_upstream_failures_total %d\n", p.fwd.failures.load())
	ew.printf("# HELP onramp_dns_rejected_total Queries answered SERVFAIL at once because a bound was reached.\n# TYPE onramp_dns_rejected_total counter\n")
	ew.printf("onramp_dns_rejected_total{limit=\"in_flight\"} %d\n", p.fwd.rejected.load())
	ew.printf("onramp_dns_rejected_total{limit=\"flight_waiters\"} %d\n", p.cache.rejected.load())
	ew.printf("# HELP onramp_dns_upstream_in_flight Queries being forwarded now.\n# TYPE onramp_dns_upstream_in_flight gauge\n")
	ew.printf("onramp_dns_upstream_in_flight %d\n", p.fwd.InFlight())
	h := &p.fwd.latency
	ew.printf("# HELP onramp_dns_upstream_latency_seconds Round trip of answered upstream queries.\n# TYPE onramp_dns_upstream_latency_seconds histogram\n")
	var cum uint64
	for i, b := range latencyBuckets {
		cum += h.counts[i].Load()
		ew.printf("onramp_dns_upstream_latency_seconds_bucket{le=\"%g\"} %d\n", b, cum)
	}
	cum += h.counts[len(latencyBuckets)].Load()
	ew.printf("onramp_dns_upstream_latency_seconds_bucket{le=\"+Inf\"} %d\n", cum)
	ew.printf("onramp_dns_upstream_latency_seconds_sum %g\n", float64(h.sumNs.Load())/1e9)
	ew.printf("onramp_dns_upstream_latency_seconds_count %d\n", cum)
	entries, bytes := p.cache.Len()
	ew.printf("# HELP onramp_dns_cache_entries Answers in the cache.\n# TYPE onramp_dns_cache_entries gauge\n")
	ew.printf("onramp_dns_cache_entries %d\n", entries)
	ew.printf("# HELP onramp_dns_cache_bytes Bytes the cached answers take.\n# TYPE onramp_dns_cache_bytes gauge\n")
	ew.printf("onramp_dns_cache_bytes %d\n", bytes)
	ratio := 0.0
	if hits+misses > 0 {
		ratio = float64(hits) / float64(hits+misses)
	}
	ew.printf("# HELP onramp_dns_cache_hit_ratio Cache hits over cache lookups since start.\n# TYPE onramp_dns_cache_hit_ratio gauge\n")
	ew.printf("onramp_dns_cache_hit_ratio %g\n", ratio)
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
