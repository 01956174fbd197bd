package workloadentry

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
)

// Name returns the name istiod gives the auto-registered WorkloadEntry of a
// workload: <group>-<ip with ':' replaced by '-'>[-<network>]. Names longer
// than 253 characters are cut from the front, keeping the end, which holds
// the address and network that make the name unique.
func Name(group string, ip netip.Addr, network string) string {
	parts := []string{group, strings.ReplaceAll(ip.String(), ":", "-")}
	if network != "" {
		parts = append(parts, network)
	}
	name := strings.Join(parts, "-")
	if len(name) > MaxNameLength {
		name = name[len(name)-MaxNameLength:]
	}
	return name
}

// ErrGroupNotFound is returned when a workload asks to auto-register into a
// WorkloadGroup that does not exist; istiod rejects such a stream with
// FailedPrecondition.
var ErrGroupNotFound = errors.New("WorkloadGroup not found")

// Meta is Kubernetes-style object metadata.
type Meta struct {
	Name        string
	Namespace   string
	Labels      map[string]string
	Annotations map[string]string
}

func (m Meta) clone() Meta {
	return Meta{
		Name:        m.Name,
		Namespace:   m.Namespace,
		Labels:      maps.Clone(m.Labels),
		Annotations: maps.Clone(m.Annotations),
	}
}

// Key returns "namespace/name".
func (m Meta) Key() string { return m.Namespace + "/" + m.Name }

// Group is a WorkloadGroup object.
type Group struct {
	Meta
	Spec *networkingv1alpha3.WorkloadGroup
}

// Clone returns a deep copy of g.
func (g *Group) Clone() *Group {
	if g == nil {
		return nil
	}
	out := &Group{Meta: g.Meta.clone()}
	if g.Spec != nil {
		out.Spec = proto.Clone(g.Spec).(*networkingv1alpha3.WorkloadGroup)
	}
	return out
}

// OwnerReference points from an entry to the object that controls it.
type OwnerReference struct {
	APIVersion, Kind, Name string
	Controller             bool
}

// Entry is a WorkloadEntry object with the status istiod keeps for it.
type Entry struct {
	Meta
	Spec *networkingv1alpha3.WorkloadEntry
	// OwnerGroup is the name of the WorkloadGroup (same namespace) the entry
	// was created from; empty for entries not auto-registered.
	OwnerGroup string
	// OwnerReferences are the Kubernetes owner references of the entry.
	OwnerReferences []OwnerReference
	// Conditions is the status; istiod writes ConditionHealthy.
	Conditions []Condition
}

// Clone returns a deep copy of e.
func (e *Entry) Clone() *Entry {
	if e == nil {
		return nil
	}
	out := &Entry{
		Meta:            e.Meta.clone(),
		OwnerGroup:      e.OwnerGroup,
		OwnerReferences: slices.Clone(e.OwnerReferences),
		Conditions:      slices.Clone(e.Conditions),
	}
	if e.Spec != nil {
		out.Spec = proto.Clone(e.Spec).(*networkingv1alpha3.WorkloadEntry)
	}
	return out
}

// Condition returns the condition of the given type, if present.
func (e *Entry) Condition(typ string) (Condition, bool) {
	for _, c := range e.Conditions {
		if c.Type == typ {
			return c, true
		}
	}
	return Condition{}, false
}

// Healthy reports whether the entry may serve traffic: always true without
// health checks, otherwise only while the Healthy condition is True.
func (e *Entry) Healthy() bool {
	if e.Annotations[AnnotationHealthChecksEnabled] != "true" {
		return true
	}
	c, ok := e.Condition(ConditionHealthy)
	return ok && c.Status == StatusTrue
}

// ConnectedAt parses the connectedAt annotation.
func (e *Entry) ConnectedAt() (time.Time, bool) {
	return parseTimeAnnotation(e.Annotations, AnnotationConnectedAt)
}

// DisconnectedAt parses the disconnectedAt annotation.
func (e *Entry) DisconnectedAt() (time.Time, bool) {
	return parseTimeAnnotation(e.Annotations, AnnotationDisconnectedAt)
}

func parseTimeAnnotation(a map[string]string, key string) (time.Time, bool) {
	v, ok := a[key]
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(TimeFormat, v)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// Condition is one status condition of an entry.
type Condition struct {
	Type, Status, Reason, Message string
	LastTransition                time.Time
}

// Node is what istiod learns about a connecting workload from its ADS node
// metadata.
type Node struct {
	// IP is the first of INSTANCE_IPS: the entry's address and name.
	IP netip.Addr
	// Network is NETWORK, if set.
	Network string
	// Labels is the node's LABELS metadata.
	Labels map[string]string
	// HealthChecks is true when the node sent PROXY_CONFIG.readinessProbe.
	HealthChecks bool
}

// FromGroup builds the WorkloadEntry istiod creates when the node connects
// with AUTO_REGISTER_GROUP naming g, as istiod does:
//   - spec is a copy of the group's template with address = n.IP and, when
//     set, network = n.Network;
//   - labels merge, later winning: template labels, then the group's
//     spec.metadata.labels, then the node's LABELS;
//   - annotations are the group's spec.metadata.annotations plus
//     istio.io/autoRegistrationGroup, istio.io/workloadController =
//     controller, istio.io/connectedAt = now (RFC3339Nano), and
//     proxy.istio.io/health-checks-enabled "true" when n.HealthChecks;
//   - it lives in the group's namespace, named by [Name], owned by the group.
//
// The group object's own (Kubernetes) metadata labels are not copied, as in
// istiod: user labels for the entries belong in spec.metadata.
func FromGroup(g *Group, n Node, controller string, now time.Time) (*Entry, error) {
	if g == nil || g.Spec == nil {
		return nil, fmt.Errorf("workloadentry: %w; create the WorkloadGroup named by AUTO_REGISTER_GROUP in the workload's namespace", ErrGroupNotFound)
	}
	if g.Name == "" || g.Namespace == "" {
		return nil, fmt.Errorf("workloadentry: WorkloadGroup %q has no name or namespace; set metadata.name and metadata.namespace", g.Key())
	}
	if !n.IP.IsValid() {
		return nil, fmt.Errorf("workloadentry: workload connecting to group %s has no IP; send INSTANCE_IPS with the routable IP first", g.Key())
	}
	ip := n.IP.Unmap()
	spec := &networkingv1alpha3.WorkloadEntry{}
	if g.Spec.Template != nil {
		spec = proto.Clone(g.Spec.Template).(*networkingv1alpha3.WorkloadEntry)
	}
	spec.Address = ip.String()
	if n.Network != "" {
		spec.Network = n.Network
	}
	labels := maps.Clone(spec.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	annotations := map[string]string{}
	if md := g.Spec.Metadata; md != nil {
		maps.Copy(labels, md.Labels)
		maps.Copy(annotations, md.Annotations)
	}
	maps.Copy(labels, n.Labels)
	spec.Labels = maps.Clone(labels)

	annotations[AnnotationAutoRegistrationGroup] = g.Name
	if n.HealthChecks {
		annotations[AnnotationHealthChecksEnabled] = "true"
	}
	e := &Entry{
		Meta: Meta{
			Name:        Name(g.Name, ip, n.Network),
			Namespace:   g.Namespace,
			Labels:      labels,
			Annotations: annotations,
		},
		Spec:       spec,
		OwnerGroup: g.Name,
		OwnerReferences: []OwnerReference{{
			APIVersion: "networking.istio.io/v1",
			Kind:       "WorkloadGroup",
			Name:       g.Name,
			Controller: true,
		}},
	}
	setConnectMeta(e, controller, now)
	return e, nil
}

func setConnectMeta(e *Entry, controller string, now time.Time) {
	if e.Annotations == nil {
		e.Annotations = map[string]string{}
	}
	if controller != "" {
		e.Annotations[AnnotationWorkloadController] = controller
	}
	e.Annotations[AnnotationConnectedAt] = now.Format(TimeFormat)
	delete(e.Annotations, AnnotationDisconnectedAt)
}

func setDisconnectMeta(e *Entry, now time.Time) {
	if e.Annotations == nil {
		e.Annotations = map[string]string{}
	}
	delete(e.Annotations, AnnotationWorkloadController)
	e.Annotations[AnnotationDisconnectedAt] = now.Format(TimeFormat)
}
