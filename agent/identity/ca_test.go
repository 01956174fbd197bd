package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	securityv1alpha1 "istio.io/api/security/v1alpha1"
)

// testAuthority is a self-signed CA.
type testAuthority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
	pool *x509.CertPool
}

func newAuthority(t testing.TB, name string) *testAuthority {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{"cluster.local"}, CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(48 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testAuthority{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pool: pool}
}

func (a *testAuthority) sign(t testing.TB, pub any, nb, na time.Time, uris []*url.URL, dns []string) []byte {
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    nb,
		NotAfter:     na,
		URIs:         uris,
		DNSNames:     dns,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, pub, a.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// caCall records what one CreateCertificate call carried.
type caCall struct {
	auth      []string
	clusterID []string
	peerURIs  []string
	validity  int64
	at        time.Time
}

// testCA serves IstioCertificateService over TLS on loopback. Token
// callers are identified by the token's sub claim
// (system:serviceaccount:<ns>:<sa>), mTLS callers by their certificate.
type testCA struct {
	securityv1alpha1.UnimplementedIstioCertificateServiceServer
	t       testing.TB
	root    *testAuthority // mesh root: serves TLS and verifies clients
	signer  *testAuthority // signs workload certs (root unless testing a wrong root)
	addr    string
	mu      sync.Mutex
	calls   []caCall
	unavail int  // answer Unavailable this many times first
	short   bool // return only the leaf
}

func startCA(t testing.TB) *testCA { return startCAWith(t, false) }

// startCAWith starts the CA; plaintext serves without TLS (15010-style).
func startCAWith(t testing.TB, plaintext bool) *testCA {
	t.Helper()
	root := newAuthority(t, "mesh root")
	ca := &testCA{t: t, root: root, signer: root}
	skey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spem := root.sign(t, &skey.PublicKey, time.Now().Add(-time.Minute), time.Now().Add(time.Hour), nil, []string{"istiod.istio-system.svc"})
	kder, _ := x509.MarshalECPrivateKey(skey)
	scert, err := tls.X509KeyPair(spem, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var opts []grpc.ServerOption
	if !plaintext {
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{
			Certificates: []tls.Certificate{scert},
			ClientAuth:   tls.VerifyClientCertIfGiven,
			ClientCAs:    root.pool,
			MinVersion:   tls.VersionTLS12,
		})))
	}
	srv := grpc.NewServer(opts...)
	securityv1alpha1.RegisterIstioCertificateServiceServer(srv, ca)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	ca.addr = lis.Addr().String()
	return ca
}

func (ca *testCA) CreateCertificate(ctx context.Context, req *securityv1alpha1.IstioCertificateRequest) (*securityv1alpha1.IstioCertificateResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	c := caCall{auth: md.Get("authorization"), clusterID: md.Get("clusterid"), validity: req.GetValidityDuration(), at: time.Now()}
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
			for _, u := range ti.State.VerifiedChains[0][0].URIs {
				c.peerURIs = append(c.peerURIs, u.String())
			}
		}
	}
	ca.mu.Lock()
	ca.calls = append(ca.calls, c)
	unavail := ca.unavail > 0
	if unavail {
		ca.unavail--
	}
	ca.mu.Unlock()
	if unavail {
		return nil, status.Error(codes.Unavailable, "caches not synced")
	}
	var id string
	switch {
	case len(c.peerURIs) == 1:
		id = c.peerURIs[0]
	case len(c.auth) == 1 && strings.HasPrefix(c.auth[0], "Bearer "):
		sub, exp, err := readTestToken(strings.TrimPrefix(c.auth[0], "Bearer "))
		if err != nil || time.Now().After(exp) {
			return nil, status.Errorf(codes.Unauthenticated, "token rejected: %v", err)
		}
		f := strings.Split(sub, ":")
		if len(f) != 4 {
			return nil, status.Error(codes.Unauthenticated, "bad subject")
		}
		id = fmt.Sprintf("spiffe://cluster.local/ns/%s/sa/%s", f[2], f[3])
	default:
		return nil, status.Error(codes.Unauthenticated, "no credentials")
	}
	block, _ := pem.Decode([]byte(req.GetCsr()))
	if block == nil {
		return nil, status.Error(codes.InvalidArgument, "csr is not PEM")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		return nil, status.Error(codes.InvalidArgument, "bad csr")
	}
	u, _ := url.Parse(id)
	now := time.Now()
	leaf := ca.signer.sign(ca.t, csr.PublicKey, now, now.Add(time.Duration(req.GetValidityDuration())*time.Second), []*url.URL{u}, nil)
	chain := []string{string(leaf), string(ca.signer.pem)}
	if ca.short {
		chain = chain[:1]
	}
	return &securityv1alpha1.IstioCertificateResponse{CertChain: chain}, nil
}

func (ca *testCA) callLog() []caCall {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	return append([]caCall(nil), ca.calls...)
}

func testToken(sub string, exp time.Time) string {
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "RS256"})
	p, _ := json.Marshal(map[string]any{"aud": []string{"istio-ca"}, "sub": sub, "exp": exp.Unix()})
	return enc.EncodeToString(h) + "." + enc.EncodeToString(p) + "." + enc.EncodeToString([]byte("sig"))
}

func readTestToken(tok string) (string, time.Time, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", time.Time{}, fmt.Errorf("not a JWT")
	}
	p, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", time.Time{}, err
	}
	var c struct {
		Sub string `json:"sub"`
		Exp int64  `json:"exp"`
	}
	if err := json.Unmarshal(p, &c); err != nil {
		return "", time.Time{}, err
	}
	return c.Sub, time.Unix(c.Exp, 0), nil
}
