package mesh

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"

	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
	"github.com/onramp-mesh/onramp/workloadentry"
)

// service is one hostname of the mesh as istiod's registry holds it.
type service struct {
	host      string
	namespace string
	name      string // Kubernetes Service name; empty for ServiceEntries
	registry  string
	exportTo  []string // empty means "*"

	// Kubernetes
	clusterIPs      map[string][]netip.Addr
	headless        bool
	publishNotReady bool
	endpoints       []endpoint

	// ServiceEntry
	addresses      []string     // explicit single addresses, as written
	autoAllocate   bool         // eligible for a VIP
	vips           []netip.Addr // auto-allocated
	resolutionNone bool
	seEndpoints    []netip.Addr
	wildcard       bool
}

type endpoint struct {
	ip       netip.Addr
	hostname string
	cluster  string
	ready    bool
}

type sidecar struct {
	namespace string
	name      string
	selector  map[string]string
	egress    []egressHost
}

type egressHost struct{ namespace, host string }

// snapshot is an immutable view of one successful load.
type snapshot struct {
	services []*service // sorted by host, then namespace
	sidecars map[string][]*sidecar
	groups   map[string]*workloadentry.Group
	version  string
}

// build turns parsed objects into services. VIPs are filled in later.
func build(objs *objects, opts Options) *snapshot {
	snap := &snapshot{sidecars: map[string][]*sidecar{}, groups: map[string]*workloadentry.Group{}}

	// Kubernetes Services: objects with the same namespace/name in several
	// clusters are one service with per-cluster ClusterIPs.
	k8s := map[string]*service{}
	for _, o := range objs.services {
		if o.spec.Type == "ExternalName" {
			continue
		}
		key := o.meta.Namespace + "/" + o.meta.Name
		svc := k8s[key]
		if svc == nil {
			svc = &service{
				host:       o.meta.Name + "." + o.meta.Namespace + ".svc." + opts.ClusterDomain,
				namespace:  o.meta.Namespace,
				name:       o.meta.Name,
				registry:   ndspb.RegistryKubernetes,
				clusterIPs: map[string][]netip.Addr{},
			}
			k8s[key] = svc
		}
		if v := o.meta.Annotations[AnnotationExportTo]; v != "" && svc.exportTo == nil {
			for _, e := range strings.Split(v, ",") {
				svc.exportTo = append(svc.exportTo, strings.TrimSpace(e))
			}
		}
		if o.spec.ClusterIP == "None" {
			svc.headless = true
		}
		svc.publishNotReady = svc.publishNotReady || o.spec.PublishNotReadyAddresses
		for cl, ips := range o.ips {
			if _, set := svc.clusterIPs[cl]; !set {
				svc.clusterIPs[cl] = ips
			}
		}
	}
	for _, o := range objs.endpoints {
		svc := k8s[o.meta.Namespace+"/"+o.meta.Name]
		if svc == nil {
			continue
		}
		for _, s := range o.subsets {
			for _, a := range s.Addresses {
				ip, _ := netip.ParseAddr(a.IP)
				svc.endpoints = append(svc.endpoints, endpoint{ip: ip.Unmap(), hostname: a.Hostname, cluster: o.cluster, ready: true})
			}
			for _, a := range s.NotReadyAddresses {
				ip, _ := netip.ParseAddr(a.IP)
				svc.endpoints = append(svc.endpoints, endpoint{ip: ip.Unmap(), hostname: a.Hostname, cluster: o.cluster})
			}
		}
	}
	for _, svc := range k8s {
		snap.services = append(snap.services, svc)
	}

	for _, o := range objs.serviceEntries {
		snap.services = append(snap.services, serviceEntryServices(o)...)
	}
	slices.SortFunc(snap.services, func(a, b *service) int {
		return cmp.Or(cmp.Compare(a.host, b.host), cmp.Compare(a.namespace, b.namespace), cmp.Compare(a.registry, b.registry))
	})

	for _, o := range objs.sidecars {
		sc := &sidecar{namespace: o.meta.Namespace, name: o.meta.Name}
		if ws := o.spec.GetWorkloadSelector(); ws != nil {
			sc.selector = ws.GetLabels()
		}
		for _, eg := range o.spec.Egress {
			for _, h := range eg.Hosts {
				ns, host, _ := strings.Cut(h, "/")
				sc.egress = append(sc.egress, egressHost{namespace: ns, host: host})
			}
		}
		snap.sidecars[sc.namespace] = append(snap.sidecars[sc.namespace], sc)
	}
	for _, g := range objs.groups {
		snap.groups[g.Namespace+"/"+g.Name] = g
	}
	return snap
}

// serviceEntryServices returns one service per host of a ServiceEntry.
func serviceEntryServices(o *serviceEntryObj) []*service {
	se := o.spec
	// Addresses as istiod keeps them: an IP exactly as written (an
	// IPv4-mapped or zoned form included: Istio's validation accepts both),
	// a CIDR of one address as that address. Wider CIDRs name no host and
	// stay out of the name table, as istiod leaves them out.
	var addrs []string
	for _, a := range se.Addresses {
		if _, err := netip.ParseAddr(a); err == nil {
			addrs = append(addrs, a)
			continue
		}
		if p, err := netip.ParsePrefix(a); err == nil && p.IsSingleIP() {
			addrs = append(addrs, p.Addr().String())
		}
	}
	none := se.Resolution == networkingv1alpha3.ServiceEntry_NONE
	var epIPs []netip.Addr
	if none {
		for _, ep := range se.Endpoints {
			if ip, err := netip.ParseAddr(ep.Address); err == nil {
				epIPs = append(epIPs, ip.Unmap())
			}
		}
	}
	optOut := o.meta.Labels[LabelAutoAllocate] == "false"
	var out []*service
	for _, h := range se.Hosts {
		wildcard := strings.HasPrefix(h, "*")
		out = append(out, &service{
			host:           h,
			namespace:      o.meta.Namespace,
			registry:       ndspb.RegistryExternal,
			exportTo:       se.ExportTo,
			addresses:      addrs,
			autoAllocate:   !wildcard && !none && len(se.Addresses) == 0 && !optOut,
			resolutionNone: none,
			seEndpoints:    epIPs,
			wildcard:       wildcard,
		})
	}
	return out
}

// vipHosts lists the hosts eligible for auto-allocation.
func (s *snapshot) vipHosts() []string {
	var out []string
	for _, svc := range s.services {
		if svc.autoAllocate {
			out = append(out, svc.host)
		}
	}
	return out
}

// applyVIPs fills in the auto-allocated addresses.
func (s *snapshot) applyVIPs(alloc map[string]vipPair) {
	for _, svc := range s.services {
		if svc.autoAllocate {
			svc.vips = alloc[svc.host].addrs()
		}
	}
}
