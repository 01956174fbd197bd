// Package identity turns the onboarding bundle's token into a workload
// certificate from the Istio CA (istio.v1.auth.IstioCertificateService) and
// keeps it fresh.
//
// The first certificate is requested with the bundle's JWT as a Bearer token;
// every renewal authenticates with mutual TLS using the current certificate,
// so the one-hour token is needed only once. Key, chain and root are kept
// under StateDir, so after a reboot with an expired token the agent still
// starts with the stored certificate. Certificates rotate at 50% ±1% of their
// lifetime.
package identity

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// DefaultStateDir is where key and certificates are kept.
const DefaultStateDir = "/var/lib/onramp"

// DefaultValidity is the certificate lifetime requested from the CA.
const DefaultValidity = 24 * time.Hour

// Key types for Config.KeyType.
const (
	KeyECDSA = "ecdsa" // P-256
	KeyRSA   = "rsa"   // 2048 bits
)

// ErrRebootstrap is matched (errors.Is) by the error Start returns when
// neither a valid stored certificate nor a usable token exists.
var ErrRebootstrap = errors.New("identity: re-bootstrap needed")

// Config configures a Manager.
type Config struct {
	// CAAddress is the CA's host:port (istiod's 15012).
	CAAddress string
	// ServerName is the name istiod's certificate is verified against; when
	// empty, the host of CAAddress ("localhost" becomes istiod.istio-system.svc).
	ServerName string
	// Plaintext speaks to the CA without TLS (15010-style, tests and dev only).
	// Renewals then use the token, since there is no TLS to carry mTLS.
	Plaintext bool
	// Roots is the mesh root (the bundle's root-cert.pem). Required.
	Roots *x509.CertPool
	// ClusterID is sent as ClusterID metadata on every call.
	ClusterID string

	// TrustDomain, Namespace and ServiceAccount form the SPIFFE ID
	// spiffe://<TrustDomain>/ns/<Namespace>/sa/<ServiceAccount>.
	TrustDomain, Namespace, ServiceAccount string

	// Token returns the bundle token (it may have expired).
	Token func() (string, error)

	// KeyType is KeyECDSA (default) or KeyRSA.
	KeyType string
	// Validity is the lifetime requested from the CA (default 24h).
	Validity time.Duration
	// StateDir holds key.pem, cert-chain.pem and root-cert.pem
	// (default /var/lib/onramp).
	StateDir string

	// Now is the clock (default time.Now).
	Now func() time.Time
	// RetryBackoff is the first wait after a transient CA error; it doubles
	// up to 30 times its value, capped at 5 minutes (default 1s).
	RetryBackoff time.Duration
	// CallTimeout bounds one CreateCertificate call (default 30s).
	CallTimeout time.Duration
}

// Status is a snapshot of the Manager's state.
type Status struct {
	// SPIFFEID is the identity in the current certificate.
	SPIFFEID string
	// NotBefore and NotAfter bound the current certificate.
	NotBefore, NotAfter time.Time
	// NextRotation is when renewal is scheduled.
	NextRotation time.Time
	// Source says where the current certificate came from: "stored",
	// "token" (bootstrap) or "renewal".
	Source string
	// Renewals counts successful renewals since Start.
	Renewals int
	// LastError is the most recent failure ("" after a success) and
	// LastErrorAt its time.
	LastError   string
	LastErrorAt time.Time
}

// Manager obtains, stores and rotates the workload certificate.
type Manager struct {
	cfg   Config
	log   hclog.Logger
	store *store
	rng   func() float64

	mu     sync.RWMutex
	cert   *tls.Certificate
	leaf   *x509.Certificate
	status Status

	ready     chan struct{}
	readyOnce sync.Once
	started   bool
	rotating  sync.WaitGroup // the rotation loop Start runs
}

// New checks cfg and returns a Manager; nothing happens until Start. log is
// used as given (name it per component, e.g. log.Named("identity")); nil
// discards logs.
func New(cfg Config, log hclog.Logger) (*Manager, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if cfg.CAAddress == "" {
		return nil, errors.New("identity: no CA address; set CA_ADDR in cluster.env or discoveryAddress in mesh.yaml")
	}
	host, _, err := net.SplitHostPort(cfg.CAAddress)
	if err != nil {
		return nil, fmt.Errorf("identity: CA address %q is not host:port: %w", cfg.CAAddress, err)
	}
	if cfg.Roots == nil {
		return nil, errors.New("identity: no root certificates; the bundle's root-cert.pem is required to verify the CA")
	}
	if cfg.TrustDomain == "" {
		cfg.TrustDomain = "cluster.local"
	}
	if cfg.Namespace == "" || cfg.ServiceAccount == "" {
		return nil, fmt.Errorf("identity: namespace %q and service account %q are both required (POD_NAMESPACE, SERVICE_ACCOUNT)", cfg.Namespace, cfg.ServiceAccount)
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
		if strings.EqualFold(host, "localhost") {
			cfg.ServerName = "istiod.istio-system.svc"
		}
	}
	switch cfg.KeyType {
	case "":
		cfg.KeyType = KeyECDSA
	case KeyECDSA, KeyRSA:
	default:
		return nil, fmt.Errorf("identity: key type %q is not %q or %q", cfg.KeyType, KeyECDSA, KeyRSA)
	}
	if cfg.Validity == 0 {
		cfg.Validity = DefaultValidity
	}
	if cfg.Validity < time.Second {
		return nil, fmt.Errorf("identity: validity %v is shorter than a second", cfg.Validity)
	}
	if cfg.StateDir == "" {
		cfg.StateDir = DefaultStateDir
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = time.Second
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 30 * time.Second
	}
	if cfg.Token == nil {
		cfg.Token = func() (string, error) { return "", errors.New("no token configured") }
	}
	return &Manager{
		cfg:   cfg,
		log:   log,
		store: &store{dir: cfg.StateDir},
		rng:   rand.Float64,
		ready: make(chan struct{}),
	}, nil
}

// SPIFFEID is the identity this Manager requests.
func (m *Manager) SPIFFEID() string {
	return fmt.Sprintf("spiffe://%s/ns/%s/sa/%s", m.cfg.TrustDomain, m.cfg.Namespace, m.cfg.ServiceAccount)
}

// Ready is closed once a valid certificate is in hand.
func (m *Manager) Ready() <-chan struct{} { return m.ready }

// ClientCertificate returns the current certificate, for
// tls.Config.GetClientCertificate; it fails before Start has obtained one.
func (m *Manager) ClientCertificate() (*tls.Certificate, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.cert == nil {
		return nil, errors.New("identity: no workload certificate yet; Start has not obtained one")
	}
	return m.cert, nil
}

// GetClientCertificate has the signature of tls.Config.GetClientCertificate.
func (m *Manager) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return m.ClientCertificate()
}

// ClientTLSConfig returns a TLS client configuration that presents the
// current certificate and verifies the peer against the mesh root as
// serverName (empty: the CA's server name).
func (m *Manager) ClientTLSConfig(serverName string) *tls.Config {
	if serverName == "" {
		serverName = m.cfg.ServerName
	}
	return &tls.Config{
		RootCAs:              m.cfg.Roots,
		ServerName:           serverName,
		MinVersion:           tls.VersionTLS12,
		GetClientCertificate: m.GetClientCertificate,
	}
}

// Status returns a snapshot of the current state.
func (m *Manager) Status() Status {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.status
}

func (m *Manager) setError(err error) {
	m.mu.Lock()
	m.status.LastError = err.Error()
	m.status.LastErrorAt = m.cfg.Now()
	m.mu.Unlock()
}

// install makes c the current certificate and schedules its rotation.
func (m *Manager) install(c *issued, source string) {
	next := rotationTime(c.leaf.NotBefore, c.leaf.NotAfter, m.rng())
	m.mu.Lock()
	m.cert = c.tlsCert()
	m.leaf = c.leaf
	m.status.SPIFFEID = c.spiffeID
	m.status.NotBefore = c.leaf.NotBefore
	m.status.NotAfter = c.leaf.NotAfter
	m.status.NextRotation = next
	m.status.Source = source
	if source == "renewal" {
		m.status.Renewals++
	}
	m.status.LastError = ""
	m.status.LastErrorAt = time.Time{}
	m.mu.Unlock()
	m.readyOnce.Do(func() { close(m.ready) })
	m.log.Info("workload certificate in use", "source", source, "spiffe_id", c.spiffeID,
		"not_after", c.leaf.NotAfter.UTC().Format(time.RFC3339), "next_rotation", next.UTC().Format(time.RFC3339))
}

// rotationTime is 50% ±1% of the lifetime from NotBefore; r is in [0,1).
func rotationTime(notBefore, notAfter time.Time, r float64) time.Time {
	life := notAfter.Sub(notBefore)
	frac := 0.49 + 0.02*r
	return notBefore.Add(time.Duration(float64(life) * frac))
}

// Start brings up the identity: a valid stored certificate is used as is;
// otherwise one is requested with the token (retrying while the CA is
// unavailable, until ctx ends). It then rotates the certificate in the
// background until ctx is cancelled; Wait waits for that to end. When
// neither a valid certificate nor a usable token exists, the error matches
// ErrRebootstrap.
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	again := m.started
	m.started = true
	m.mu.Unlock()
	if again {
		return errors.New("identity: Start called twice")
	}
	stored, storedErr := m.store.load(m.cfg.Roots, m.cfg.Now())
	if stored != nil {
		m.install(stored, "stored")
	} else {
		if storedErr != nil {
			m.log.Info("no usable stored certificate; bootstrapping with the bundle token", "dir", m.cfg.StateDir, "reason", storedErr)
		}
		c, err := m.bootstrap(ctx, storedErr)
		if err != nil {
			m.setError(err)
			return err
		}
		m.install(c, "token")
	}
	m.rotating.Add(1)
	go func() {
		defer m.rotating.Done()
		m.rotateLoop(ctx)
	}()
	return nil
}

// Wait returns once the rotation Start began has ended (its context was
// cancelled), so that nothing writes the state directory any more. It
// returns at once when Start did not succeed.
func (m *Manager) Wait() { m.rotating.Wait() }

// bootstrap obtains a certificate with the token and stores it.
func (m *Manager) bootstrap(ctx context.Context, why error) (*issued, error) {
	tok, err := m.usableToken(why)
	if err != nil {
		return nil, err
	}
	c, err := m.obtain(ctx, tok, nil)
	if err != nil {
		if isUnauthenticated(err) {
			return nil, fmt.Errorf("%w: the CA at %s refused the bundle token (%v); mint a fresh bundle with istioctl x workload entry configure and start the agent with it (onramp run --bundle DIR)", ErrRebootstrap, m.cfg.CAAddress, err)
		}
		return nil, err
	}
	return c, nil
}

// usableToken returns the token if it can still authenticate, or the
// re-bootstrap error.
func (m *Manager) usableToken(why error) (string, error) {
	certState := "no certificate is stored"
	if why != nil {
		certState = why.Error()
	}
	tok, err := m.cfg.Token()
	if err != nil {
		return "", fmt.Errorf("%w: %s and the bundle token cannot be read (%v); mint a fresh bundle with istioctl x workload entry configure and start the agent with it (onramp run --bundle DIR)", ErrRebootstrap, certState, err)
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", fmt.Errorf("%w: %s and the bundle token is empty; mint a fresh bundle with istioctl x workload entry configure and start the agent with it (onramp run --bundle DIR)", ErrRebootstrap, certState)
	}
	if exp, ok := tokenExpiry(tok); ok && !m.cfg.Now().Before(exp) {
		return "", fmt.Errorf("%w: %s and the bundle token expired at %s; mint a fresh bundle with istioctl x workload entry configure and start the agent with it (onramp run --bundle DIR)",
			ErrRebootstrap, certState, exp.UTC().Format(time.RFC3339))
	}
	return tok, nil
}

// rotateLoop renews the certificate at its rotation time until ctx ends.
func (m *Manager) rotateLoop(ctx context.Context) {
	for {
		m.mu.RLock()
		next := m.status.NextRotation
		m.mu.RUnlock()
		wait := next.Sub(m.cfg.Now())
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		c, err := m.renew(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			m.setError(err)
			m.log.Error("certificate renewal failed", "error", err)
			// obtain already retried transient errors; try again later, at
			// most at a tenth of the remaining lifetime.
			m.mu.Lock()
			remaining := m.status.NotAfter.Sub(m.cfg.Now())
			delay := min(max(remaining/10, m.cfg.RetryBackoff), 5*time.Minute)
			m.status.NextRotation = m.cfg.Now().Add(delay)
			m.mu.Unlock()
			continue
		}
		m.install(c, "renewal")
	}
}

// renew obtains a new certificate: over mTLS with the current one while it is
// valid, else with the token if it is still usable.
func (m *Manager) renew(ctx context.Context) (*issued, error) {
	m.mu.RLock()
	cur, leaf := m.cert, m.leaf
	m.mu.RUnlock()
	now := m.cfg.Now()
	if !m.cfg.Plaintext && leaf != nil && now.Before(leaf.NotAfter) {
		return m.obtain(ctx, "", cur)
	}
	why := fmt.Errorf("the certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	if m.cfg.Plaintext {
		why = errors.New("renewals over a plaintext CA connection need the token")
	}
	tok, err := m.usableToken(why)
	if err != nil {
		return nil, err
	}
	return m.obtain(ctx, tok, nil)
}
