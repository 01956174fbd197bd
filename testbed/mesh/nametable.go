package mesh

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
)

// Proxy is what the name table depends on from a connecting proxy's node
// metadata.
type Proxy struct {
	// Namespace is NAMESPACE.
	Namespace string
	// ClusterID is CLUSTER_ID; empty means Options.DefaultCluster.
	ClusterID string
	// IPs is INSTANCE_IPS; it decides the IP families the proxy gets
	// (none means IPv4 only).
	IPs []netip.Addr
	// DNSCapture is DNS_CAPTURE == "true": only then are auto-allocated
	// VIPs delivered.
	DNSCapture bool
	// Labels is LABELS; it selects Sidecars with a workloadSelector.
	Labels map[string]string
}

func (p Proxy) families() (v4, v6 bool) {
	for _, ip := range p.IPs {
		if ip.Unmap().Is4() {
			v4 = true
		} else if ip.Is6() {
			v6 = true
		}
	}
	if !v4 && !v6 {
		v4 = true
	}
	return v4, v6
}

// NameTable returns the NDS name table istiod would push to p. The result is
// a fresh message the caller may keep or modify.
func (s *Store) NameTable(p Proxy) *ndspb.NameTable {
	snap := s.snap.Load()
	if p.ClusterID == "" {
		p.ClusterID = s.opts.DefaultCluster
	}
	v4, v6 := p.families()
	family := func(ips []netip.Addr) []string {
		var out []string
		for _, ip := range ips {
			if (ip.Is4() && v4) || (ip.Is6() && v6) {
				if s := ip.String(); !slices.Contains(out, s) {
					out = append(out, s)
				}
			}
		}
		return out
	}
	scope := snap.sidecarFor(p, s.opts.RootNamespace)
	table := map[string]*ndspb.NameInfo{}

	// Services sharing a hostname: the one in the proxy's namespace wins,
	// then the first by namespace.
	order := slices.Clone(snap.services)
	slices.SortStableFunc(order, func(a, b *service) int {
		if a.host != b.host {
			return strings.Compare(a.host, b.host)
		}
		return boolRank(a.namespace != p.Namespace) - boolRank(b.namespace != p.Namespace)
	})
	done := map[string]bool{}
	for _, svc := range order {
		if done[svc.host] || !visible(svc, p.Namespace) || !scope.allows(svc, p.Namespace) {
			continue
		}
		var ips []string
		switch {
		case svc.registry == ndspb.RegistryKubernetes && svc.headless:
			ips = s.headlessEntries(svc, p, family, table)
		case svc.registry == ndspb.RegistryKubernetes:
			ips = family(svc.ipsFor(p.ClusterID))
		case len(svc.addresses) > 0:
			// A ServiceEntry's own addresses go to every proxy whatever its
			// IP family, as istiod sends them (they are the entry's
			// DefaultAddress, which istiod does not filter by family).
			for _, a := range svc.addresses {
				if !slices.Contains(ips, a) {
					ips = append(ips, a)
				}
			}
		case svc.wildcard:
			// Wildcard hosts only with explicit addresses.
		case len(svc.vips) > 0 && p.DNSCapture:
			ips = family(svc.vips)
		case svc.resolutionNone:
			ips = family(svc.seEndpoints)
		}
		if len(ips) == 0 {
			continue
		}
		done[svc.host] = true
		info := &ndspb.NameInfo{Ips: ips, Registry: svc.registry, Namespace: svc.namespace}
		if svc.registry == ndspb.RegistryKubernetes {
			info.Shortname = svc.name
		}
		table[svc.host] = info
	}
	return &ndspb.NameTable{Table: table}
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ipsFor returns the ClusterIPs of cluster, or, when the service does not
// exist there, those of the first cluster that has it (istiod's default
// address), so remote-only services still resolve.
func (svc *service) ipsFor(cluster string) []netip.Addr {
	if ips := svc.clusterIPs[cluster]; len(ips) > 0 {
		return ips
	}
	var clusters []string
	for c := range svc.clusterIPs {
		clusters = append(clusters, c)
	}
	slices.Sort(clusters)
	for _, c := range clusters {
		if len(svc.clusterIPs[c]) > 0 {
			return svc.clusterIPs[c]
		}
	}
	return nil
}

// headlessEntries returns the endpoint IPs of a headless service and adds
// its per-pod names (<hostname>.<service>.<namespace>.svc.<domain>) to table.
func (s *Store) headlessEntries(svc *service, p Proxy, family func([]netip.Addr) []string, table map[string]*ndspb.NameInfo) []string {
	var all []netip.Addr
	_, domain, _ := strings.Cut(svc.host, ".")
	for _, ep := range svc.endpoints {
		if !ep.ready && !svc.publishNotReady {
			continue
		}
		all = append(all, ep.ip)
		if ep.hostname == "" {
			continue
		}
		ips := family([]netip.Addr{ep.ip})
		if len(ips) == 0 {
			continue
		}
		short := ep.hostname + "." + svc.name
		host := short + "." + domain
		// The same pod name may exist in several clusters: the proxy's own
		// cluster wins.
		if _, exists := table[host]; exists && ep.cluster != p.ClusterID {
			continue
		}
		table[host] = &ndspb.NameInfo{Ips: ips, Registry: ndspb.RegistryKubernetes, Shortname: short, Namespace: svc.namespace}
	}
	return family(all)
}

// visible applies exportTo: "*" everyone, "." the service's namespace, "~"
// nobody, otherwise the named namespaces.
func visible(svc *service, ns string) bool {
	if len(svc.exportTo) == 0 {
		return true
	}
	for _, e := range svc.exportTo {
		switch e {
		case "*":
			return true
		case ".":
			if svc.namespace == ns {
				return true
			}
		case "~":
		default:
			if e == ns {
				return true
			}
		}
	}
	return false
}

// sidecarFor picks the Sidecar that scopes p: one in p's namespace whose
// workloadSelector matches p's labels, else the one in p's namespace
// without a selector, else the root namespace's one without a selector.
// nil means no scoping.
func (s *snapshot) sidecarFor(p Proxy, rootNS string) *sidecar {
	var nsWide *sidecar
	for _, sc := range s.sidecars[p.Namespace] {
		if len(sc.selector) == 0 {
			if nsWide == nil || sc.name < nsWide.name {
				nsWide = sc
			}
			continue
		}
		if matches(sc.selector, p.Labels) {
			return sc
		}
	}
	if nsWide != nil {
		return nsWide
	}
	for _, sc := range s.sidecars[rootNS] {
		if len(sc.selector) == 0 {
			return sc
		}
	}
	return nil
}

func matches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// allows reports whether an egress host of the Sidecar imports svc.
func (sc *sidecar) allows(svc *service, proxyNS string) bool {
	if sc == nil {
		return true
	}
	for _, eh := range sc.egress {
		switch eh.namespace {
		case "*":
		case ".":
			if svc.namespace != proxyNS {
				continue
			}
		case "~":
			continue
		default:
			if svc.namespace != eh.namespace {
				continue
			}
		}
		if hostMatches(eh.host, svc.host) {
			return true
		}
	}
	return false
}

// hostMatches reports whether an egress host pattern ("*", "*.example.com"
// or a name) covers a service host (which may itself be a wildcard).
func hostMatches(pattern, host string) bool {
	if pattern == "*" || pattern == host {
		return true
	}
	if suffix, ok := strings.CutPrefix(pattern, "*"); ok {
		return strings.HasSuffix(host, suffix)
	}
	return false
}
