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
		m.setError(err)
		m.log.Warn("CA not ready; retrying", "address", m.cfg.CAAddress, "attempt", attempt, "wait", backoff, "error", err)
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

func isUnauthenticated(err error) bool {
	c := status.Code(err)
	return c == codes.Unauthenticated || c == codes.PermissionDenied
}
