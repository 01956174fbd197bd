package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	securityv1alpha1 "istio.io/api/security/v1alpha1"
)

// newKey generates the workload key.
func newKey(keyType string) (crypto.Signer, error) {
	if keyType == KeyRSA {
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// newCSR returns a PEM CSR for key carrying spiffeID as its only URI SAN.
func newCSR(key crypto.Signer, spiffeID string) ([]byte, error) {
	u, err := url.Parse(spiffeID)
	if err != nil {
		return nil, fmt.Errorf("identity: SPIFFE ID %q: %w", spiffeID, err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{u}}, key)
	if err != nil {
		return nil, fmt.Errorf("identity: create CSR: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// transportCredentials returns the credentials for one CA connection; a
// non-nil client certificate is presented for mTLS.
func (m *Manager) transportCredentials(client *tls.Certificate) credentials.TransportCredentials {
	if m.cfg.Plaintext {
		return insecure.NewCredentials()
	}
	tc := &tls.Config{
		RootCAs:    m.cfg.Roots,
		ServerName: m.cfg.ServerName,
		MinVersion: tls.VersionTLS12,
	}
	if client != nil {
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return client, nil }
	}
	return credentials.NewTLS(tc)
}

// obtain generates a key, has the CA sign it and verifies, stores and
// returns the result. Authentication is the Bearer token when token is set,
// else mTLS with client. Unavailable (and other transient) answers are
// retried with exponential backoff until ctx ends.
func (m *Manager) obtain(ctx context.Context, token string, client *tls.Certificate) (*issued, error) {
	key, err := newKey(m.cfg.KeyType)
	if err != nil {
		return nil, fmt.Errorf("identity: generate %s key: %w", m.cfg.KeyType, err)
	}
	csr, err := newCSR(key, m.SPIFFEID())
	if err != nil {
		return nil, err
	}
	req := &securityv1alpha1.IstioCertificateRequest{
		Csr:              string(csr),
		ValidityDuration: int64(m.cfg.Validity / time.Second),
	}
	backoff := m.cfg.RetryBackoff
	for attempt := 1; ; attempt++ {
		chain, err := m.call(ctx, req, token, client)
		if err == nil {
			c, verr := verifyChain(chain, key, m.cfg.Roots, m.cfg.Now())
			if verr != nil {
				return nil, fmt.Errorf("identity: CA %s: %w", m.cfg.CAAddress, verr)
			}
			if c.spiffeID != m.SPIFFEID() {
				m.log.Warn("CA issued a different identity than requested (istiod uses the caller's authenticated identity)", "requested", m.SPIFFEID(), "issued", c.spiffeID)
			}
			if err := m.store.save(c); err != nil {
				return nil, err
			}
			return c, nil
		}
		if !transient(err) {
			return nil, fmt.Errorf("identity: CreateCertificate at %s failed: %w", m.cfg.CAAddress, err)
		}
		if hint := tlsHint(err, m.cfg.CAAddress, m.cfg.ServerName); hint != nil {
			// Retried all the same: istiod's certificate may be mid-rotation.
			err = hint
			m.log.Error("cannot verify the control plane; retrying", "attempt", attempt, "wait", backoff, "error", err)
		} else {
			m.log.Warn("CA not ready; retrying", "address", m.cfg.CAAddress, "attempt", attempt, "wait", backoff, "error", err)
		}
		m.setError(err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("identity: gave up on the CA at %s after %d attempts: %w (last error: %v)", m.cfg.CAAddress, attempt, ctx.Err(), err)
		case <-t.C:
		}
		backoff = min(backoff*2, 30*m.cfg.RetryBackoff, 5*time.Minute)
	}
}

// call makes one CreateCertificate call on a fresh connection.
func (m *Manager) call(ctx context.Context, req *securityv1alpha1.IstioCertificateRequest, token string, client *tls.Certificate) ([]string, error) {
	conn, err := grpc.NewClient("passthrough:///"+m.cfg.CAAddress, grpc.WithTransportCredentials(m.transportCredentials(client)))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	md := metadata.Pairs("ClusterID", m.cfg.ClusterID)
	if token != "" {
		md.Append("authorization", "Bearer "+token)
	}
	cctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(ctx, md), m.cfg.CallTimeout)
	defer cancel()
	resp, err := securityv1alpha1.NewIstioCertificateServiceClient(conn).CreateCertificate(cctx, req)
	if err != nil {
		return nil, err
	}
	return resp.GetCertChain(), nil
}

func transient(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
		return true
	}
	return false
}

// tlsHint explains a failed verification of the CA's certificate, which
// means the bundle's root-cert.pem is not the mesh's root (a bundle from
// another mesh, or a root that was replaced) or the server name is wrong.
// It returns nil for any other error.
func tlsHint(err error, addr, serverName string) error {
	msg := err.Error()
	if !strings.Contains(msg, "x509:") && !strings.Contains(msg, "tls: failed to verify") {
		return nil
	}
	return fmt.Errorf("identity: the certificate of %s does not verify against the bundle's root-cert.pem for server name %q (%v); "+
		"the bundle may come from another mesh or an old root: mint a fresh bundle with istioctl x workload entry configure, "+
		"or set ISTIOD_SAN in cluster.env if istiod's certificate carries another name", addr, serverName, status.Convert(err).Message())
}

func isUnauthenticated(err error) bool {
	c := status.Code(err)
	return c == codes.Unauthenticated || c == codes.PermissionDenied
}
