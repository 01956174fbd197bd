package identity

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"time"
)

// issued is a verified key and chain.
type issued struct {
	key      crypto.Signer
	keyPEM   []byte
	chain    []*x509.Certificate // leaf, intermediates (no root)
	root     *x509.Certificate   // the root the CA returned last
	leaf     *x509.Certificate
	spiffeID string
}

func (c *issued) tlsCert() *tls.Certificate {
	tc := &tls.Certificate{PrivateKey: c.key, Leaf: c.leaf}
	for _, x := range c.chain {
		tc.Certificate = append(tc.Certificate, x.Raw)
	}
	return tc
}

func (c *issued) chainPEM() []byte {
	var b bytes.Buffer
	for _, x := range c.chain {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: x.Raw})
	}
	return b.Bytes()
}

// parseCerts parses every CERTIFICATE block in data; anything else is an
// error.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q is not a CERTIFICATE", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, fmt.Errorf("data that is not PEM after %d certificate(s)", len(out))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no PEM certificate")
	}
	return out, nil
}

// verifyChain checks a CreateCertificate answer: leaf first, root last, at
// least two elements; the leaf chains to roots (the bundle root) at now,
// holds a SPIFFE URI and carries key's public key.
func verifyChain(elems []string, key crypto.Signer, roots *x509.CertPool, now time.Time) (*issued, error) {
	if len(elems) < 2 {
		return nil, fmt.Errorf("returned %d certificate(s); a chain needs the leaf first and the root last", len(elems))
	}
	var certs []*x509.Certificate
	for i, e := range elems {
		cs, err := parseCerts([]byte(e))
		if err != nil {
			return nil, fmt.Errorf("chain element %d: %w", i, err)
		}
		certs = append(certs, cs...)
	}
	root := certs[len(certs)-1]
	c := &issued{key: key, leaf: certs[0], chain: certs[:len(certs)-1], root: root}
	if err := c.verify(roots, now); err != nil {
		return nil, err
	}
	// The last element must be the root the chain was verified to.
	if !root.IsCA || root.CheckSignatureFrom(root) != nil {
		return nil, fmt.Errorf("last chain element (%s) is not a self-signed root", root.Subject)
	}
	anchored := false
	inter := x509.NewCertPool()
	for _, x := range certs[1:] {
		inter.AddCert(x)
	}
	chains, _ := c.leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	for _, ch := range chains {
		if ch[len(ch)-1].Equal(root) {
			anchored = true
		}
	}
	if !anchored {
		return nil, fmt.Errorf("the root the CA returned (%s) is not the bundle root (root-cert.pem); the bundle does not belong to this mesh, mint a new one with istioctl x workload entry configure", root.Subject)
	}
	return c, nil
}

// verify checks c.leaf against roots with c.chain as intermediates, its
// SPIFFE URI, its key and its validity at now, and sets c.spiffeID.
func (c *issued) verify(roots *x509.CertPool, now time.Time) error {
	inter := x509.NewCertPool()
	for _, x := range c.chain[1:] {
		inter.AddCert(x)
	}
	if c.root != nil {
		inter.AddCert(c.root)
	}
	leaf := c.leaf
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		issuer := leaf.Issuer.String()
		if c.root != nil {
			issuer = c.root.Subject.String()
		}
		return fmt.Errorf("certificate (issued by %s, valid %s to %s) does not verify against the bundle root (root-cert.pem): %v; if the mesh root changed, mint a new bundle with istioctl x workload entry configure",
			issuer, leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339), err)
	}
	for _, u := range leaf.URIs {
		if u.Scheme == "spiffe" {
			if c.spiffeID != "" {
				return fmt.Errorf("leaf certificate carries more than one SPIFFE URI (%s, %s)", c.spiffeID, u)
			}
			c.spiffeID = u.String()
		}
	}
	if c.spiffeID == "" || !strings.HasPrefix(c.spiffeID, "spiffe://") {
		return fmt.Errorf("leaf certificate (%s) carries no SPIFFE URI SAN", leaf.Subject)
	}
	pub, ok := c.key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return fmt.Errorf("leaf certificate %s is not for this key", c.spiffeID)
	}
	return nil
}
