package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"
)

// CSRError reports a certificate signing request that cannot be signed.
// Servers map it to codes.InvalidArgument.
type CSRError struct{ Reason string }

func (e *CSRError) Error() string { return "ca: bad CSR: " + e.Reason }

// TTLError reports a requested lifetime that is not acceptable.
type TTLError struct{ Requested time.Duration }

func (e *TTLError) Error() string {
	return fmt.Sprintf("ca: requested certificate lifetime %s is negative; send validity_duration >= 0 seconds", e.Requested)
}

// ParseCSR decodes a PEM CERTIFICATE REQUEST and verifies its self-signature
// and key type (RSA >= 2048 bits, ECDSA P-256 or P-384).
func ParseCSR(csrPEM []byte) (*x509.CertificateRequest, error) {
	blk, _ := pem.Decode(csrPEM)
	if blk == nil {
		return nil, &CSRError{Reason: "not PEM; send a PEM CERTIFICATE REQUEST"}
	}
	if blk.Type != "CERTIFICATE REQUEST" && blk.Type != "NEW CERTIFICATE REQUEST" {
		return nil, &CSRError{Reason: fmt.Sprintf("PEM block is %q, want CERTIFICATE REQUEST", blk.Type)}
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return nil, &CSRError{Reason: "parse: " + err.Error()}
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, &CSRError{Reason: "signature does not verify: " + err.Error()}
	}
	switch k := csr.PublicKey.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, &CSRError{Reason: fmt.Sprintf("RSA key of %d bits; use at least 2048", k.N.BitLen())}
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return nil, &CSRError{Reason: "ECDSA curve " + k.Curve.Params().Name + " not supported; use P-256 or P-384"}
		}
	default:
		return nil, &CSRError{Reason: fmt.Sprintf("key type %T not supported; use RSA or ECDSA", csr.PublicKey)}
	}
	return csr, nil
}

// Sign issues a workload certificate for id from a PEM CSR. The CSR's own
// subject and SANs are ignored: the certificate carries id, as istiod puts the
// caller's authenticated identity in the certificate. A zero ttl means the
// maximum; longer requests are capped to it. The result is the chain in PEM,
// leaf first and root last.
func (a *Authority) Sign(csrPEM []byte, id Identity, ttl time.Duration) ([]string, error) {
	if ttl < 0 {
		return nil, &TTLError{Requested: ttl}
	}
	if ttl == 0 || ttl > a.opts.MaxCertTTL {
		ttl = a.opts.MaxCertTTL
	}
	if id.TrustDomain == "" {
		id.TrustDomain = a.opts.TrustDomain
	}
	if !validName(id.Namespace) || !validName(id.ServiceAccount) {
		return nil, fmt.Errorf("ca: identity %s has an invalid namespace or service account", id)
	}
	csr, err := ParseCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	now := a.opts.Now().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		NotBefore:             now,
		NotAfter:              now.Add(ttl),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{id.URI()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.root, csr.PublicKey, a.rootKey)
	if err != nil {
		return nil, fmt.Errorf("ca: sign certificate for %s: %w", id, err)
	}
	a.log.Debug("issued workload certificate", "identity", id.String(), "not_after", tmpl.NotAfter)
	return []string{
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(a.rootPEM),
	}, nil
}

// DefaultServingNames are the names and addresses istiod's serving
// certificate carries.
var DefaultServingNames = []string{
	"istiod.istio-system.svc",
	"istiod.istio-system.svc.cluster.local",
	"localhost",
	"127.0.0.1",
	"::1",
}

// ServingCertificate issues a fresh TLS server certificate for names (DNS
// names or IP addresses; DefaultServingNames when empty), valid for a year.
func (a *Authority) ServingCertificate(names ...string) (tls.Certificate, error) {
	if len(names) == 0 {
		names = DefaultServingNames
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ca: generate serving key: %w", err)
	}
	now := a.opts.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{Identity{TrustDomain: a.opts.TrustDomain, Namespace: "istio-system", ServiceAccount: "istiod"}.URI()},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.root, key.Public(), a.rootKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ca: sign serving certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ca: parse serving certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der, a.root.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// IdentityFromChains returns the SPIFFE identity of a verified client
// certificate chain (as tls.ConnectionState.VerifiedChains holds it). The leaf
// must carry exactly one spiffe:// URI SAN and must chain to this root.
func (a *Authority) IdentityFromChains(chains [][]*x509.Certificate) (Identity, error) {
	if len(chains) == 0 || len(chains[0]) == 0 {
		return Identity{}, errors.New("ca: no verified client certificate")
	}
	leaf := chains[0][0]
	// Verify again against this root: the caller may have a looser pool.
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:       a.pool,
		CurrentTime: a.opts.Now(),
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return Identity{}, fmt.Errorf("ca: client certificate does not chain to the mesh root: %w", err)
	}
	var ids []Identity
	for _, u := range leaf.URIs {
		if u.Scheme != "spiffe" {
			continue
		}
		id, err := ParseSPIFFE(u.String())
		if err != nil {
			return Identity{}, err
		}
		ids = append(ids, id)
	}
	if len(ids) != 1 {
		return Identity{}, fmt.Errorf("ca: client certificate carries %d spiffe URIs, want exactly 1", len(ids))
	}
	return ids[0], nil
}
