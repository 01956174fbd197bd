package ca_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/onramp-mesh/onramp/testbed/ca"
)

// A bundle's token proves a service account; the CA issues that identity
// whatever the CSR asks for.
func Example() {
	authority, err := ca.New(ca.Options{MaxCertTTL: time.Hour}, nil)
	if err != nil {
		panic(err)
	}
	token, _ := authority.MintToken("vm", "vm-sa", time.Hour)
	id, _, err := authority.VerifyToken(token)
	if err != nil {
		panic(err)
	}

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	csr := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})

	chain, err := authority.Sign(csr, id, 0)
	if err != nil {
		panic(err)
	}
	blk, _ := pem.Decode([]byte(chain[0]))
	leaf, _ := x509.ParseCertificate(blk.Bytes)
	fmt.Println(len(chain), leaf.URIs[0], leaf.NotAfter.Sub(leaf.NotBefore))
	// Output: 2 spiffe://cluster.local/ns/vm/sa/vm-sa 1h0m0s
}
