// Package ca is the testbed's certificate authority: a self-signed root kept
// in a state directory (so bundles minted earlier stay valid across
// restarts), workload certificates issued from CSRs in the form istiod's CA
// issues them (URI SAN spiffe://<trust domain>/ns/<ns>/sa/<sa>, chain leaf
// first and root last), an istiod serving certificate, and the service-account
// JWTs (audience istio-ca) that onboarding bundles carry as istio-token.
//
// JWTs are ES256, encoded and verified here with the standard library only.
package ca
