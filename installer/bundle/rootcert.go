package bundle

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"
)

// ParseRootCerts parses root-cert.pem: one or more PEM CERTIFICATE blocks,
// each a CA certificate valid at now. Anything else in the file is an error.
func ParseRootCerts(data []byte, now time.Time) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, &Error{File: FileRootCert, Msg: fmt.Sprintf("PEM block %d is %q, want CERTIFICATE", n, block.Type)}
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, &Error{File: FileRootCert, Msg: fmt.Sprintf("certificate %d does not parse", n), Err: err}
		}
		if !c.BasicConstraintsValid || !c.IsCA {
			return nil, &Error{File: FileRootCert, Msg: fmt.Sprintf("certificate %d (%s) is not a CA certificate; root-cert.pem must hold the mesh root (istio-ca-root-cert)", n, c.Subject)}
		}
		if now.After(c.NotAfter) {
			return nil, &Error{File: FileRootCert, Msg: fmt.Sprintf("certificate %d (%s) expired at %s; mint a new bundle with the current mesh root", n, c.Subject, c.NotAfter.UTC().Format(time.RFC3339))}
		}
		if now.Before(c.NotBefore) {
			return nil, &Error{File: FileRootCert, Msg: fmt.Sprintf("certificate %d (%s) is not valid before %s; check this machine's clock", n, c.Subject, c.NotBefore.UTC().Format(time.RFC3339))}
		}
		certs = append(certs, c)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		if len(certs) == 0 {
			return nil, &Error{File: FileRootCert, Msg: "not PEM: no -----BEGIN CERTIFICATE----- block found"}
		}
		return nil, &Error{File: FileRootCert, Msg: fmt.Sprintf("unparsable data after certificate %d", len(certs))}
	}
	if len(certs) == 0 {
		return nil, &Error{File: FileRootCert, Msg: "not PEM: no certificate found"}
	}
	return certs, nil
}
