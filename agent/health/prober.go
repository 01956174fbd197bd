package health

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
)

// Kubernetes' probe defaults, which Istio's WorkloadGroup probe shares.
const (
	DefaultPeriodSeconds    = 10
	DefaultTimeoutSeconds   = 1
	DefaultSuccessThreshold = 1
	DefaultFailureThreshold = 3
)

// DefaultHost is the host probed when the probe names none.
const DefaultHost = "localhost"

// check runs one probe attempt; ctx carries the attempt's timeout.
type check func(ctx context.Context) error

// Prober runs one readiness probe. Create it with NewProber.
type Prober struct {
	desc                            string
	check                           check
	initialDelay, period, timeout   time.Duration
	successThreshold, failThreshold int
	log                             hclog.Logger
}

// NewProber validates p and returns a Prober for it. Zero fields take
// Kubernetes' defaults; negative ones, a missing method or a port outside
// 1-65535 are errors.
func NewProber(p *networkingv1alpha3.ReadinessProbe, log hclog.Logger) (*Prober, error) {
	return newProber(p, log, time.Second)
}

// newProber is NewProber with the length of one probe "second" (tests shrink it).
func newProber(p *networkingv1alpha3.ReadinessProbe, log hclog.Logger, second time.Duration) (*Prober, error) {
	if p == nil {
		return nil, errors.New("health: no readiness probe; give the WorkloadGroup a probe (spec.probe) or run without health checks")
	}
	for name, v := range map[string]int32{
		"initialDelaySeconds": p.GetInitialDelaySeconds(), "periodSeconds": p.GetPeriodSeconds(),
		"timeoutSeconds": p.GetTimeoutSeconds(), "successThreshold": p.GetSuccessThreshold(),
		"failureThreshold": p.GetFailureThreshold(),
	} {
		if v < 0 {
			return nil, fmt.Errorf("health: readiness probe %s is %d; it must be 0 (default) or more — fix the WorkloadGroup's probe", name, v)
		}
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	pr := &Prober{
		initialDelay:     time.Duration(p.GetInitialDelaySeconds()) * second,
		period:           time.Duration(orDefault(p.GetPeriodSeconds(), DefaultPeriodSeconds)) * second,
		timeout:          time.Duration(orDefault(p.GetTimeoutSeconds(), DefaultTimeoutSeconds)) * second,
		successThreshold: int(orDefault(p.GetSuccessThreshold(), DefaultSuccessThreshold)),
		failThreshold:    int(orDefault(p.GetFailureThreshold(), DefaultFailureThreshold)),
		log:              log,
	}
	var err error
	switch m := p.GetHealthCheckMethod().(type) {
	case *networkingv1alpha3.ReadinessProbe_HttpGet:
		pr.desc, pr.check, err = httpCheck(m.HttpGet)
	case *networkingv1alpha3.ReadinessProbe_TcpSocket:
		pr.desc, pr.check, err = tcpCheck(m.TcpSocket)
	case *networkingv1alpha3.ReadinessProbe_Exec:
		pr.desc, pr.check, err = execCheck(m.Exec)
	case *networkingv1alpha3.ReadinessProbe_Grpc:
		pr.desc, pr.check, err = grpcCheck(m.Grpc)
	default:
		err = errors.New("health: readiness probe has no method; set one of httpGet, tcpSocket, exec or grpc in the WorkloadGroup's probe")
	}
	if err != nil {
		return nil, err
	}
	return pr, nil
}

func orDefault(v, def int32) int32 {
	if v == 0 {
		return def
	}
	return v
}

// String describes the probe, e.g. "httpGet http://localhost:8080/ready".
func (p *Prober) String() string { return p.desc }

// Run probes until ctx is done and calls report on every transition: healthy
// after successThreshold consecutive successes, unhealthy (with the last
// failure's reason) after failureThreshold consecutive failures. The first
// report comes when either threshold is first reached. report is called from
// Run's goroutine.
func (p *Prober) Run(ctx context.Context, report func(healthy bool, message string)) {
	if !sleep(ctx, p.initialDelay) {
		return
	}
	const (
		undecided = iota
		healthy
		unhealthy
	)
	state, successes, failures := undecided, 0, 0
	tick := time.NewTicker(p.period)
	defer tick.Stop()
	for {
		err := p.probe(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			successes, failures = successes+1, 0
			if successes >= p.successThreshold && state != healthy {
				state = healthy
				p.log.Info("workload healthy", "probe", p.desc)
				report(true, "")
			}
		} else {
			successes, failures = 0, failures+1
			p.log.Debug("probe failed", "probe", p.desc, "consecutive", failures, "error", err)
			if failures >= p.failThreshold && state != unhealthy {
				state = unhealthy
				p.log.Warn("workload unhealthy", "probe", p.desc, "error", err)
				report(false, err.Error())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// probe runs one attempt bounded by the probe's timeout.
func (p *Prober) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	err := p.check(ctx)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%s: no answer within %v (timeoutSeconds)", p.desc, p.timeout)
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
