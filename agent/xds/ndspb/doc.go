// Package ndspb holds onramp's copy of Istio's NDS schema (package
// istio.networking.nds.v1): the NameTable that istiod pushes to agents over
// ADS. The Go code is generated from nds.proto by `make proto`.
package ndspb

// TypeURL is the ADS type URL under which istiod sends the NameTable.
const TypeURL = "type.googleapis.com/istio.networking.nds.v1.NameTable"

// Registry values of NameInfo.Registry.
const (
	RegistryKubernetes = "Kubernetes"
	RegistryExternal   = "External"
)
