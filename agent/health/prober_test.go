package health

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
)

// unit is one probe "second" in these tests.
const unit = 20 * time.Millisecond

type event struct {
	healthy bool
	message string
	at      time.Time
}

type recorder struct {
	mu     sync.Mutex
	events []event
	ch     chan event
}

func newRecorder() *recorder { return &recorder{ch: make(chan event, 100)} }

func (r *recorder) report(healthy bool, message string) {
	e := event{healthy, message, time.Now()}
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	r.ch <- e
}

func (r *recorder) next(t *testing.T) event {
	t.Helper()
	select {
	case e := <-r.ch:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no report within 10s")
		return event{}
	}
}

func (r *recorder) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case e := <-r.ch:
		t.Fatalf("unexpected report %+v", e)
	case <-time.After(d):
	}
}

func start(t *testing.T, p *networkingv1alpha3.ReadinessProbe) *recorder {
	t.Helper()
	pr, err := newProber(p, nil, unit)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { pr.Run(ctx, rec.report); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return rec
}

// switchable is an HTTP app whose readiness the test flips; it counts the
// probes it answered in each state.
type switchable struct {
	failing        atomic.Bool
	delay          atomic.Int64
	served, failed atomic.Int64
	srv            *httptest.Server
}

func newSwitchable(t *testing.T) *switchable {
	s := &switchable{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := time.Duration(s.delay.Load()); d > 0 {
			time.Sleep(d)
		}
		if r.URL.Path != "/ready" || r.Header.Get("X-Probe") != "onramp" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if s.failing.Load() {
			s.failed.Add(1)
			http.Error(w, "db down", http.StatusServiceUnavailable)
			return
		}
		s.served.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *switchable) port(t *testing.T) uint32 {
	_, p, _ := net.SplitHostPort(s.srv.Listener.Addr().String())
	n, _ := strconv.Atoi(p)
	return uint32(n)
}

func httpProbe(host string, port uint32) *networkingv1alpha3.ReadinessProbe_HttpGet {
	return &networkingv1alpha3.ReadinessProbe_HttpGet{HttpGet: &networkingv1alpha3.HTTPHealthCheckConfig{
		Host: host, Port: port, Path: "ready",
		HttpHeaders: []*networkingv1alpha3.HTTPHeader{{Name: "X-Probe", Value: "onramp"}},
	}}
}

func TestHTTPThresholdsAndTransitions(t *testing.T) {
	t.Parallel()
	app := newSwitchable(t)
	rec := start(t, &networkingv1alpha3.ReadinessProbe{
		PeriodSeconds: 1, TimeoutSeconds: 100, SuccessThreshold: 2, FailureThreshold: 3,
		HealthCheckMethod: httpProbe("127.0.0.1", app.port(t)),
	})
	e := rec.next(t)
	if !e.healthy {
		t.Fatalf("first report %+v, want healthy", e)
	}
	if n := app.served.Load(); n != 2 {
		t.Errorf("healthy reported after %d successes, want successThreshold 2", n)
	}
	rec.none(t, 8*unit) // steady: no further reports

	app.failing.Store(true)
	e = rec.next(t)
	if e.healthy || !strings.Contains(e.message, "HTTP 503") || !strings.Contains(e.message, "db down") {
		t.Fatalf("report %+v, want unhealthy with the HTTP status and body", e)
	}
	if n := app.failed.Load(); n != 3 {
		t.Errorf("unhealthy reported after %d failures, want failureThreshold 3", n)
	}
	rec.none(t, 8*unit)

	before := app.served.Load()
	app.failing.Store(false)
	if e := rec.next(t); !e.healthy {
		t.Fatalf("report %+v, want healthy again", e)
	}
	if n := app.served.Load() - before; n != 2 {
		t.Errorf("recovered after %d successes, want 2", n)
	}
}

func TestHTTPDefaultHostIsLocalhost(t *testing.T) {
	t.Parallel()
	app := newSwitchable(t)
	pr, err := newProber(&networkingv1alpha3.ReadinessProbe{TimeoutSeconds: 100, HealthCheckMethod: httpProbe("", app.port(t))}, nil, unit)
	if err != nil {
		t.Fatal(err)
	}
	if want := "httpGet http://localhost:" + strconv.Itoa(int(app.port(t))) + "/ready"; pr.String() != want {
		t.Errorf("probe = %q, want %q", pr.String(), want)
	}
	if err := pr.probe(context.Background()); err != nil {
		t.Errorf("probe against localhost: %v", err)
	}
}

func TestHTTPTimeoutHonoured(t *testing.T) {
	t.Parallel()
	app := newSwitchable(t)
	app.delay.Store(int64(50 * unit))
	rec := start(t, &networkingv1alpha3.ReadinessProbe{
		TimeoutSeconds: 2, PeriodSeconds: 3, FailureThreshold: 1,
		HealthCheckMethod: httpProbe("127.0.0.1", app.port(t)),
	})
	begin := time.Now()
	e := rec.next(t)
	if e.healthy || !strings.Contains(e.message, "no answer within") {
		t.Fatalf("report %+v, want unhealthy by timeout", e)
	}
	if took := e.at.Sub(begin); took > 25*unit {
		t.Errorf("timeout of %v took %v", 2*unit, took)
	}
}

func TestInitialDelayHonoured(t *testing.T) {
	t.Parallel()
	app := newSwitchable(t)
	begin := time.Now()
	rec := start(t, &networkingv1alpha3.ReadinessProbe{
		InitialDelaySeconds: 10, TimeoutSeconds: 100,
		HealthCheckMethod: httpProbe("127.0.0.1", app.port(t)),
	})
	e := rec.next(t)
	if took := e.at.Sub(begin); !e.healthy || took < 10*unit {
		t.Errorf("report %+v after %v, want healthy no sooner than %v", e, took, 10*unit)
	}
}

func TestTCP(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := uint32(lis.Addr().(*net.TCPAddr).Port)
	rec := start(t, &networkingv1alpha3.ReadinessProbe{
		PeriodSeconds: 1, TimeoutSeconds: 100, FailureThreshold: 2,
		HealthCheckMethod: &networkingv1alpha3.ReadinessProbe_TcpSocket{TcpSocket: &networkingv1alpha3.TCPHealthCheckConfig{Host: "127.0.0.1", Port: port}},
	})
	if e := rec.next(t); !e.healthy {
		t.Fatalf("report %+v, want healthy", e)
	}
	lis.Close()
	if e := rec.next(t); e.healthy || !strings.Contains(e.message, "refused") {
		t.Fatalf("report %+v, want unhealthy: connection refused", e)
	}
}

func needCommand(t *testing.T, names ...string) {
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("%s not installed: %v", n, err)
		}
	}
}

func execProbe(argv ...string) *networkingv1alpha3.ReadinessProbe_Exec {
	return &networkingv1alpha3.ReadinessProbe_Exec{Exec: &networkingv1alpha3.ExecHealthCheckConfig{Command: argv}}
}

func TestExec(t *testing.T) {
	t.Parallel()
	needCommand(t, "true", "false", "sh")
	for name, tc := range map[string]struct {
		argv    []string
		healthy bool
		msg     string
	}{
		"true":   {[]string{"true"}, true, ""},
		"false":  {[]string{"false"}, false, "exit status 1"},
		"output": {[]string{"sh", "-c", "echo not ready yet; exit 3"}, false, "exit status 3: not ready yet"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rec := start(t, &networkingv1alpha3.ReadinessProbe{TimeoutSeconds: 100, FailureThreshold: 1, HealthCheckMethod: execProbe(tc.argv...)})
			e := rec.next(t)
			if e.healthy != tc.healthy || !strings.Contains(e.message, tc.msg) {
				t.Errorf("report %+v, want healthy=%v with %q", e, tc.healthy, tc.msg)
			}
		})
	}
}

func TestExecTimeoutKillsTheCommand(t *testing.T) {
	t.Parallel()
	needCommand(t, "sh", "sleep")
	// The child sleep holds the output pipe open: the whole group must die.
	rec := start(t, &networkingv1alpha3.ReadinessProbe{
		TimeoutSeconds: 5, PeriodSeconds: 10, FailureThreshold: 1,
		HealthCheckMethod: execProbe("sh", "-c", "sleep 30; true"),
	})
	begin := time.Now()
	e := rec.next(t)
	if e.healthy || !strings.Contains(e.message, "no answer within") {
		t.Fatalf("report %+v, want unhealthy by timeout", e)
	}
	if took := e.at.Sub(begin); took > 2*time.Second {
		t.Errorf("timed-out exec probe took %v", took)
	}
}

func TestGRPC(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	hs := grpchealth.NewServer()
	hs.SetServingStatus("cart", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	rec := start(t, &networkingv1alpha3.ReadinessProbe{
		PeriodSeconds: 1, TimeoutSeconds: 100, FailureThreshold: 1,
		HealthCheckMethod: &networkingv1alpha3.ReadinessProbe_Grpc{Grpc: &networkingv1alpha3.GrpcHealthCheckConfig{
			Port: uint32(lis.Addr().(*net.TCPAddr).Port), Service: "cart"}},
	})
	if e := rec.next(t); !e.healthy {
		t.Fatalf("report %+v, want healthy", e)
	}
	hs.SetServingStatus("cart", healthpb.HealthCheckResponse_NOT_SERVING)
	if e := rec.next(t); e.healthy || !strings.Contains(e.message, "NOT_SERVING") {
		t.Fatalf("report %+v, want unhealthy NOT_SERVING", e)
	}
}

func TestNewProberRejects(t *testing.T) {
	for name, p := range map[string]*networkingv1alpha3.ReadinessProbe{
		"nil":             nil,
		"no method":       {PeriodSeconds: 1},
		"negative":        {FailureThreshold: -1, HealthCheckMethod: execProbe("true")},
		"http port 0":     {HealthCheckMethod: httpProbe("", 0)},
		"http port big":   {HealthCheckMethod: httpProbe("", 70000)},
		"bad scheme":      {HealthCheckMethod: &networkingv1alpha3.ReadinessProbe_HttpGet{HttpGet: &networkingv1alpha3.HTTPHealthCheckConfig{Port: 80, Scheme: "ftp"}}},
		"empty exec":      {HealthCheckMethod: execProbe()},
		"tcp no port":     {HealthCheckMethod: &networkingv1alpha3.ReadinessProbe_TcpSocket{TcpSocket: &networkingv1alpha3.TCPHealthCheckConfig{}}},
		"grpc no port":    {HealthCheckMethod: &networkingv1alpha3.ReadinessProbe_Grpc{Grpc: &networkingv1alpha3.GrpcHealthCheckConfig{}}},
		"nameless header": {HealthCheckMethod: &networkingv1alpha3.ReadinessProbe_HttpGet{HttpGet: &networkingv1alpha3.HTTPHealthCheckConfig{Port: 80, HttpHeaders: []*networkingv1alpha3.HTTPHeader{{Value: "x"}}}}},
	} {
		if _, err := NewProber(p, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDefaults(t *testing.T) {
	pr, err := NewProber(&networkingv1alpha3.ReadinessProbe{HealthCheckMethod: execProbe("true")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pr.period != 10*time.Second || pr.timeout != time.Second || pr.successThreshold != 1 || pr.failThreshold != 3 || pr.initialDelay != 0 {
		t.Errorf("defaults = period %v timeout %v success %d failure %d delay %v; want Kubernetes' 10s 1s 1 3 0",
			pr.period, pr.timeout, pr.successThreshold, pr.failThreshold, pr.initialDelay)
	}
}
