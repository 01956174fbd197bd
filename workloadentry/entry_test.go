package workloadentry

import (
	"errors"
	"maps"
	"net/netip"
	"strings"
	"testing"
	"time"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
)

func TestName(t *testing.T) {
	long := strings.Repeat("g", 260)
	tests := []struct {
		name    string
		group   string
		ip      string
		network string
		want    string
	}{
		{"ipv4", "vm-group", "10.0.0.5", "", "vm-group-10.0.0.5"},
		{"ipv4 with network", "vm-group", "10.0.0.5", "net1", "vm-group-10.0.0.5-net1"},
		{"ipv6", "vm-group", "fd00::1", "", "vm-group-fd00--1"},
		{"ipv6 full", "g", "2001:db8:1:2:3:4:5:6", "n", "g-2001-db8-1-2-3-4-5-6-n"},
		{"cut from the front", long, "10.0.0.5", "net1", (long + "-10.0.0.5-net1")[len(long)+len("-10.0.0.5-net1")-253:]},
		{"exactly 253 kept", strings.Repeat("a", 253-len("-1.2.3.4")), "1.2.3.4", "", strings.Repeat("a", 253-len("-1.2.3.4")) + "-1.2.3.4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Name(tt.group, netip.MustParseAddr(tt.ip), tt.network)
			if got != tt.want {
				t.Fatalf("Name = %q, want %q", got, tt.want)
			}
			if len(got) > MaxNameLength {
				t.Fatalf("len %d > %d", len(got), MaxNameLength)
			}
		})
	}
	if got := Name(long, netip.MustParseAddr("10.0.0.5"), "net1"); !strings.HasSuffix(got, "-10.0.0.5-net1") || len(got) != 253 {
		t.Fatalf("long name lost its unique end: %q (%d)", got, len(got))
	}
}

func testGroup() *Group {
	return &Group{
		Meta: Meta{Name: "vm-group", Namespace: "vm", Labels: map[string]string{"object": "label"}},
		Spec: &networkingv1alpha3.WorkloadGroup{
			Metadata: &networkingv1alpha3.WorkloadGroup_ObjectMeta{
				Labels:      map[string]string{"app": "vm-app", "tier": "group", "version": "v1"},
				Annotations: map[string]string{"team": "payments"},
			},
			Template: &networkingv1alpha3.WorkloadEntry{
				ServiceAccount: "vm-sa",
				Labels:         map[string]string{"tier": "template", "from": "template", "version": "v0"},
				Ports:          map[string]uint32{"http": 8080},
			},
			Probe: &networkingv1alpha3.ReadinessProbe{},
		},
	}
}

func TestFromGroupLabelsAndAnnotations(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	tests := []struct {
		name       string
		node       Node
		wantLabels map[string]string
		wantHealth bool
		wantName   string
		wantNet    string
	}{
		{
			name:       "template < group metadata",
			node:       Node{IP: netip.MustParseAddr("10.1.2.3")},
			wantLabels: map[string]string{"app": "vm-app", "tier": "group", "version": "v1", "from": "template"},
			wantName:   "vm-group-10.1.2.3",
		},
		{
			name:       "node labels win",
			node:       Node{IP: netip.MustParseAddr("10.1.2.3"), Labels: map[string]string{"version": "v2", "host": "vm1"}, Network: "vpc1", HealthChecks: true},
			wantLabels: map[string]string{"app": "vm-app", "tier": "group", "version": "v2", "from": "template", "host": "vm1"},
			wantHealth: true,
			wantName:   "vm-group-10.1.2.3-vpc1",
			wantNet:    "vpc1",
		},
		{
			name:       "ipv4-mapped address is unmapped",
			node:       Node{IP: netip.MustParseAddr("::ffff:10.1.2.3")},
			wantLabels: map[string]string{"app": "vm-app", "tier": "group", "version": "v1", "from": "template"},
			wantName:   "vm-group-10.1.2.3",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := testGroup()
			e, err := FromGroup(g, tt.node, "istiod-1", now)
			if err != nil {
				t.Fatal(err)
			}
			if e.Name != tt.wantName || e.Namespace != "vm" {
				t.Fatalf("entry %s, want vm/%s", e.Key(), tt.wantName)
			}
			if !maps.Equal(e.Labels, tt.wantLabels) || !maps.Equal(e.Spec.Labels, tt.wantLabels) {
				t.Fatalf("labels %v / spec %v, want %v", e.Labels, e.Spec.Labels, tt.wantLabels)
			}
			if e.Labels["object"] != "" {
				t.Fatalf("object metadata label copied: %v", e.Labels)
			}
			want := map[string]string{
				AnnotationAutoRegistrationGroup: "vm-group",
				AnnotationWorkloadController:    "istiod-1",
				AnnotationConnectedAt:           "2026-01-02T03:04:05.123456789Z",
				"team":                          "payments",
			}
			if tt.wantHealth {
				want[AnnotationHealthChecksEnabled] = "true"
			}
			if !maps.Equal(e.Annotations, want) {
				t.Fatalf("annotations %v, want %v", e.Annotations, want)
			}
			if e.Spec.Address != tt.node.IP.Unmap().String() || e.Spec.Network != tt.wantNet || e.Spec.ServiceAccount != "vm-sa" || e.Spec.Ports["http"] != 8080 {
				t.Fatalf("spec %v", e.Spec)
			}
			if e.OwnerGroup != "vm-group" || len(e.OwnerReferences) != 1 || e.OwnerReferences[0].Kind != "WorkloadGroup" || !e.OwnerReferences[0].Controller {
				t.Fatalf("owner %q %v", e.OwnerGroup, e.OwnerReferences)
			}
			// The group is not modified.
			if g.Spec.Template.Address != "" || g.Spec.Template.Labels["version"] != "v0" {
				t.Fatalf("group template modified: %v", g.Spec.Template)
			}
			if at, ok := e.ConnectedAt(); !ok || !at.Equal(now) {
				t.Fatalf("ConnectedAt = %v %v", at, ok)
			}
		})
	}
}

func TestFromGroupErrors(t *testing.T) {
	now := time.Now()
	if _, err := FromGroup(nil, Node{IP: netip.MustParseAddr("10.0.0.1")}, "", now); !errors.Is(err, ErrGroupNotFound) {
		t.Fatalf("nil group: %v", err)
	}
	if _, err := FromGroup(testGroup(), Node{}, "", now); err == nil || !strings.Contains(err.Error(), "INSTANCE_IPS") {
		t.Fatalf("no IP: %v", err)
	}
	g := testGroup()
	g.Namespace = ""
	if _, err := FromGroup(g, Node{IP: netip.MustParseAddr("10.0.0.1")}, "", now); err == nil {
		t.Fatal("group without namespace accepted")
	}
	g = testGroup()
	g.Spec.Template = nil
	e, err := FromGroup(g, Node{IP: netip.MustParseAddr("10.0.0.1")}, "", now)
	if err != nil || e.Spec.Address != "10.0.0.1" {
		t.Fatalf("group without template: %v %v", e, err)
	}
	if _, ok := e.Annotations[AnnotationWorkloadController]; ok {
		t.Fatal("empty controller written")
	}
}
