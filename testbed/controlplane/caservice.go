package controlplane

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	securityv1alpha1 "istio.io/api/security/v1alpha1"

	"github.com/onramp-mesh/onramp/testbed/ca"
)

// caService is istio.v1.auth.IstioCertificateService.
type caService struct {
	securityv1alpha1.UnimplementedIstioCertificateServiceServer
	s *Server
}

// CreateCertificate signs the CSR for the caller's authenticated identity
// (client certificate or bearer token), whatever identity the CSR names.
func (c *caService) CreateCertificate(ctx context.Context, req *securityv1alpha1.IstioCertificateRequest) (*securityv1alpha1.IstioCertificateResponse, error) {
	s := c.s
	who, err := s.authenticate(ctx)
	if err != nil {
		s.log.Warn("CreateCertificate: authentication failed", "error", err)
		s.stats.caFailures.Add(1)
		return nil, err
	}
	if who.Identity == nil {
		s.stats.caFailures.Add(1)
		return nil, status.Error(codes.Unauthenticated, "CreateCertificate needs a verified client certificate or an 'authorization: Bearer <istio-token>' header")
	}
	if who.ClusterID == "" {
		s.stats.caFailures.Add(1)
		return nil, status.Error(codes.Unauthenticated, "missing ClusterID gRPC metadata; send ClusterID: <ISTIO_META_CLUSTER_ID> (Kubernetes by default)")
	}
	ttl := time.Duration(req.GetValidityDuration()) * time.Second
	chain, err := s.opts.Authority.Sign([]byte(req.GetCsr()), *who.Identity, ttl)
	if err != nil {
		s.stats.caFailures.Add(1)
		var ce *ca.CSRError
		var te *ca.TTLError
		switch {
		case errors.As(err, &ce), errors.As(err, &te):
			s.log.Warn("CreateCertificate: bad request", "identity", who.Identity.String(), "error", err)
			return nil, status.Error(codes.InvalidArgument, err.Error())
		default:
			s.log.Error("CreateCertificate: signing failed", "identity", who.Identity.String(), "error", err)
			return nil, status.Error(codes.Internal, err.Error())
		}
	}
	s.stats.caIssued.Add(1)
	s.log.Info("issued certificate", "identity", who.Identity.String(), "auth", string(who.Method), "cluster", who.ClusterID, "ttl", ttl)
	return &securityv1alpha1.IstioCertificateResponse{CertChain: chain}, nil
}
