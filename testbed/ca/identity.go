package ca

import (
	"fmt"
	"net/url"
	"strings"
)

// Identity is a workload's mesh identity: a Kubernetes service account in a
// trust domain.
type Identity struct {
	TrustDomain    string
	Namespace      string
	ServiceAccount string
}

// URI returns the SPIFFE form spiffe://<trust domain>/ns/<ns>/sa/<sa>.
func (id Identity) URI() *url.URL {
	return &url.URL{Scheme: "spiffe", Host: id.TrustDomain, Path: "/ns/" + id.Namespace + "/sa/" + id.ServiceAccount}
}

// String returns the SPIFFE URI as text.
func (id Identity) String() string { return id.URI().String() }

// ParseSPIFFE parses spiffe://<trust domain>/ns/<ns>/sa/<sa>.
func ParseSPIFFE(uri string) (Identity, error) {
	const prefix = "spiffe://"
	if !strings.HasPrefix(uri, prefix) {
		return Identity{}, fmt.Errorf("ca: identity %q is not a spiffe:// URI", uri)
	}
	rest := uri[len(prefix):]
	td, path, ok := strings.Cut(rest, "/")
	if !ok || td == "" {
		return Identity{}, fmt.Errorf("ca: identity %q has no trust domain or path; want spiffe://<trust domain>/ns/<ns>/sa/<sa>", uri)
	}
	parts := strings.Split(path, "/")
	if len(parts) != 4 || parts[0] != "ns" || parts[2] != "sa" || parts[1] == "" || parts[3] == "" {
		return Identity{}, fmt.Errorf("ca: identity %q does not have the form spiffe://<trust domain>/ns/<ns>/sa/<sa>", uri)
	}
	return Identity{TrustDomain: td, Namespace: parts[1], ServiceAccount: parts[3]}, nil
}

// validName reports whether s is usable as a Kubernetes namespace or service
// account name inside a SPIFFE URI and a JWT subject.
func validName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.':
		default:
			return false
		}
	}
	return true
}
