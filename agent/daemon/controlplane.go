package daemon

import (
	"context"
	"crypto/tls"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/onramp-mesh/onramp/agent/config"
	"github.com/onramp-mesh/onramp/agent/health"
	"github.com/onramp-mesh/onramp/agent/identity"
	"github.com/onramp-mesh/onramp/agent/status"
	"github.com/onramp-mesh/onramp/agent/xds"
	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
	"github.com/onramp-mesh/onramp/installer/bundle"
	"github.com/onramp-mesh/onramp/workloadentry"
)

// controlPlane is the link to istiod: the workload identity, the ADS stream
// that receives name tables and carries health, and the readiness prober.
type controlPlane struct {
	bundle *bundle.Bundle
	ids    *identity.Manager // nil when a plaintext control plane needs no certificate
	ads    *xds.Client
	prober *health.Prober // nil without a readiness probe
}

// newControlPlane builds the control-plane components; onTable receives each
// pushed table (its error is the NACK).
func newControlPlane(cfg config.Config, b *bundle.Bundle, onTable func(version string, t *ndspb.NameTable) error, log hclog.Logger) (*controlPlane, error) {
	c := &controlPlane{bundle: b}
	token := func() (string, error) { return b.Token, nil }

	var clientCert func() (*tls.Certificate, error)
	if !b.Plaintext || b.CAAddressExplicit {
		ids, err := identity.New(identity.Config{
			// istiod's plaintext port serves the CA without TLS too (development only).
			CAAddress: b.DialAddress(b.CAAddress), ServerName: b.ServerName, Plaintext: strings.HasSuffix(b.CAAddress, ":15010"),
			Roots: b.Roots, ClusterID: b.ClusterID,
			TrustDomain: b.TrustDomain, Namespace: b.Namespace, ServiceAccount: b.ServiceAccount,
			Token: token, KeyType: cfg.Identity.KeyType, Validity: cfg.Identity.Validity.D(),
			StateDir: cfg.StateDir,
		}, log.Named("identity"))
		if err != nil {
			return nil, err
		}
		c.ids = ids
		clientCert = ids.ClientCertificate
	}

	node, err := xds.Node(NodeInfo(b, HostIPs()))
	if err != nil {
		return nil, err
	}
	c.ads, err = xds.New(xds.Config{
		Address: b.DialAddress(b.DiscoveryAddress), ServerName: b.ServerName, Plaintext: b.Plaintext, Roots: b.Roots,
		ClientCertificate: clientCert, Token: token, ClusterID: b.ClusterID, Node: node,
		OnNameTable: onTable,
	}, log.Named("xds"))
	if err != nil {
		return nil, err
	}

	if b.ReadinessProbe != nil {
		if c.prober, err = health.NewProber(b.ReadinessProbe, log.Named("health")); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *controlPlane) services() []service {
	s := []service{{"control plane", c.run, true}}
	if c.prober != nil {
		s = append(s, service{"health", func(ctx context.Context) error {
			c.prober.Run(ctx, c.ads.SetHealth)
			return nil
		}, false})
	}
	return s
}

// run gets the certificate first (from disk, or the CA with the bundle
// token), then keeps the ADS stream it authenticates.
func (c *controlPlane) run(ctx context.Context) error {
	if c.ids != nil {
		if err := c.ids.Start(ctx); err != nil {
			return err
		}
		defer c.ids.Wait() // the rotation ends with ctx
	}
	return c.ads.Run(ctx)
}

// report fills in what the control plane knows.
func (c *controlPlane) report(r *status.Report) {
	b := c.bundle
	if b.AutoRegisterGroup != "" {
		r.WorkloadEntry = b.Namespace + "/" + workloadentry.Name(b.AutoRegisterGroup, b.IP, b.Network)
	}
	s := c.ads.Status()
	r.ControlPlane = status.ControlPlane{
		Address: b.DiscoveryAddress, Connected: s.Connected, Since: s.ConnectedSince,
		LastError: s.LastError, Reconnects: s.Reconnects,
		Accepted: s.Accepted, Rejected: s.Rejected, LastRejection: s.LastRejection,
	}
	if c.prober != nil {
		r.Health = status.Health{Probe: true, Reported: s.HealthReported, Healthy: s.Healthy, Message: s.HealthMessage}
	}
	if c.ids != nil {
		s := c.ids.Status()
		r.Identity = status.Identity{SPIFFEID: s.SPIFFEID, NotAfter: s.NotAfter, NextRotation: s.NextRotation, LastError: s.LastError}
	}
}
