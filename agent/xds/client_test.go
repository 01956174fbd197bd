package xds

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
)

// testPKI is a mesh root with an istiod serving cert and a workload cert.
type testPKI struct {
	roots      *x509.CertPool
	server     tls.Certificate
	client     tls.Certificate
	expiredCli tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{"cluster.local"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, notAfter time.Time, dns []string, uri string, usage x509.ExtKeyUsage) tls.Certificate {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			NotBefore:    time.Now().Add(-2 * time.Hour),
			NotAfter:     notAfter,
			DNSNames:     dns,
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		if uri != "" {
			u, _ := url.Parse(uri)
			tmpl.URIs = []*url.URL{u}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}
	}
	p := &testPKI{roots: x509.NewCertPool()}
	p.roots.AddCert(ca)
	p.server = leaf(2, time.Now().Add(time.Hour), []string{"istiod.istio-system.svc"}, "", x509.ExtKeyUsageServerAuth)
	p.client = leaf(3, time.Now().Add(time.Hour), nil, "spiffe://cluster.local/ns/shop/sa/cart-sa", x509.ExtKeyUsageClientAuth)
	p.expiredCli = leaf(4, time.Now().Add(-time.Minute), nil, "spiffe://cluster.local/ns/shop/sa/cart-sa", x509.ExtKeyUsageClientAuth)
	return p
}

// received is one request as the test control plane saw it.
type received struct {
	req        *discoveryv3.DiscoveryRequest
	md         metadata.MD
	clientCert bool
	stream     int
}

// adsServer is a small ADS control plane: it records every request and sends
// what the test pushes.
type adsServer struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
	t    *testing.T
	addr string
	pki  *testPKI // nil: plaintext
	reqs chan received
	push chan *discoveryv3.DiscoveryResponse

	mu      sync.Mutex
	gs      *grpc.Server
	streams int
	// refuse, when set, ends every stream with it after its first request.
	refuse error
}

func startADS(t *testing.T, pki *testPKI) *adsServer {
	t.Helper()
	s := &adsServer{t: t, pki: pki, reqs: make(chan received, 100), push: make(chan *discoveryv3.DiscoveryResponse)}
	s.serve("127.0.0.1:0")
	t.Cleanup(s.stop)
	return s
}

func (s *adsServer) serve(addr string) {
	s.t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		s.t.Fatal(err)
	}
	var opts []grpc.ServerOption
	if s.pki != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(&tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{s.pki.server},
			ClientCAs:    s.pki.roots,
			ClientAuth:   tls.VerifyClientCertIfGiven,
		})))
	}
	gs := grpc.NewServer(opts...)
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(gs, s)
	s.mu.Lock()
	s.gs, s.addr = gs, lis.Addr().String()
	s.mu.Unlock()
	go gs.Serve(lis)
}

func (s *adsServer) stop() {
	s.mu.Lock()
	gs := s.gs
	s.mu.Unlock()
	gs.Stop()
}

func (s *adsServer) StreamAggregatedResources(stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	ctx := stream.Context()
	md, _ := metadata.FromIncomingContext(ctx)
	hasCert := false
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			hasCert = len(ti.State.PeerCertificates) > 0
		}
	}
	s.mu.Lock()
	s.streams++
	n := s.streams
	refuse := s.refuse
	s.mu.Unlock()

	errc := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			s.reqs <- received{req: req, md: md, clientCert: hasCert, stream: n}
			if refuse != nil {
				errc <- refuse
				return
			}
		}
	}()
	for {
		select {
		case err := <-errc:
			return err
		case resp := <-s.push:
			if err := stream.Send(resp); err != nil {
				return err
			}
		}
	}
}

func (s *adsServer) expect(t *testing.T) received {
	t.Helper()
	select {
	case r := <-s.reqs:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no request reached the control plane within 10s")
		return received{}
	}
}

// expectNothingYet fails if a request has reached the control plane.
func (s *adsServer) expectNothingYet(t *testing.T) {
	t.Helper()
	select {
	case r := <-s.reqs:
		t.Fatalf("unexpected request: %v", r.req)
	default:
	}
}

func (s *adsServer) send(t *testing.T, resp *discoveryv3.DiscoveryResponse) {
	t.Helper()
	select {
	case s.push <- resp:
	case <-time.After(10 * time.Second):
		t.Fatal("no stream to push to within 10s")
	}
}

func tableResponse(t *testing.T, version, nonce string, names ...string) *discoveryv3.DiscoveryResponse {
	t.Helper()
	nt := &ndspb.NameTable{Table: map[string]*ndspb.NameInfo{}}
	for i, n := range names {
		nt.Table[n] = &ndspb.NameInfo{Ips: []string{fmt.Sprintf("10.96.0.%d", i+1)}, Registry: ndspb.RegistryKubernetes}
	}
	a, err := anypb.New(nt)
	if err != nil {
		t.Fatal(err)
	}
	return &discoveryv3.DiscoveryResponse{
		VersionInfo:  version,
		Nonce:        nonce,
		TypeUrl:      ndspb.TypeURL,
		Resources:    []*anypb.Any{a},
		ControlPlane: &corev3.ControlPlane{Identifier: `{"Component":"istiod","ID":"istiod-test"}`},
	}
}

// tables records what the client's callback saw; names containing "bad"
// make it reject the table.
type tables struct {
	mu       sync.Mutex
	versions []string
}

func (tb *tables) onTable(version string, t *ndspb.NameTable) error {
	for name := range t.GetTable() {
		if strings.Contains(name, "bad") {
			return fmt.Errorf("name %q is not a valid DNS name", name)
		}
	}
	tb.mu.Lock()
	tb.versions = append(tb.versions, version)
	tb.mu.Unlock()
	return nil
}

func (tb *tables) seen() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	return append([]string(nil), tb.versions...)
}

type clientOpts struct {
	cert      func() (*tls.Certificate, error)
	plaintext bool
}

// testClient is a running Client whose status changes the test can wait for.
type testClient struct {
	*Client
	changed chan struct{}
}

// waitFor waits until cond holds for the client's status, checking it after
// every change.
func (c *testClient) waitFor(t *testing.T, what string, cond func(Status) bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for !cond(c.Status()) {
		select {
		case <-c.changed:
		case <-timeout:
			t.Fatalf("timed out waiting for %s; status %+v", what, c.Status())
		}
	}
}

func testNode(t *testing.T) *corev3.Node {
	t.Helper()
	node, err := Node(*testInfo())
	if err != nil {
		t.Fatal(err)
	}
	return node
}

// runClient creates a client of cfg with a fast backoff and runs it until
// the test ends.
func runClient(t *testing.T, cfg Config) *testClient {
	t.Helper()
	c, err := New(cfg, hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: testWriter{t}}))
	if err != nil {
		t.Fatal(err)
	}
	c.backoff = backoff{min: 10 * time.Millisecond, max: 200 * time.Millisecond, stable: 5 * time.Second}
	tc := &testClient{Client: c, changed: make(chan struct{}, 1)}
	c.onChange = func() {
		select {
		case tc.changed <- struct{}{}:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10s of cancel")
		}
	})
	return tc
}

func startClient(t *testing.T, s *adsServer, o clientOpts) (*testClient, *tables) {
	t.Helper()
	tb := &tables{}
	cfg := Config{
		Address:           s.addr,
		ServerName:        "istiod.istio-system.svc",
		Plaintext:         o.plaintext,
		ClientCertificate: o.cert,
		Token:             func() (string, error) { return "tok-1", nil },
		Node:              testNode(t),
		OnNameTable:       tb.onTable,
	}
	if s.pki != nil {
		cfg.Roots = s.pki.roots
	}
	return runClient(t, cfg), tb
}

// startSubscribed starts a TLS control plane and a client, and takes the
// client's subscription.
func startSubscribed(t *testing.T) (*adsServer, *testClient, *tables) {
	t.Helper()
	s := startADS(t, newTestPKI(t))
	c, tb := startClient(t, s, clientOpts{})
	if r := s.expect(t).req; r.GetTypeUrl() != ndspb.TypeURL {
		t.Fatalf("first request %v, want the NDS subscription", r)
	}
	return s, c, tb
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestFirstRequestCarriesNodeAndBearerWithoutCert(t *testing.T) {
	t.Parallel()
	s := startADS(t, newTestPKI(t))
	c, _ := startClient(t, s, clientOpts{cert: func() (*tls.Certificate, error) { return nil, errors.New("no cert yet") }})

	r := s.expect(t)
	if r.req.GetTypeUrl() != ndspb.TypeURL {
		t.Errorf("first request type = %q, want NDS", r.req.GetTypeUrl())
	}
	if r.req.GetVersionInfo() != "" || r.req.GetResponseNonce() != "" {
		t.Errorf("first request version/nonce = %q/%q, want empty", r.req.GetVersionInfo(), r.req.GetResponseNonce())
	}
	if got := r.req.GetNode().GetId(); got != "sidecar~10.0.3.7~cart-vm-1.shop~shop.svc.cluster.local" {
		t.Errorf("node id = %q", got)
	}
	if got := r.req.GetNode().GetMetadata().GetFields()[MetaAutoRegisterGroup].GetStringValue(); got != "cart" {
		t.Errorf("AUTO_REGISTER_GROUP = %q, want cart", got)
	}
	if got := r.md.Get("ClusterID"); len(got) != 1 || got[0] != "east" {
		t.Errorf("ClusterID metadata = %v, want [east]", got)
	}
	if got := r.md.Get("authorization"); len(got) != 1 || got[0] != "Bearer tok-1" {
		t.Errorf("authorization = %v, want the bearer token", got)
	}
	if r.clientCert {
		t.Errorf("a client certificate was presented although there is none")
	}
	c.waitFor(t, "Connected", func(st Status) bool { return st.Connected })
}

func TestClientCertReplacesBearer(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	s := startADS(t, pki)
	startClient(t, s, clientOpts{cert: func() (*tls.Certificate, error) { return &pki.client, nil }})
	r := s.expect(t)
	if !r.clientCert {
		t.Errorf("client certificate not presented")
	}
	if got := r.md.Get("authorization"); len(got) != 0 {
		t.Errorf("authorization = %v sent although a client certificate authenticates", got)
	}
	if r.req.GetNode() == nil {
		t.Errorf("first request lacks the node")
	}
}

func TestExpiredClientCertFallsBackToBearer(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	s := startADS(t, pki)
	startClient(t, s, clientOpts{cert: func() (*tls.Certificate, error) { return &pki.expiredCli, nil }})
	r := s.expect(t)
	if r.clientCert {
		t.Errorf("expired client certificate presented")
	}
	if got := r.md.Get("authorization"); len(got) != 1 || got[0] != "Bearer tok-1" {
		t.Errorf("authorization = %v, want the bearer token", got)
	}
}

func TestACKAndNACK(t *testing.T) {
	t.Parallel()
	s, c, tb := startSubscribed(t)

	// A good table is ACKed with its version and nonce.
	s.send(t, tableResponse(t, "v1", "n1", "cart.shop.svc.cluster.local"))
	ack := s.expect(t).req
	if ack.GetVersionInfo() != "v1" || ack.GetResponseNonce() != "n1" || ack.GetErrorDetail() != nil || ack.GetTypeUrl() != ndspb.TypeURL {
		t.Fatalf("ACK = %v, want version v1 nonce n1 and no error", ack)
	}

	// A table the callback refuses is NACKed; the version stays v1.
	s.send(t, tableResponse(t, "v2", "n2", "bad..name"))
	nack := s.expect(t).req
	if nack.GetVersionInfo() != "v1" || nack.GetResponseNonce() != "n2" {
		t.Errorf("NACK version/nonce = %q/%q, want v1/n2", nack.GetVersionInfo(), nack.GetResponseNonce())
	}
	if nack.GetErrorDetail().GetCode() != 13 || !strings.Contains(nack.GetErrorDetail().GetMessage(), "bad..name") {
		t.Errorf("NACK error_detail = %v, want code 13 naming the bad name", nack.GetErrorDetail())
	}

	// Responses that are not one NameTable are NACKed without reaching the callback.
	wrongType := tableResponse(t, "v3", "n3", "x.example")
	wrongType.Resources[0].TypeUrl = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	two := tableResponse(t, "v4", "n4", "y.example")
	two.Resources = append(two.Resources, two.Resources[0])
	none := tableResponse(t, "v5", "n5")
	none.Resources = nil
	garbage := tableResponse(t, "v6", "n6", "z.example")
	garbage.Resources[0].Value = []byte{0xff, 0xff, 0xff}
	for _, resp := range []*discoveryv3.DiscoveryResponse{wrongType, two, none, garbage} {
		s.send(t, resp)
		nack := s.expect(t).req
		if nack.GetVersionInfo() != "v1" || nack.GetResponseNonce() != resp.GetNonce() || nack.GetErrorDetail().GetCode() != 13 {
			t.Errorf("response %s: got %v, want NACK keeping v1", resp.GetVersionInfo(), nack)
		}
	}

	st := c.Status()
	if st.Version != "v1" || st.Accepted != 1 || st.Rejected != 5 || st.Nonce != "n6" {
		t.Errorf("status = %+v, want version v1, 1 accepted, 5 rejected, nonce n6", st)
	}
	if !strings.Contains(st.ControlPlane, "istiod-test") {
		t.Errorf("status control plane = %q", st.ControlPlane)
	}
	if st.LastPush.IsZero() {
		t.Errorf("status has no last push time")
	}
	if got := tb.seen(); len(got) != 1 || got[0] != "v1" {
		t.Errorf("callback accepted %v, want [v1]", got)
	}

	// A later good table is ACKed again.
	s.send(t, tableResponse(t, "v7", "n7", "ok.example"))
	if ack := s.expect(t).req; ack.GetVersionInfo() != "v7" || ack.GetErrorDetail() != nil {
		t.Errorf("ACK = %v, want v7", ack)
	}
}

func TestHealthOnTransitions(t *testing.T) {
	t.Parallel()
	s, c, _ := startSubscribed(t)
	// Requests on one stream arrive in order: when the ACK of a push comes
	// next, nothing was sent before it.
	ackNext := func(why, version string) {
		t.Helper()
		s.send(t, tableResponse(t, version, "n-"+version, "cart.shop.svc.cluster.local"))
		if r := s.expect(t).req; r.GetTypeUrl() != ndspb.TypeURL || r.GetResponseNonce() != "n-"+version {
			t.Fatalf("%s: got %v before the ACK of %s", why, r, version)
		}
	}
	ackNext("no health before SetHealth", "v1")

	c.SetHealth(true, "")
	r := s.expect(t).req
	if r.GetTypeUrl() != HealthInfoTypeURL || r.GetErrorDetail() != nil {
		t.Fatalf("healthy report = %v, want HealthInformation without error_detail", r)
	}
	c.SetHealth(true, "")
	ackNext("the same state is not sent again", "v2")

	c.SetHealth(false, "GET http://127.0.0.1:8080/ready: 503")
	r = s.expect(t).req
	if r.GetTypeUrl() != HealthInfoTypeURL || r.GetErrorDetail().GetCode() != 13 || !strings.Contains(r.GetErrorDetail().GetMessage(), "503") {
		t.Fatalf("unhealthy report = %v, want code 13 with the reason", r)
	}
	c.SetHealth(false, "GET http://127.0.0.1:8080/ready: 503")
	ackNext("the same state is not sent again", "v3")
	if st := c.Status(); !st.HealthReported || st.Healthy {
		t.Errorf("status health = %+v", st)
	}
}

func TestReconnectAfterServerRestart(t *testing.T) {
	t.Parallel()
	s, c, _ := startSubscribed(t)
	s.send(t, tableResponse(t, "v1", "n1", "cart.shop.svc.cluster.local"))
	s.expect(t) // ACK
	c.SetHealth(false, "probe failing")
	if r := s.expect(t).req; r.GetTypeUrl() != HealthInfoTypeURL {
		t.Fatalf("got %v, want a health report", r)
	}

	addr := s.addr
	s.stop()
	c.waitFor(t, "disconnect", func(st Status) bool { return !st.Connected })
	s.serve(addr)

	first := s.expect(t)
	if first.stream != 2 || first.req.GetTypeUrl() != ndspb.TypeURL || first.req.GetNode().GetId() == "" {
		t.Fatalf("after restart first request = %v (stream %d), want NDS with node on stream 2", first.req, first.stream)
	}
	if first.req.GetVersionInfo() != "v1" {
		t.Errorf("resubscription version = %q, want the accepted v1", first.req.GetVersionInfo())
	}
	h := s.expect(t)
	if h.req.GetTypeUrl() != HealthInfoTypeURL || h.req.GetErrorDetail().GetMessage() != "probe failing" {
		t.Errorf("after reconnect got %v, want the health state re-sent", h.req)
	}
	c.waitFor(t, "reconnected", func(st Status) bool { return st.Connected && st.Reconnects == 1 })
	if st := c.Status(); st.LastError == "" {
		t.Errorf("status keeps no error from the restart")
	}
}

func TestStatusKeepsControlPlaneRefusal(t *testing.T) {
	t.Parallel()
	s := startADS(t, newTestPKI(t))
	s.mu.Lock()
	s.refuse = status.Error(codes.FailedPrecondition, "auto-registration WorkloadEntry of shop/cart failed: cannot find WorkloadGroup shop/cart")
	s.mu.Unlock()
	c, _ := startClient(t, s, clientOpts{})
	s.expect(t)
	s.expect(t) // retried
	c.waitFor(t, "LastError", func(st Status) bool {
		return strings.Contains(st.LastError, "FailedPrecondition: auto-registration WorkloadEntry of shop/cart failed")
	})
	if c.Status().Reconnects < 1 {
		t.Errorf("reconnects = %d, want >= 1", c.Status().Reconnects)
	}
}

func TestPlaintext(t *testing.T) {
	t.Parallel()
	s := startADS(t, nil)
	startClient(t, s, clientOpts{plaintext: true})
	if r := s.expect(t); r.req.GetNode() == nil || r.md.Get("ClusterID")[0] != "east" {
		t.Errorf("plaintext first request = %v md %v", r.req, r.md)
	}
}

func TestTLSRejectsWrongServerName(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	s := startADS(t, pki)
	c := runClient(t, Config{Address: s.addr, ServerName: "istiod.other.svc", Roots: pki.roots, Node: testNode(t),
		OnNameTable: func(string, *ndspb.NameTable) error { return nil }})
	c.waitFor(t, "TLS error in status", func(st Status) bool { return strings.Contains(st.LastError, "istiod.other.svc") })
	s.expectNothingYet(t) // no stream without a handshake
}

func TestNewRejectsBadConfig(t *testing.T) {
	node := &corev3.Node{Id: "sidecar~10.0.0.1~a.b~b.svc.cluster.local"}
	ok := func(string, *ndspb.NameTable) error { return nil }
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no address", Config{Node: node, OnNameTable: ok, Plaintext: true}, "no control plane address"},
		{"bad address", Config{Address: "istiod", Node: node, OnNameTable: ok, Plaintext: true}, `"istiod" is not host:port`},
		{"no node", Config{Address: "a:1", OnNameTable: ok, Plaintext: true}, "no node id"},
		{"no callback", Config{Address: "a:1", Node: node, Plaintext: true}, "no OnNameTable callback"},
		{"no roots", Config{Address: "a:1", Node: node, OnNameTable: ok}, "needs the mesh root certificate"},
	} {
		if _, err := New(tc.cfg, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: 30 * time.Second}
	for attempt, want := range map[int]time.Duration{0: 100 * time.Millisecond, 3: 800 * time.Millisecond, 20: 30 * time.Second, 1000: 30 * time.Second} {
		for i := 0; i < 50; i++ {
			d := b.delay(attempt)
			if d < want/2 || d > want {
				t.Fatalf("delay(%d) = %v, want in [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
}

func TestDecodeNameTableRoundTrip(t *testing.T) {
	resp := tableResponse(t, "v1", "n1", "a.example", "b.example")
	nt, err := DecodeNameTable(resp)
	if err != nil {
		t.Fatal(err)
	}
	var want ndspb.NameTable
	if err := resp.Resources[0].UnmarshalTo(&want); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(nt, &want) {
		t.Errorf("decoded %v, want %v", nt, &want)
	}
}

func TestUnusableTokenWithoutCertIsReported(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	s := startADS(t, pki)
	c := runClient(t, Config{Address: s.addr, ServerName: "istiod.istio-system.svc", Roots: pki.roots, Node: testNode(t),
		Token:       func() (string, error) { return "", errors.New("istio-token expired at 2026-01-02T03:04:05Z") },
		OnNameTable: func(string, *ndspb.NameTable) error { return nil }})
	c.waitFor(t, "token error in status", func(st Status) bool { return strings.Contains(st.LastError, "istio-token expired") })
	s.expectNothingYet(t) // the stream is never opened without credentials
}

// TestRunReturnsAfterItsGoroutines: once Run returned, no goroutine of the
// client (the stream's receiver included) is left.
func TestRunReturnsAfterItsGoroutines(t *testing.T) {
	s := startADS(t, newTestPKI(t))
	c, err := New(Config{Address: s.addr, ServerName: "istiod.istio-system.svc", Roots: s.pki.roots, Node: testNode(t),
		Token: func() (string, error) { return "tok-1", nil }, OnNameTable: func(string, *ndspb.NameTable) error { return nil }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	s.expect(t) // the stream is open, its receiver running
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A goroutine that has signalled its end may not have exited yet: give
	// it a bounded number of yields (no timing).
	var left string
	for range 1000 {
		if left = clientGoroutines(); left == "" {
			return
		}
		runtime.Gosched()
	}
	t.Errorf("left after Run returned:\n%s", left)
}

func clientGoroutines() string {
	buf := make([]byte, 1<<20)
	var left []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "agent/xds.receive") || strings.Contains(g, "agent/xds.(*Client)") {
			left = append(left, g)
		}
	}
	return strings.Join(left, "\n\n")
}
