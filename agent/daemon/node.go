package daemon

import (
	"net/netip"

	"github.com/onramp-mesh/onramp/agent/xds"
	"github.com/onramp-mesh/onramp/installer/bundle"
)

// NodeInfo is what the ADS node is made of, from the bundle and the host's
// interface addresses (hostIPs; see HostIPs).
func NodeInfo(b *bundle.Bundle, hostIPs []netip.Addr) xds.NodeInfo {
	return xds.NodeInfo{
		IP: b.IP, IPExplicit: b.Env["ISTIO_SVC_IP"] != "", IPReason: b.IPReason, HostIPs: hostIPs,
		Namespace: b.Namespace, ServiceAccount: b.ServiceAccount, ClusterID: b.ClusterID, Network: b.Network,
		MeshID: b.MeshID, WorkloadName: b.WorkloadName, AutoRegisterGroup: b.AutoRegisterGroup,
		Labels: b.Labels, Meta: b.Meta, Env: b.Env, ProxyConfig: b.ProxyConfig, ReadinessProbe: b.ReadinessProbe,
	}
}

// HostIPs lists the addresses of the host's up interfaces other than
// loopback, as pilot-agent gathers INSTANCE_IPS; nil when they cannot be
// listed.
func HostIPs() []netip.Addr {
	ifs, err := bundle.SystemInterfaces()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, ifc := range ifs {
		if ifc.Up && !ifc.Loopback {
			out = append(out, ifc.Addrs...)
		}
	}
	return out
}
