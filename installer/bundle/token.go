package bundle

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

// TokenClaims are the parts of the istio-token JWT the agent looks at. The
// signature is not checked here: the Istio CA verifies the token.
type TokenClaims struct {
	Expiry   time.Time
	Audience []string
	Subject  string
}

// ParseToken decodes a JWT in compact form (header.payload.signature) and
// returns its claims. It fails on anything that is not a JWT, on bad base64 or
// JSON, and on a missing exp claim. It does not check expiry.
func ParseToken(tok string) (*TokenClaims, error) {
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return nil, &Error{File: FileToken, Msg: "file is empty; it must hold the JWT istioctl minted (audience istio-ca)"}
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, &Error{File: FileToken, Msg: fmt.Sprintf("not a JWT: want 3 dot-separated parts, got %d", len(parts))}
	}
	hdr, err := decodeSegment(parts[0])
	if err != nil {
		return nil, &Error{File: FileToken, Msg: "not a JWT: header is not base64url", Err: err}
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(hdr, &h); err != nil {
		return nil, &Error{File: FileToken, Msg: "not a JWT: header is not JSON", Err: err}
	}
	if h.Alg == "" {
		return nil, &Error{File: FileToken, Msg: "not a JWT: header has no alg"}
	}
	payload, err := decodeSegment(parts[1])
	if err != nil {
		return nil, &Error{File: FileToken, Msg: "not a JWT: payload is not base64url", Err: err}
	}
	var c struct {
		Exp *json.Number    `json:"exp"`
		Aud json.RawMessage `json:"aud"`
		Sub string          `json:"sub"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, &Error{File: FileToken, Msg: "not a JWT: payload is not a JSON object with string sub", Err: err}
	}
	if c.Exp == nil {
		return nil, &Error{File: FileToken, Key: "exp", Msg: "token has no exp claim; Istio tokens always expire, mint a new bundle with istioctl x workload entry configure"}
	}
	exp, err := c.Exp.Float64()
	if err != nil || math.IsNaN(exp) || math.IsInf(exp, 0) || exp < 0 || exp > 1<<40 {
		return nil, &Error{File: FileToken, Key: "exp", Msg: fmt.Sprintf("exp claim %q is not a Unix time", c.Exp.String())}
	}
	out := &TokenClaims{Expiry: time.Unix(int64(exp), 0).UTC(), Subject: c.Sub}
	if len(c.Aud) > 0 {
		var one string
		if json.Unmarshal(c.Aud, &one) == nil {
			out.Audience = []string{one}
		} else if err := json.Unmarshal(c.Aud, &out.Audience); err != nil {
			return nil, &Error{File: FileToken, Key: "aud", Msg: "aud claim is neither a string nor a list of strings", Err: err}
		}
	}
	return out, nil
}

func decodeSegment(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// TokenExpired reports whether the bundle's token has expired at now.
func (b *Bundle) TokenExpired(now time.Time) bool {
	return !now.Before(b.TokenExpiry)
}

// ValidateToken returns a *TokenError when the bundle's token has expired at
// now, and nil while it is still usable to bootstrap an identity.
func (b *Bundle) ValidateToken(now time.Time) error {
	if b.TokenExpired(now) {
		return &TokenError{Path: b.path(FileToken), Expiry: b.TokenExpiry, Now: now}
	}
	return nil
}

func (b *Bundle) path(file string) string {
	if b.Dir == "" {
		return file
	}
	return strings.TrimSuffix(b.Dir, "/") + "/" + file
}
