package main

import (
	"math"
	"strings"
	"testing"
)

const sampleVerbose = `DNS Performance Testing Tool
Version 2.10.0

[Status] Command line: dnsperf -s 127.0.0.1 -p 20999 -d q.txt -n 2 -v
[Status] Sending queries (to 127.0.0.1:20999)
> NOERROR a.test A 0.000400
> REFUSED nope.test A 0.000100
> NOERROR a.test A 0.000300
> T b.test A
> NOERROR a.test A 0.000200
[Status] Testing complete (end of file)

Statistics:

  Queries sent:         6
  Queries completed:    5 (83.33%)
  Queries lost:         1 (16.67%)

  Response codes:       NOERROR 4 (80.00%), REFUSED 1 (20.00%)
  Average packet size:  request 25, response 33
  Run time (s):         0.010562
  Queries per second:   473.395189

  Average Latency (s):  0.000250 (min 0.000100, max 0.000400)
  Latency StdDev (s):   0.000111
`

func TestParsePerf(t *testing.T) {
	st, lat, err := ParsePerf(strings.NewReader(sampleVerbose))
	if err != nil {
		t.Fatal(err)
	}
	if st.Sent != 6 || st.Completed != 5 || st.Lost != 1 || st.QPS != 473.395189 || st.RunSeconds != 0.010562 {
		t.Fatalf("stats %+v", st)
	}
	if st.Rcodes["NOERROR"] != 4 || st.Rcodes["REFUSED"] != 1 || math.Abs(st.NoErrorShare()-0.8) > 1e-9 {
		t.Fatalf("rcodes %v", st.Rcodes)
	}
	if len(lat.Seconds) != 4 || lat.Timeouts != 1 {
		t.Fatalf("latencies %+v", lat)
	}
	if lat.Seconds[0] != 0.0001 || lat.Seconds[3] != 0.0004 {
		t.Fatalf("latencies not sorted: %v", lat.Seconds)
	}
	s := lat.Summary(st)
	if s.P50 != 0.2 || s.P99 != 0.4 || s.Max != 0.4 || s.Answered != 4 || s.Timeouts != 1 {
		t.Fatalf("summary %+v", s)
	}
}

func TestParsePerfWithoutStatistics(t *testing.T) {
	_, _, err := ParsePerf(strings.NewReader("Error: could not open q.txt\n"))
	if err == nil || !strings.Contains(err.Error(), "no statistics") {
		t.Fatalf("want a missing-statistics error, got %v", err)
	}
}

func TestQuantileNearestRank(t *testing.T) {
	v := make([]float64, 1000)
	for i := range v {
		v[i] = float64(i + 1)
	}
	for _, c := range []struct{ q, want float64 }{{0.5, 500}, {0.99, 990}, {0.999, 999}, {1, 1000}, {0, 1}} {
		if got := Quantile(v, c.q); got != c.want {
			t.Errorf("Quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if !math.IsNaN(Quantile(nil, 0.5)) {
		t.Error("quantile of nothing is not NaN")
	}
}

func TestParseStatTicks(t *testing.T) {
	// A command name with spaces and a parenthesis, as a process may choose.
	line := []byte("1234 (we ird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 100 1000000 500 18446744073709551615")
	n, err := parseStatTicks(line)
	if err != nil || n != 325 {
		t.Fatalf("got %d, %v; want 325", n, err)
	}
	if _, err := parseStatTicks([]byte("garbage")); err == nil {
		t.Fatal("accepted garbage")
	}
}

func TestParseStatus(t *testing.T) {
	m, err := parseStatus([]byte("Name:\tx\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t1\n"))
	if err != nil || m.RSS != 10240 || m.Peak != 20480 {
		t.Fatalf("got %+v, %v", m, err)
	}
	if _, err := parseStatus([]byte("Name:\tx\nState:\tZ (zombie)\n")); err == nil {
		t.Fatal("accepted a status without memory lines")
	}
}

func FuzzParsePerf(f *testing.F) {
	f.Add(sampleVerbose)
	f.Add("> NOERROR x A NaN\nQueries sent: 1\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, lat, err := ParsePerf(strings.NewReader(s))
		if err != nil {
			return
		}
		for i, v := range lat.Seconds {
			if v < 0 || math.IsNaN(v) || (i > 0 && v < lat.Seconds[i-1]) {
				t.Fatalf("bad latency list %v", lat.Seconds)
			}
		}
	})
}
