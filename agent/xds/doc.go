// Package xds is onramp's ADS client. It speaks Envoy's Aggregated Discovery
// Service to istiod over one gRPC stream and
//
//   - presents the VM as an Istio sidecar node (Node): the node id and
//     metadata that make istiod auto-register a WorkloadEntry from the
//     WorkloadGroup named in the bundle;
//   - subscribes to the NDS name table (ndspb.TypeURL) only, hands each table to
//     a callback, ACKs the ones it accepts and NACKs the rest (the previous table
//     stays in force);
//   - reports the workload's readiness as Istio HealthInformation requests on
//     the same stream, on every transition and again after every reconnect;
//   - reconnects with jittered exponential backoff and keeps the control plane's
//     last refusal (FailedPrecondition, PermissionDenied) for `onramp status`.
package xds
