package demo

import (
	"fmt"
	"net/netip"
	"strings"
)

// The sample mesh's fixed addresses (see testbed/demo/mesh/).
const (
	productpageIP = "10.96.0.12"
	myFruitsIP    = "10.103.1.1"
)

// Scenarios are the seed articles' stories, as names resolved on the VM.
func Scenarios() []Scenario {
	var rdsVIP string
	return []Scenario{
		{Story: "ServiceEntry istio.io gets an auto-allocated VIP", Name: "istio.io", Type: "A", Source: "mesh",
			Check: wantVIP(nil)},
		{Story: "RDS database 1 on :3306 gets its own VIP", Name: "mysql-instance1.us-east-1.rds.amazonaws.com", Type: "A", Source: "mesh",
			Check: wantVIP(&rdsVIP)},
		{Story: "RDS database 2 on :3306: a different VIP, so both can be told apart", Name: "mysql-instance2.us-east-1.rds.amazonaws.com", Type: "A", Source: "mesh",
			Check: func(r DigResult) string {
				if p := wantVIP(nil)(r); p != "" {
					return p
				}
				if rdsVIP != "" && r.Answers[len(r.Answers)-1] == "A "+rdsVIP {
					return "same VIP as database 1"
				}
				return ""
			}},
		{Story: "the VMs of vm-group, by name (ServiceEntry with a workloadSelector)", Name: "my-vm.com", Type: "A", Source: "mesh",
			Check: wantVIP(nil)},
		{Story: "private name for a service (ServiceEntry with an address)", Name: "my-fruits.internal", Type: "A", Source: "mesh",
			Check: wantA(myFruitsIP)},
		{Story: "Kubernetes service from the VM", Name: "productpage.ns1.svc.cluster.local", Type: "A", Source: "mesh",
			Check: wantA(productpageIP)},
		{Story: "name.namespace short form", Name: "productpage.ns1", Type: "A", Source: "mesh",
			Check: wantA(productpageIP)},
		{Story: "search-list expansion answered in one round trip (CNAME + A)", Name: "productpage.ns1.svc.cluster.local.vm.svc.cluster.local", Type: "A", Source: "mesh",
			Check: func(r DigResult) string {
				if len(r.Answers) < 2 || r.Answers[0] != "CNAME productpage.ns1.svc.cluster.local." {
					return "want a CNAME to productpage.ns1.svc.cluster.local. first"
				}
				return wantA(productpageIP)(r)
			}},
		{Story: "a known name without IPv6: NODATA, never NXDOMAIN", Name: "istio.io", Type: "AAAA", Source: "mesh",
			Check: func(r DigResult) string {
				if r.Status != "NOERROR" || len(r.Answers) != 0 {
					return fmt.Sprintf("want NOERROR with no records, got %s %v", r.Status, r.Answers)
				}
				return ""
			}},
		{Story: "reverse lookup of a mesh IP", Name: productpageIP, Type: "PTR", Source: "mesh",
			Check: func(r DigResult) string {
				if len(r.Answers) != 1 || r.Answers[0] != "PTR productpage.ns1.svc.cluster.local." {
					return fmt.Sprintf("want PTR productpage.ns1.svc.cluster.local., got %v", r.Answers)
				}
				return ""
			}},
		{Story: "a name outside the mesh goes to the site's DNS", Name: "www.example.org", Type: "A", Source: "upstream",
			Check: wantA(SiteWWW)},
		{Story: "an unknown name stays unknown", Name: "nowhere.example.org", Type: "A", Source: "upstream",
			Check: func(r DigResult) string {
				if r.Status != "NXDOMAIN" {
					return "want NXDOMAIN, got " + r.Status
				}
				return ""
			}},
	}
}

func wantA(ip string) func(DigResult) string {
	return func(r DigResult) string {
		if r.Status != "NOERROR" {
			return "status " + r.Status
		}
		for _, a := range r.Answers {
			if a == "A "+ip {
				return ""
			}
		}
		return fmt.Sprintf("want A %s, got %v", ip, r.Answers)
	}
}

// wantVIP checks for one address from Istio's auto-allocation range
// 240.240.0.0/16, and keeps it in *keep when keep is not nil.
func wantVIP(keep *string) func(DigResult) string {
	vips := netip.MustParsePrefix("240.240.0.0/16")
	return func(r DigResult) string {
		if r.Status != "NOERROR" || len(r.Answers) == 0 {
			return fmt.Sprintf("want an auto-allocated VIP, got %s %v", r.Status, r.Answers)
		}
		last := r.Answers[len(r.Answers)-1]
		ip, err := netip.ParseAddr(strings.TrimPrefix(last, "A "))
		if err != nil || !vips.Contains(ip) {
			return "want an address in 240.240.0.0/16, got " + last
		}
		if keep != nil {
			*keep = ip.String()
		}
		return ""
	}
}

// NoProxyScenarios are what the same VM resolves with dataPlane none: a
// name the mesh knows only by an auto-allocated VIP is forwarded to the
// site's DNS (no proxy on the VM could carry the VIP), while names with
// real addresses are answered from the mesh as before.
func NoProxyScenarios() []Scenario {
	return []Scenario{
		{Story: "without a proxy, istio.io (VIP only in the mesh) gets the site's answer", Name: "istio.io", Type: "A", Source: "upstream",
			Check: wantA(SiteIstioIO)},
		{Story: "asked again: the same answer, from onramp's cache", Name: "istio.io", Type: "A", Source: "upstream",
			Check: wantA(SiteIstioIO)},
		{Story: "a ServiceEntry with its own address is still answered from the mesh", Name: "my-fruits.internal", Type: "A", Source: "mesh",
			Check: wantA(myFruitsIP)},
		{Story: "a Kubernetes service (ClusterIP) is still answered from the mesh", Name: "productpage.ns1.svc.cluster.local", Type: "A", Source: "mesh",
			Check: wantA(productpageIP)},
	}
}
