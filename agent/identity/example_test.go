package identity_test

import (
	"context"
	"crypto/tls"
	"log"
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/onramp-mesh/onramp/agent/identity"
	"github.com/onramp-mesh/onramp/installer/bundle"
)

// Example obtains the workload certificate for a loaded bundle and uses it
// as the client certificate of a TLS connection to istiod.
func Example() {
	b, err := bundle.Load("/etc/onramp/bundle")
	if err != nil {
		log.Fatal(err)
	}
	m, err := identity.New(identity.Config{
		CAAddress:      b.CAAddress,
		ServerName:     b.ServerName,
		Roots:          b.Roots,
		ClusterID:      b.ClusterID,
		TrustDomain:    b.TrustDomain,
		Namespace:      b.Namespace,
		ServiceAccount: b.ServiceAccount,
		Token: func() (string, error) {
			tok, err := os.ReadFile("/etc/onramp/bundle/" + bundle.FileToken)
			return string(tok), err
		},
	}, hclog.Default())
	if err != nil {
		log.Fatal(err)
	}
	// Start returns once a certificate is in hand and keeps rotating it
	// until the context ends.
	if err := m.Start(context.Background()); err != nil {
		log.Fatal(err) // errors.Is(err, identity.ErrRebootstrap): a fresh bundle is needed
	}
	conf := &tls.Config{
		RootCAs:              b.Roots,
		ServerName:           b.ServerName,
		MinVersion:           tls.VersionTLS12,
		GetClientCertificate: m.GetClientCertificate,
	}
	_ = conf
	log.Println(m.Status().SPIFFEID, m.Status().NextRotation)
}
