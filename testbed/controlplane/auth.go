package controlplane

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/onramp-mesh/onramp/testbed/ca"
)

// AuthMethod says how a caller proved its identity.
type AuthMethod string

// Authentication methods.
const (
	AuthNone       AuthMethod = "none"
	AuthClientCert AuthMethod = "mtls"
	AuthToken      AuthMethod = "jwt"
)

// caller is the authenticated peer of an RPC.
type caller struct {
	// Identity is nil when nothing authenticated (plaintext dev mode).
	Identity *ca.Identity
	Method   AuthMethod
	TLS      bool
	Addr     string
	// ClusterID is the ClusterID metadata, empty when absent.
	ClusterID string
}

// authenticate identifies the caller as istiod does: a verified client
// certificate first, then an `authorization: Bearer <JWT>` token. Over TLS
// one of them must succeed (Unauthenticated otherwise). Over plaintext a
// valid token still identifies the caller, and a missing or bad one leaves it
// anonymous, as istiod's plaintext port performs no authentication.
func (s *Server) authenticate(ctx context.Context) (*caller, error) {
	c := &caller{Method: AuthNone}
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("clusterid"); len(v) > 0 {
		c.ClusterID = v[0]
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Internal, "no peer information in the request context")
	}
	if p.Addr != nil {
		c.Addr = p.Addr.String()
	}
	var certErr error
	if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
		c.TLS = true
		if len(ti.State.VerifiedChains) > 0 {
			id, err := s.opts.Authority.IdentityFromChains(ti.State.VerifiedChains)
			if err == nil {
				c.Identity, c.Method = &id, AuthClientCert
				return c, nil
			}
			certErr = err
		}
	}
	tok, tokErr := bearer(md)
	if tokErr == nil {
		id, _, err := s.opts.Authority.VerifyToken(tok)
		if err == nil {
			c.Identity, c.Method = &id, AuthToken
			return c, nil
		}
		tokErr = err
	}
	if !c.TLS {
		if tok != "" {
			s.log.Warn("plaintext caller sent a token that does not verify; continuing unauthenticated", "peer", c.Addr, "error", tokErr)
		}
		return c, nil
	}
	msg := "authentication failed: no verified client certificate and no valid bearer token"
	if certErr != nil {
		msg += "; client certificate: " + certErr.Error()
	}
	if tokErr != nil {
		msg += "; token: " + tokErr.Error()
	}
	return nil, status.Error(codes.Unauthenticated, msg)
}

var errNoToken = errors.New("no authorization: Bearer header")

func bearer(md metadata.MD) (string, error) {
	v := md.Get("authorization")
	if len(v) == 0 {
		return "", errNoToken
	}
	h := strings.TrimSpace(v[0])
	const p = "Bearer "
	if len(h) < len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", errors.New("authorization header is not of the form 'Bearer <token>'")
	}
	return strings.TrimSpace(h[len(p):]), nil
}
