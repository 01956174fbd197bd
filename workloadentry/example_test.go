package workloadentry_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/hashicorp/go-hclog"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/onramp-mesh/onramp/workloadentry"
)

func Example() {
	group := &workloadentry.Group{
		Meta: workloadentry.Meta{Name: "vm-group", Namespace: "vm"},
		Spec: &networkingv1alpha3.WorkloadGroup{
			Metadata: &networkingv1alpha3.WorkloadGroup_ObjectMeta{Labels: map[string]string{"app": "vm-app"}},
			Template: &networkingv1alpha3.WorkloadEntry{ServiceAccount: "vm-sa"},
		},
	}
	reg := workloadentry.NewRegistry(workloadentry.RegistryOptions{Controller: "istiod-0", GracePeriod: time.Hour}, hclog.NewNullLogger())
	defer reg.Close()

	node := workloadentry.Node{IP: netip.MustParseAddr("fd00::7"), Network: "vpc1", HealthChecks: true}
	e, err := reg.Connect(group, node)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(e.Key(), e.Spec.Address, e.Labels["app"], e.Annotations[workloadentry.AnnotationAutoRegistrationGroup])

	e, _ = reg.SetHealth("vm", e.Name, false, "connection refused")
	fmt.Println("healthy:", e.Healthy())

	reg.Disconnect("vm", e.Name)
	e, _ = reg.Get("vm", e.Name)
	_, disconnected := e.DisconnectedAt()
	fmt.Println("disconnected:", disconnected)
	// Output:
	// vm/vm-group-fd00--7-vpc1 fd00::7 vm-app vm-group
	// healthy: false
	// disconnected: true
}
