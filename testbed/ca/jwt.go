package ca

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Claims are the JWT claims of a Kubernetes service-account token as the
// istio-token of a bundle carries them.
type Claims struct {
	Issuer     string    `json:"iss"`
	Subject    string    `json:"sub"`
	Audience   audience  `json:"aud"`
	Expiry     int64     `json:"exp"`
	IssuedAt   int64     `json:"iat"`
	NotBefore  int64     `json:"nbf,omitempty"`
	Kubernetes k8sClaims `json:"kubernetes.io"`
}

type k8sClaims struct {
	Namespace      string   `json:"namespace"`
	ServiceAccount namedUID `json:"serviceaccount"`
}

type namedUID struct {
	Name string `json:"name"`
	UID  string `json:"uid,omitempty"`
}

// audience is a JWT aud claim: a string or an array of strings.
type audience []string

func (a audience) MarshalJSON() ([]byte, error) { return json.Marshal([]string(a)) }

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("aud is neither a string nor an array of strings")
	}
	*a = many
	return nil
}

// TokenError reports a token that does not authenticate. Servers map it to
// codes.Unauthenticated.
type TokenError struct{ Reason string }

func (e *TokenError) Error() string { return "ca: token rejected: " + e.Reason }

type jwtHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ,omitempty"`
	Kid string `json:"kid,omitempty"`
}

var b64 = base64.RawURLEncoding.Strict()

func (a *Authority) setTokenKey(k *ecdsa.PrivateKey) {
	a.tokenKey = k
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	sum := sha256.Sum256(der)
	a.keyID = b64.EncodeToString(sum[:12])
}

// MintToken returns an ES256 JWT for the service account ns/sa: audience
// istio-ca, sub system:serviceaccount:<ns>:<sa>, a kubernetes.io claim, iat
// now and exp now+ttl (DefaultTokenTTL when ttl is 0).
func (a *Authority) MintToken(ns, sa string, ttl time.Duration) (string, error) {
	if !validName(ns) || !validName(sa) {
		return "", fmt.Errorf("ca: mint token: namespace %q or service account %q is not a valid Kubernetes name", ns, sa)
	}
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	now := a.opts.Now()
	c := Claims{
		Issuer:     a.opts.Issuer,
		Subject:    "system:serviceaccount:" + ns + ":" + sa,
		Audience:   audience{Audience},
		IssuedAt:   now.Unix(),
		NotBefore:  now.Unix(),
		Expiry:     now.Add(ttl).Unix(),
		Kubernetes: k8sClaims{Namespace: ns, ServiceAccount: namedUID{Name: sa}},
	}
	hdr, _ := json.Marshal(jwtHeader{Alg: "ES256", Typ: "JWT", Kid: a.keyID})
	body, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("ca: mint token: %w", err)
	}
	signing := b64.EncodeToString(hdr) + "." + b64.EncodeToString(body)
	sum := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, a.tokenKey, sum[:])
	if err != nil {
		return "", fmt.Errorf("ca: sign token: %w", err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + b64.EncodeToString(sig), nil
}

// VerifyToken checks an ES256 JWT minted by this authority: signature,
// issuer, audience istio-ca, expiry and not-before (with no leeway), and that
// sub and the kubernetes.io claim name the same service account. It returns
// the identity the token proves, in this authority's trust domain.
func (a *Authority) VerifyToken(token string) (Identity, *Claims, error) {
	token = strings.TrimSpace(token)
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Identity{}, nil, &TokenError{Reason: fmt.Sprintf("not a JWT: %d dot-separated parts, want 3", len(parts))}
	}
	hb, err := b64.DecodeString(parts[0])
	if err != nil {
		return Identity{}, nil, &TokenError{Reason: "header is not base64url: " + err.Error()}
	}
	var h jwtHeader
	if err := json.Unmarshal(hb, &h); err != nil {
		return Identity{}, nil, &TokenError{Reason: "header is not JSON: " + err.Error()}
	}
	if h.Alg != "ES256" {
		return Identity{}, nil, &TokenError{Reason: fmt.Sprintf("alg %q not accepted; want ES256", h.Alg)}
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return Identity{}, nil, &TokenError{Reason: "signature is not a 64-byte base64url ES256 signature"}
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(&a.tokenKey.PublicKey, sum[:], r, s) {
		return Identity{}, nil, &TokenError{Reason: "signature does not verify with this control plane's token key; mint a new bundle from this control plane"}
	}
	pb, err := b64.DecodeString(parts[1])
	if err != nil {
		return Identity{}, nil, &TokenError{Reason: "payload is not base64url: " + err.Error()}
	}
	var c Claims
	if err := json.Unmarshal(pb, &c); err != nil {
		return Identity{}, nil, &TokenError{Reason: "payload is not valid claims JSON: " + err.Error()}
	}
	if c.Issuer != a.opts.Issuer {
		return Identity{}, nil, &TokenError{Reason: fmt.Sprintf("issuer %q, want %q", c.Issuer, a.opts.Issuer)}
	}
	okAud := false
	for _, v := range c.Audience {
		okAud = okAud || v == Audience
	}
	if !okAud {
		return Identity{}, nil, &TokenError{Reason: fmt.Sprintf("audience %q does not include %q", []string(c.Audience), Audience)}
	}
	now := a.opts.Now()
	if c.Expiry == 0 {
		return Identity{}, nil, &TokenError{Reason: "no exp claim"}
	}
	if exp := time.Unix(c.Expiry, 0); !now.Before(exp) {
		return Identity{}, nil, &TokenError{Reason: fmt.Sprintf("expired at %s; mint a new bundle with onramp-testbed bundle", exp.UTC().Format(time.RFC3339))}
	}
	if c.NotBefore != 0 && now.Before(time.Unix(c.NotBefore, 0)) {
		return Identity{}, nil, &TokenError{Reason: fmt.Sprintf("not valid before %s", time.Unix(c.NotBefore, 0).UTC().Format(time.RFC3339))}
	}
	ns, sa := c.Kubernetes.Namespace, c.Kubernetes.ServiceAccount.Name
	if !validName(ns) || !validName(sa) {
		return Identity{}, nil, &TokenError{Reason: "kubernetes.io claim lacks a valid namespace and serviceaccount name"}
	}
	if want := "system:serviceaccount:" + ns + ":" + sa; c.Subject != want {
		return Identity{}, nil, &TokenError{Reason: fmt.Sprintf("sub %q does not match kubernetes.io claim %q", c.Subject, want)}
	}
	return Identity{TrustDomain: a.opts.TrustDomain, Namespace: ns, ServiceAccount: sa}, &c, nil
}
