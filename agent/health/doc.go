// Package health runs the WorkloadGroup's readiness probe on the VM and tells
// systemd how the agent is doing.
//
// A Prober runs one Istio ReadinessProbe (httpGet, tcpSocket, exec or grpc)
// with Kubernetes semantics: after initialDelaySeconds it probes every
// periodSeconds (default 10), each attempt bounded by timeoutSeconds (default
// 1); successThreshold consecutive successes (default 1) make the workload
// healthy and failureThreshold consecutive failures (default 3) unhealthy. Only
// transitions are reported, which is what the agent forwards to istiod as
// HealthInformation. Probes target the VM itself: an empty host means
// "localhost", as Istio's agent probes.
//
// Notify and RunWatchdog wrap sd_notify: READY=1, STATUS=..., and WATCHDOG=1
// keep-alives when the unit sets WatchdogSec.
package health
