// Package workloadentry models Istio's WorkloadEntry auto-registration on
// the istio.io/api networking types: how istiod names the entry of a VM
// that connects with AUTO_REGISTER_GROUP, how it builds that entry from the
// WorkloadGroup template and the node's metadata, and the lifecycle istiod
// gives it (connect, disconnect with a grace period, periodic cleanup,
// health conditions).
//
// The testbed control plane uses it to behave like istiod, and the agent's
// status command uses it to show what istiod will have created.
package workloadentry

// Annotation keys istiod writes on auto-registered WorkloadEntries.
const (
	// AnnotationAutoRegistrationGroup names the WorkloadGroup an entry was
	// created from.
	AnnotationAutoRegistrationGroup = "istio.io/autoRegistrationGroup"
	// AnnotationWorkloadController names the istiod instance that holds the
	// connection of the workload.
	AnnotationWorkloadController = "istio.io/workloadController"
	// AnnotationConnectedAt is the time (RFC 3339 with nanoseconds) of the
	// latest connection.
	AnnotationConnectedAt = "istio.io/connectedAt"
	// AnnotationDisconnectedAt is the time (RFC 3339 with nanoseconds) the
	// last connection went away.
	AnnotationDisconnectedAt = "istio.io/disconnectedAt"
	// AnnotationHealthChecksEnabled is "true" when the node sent a
	// readinessProbe: the entry then serves traffic only while Healthy.
	AnnotationHealthChecksEnabled = "proxy.istio.io/health-checks-enabled"
)

// ConditionHealthy is the condition type istiod writes from the agent's
// health reports.
const ConditionHealthy = "Healthy"

// Condition status values.
const (
	StatusTrue  = "True"
	StatusFalse = "False"
)

// TimeFormat is the layout of the connectedAt and disconnectedAt annotations.
const TimeFormat = "2006-01-02T15:04:05.999999999Z07:00" // time.RFC3339Nano

// MaxNameLength is the longest name Kubernetes accepts for a WorkloadEntry.
const MaxNameLength = 253
