// Package mesh is the testbed's view of an Istio mesh: it reads Istio and
// Kubernetes YAML (ServiceEntry, WorkloadGroup, Sidecar, Service, Endpoints)
// from a directory and computes, for each connecting proxy, the NDS
// NameTable istiod would push to it.
//
// The semantics follow istiod: namespace visibility through exportTo and
// Sidecar egress hosts, ClusterIPs for the proxy's cluster, IP families
// filtered by the proxy's addresses, headless services with endpoint IPs and
// per-pod names, ServiceEntry VIP auto-allocation (delivered only to proxies
// with DNS capture) that stays stable across restarts, and wildcard hosts
// only with explicit addresses. See README.md for the file conventions.
package mesh
