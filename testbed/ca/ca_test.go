package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newCSR(t testing.TB, uri string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{Organization: []string{"x"}}}
	if uri != "" {
		u, _ := url.Parse(uri)
		tmpl.URIs = []*url.URL{u}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func parseChain(t *testing.T, chain []string) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for _, p := range chain {
		b, _ := pem.Decode([]byte(p))
		if b == nil {
			t.Fatalf("chain element is not PEM: %q", p)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func TestRootPersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	a1, err := New(Options{StateDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a1.MintToken("vm", "sa", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := New(Options{StateDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(a1.RootPEM()) != string(a2.RootPEM()) {
		t.Fatal("root changed across restart")
	}
	if _, _, err := a2.VerifyToken(tok); err != nil {
		t.Fatalf("token minted before restart rejected after: %v", err)
	}
	st, err := os.Stat(filepath.Join(dir, FileRootKey))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("root key mode %v, want 0600", st.Mode().Perm())
	}
	// A different state dir gives a different root.
	a3, err := New(Options{StateDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(a3.RootPEM()) == string(a1.RootPEM()) {
		t.Fatal("two state dirs share a root")
	}
}

func TestBrokenStateIsNotReplaced(t *testing.T) {
	dir := t.TempDir()
	if _, err := New(Options{StateDir: dir}, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, FileRootCert), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{StateDir: dir}, nil); err == nil || !strings.Contains(err.Error(), FileRootCert) {
		t.Fatalf("broken root: err = %v, want an error naming %s", err, FileRootCert)
	}
	b, _ := os.ReadFile(filepath.Join(dir, FileRootCert))
	if string(b) != "garbage" {
		t.Fatal("broken root was overwritten")
	}
	dir2 := t.TempDir()
	if _, err := New(Options{StateDir: dir2}, nil); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir2, FileRootKey))
	if _, err := New(Options{StateDir: dir2}, nil); err == nil {
		t.Fatal("missing root key accepted")
	}
}

func TestSignUsesCallerIdentity(t *testing.T) {
	a, err := New(Options{MaxCertTTL: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := Identity{Namespace: "vm", ServiceAccount: "vm-sa"}
	chain, err := a.Sign(newCSR(t, "spiffe://cluster.local/ns/kube-system/sa/admin"), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	certs := parseChain(t, chain)
	if len(certs) != 2 {
		t.Fatalf("chain has %d elements, want leaf and root", len(certs))
	}
	if !certs[1].Equal(a.Root()) {
		t.Fatal("root is not last in the chain")
	}
	leaf := certs[0]
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://cluster.local/ns/vm/sa/vm-sa" {
		t.Fatalf("leaf URIs = %v, want the caller's identity", leaf.URIs)
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got != time.Hour {
		t.Fatalf("lifetime %s, want the 1h max for a zero request", got)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: a.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatal(err)
	}
	got, err := a.IdentityFromChains([][]*x509.Certificate{certs})
	if err != nil || got != (Identity{TrustDomain: "cluster.local", Namespace: "vm", ServiceAccount: "vm-sa"}) {
		t.Fatalf("IdentityFromChains = %v, %v", got, err)
	}

	// Requested lifetimes: shorter kept, longer capped, negative rejected.
	chain, err = a.Sign(newCSR(t, ""), id, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if l := parseChain(t, chain)[0]; l.NotAfter.Sub(l.NotBefore) != 10*time.Minute {
		t.Fatalf("lifetime %s, want 10m", l.NotAfter.Sub(l.NotBefore))
	}
	chain, err = a.Sign(newCSR(t, ""), id, 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if l := parseChain(t, chain)[0]; l.NotAfter.Sub(l.NotBefore) != time.Hour {
		t.Fatalf("lifetime %s, want capped to 1h", l.NotAfter.Sub(l.NotBefore))
	}
	var te *TTLError
	if _, err := a.Sign(newCSR(t, ""), id, -time.Second); !errors.As(err, &te) {
		t.Fatalf("negative ttl: err = %v, want TTLError", err)
	}
}

func TestSignRejectsBadCSR(t *testing.T) {
	a, err := New(Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := Identity{Namespace: "vm", ServiceAccount: "sa"}
	good := newCSR(t, "")
	blk, _ := pem.Decode(good)
	tampered := append([]byte(nil), blk.Bytes...)
	tampered[len(tampered)-3] ^= 0xff // inside the signature
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, small)
	cases := map[string][]byte{
		"not pem":       []byte("hello"),
		"wrong block":   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: blk.Bytes}),
		"garbage der":   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: []byte{1, 2, 3}}),
		"bad signature": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tampered}),
		"rsa 1024":      pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: smallDER}),
	}
	for name, csr := range cases {
		t.Run(name, func(t *testing.T) {
			var ce *CSRError
			if _, err := a.Sign(csr, id, 0); !errors.As(err, &ce) {
				t.Fatalf("err = %v, want CSRError", err)
			}
		})
	}
}

func TestTokens(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := now
	a, err := New(Options{TrustDomain: "example.org", Now: func() time.Time { return clock }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.MintToken("vm", "vm-sa", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id, c, err := a.VerifyToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	if id.String() != "spiffe://example.org/ns/vm/sa/vm-sa" {
		t.Fatalf("identity %s", id)
	}
	if c.Subject != "system:serviceaccount:vm:vm-sa" || c.Expiry != now.Add(time.Hour).Unix() || c.IssuedAt != now.Unix() {
		t.Fatalf("claims %+v", c)
	}

	other, _ := New(Options{TrustDomain: "example.org", Now: func() time.Time { return clock }}, nil)
	foreign, _ := other.MintToken("vm", "vm-sa", time.Hour)
	parts := strings.Split(tok, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	forged := strings.Replace(string(payload), `"vm-sa"`, `"admin"`, 1)
	forged = strings.Replace(forged, `vm:vm-sa`, `vm:admin`, 1)
	tamperedTok := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(forged)) + "." + parts[2]
	noneTok := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + "."

	for name, bad := range map[string]string{
		"other signer": foreign,
		"tampered":     tamperedTok,
		"alg none":     noneTok,
		"not jwt":      "abc",
		"empty":        "",
	} {
		var te *TokenError
		if _, _, err := a.VerifyToken(bad); !errors.As(err, &te) {
			t.Errorf("%s: err = %v, want TokenError", name, err)
		}
	}

	clock = now.Add(time.Hour)
	_, _, err = a.VerifyToken(tok)
	if err == nil || !strings.Contains(err.Error(), "expired at 2026-01-02T04:04:05Z") {
		t.Fatalf("expired token: err = %v", err)
	}
}

func TestParseSPIFFE(t *testing.T) {
	good := map[string]Identity{
		"spiffe://cluster.local/ns/vm/sa/default": {"cluster.local", "vm", "default"},
		"spiffe://td/ns/a/sa/b":                   {"td", "a", "b"},
	}
	for in, want := range good {
		got, err := ParseSPIFFE(in)
		if err != nil || got != want {
			t.Errorf("ParseSPIFFE(%q) = %v, %v; want %v", in, got, err, want)
		}
		if got.String() != in {
			t.Errorf("round trip %q -> %q", in, got.String())
		}
	}
	for _, in := range []string{"", "http://x/ns/a/sa/b", "spiffe://", "spiffe:///ns/a/sa/b", "spiffe://td/ns/a", "spiffe://td/ns//sa/b", "spiffe://td/ns/a/sa/b/c", "spiffe://td/sa/a/ns/b"} {
		if _, err := ParseSPIFFE(in); err == nil {
			t.Errorf("ParseSPIFFE(%q) accepted", in)
		}
	}
}

func TestServingCertificate(t *testing.T) {
	a, err := New(Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.ServingCertificate()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"istiod.istio-system.svc", "istiod.istio-system.svc.cluster.local", "localhost", "127.0.0.1"} {
		if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: a.Pool(), DNSName: name}); err != nil {
			t.Errorf("serving cert does not verify for %s: %v", name, err)
		}
	}
}

func FuzzVerifyToken(f *testing.F) {
	a, err := New(Options{}, nil)
	if err != nil {
		f.Fatal(err)
	}
	tok, _ := a.MintToken("vm", "sa", time.Hour)
	f.Add(tok)
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJFUzI1NiJ9..")
	f.Fuzz(func(t *testing.T, s string) {
		id, _, err := a.VerifyToken(s)
		if err == nil && (id.Namespace == "" || id.ServiceAccount == "") {
			t.Fatalf("accepted %q with empty identity", s)
		}
		signed := tok[:strings.LastIndex(tok, ".")]
		if err == nil && !strings.HasPrefix(strings.TrimSpace(s), signed+".") {
			// Only what this authority signed verifies: any other accepted
			// header and payload would be a forgery.
			t.Fatalf("accepted a token it did not mint: %q", s)
		}
	})
}

func FuzzParseSPIFFE(f *testing.F) {
	f.Add("spiffe://cluster.local/ns/vm/sa/default")
	f.Add("spiffe://a/ns/b/sa/c/d")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseSPIFFE(s)
		if err != nil {
			return
		}
		if id.TrustDomain == "" || id.Namespace == "" || id.ServiceAccount == "" {
			t.Fatalf("%q parsed to incomplete %+v", s, id)
		}
	})
}

func FuzzParseCSR(f *testing.F) {
	f.Add(newCSR(f, "spiffe://cluster.local/ns/a/sa/b"))
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		csr, err := ParseCSR(b)
		if err == nil && csr.CheckSignature() != nil {
			t.Fatal("accepted a CSR whose signature does not verify")
		}
	})
}
