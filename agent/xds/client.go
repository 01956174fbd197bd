package xds

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/hashicorp/go-hclog"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
)

// DefaultClusterID is the cluster id istiod assumes when a proxy names none.
const DefaultClusterID = "Kubernetes"

// maxRecvMsgSize bounds one DiscoveryResponse; a name table of a large mesh
// exceeds gRPC's 4 MiB default.
const maxRecvMsgSize = 128 << 20

// Config configures a Client.
type Config struct {
	// Address is istiod's host:port (15012 for TLS, 15010 plaintext).
	Address string
	// ServerName is the name istiod's certificate is verified against; empty
	// means the host part of Address ("localhost" means istiod.istio-system.svc).
	ServerName string
	// Plaintext speaks ADS without TLS (istiod's 15010; tests and development).
	Plaintext bool
	// Roots verifies istiod's certificate (the bundle's root-cert.pem). Required
	// unless Plaintext.
	Roots *x509.CertPool
	// ClientCertificate returns the workload certificate to present. nil, or a
	// nil or expired certificate, means none: the Token authenticates instead.
	ClientCertificate func() (*tls.Certificate, error)
	// Token returns the bearer token (istio-token) sent as
	// `authorization: Bearer <token>` while there is no client certificate.
	Token func() (string, error)
	// ClusterID is sent as gRPC metadata "ClusterID" on every stream. Empty
	// means the node's CLUSTER_ID metadata, else DefaultClusterID.
	ClusterID string
	// Node is sent in the first request of every stream (see Node).
	Node *corev3.Node
	// OnNameTable is called with each name table received, in order, from the
	// goroutine that runs Run. A nil error ACKs the table; a non-nil error NACKs
	// it (error_detail code 13 with the error's text) and the caller keeps the
	// previous table.
	OnNameTable func(version string, t *ndspb.NameTable) error
}

// Status is a snapshot of the client's connection to the control plane.
type Status struct {
	// Address is the configured control plane address.
	Address string
	// Connected is true while an ADS stream is open.
	Connected bool
	// ConnectedSince is when the current stream opened (zero when not connected).
	ConnectedSince time.Time
	// ControlPlane identifies the istiod instance that last answered
	// (DiscoveryResponse.control_plane.identifier).
	ControlPlane string
	// LastPush is when the last DiscoveryResponse arrived.
	LastPush time.Time
	// Version is the version_info of the last accepted name table; Nonce the
	// nonce of the last response handled (ACKed or NACKed).
	Version string
	Nonce   string
	// Accepted and Rejected count name tables ACKed and NACKed.
	Accepted int
	Rejected int
	// LastRejection is why the last NACKed table was refused.
	LastRejection string
	// LastError is the last stream failure, with the control plane's reason
	// (e.g. "FailedPrecondition: ... WorkloadGroup ... not found"); it is kept
	// after a later successful connection so that status can show it.
	LastError     string
	LastErrorTime time.Time
	// Reconnects counts streams opened after the first.
	Reconnects int
	// HealthReported is true once SetHealth was called; Healthy and
	// HealthMessage are the last state given.
	HealthReported bool
	Healthy        bool
	HealthMessage  string
}

// Client keeps one ADS stream to istiod. Create it with New, start it with Run.
type Client struct {
	cfg       Config
	clusterID string
	log       hclog.Logger
	backoff   backoff

	running  sync.Mutex
	healthCh chan struct{}

	mu      sync.Mutex
	st      Status
	streams int

	// onChange, when set (by tests, before Run), is called after every
	// change of the status.
	onChange func()
}

func (c *Client) changed() {
	if c.onChange != nil {
		c.onChange()
	}
}

// New checks cfg and returns a Client. It does not connect; Run does.
func New(cfg Config, log hclog.Logger) (*Client, error) {
	if cfg.Address == "" {
		return nil, errors.New("xds: no control plane address; set discoveryAddress in mesh.yaml (e.g. istiod.istio-system.svc:15012)")
	}
	host, _, err := net.SplitHostPort(cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("xds: control plane address %q is not host:port (%v); use e.g. istiod.istio-system.svc:15012", cfg.Address, err)
	}
	if cfg.Node == nil || cfg.Node.GetId() == "" {
		return nil, errors.New("xds: no node id; build the node with xds.Node")
	}
	if cfg.OnNameTable == nil {
		return nil, errors.New("xds: no OnNameTable callback; name tables would be dropped")
	}
	if !cfg.Plaintext && cfg.Roots == nil {
		return nil, fmt.Errorf("xds: TLS to %s needs the mesh root certificate; pass the bundle's root-cert.pem pool as Roots (or set Plaintext for a 15010 test control plane)", cfg.Address)
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
		if host == "localhost" {
			// istiod's certificate never names localhost (port-forwarded setups).
			cfg.ServerName = "istiod.istio-system.svc"
		}
	}
	clusterID := cfg.ClusterID
	if clusterID == "" {
		clusterID = cfg.Node.GetMetadata().GetFields()[MetaClusterID].GetStringValue()
	}
	if clusterID == "" {
		clusterID = DefaultClusterID
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Client{
		cfg:       cfg,
		clusterID: clusterID,
		log:       log,
		backoff:   defaultBackoff,
		healthCh:  make(chan struct{}, 1),
		st:        Status{Address: cfg.Address},
	}, nil
}

// Status returns a snapshot of the connection state.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

// SetHealth records the workload's readiness. It is sent to istiod when it
// differs from what the current stream last carried, and again after every
// reconnect. It never blocks.
func (c *Client) SetHealth(healthy bool, message string) {
	if healthy {
		message = ""
	}
	c.mu.Lock()
	c.st.HealthReported = true
	c.st.Healthy = healthy
	c.st.HealthMessage = message
	c.mu.Unlock()
	c.changed()
	select {
	case c.healthCh <- struct{}{}:
	default:
	}
}

// Run keeps an ADS stream open until ctx is done: it connects, subscribes to
// NDS, handles pushes and health reports, and reconnects after any failure
// with jittered exponential backoff (reset once a stream stayed up). It
// returns nil when ctx is done, or an error if Run is already running.
func (c *Client) Run(ctx context.Context) error {
	if !c.running.TryLock() {
		return errors.New("xds: Run called while already running")
	}
	defer c.running.Unlock()
	attempt := 0
	for {
		start := time.Now()
		err := c.stream(ctx)
		c.setDisconnected()
		if ctx.Err() != nil {
			return nil
		}
		c.recordError(err)
		if time.Since(start) >= c.backoff.stable {
			attempt = 0
		}
		wait := c.backoff.delay(attempt)
		attempt++
		c.log.Debug("reconnecting", "in", wait, "attempt", attempt)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// recordError logs a stream failure and keeps it for Status.
func (c *Client) recordError(err error) {
	if err == nil {
		err = errors.New("stream closed by the control plane")
	}
	msg := err.Error()
	if s, ok := status.FromError(err); ok {
		msg = s.Code().String() + ": " + s.Message()
		switch s.Code() {
		case codes.Unavailable:
			// istiod answers Unavailable until its caches sync, and on restarts.
			c.log.Info("control plane unavailable; retrying", "address", c.cfg.Address, "reason", s.Message())
		case codes.FailedPrecondition, codes.PermissionDenied, codes.Unauthenticated:
			c.log.Warn("control plane refused the stream; retrying", "address", c.cfg.Address, "code", s.Code().String(), "reason", s.Message())
		default:
			c.log.Warn("ADS stream failed; retrying", "address", c.cfg.Address, "error", msg)
		}
	} else {
		c.log.Warn("ADS stream failed; retrying", "address", c.cfg.Address, "error", msg)
	}
	c.mu.Lock()
	c.st.LastError = msg
	c.st.LastErrorTime = time.Now()
	c.mu.Unlock()
	c.changed()
}

func (c *Client) setDisconnected() {
	c.mu.Lock()
	c.st.Connected = false
	c.st.ConnectedSince = time.Time{}
	c.mu.Unlock()
	c.changed()
}

// clientCert returns the certificate to present, or nil when there is no
// usable one.
func (c *Client) clientCert() *tls.Certificate {
	if c.cfg.ClientCertificate == nil {
		return nil
	}
	cert, err := c.cfg.ClientCertificate()
	if err != nil {
		c.log.Debug("no client certificate", "error", err)
		return nil
	}
	if cert == nil || len(cert.Certificate) == 0 {
		return nil
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			c.log.Warn("client certificate does not parse; not presenting it", "error", err)
			return nil
		}
	}
	if now := time.Now(); now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		c.log.Warn("client certificate is outside its validity; not presenting it", "not_before", leaf.NotBefore, "not_after", leaf.NotAfter)
		return nil
	}
	return cert
}

func (c *Client) transportCredentials() credentials.TransportCredentials {
	if c.cfg.Plaintext {
		return insecure.NewCredentials()
	}
	return credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    c.cfg.Roots,
		ServerName: c.cfg.ServerName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if cert := c.clientCert(); cert != nil {
				return cert, nil
			}
			return &tls.Certificate{}, nil // no certificate: the bearer token authenticates
		},
	})
}

// streamMetadata is the gRPC metadata of a new stream: ClusterID always, and
// the bearer token while there is no client certificate.
func (c *Client) streamMetadata() (metadata.MD, error) {
	md := metadata.Pairs("ClusterID", c.clusterID)
	if c.clientCert() != nil {
		return md, nil
	}
	if c.cfg.Token == nil {
		return md, nil
	}
	tok, err := c.cfg.Token()
	if err != nil {
		return nil, fmt.Errorf("xds: no client certificate yet and the token is unusable: %w", err)
	}
	if tok != "" {
		md.Set("authorization", "Bearer "+tok)
	}
	return md, nil
}

// stream runs one ADS stream until it fails or ctx is done.
func (c *Client) stream(ctx context.Context) error {
	md, err := c.streamMetadata()
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(c.cfg.Address,
		grpc.WithTransportCredentials(c.transportCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvMsgSize)),
		grpc.WithUserAgent("onramp"),
	)
	if err != nil {
		return fmt.Errorf("xds: cannot set up a connection to %s: %w", c.cfg.Address, err)
	}
	defer conn.Close()

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).
		StreamAggregatedResources(metadata.NewOutgoingContext(sctx, md))
	if err != nil {
		return err
	}
	recv, received := receive(sctx, stream)
	defer func() {
		cancel() // ends the stream, and so the receiving goroutine
		<-received
	}()
	s := &adsStream{c: c, stream: stream, recv: recv}
	return s.run(ctx)
}

type adsBidi = grpc.BidiStreamingClient[discoveryv3.DiscoveryRequest, discoveryv3.DiscoveryResponse]

// adsStream is one open ADS stream: a goroutine receives (see receive),
// run sends the subscription, the ACKs and NACKs, and the health reports.
type adsStream struct {
	c      *Client
	stream adsBidi
	recv   <-chan recvResult
	// sentHealth is the last health state this stream carried; a new
	// stream carries none, so the current state is sent after the NDS
	// subscription.
	sentHealth *healthState
}

type recvResult struct {
	resp *discoveryv3.DiscoveryResponse
	err  error
}

// receive passes every response of stream, and then its error, to the
// returned channel until ctx is done; done is closed when it has stopped.
func receive(ctx context.Context, stream adsBidi) (recv <-chan recvResult, done <-chan struct{}) {
	ch, stopped := make(chan recvResult, 1), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			resp, err := stream.Recv()
			select {
			case ch <- recvResult{resp, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return ch, stopped
}

// run subscribes, then answers responses and health changes until the
// stream fails or ctx is done.
func (s *adsStream) run(ctx context.Context) error {
	if err := s.subscribe(ctx); err != nil {
		return err
	}
	if err := s.sendHealth(ctx); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.c.healthCh:
			if err := s.sendHealth(ctx); err != nil {
				return err
			}
		case r := <-s.recv:
			if r.err != nil {
				return r.err
			}
			if req := s.c.handleResponse(r.resp); req != nil {
				if err := s.send(ctx, req); err != nil {
					return err
				}
			}
		}
	}
}

// subscribe asks for the name table, with the version accepted last (on a
// previous stream), and marks the client connected.
func (s *adsStream) subscribe(ctx context.Context) error {
	c := s.c
	c.mu.Lock()
	version := c.st.Version
	c.mu.Unlock()
	if err := s.send(ctx, &discoveryv3.DiscoveryRequest{Node: c.cfg.Node, TypeUrl: ndspb.TypeURL, VersionInfo: version}); err != nil {
		return err
	}
	c.mu.Lock()
	if c.streams > 0 {
		c.st.Reconnects++
	}
	c.streams++
	c.st.Connected = true
	c.st.ConnectedSince = time.Now()
	c.mu.Unlock()
	c.changed()
	c.log.Info("ADS stream open", "address", c.cfg.Address, "node", c.cfg.Node.GetId(), "version", version)
	return nil
}

// sendHealth reports the health state when it differs from what this
// stream carried last.
func (s *adsStream) sendHealth(ctx context.Context) error {
	h, ok := s.c.desiredHealth()
	if !ok || (s.sentHealth != nil && *s.sentHealth == h) {
		return nil
	}
	if err := s.send(ctx, healthRequest(h)); err != nil {
		return err
	}
	s.sentHealth = &h
	s.c.log.Debug("health reported", "healthy", h.healthy, "message", h.message)
	return nil
}

// send sends req. A failed Send reports only io.EOF; the stream's real
// status (the server's reason) is what the receiving goroutine gets.
func (s *adsStream) send(ctx context.Context, req *discoveryv3.DiscoveryRequest) error {
	err := s.stream.Send(req)
	if err == nil || !errors.Is(err, io.EOF) {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case r := <-s.recv:
			if r.err != nil {
				return r.err
			}
		}
	}
}

// handleResponse validates one response and returns the ACK or NACK to send
// (nil for a type the client did not ask for).
func (c *Client) handleResponse(resp *discoveryv3.DiscoveryResponse) *discoveryv3.DiscoveryRequest {
	defer c.changed()
	c.mu.Lock()
	c.st.LastPush = time.Now()
	if id := resp.GetControlPlane().GetIdentifier(); id != "" {
		c.st.ControlPlane = id
	}
	c.mu.Unlock()

	if resp.GetTypeUrl() != ndspb.TypeURL {
		c.log.Debug("ignoring a response of a type not subscribed to", "type", resp.GetTypeUrl(), "nonce", resp.GetNonce())
		return nil
	}
	t, err := DecodeNameTable(resp)
	if err == nil {
		err = c.cfg.OnNameTable(resp.GetVersionInfo(), t)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	c.st.Nonce = resp.GetNonce()
	if err != nil {
		c.st.Rejected++
		c.st.LastRejection = err.Error()
		c.log.Warn("name table rejected (NACK); keeping the previous one", "version", resp.GetVersionInfo(), "kept", c.st.Version, "nonce", resp.GetNonce(), "error", err)
		return &discoveryv3.DiscoveryRequest{
			TypeUrl:       ndspb.TypeURL,
			VersionInfo:   c.st.Version,
			ResponseNonce: resp.GetNonce(),
			ErrorDetail:   &rpcstatus.Status{Code: nackCode, Message: err.Error()},
		}
	}
	c.st.Accepted++
	c.st.Version = resp.GetVersionInfo()
	c.log.Debug("name table accepted (ACK)", "version", resp.GetVersionInfo(), "names", len(t.GetTable()), "nonce", resp.GetNonce())
	return &discoveryv3.DiscoveryRequest{
		TypeUrl:       ndspb.TypeURL,
		VersionInfo:   resp.GetVersionInfo(),
		ResponseNonce: resp.GetNonce(),
	}
}

type healthState struct {
	healthy bool
	message string
}

func (c *Client) desiredHealth() (healthState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return healthState{c.st.Healthy, c.st.HealthMessage}, c.st.HealthReported
}

// healthRequest is Istio's health report: no error_detail when healthy,
// error_detail code 13 with the reason when not.
func healthRequest(h healthState) *discoveryv3.DiscoveryRequest {
	req := &discoveryv3.DiscoveryRequest{TypeUrl: HealthInfoTypeURL}
	if !h.healthy {
		msg := h.message
		if msg == "" {
			msg = "readiness probe failed"
		}
		req.ErrorDetail = &rpcstatus.Status{Code: nackCode, Message: msg}
	}
	return req
}

// backoff is a jittered exponential reconnect policy.
type backoff struct {
	min, max time.Duration
	// stable is how long a stream must have lasted for the next failure to
	// start again from min.
	stable time.Duration
}

var defaultBackoff = backoff{min: 100 * time.Millisecond, max: 30 * time.Second, stable: 30 * time.Second}

// delay is min*2^attempt capped at max, jittered uniformly into [d/2, d].
func (b backoff) delay(attempt int) time.Duration {
	d := b.min
	for i := 0; i < attempt && d < b.max; i++ {
		d *= 2
	}
	if d > b.max {
		d = b.max
	}
	half := d / 2
	return half + rand.N(d-half+1)
}
