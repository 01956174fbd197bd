// Package controlplane is the testbed's istiod: the Istio CA service
// (istio.v1.auth.IstioCertificateService), ADS with the NDS name table, and
// WorkloadEntry auto-registration with health, on a TLS gRPC port (istiod's
// 15012) and a plaintext one (15010), plus a debug HTTP server (15014).
//
// It speaks istiod's protocol as ISTIO-WIRE.md describes it, so the agent can
// be tested against it exactly as against a real istiod:
//
//   - Callers authenticate with a client certificate chaining to the mesh root
//     or an `authorization: Bearer <JWT>` token (audience istio-ca). Over TLS
//     one of them is required; the plaintext port accepts anonymous callers,
//     like istiod's 15010.
//   - CreateCertificate issues the caller's identity, never the CSR's.
//   - An ADS node whose authenticated identity does not match its NAMESPACE
//     (and SERVICE_ACCOUNT when sent) is refused with PermissionDenied.
//   - NDS is one unnamed NameTable resource, pushed on subscription and on
//     every Push (wire Push to the mesh store's change notifications).
//   - AUTO_REGISTER_GROUP creates a WorkloadEntry from the WorkloadGroup
//     (FailedPrecondition when the group is missing), disconnects it when the
//     stream ends, and HealthInformation requests set its Healthy condition.
//
// Debug HTTP: /healthz, /debug/ca, /debug/connections, /debug/workloadentries,
// /debug/nametable?proxy=<node id>, /debug/stats, POST /debug/fault?nds=malformed|wrongtype|none
// and POST /debug/push.
package controlplane
