package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/onramp-mesh/onramp/agent/atomicfile"
)

// Files the authority keeps in its state directory.
const (
	FileRootCert = "root-cert.pem"
	FileRootKey  = "root-key.pem"
	FileTokenKey = "token-key.pem"
)

// Defaults.
const (
	DefaultTrustDomain = "cluster.local"
	DefaultMaxCertTTL  = 24 * time.Hour
	DefaultTokenTTL    = time.Hour
	DefaultIssuer      = "https://kubernetes.default.svc.cluster.local"
	// Audience is the JWT audience istiod's CA accepts.
	Audience = "istio-ca"
	rootTTL  = 10 * 365 * 24 * time.Hour
)

// Options configure an Authority.
type Options struct {
	// StateDir keeps the root key and certificate and the token signing key.
	// Empty keeps everything in memory (a new root every time).
	StateDir string
	// TrustDomain of issued identities; default cluster.local.
	TrustDomain string
	// MaxCertTTL caps the lifetime of issued workload certificates; it is
	// also the lifetime when a request asks for none. Default 24h.
	MaxCertTTL time.Duration
	// Issuer is the iss claim of minted tokens and the only one accepted.
	Issuer string
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Authority is a certificate authority with a persisted root and a token
// signing key. It is safe for concurrent use.
type Authority struct {
	opts     Options
	log      hclog.Logger
	root     *x509.Certificate
	rootKey  crypto.Signer
	rootPEM  []byte
	pool     *x509.CertPool
	tokenKey *ecdsa.PrivateKey
	keyID    string
}

// New loads the root and token key from opts.StateDir, creating and
// persisting them on first use. A state directory holding a broken or
// mismatched root is an error, never silently replaced.
func New(opts Options, log hclog.Logger) (*Authority, error) {
	if opts.TrustDomain == "" {
		opts.TrustDomain = DefaultTrustDomain
	}
	if opts.MaxCertTTL <= 0 {
		opts.MaxCertTTL = DefaultMaxCertTTL
	}
	if opts.Issuer == "" {
		opts.Issuer = DefaultIssuer
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	a := &Authority{opts: opts, log: log.Named("ca")}
	if err := a.loadOrCreateRoot(); err != nil {
		return nil, err
	}
	if err := a.loadOrCreateTokenKey(); err != nil {
		return nil, err
	}
	return a, nil
}

// TrustDomain returns the trust domain of issued identities.
func (a *Authority) TrustDomain() string { return a.opts.TrustDomain }

// MaxCertTTL returns the cap on workload certificate lifetimes.
func (a *Authority) MaxCertTTL() time.Duration { return a.opts.MaxCertTTL }

// RootPEM returns the root certificate in PEM form (root-cert.pem of bundles).
func (a *Authority) RootPEM() []byte { return bytes.Clone(a.rootPEM) }

// Root returns the root certificate.
func (a *Authority) Root() *x509.Certificate { return a.root }

// Pool returns a pool holding only the root.
func (a *Authority) Pool() *x509.CertPool { return a.pool }

func (a *Authority) path(name string) string { return filepath.Join(a.opts.StateDir, name) }

func (a *Authority) loadOrCreateRoot() error {
	if a.opts.StateDir != "" {
		certPEM, cerr := os.ReadFile(a.path(FileRootCert))
		keyPEM, kerr := os.ReadFile(a.path(FileRootKey))
		switch {
		case cerr == nil && kerr == nil:
			return a.loadRoot(certPEM, keyPEM)
		case errors.Is(cerr, fs.ErrNotExist) && errors.Is(kerr, fs.ErrNotExist):
			// first start: create below
		case cerr != nil && !errors.Is(cerr, fs.ErrNotExist):
			return fmt.Errorf("ca: read %s: %w", a.path(FileRootCert), cerr)
		case kerr != nil && !errors.Is(kerr, fs.ErrNotExist):
			return fmt.Errorf("ca: read %s: %w", a.path(FileRootKey), kerr)
		default:
			return fmt.Errorf("ca: state dir %s holds only one of %s and %s; restore the missing file or remove both to create a new root (bundles minted with the old root stop working)",
				a.opts.StateDir, FileRootCert, FileRootKey)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("ca: generate root key: %w", err)
	}
	now := a.opts.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{Organization: []string{a.opts.TrustDomain}, CommonName: "onramp testbed root CA"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(rootTTL),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("ca: self-sign root: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("ca: encode root key: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if a.opts.StateDir != "" {
		if err := os.MkdirAll(a.opts.StateDir, 0o700); err != nil {
			return fmt.Errorf("ca: create state dir: %w", err)
		}
		if err := atomicfile.Write(a.path(FileRootKey), keyPEM, 0o600); err != nil {
			return fmt.Errorf("ca: %w", err)
		}
		if err := atomicfile.Write(a.path(FileRootCert), certPEM, 0o644); err != nil {
			return fmt.Errorf("ca: %w", err)
		}
		a.log.Info("created new root", "dir", a.opts.StateDir)
	}
	return a.loadRoot(certPEM, keyPEM)
}

func (a *Authority) loadRoot(certPEM, keyPEM []byte) error {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return fmt.Errorf("ca: %s is not a PEM certificate; restore it or remove %s and %s to create a new root", a.path(FileRootCert), FileRootCert, FileRootKey)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return fmt.Errorf("ca: parse %s: %w", a.path(FileRootCert), err)
	}
	if !cert.IsCA {
		return fmt.Errorf("ca: %s is not a CA certificate", a.path(FileRootCert))
	}
	if now := a.opts.Now(); now.After(cert.NotAfter) {
		return fmt.Errorf("ca: root %s expired at %s; remove %s and %s to create a new root and mint new bundles",
			a.path(FileRootCert), cert.NotAfter.UTC().Format(time.RFC3339), FileRootCert, FileRootKey)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return fmt.Errorf("ca: %s: %w", a.path(FileRootKey), err)
	}
	if !publicKeysEqual(key.Public(), cert.PublicKey) {
		return fmt.Errorf("ca: %s does not match %s; restore the matching pair", a.path(FileRootKey), a.path(FileRootCert))
	}
	a.root, a.rootKey, a.rootPEM = cert, key, pem.EncodeToMemory(cb)
	a.pool = x509.NewCertPool()
	a.pool.AddCert(cert)
	return nil
}

func (a *Authority) loadOrCreateTokenKey() error {
	if a.opts.StateDir != "" {
		b, err := os.ReadFile(a.path(FileTokenKey))
		if err == nil {
			k, err := parseKey(b)
			if err != nil {
				return fmt.Errorf("ca: %s: %w", a.path(FileTokenKey), err)
			}
			ek, ok := k.(*ecdsa.PrivateKey)
			if !ok || ek.Curve != elliptic.P256() {
				return fmt.Errorf("ca: %s is not an ECDSA P-256 key; remove it to create a new one (outstanding tokens stop working)", a.path(FileTokenKey))
			}
			a.setTokenKey(ek)
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("ca: read %s: %w", a.path(FileTokenKey), err)
		}
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("ca: generate token key: %w", err)
	}
	if a.opts.StateDir != "" {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return fmt.Errorf("ca: encode token key: %w", err)
		}
		if err := os.MkdirAll(a.opts.StateDir, 0o700); err != nil {
			return fmt.Errorf("ca: create state dir: %w", err)
		}
		if err := atomicfile.Write(a.path(FileTokenKey), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return fmt.Errorf("ca: %w", err)
		}
	}
	a.setTokenKey(k)
	return nil
}

func parseKey(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("not a PEM private key")
	}
	var k any
	var err error
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("unsupported PEM block %q", blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key type %T cannot sign", k)
	}
	return s, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type eq interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(eq)
	return ok && e.Equal(b)
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic("ca: system randomness failed: " + err.Error())
	}
	return n.Add(n, big.NewInt(1))
}
