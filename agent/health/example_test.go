package health_test

import (
	"context"
	"fmt"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/onramp-mesh/onramp/agent/health"
)

func ExampleNewProber() {
	p, err := health.NewProber(&networkingv1alpha3.ReadinessProbe{
		HealthCheckMethod: &networkingv1alpha3.ReadinessProbe_Exec{Exec: &networkingv1alpha3.ExecHealthCheckConfig{Command: []string{"true"}}},
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.Run(ctx, func(healthy bool, message string) {
		fmt.Println(p, "healthy:", healthy)
		cancel()
	})
	// Output: exec true healthy: true
}

func ExampleNewProber_invalid() {
	_, err := health.NewProber(&networkingv1alpha3.ReadinessProbe{
		HealthCheckMethod: &networkingv1alpha3.ReadinessProbe_TcpSocket{TcpSocket: &networkingv1alpha3.TCPHealthCheckConfig{Port: 0}},
	}, nil)
	fmt.Println(err)
	// Output: health: readiness probe tcpSocket port 0 is out of range; set a port in 1-65535 in the WorkloadGroup's probe
}

// The agent tells systemd it is ready once DNS serves, and keeps the watchdog
// fed while its loops make progress.
func ExampleNotify() {
	if err := health.Notify(health.NotifyReady); err != nil {
		fmt.Println(err)
	}
	_ = health.NotifyStatus("serving DNS; connected to istiod")
	go health.RunWatchdog(context.Background(), func() error { return nil }, nil)
}
