// Package bootstrap joins this machine to the mesh with an onboarding bundle,
// the one command that replaces Istio's manual VM install (ISTIO-WIRE §7):
// it validates the bundle (every defect at once), installs it into
// /etc/onramp/bundle readable by the agent and no one else, names it and the
// data-plane choice in /etc/onramp/onramp.yaml, enables and starts the units,
// waits until the agent is READY and reports what it joined as.
//
// Run twice with the same bundle it changes nothing; with a new bundle it
// replaces the old one whole. /etc/hosts is left alone: the agent dials
// istiod through the bundle's own hosts file (bundle.DialAddress), so the
// gateway address in it never leaks into the host's name resolution.
package bootstrap
