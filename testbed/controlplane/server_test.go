package controlplane

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	"google.golang.org/protobuf/types/known/structpb"
	securityv1alpha1 "istio.io/api/security/v1alpha1"

	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
	"github.com/onramp-mesh/onramp/testbed/ca"
	"github.com/onramp-mesh/onramp/testbed/mesh"
	"github.com/onramp-mesh/onramp/workloadentry"
)

type testbed struct {
	t         *testing.T
	srv       *Server
	authority *ca.Authority
	store     *mesh.Store
	config    string
	state     string
}

func startTestbed(t *testing.T, state string) *testbed {
	t.Helper()
	config := t.TempDir()
	b, err := os.ReadFile("testdata/mesh.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(config, "mesh.yaml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if state == "" {
		state = t.TempDir()
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "test", Level: hclog.Debug, Output: testWriter{t}})
	authority, err := ca.New(ca.Options{StateDir: state, MaxCertTTL: time.Hour}, log)
	if err != nil {
		t.Fatal(err)
	}
	store, err := mesh.Load(config, mesh.Options{StatePath: filepath.Join(state, "vips.json")}, log)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Start(Options{
		Authority:     authority,
		Mesh:          store,
		TLSAddr:       "127.0.0.1:0",
		PlaintextAddr: "127.0.0.1:0",
		DebugAddr:     "127.0.0.1:0",
		Controller:    "istiod-test",
		GracePeriod:   300 * time.Millisecond,
		Log:           log,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	watching := make(chan struct{})
	go func() { defer close(watching); store.Watch(ctx, srv.Push) }()
	t.Cleanup(func() { cancel(); <-watching; srv.Close() })
	return &testbed{t: t, srv: srv, authority: authority, store: store, config: config, state: state}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// dialTLS connects to the TLS port as the agent does: root from the CA,
// server name istiod.istio-system.svc, optional client certificate.
func (tb *testbed) dialTLS(cert *tls.Certificate) *grpc.ClientConn {
	tb.t.Helper()
	tc := &tls.Config{RootCAs: tb.authority.Pool(), ServerName: "istiod.istio-system.svc", MinVersion: tls.VersionTLS12}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	cc, err := grpc.NewClient(tb.srv.TLSAddr(), grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Cleanup(func() { cc.Close() })
	return cc
}

func (tb *testbed) dialPlain() *grpc.ClientConn {
	cc, err := grpc.NewClient(tb.srv.PlaintextAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Cleanup(func() { cc.Close() })
	return cc
}

func withAuth(ctx context.Context, token string) context.Context {
	md := metadata.Pairs("ClusterID", "Kubernetes")
	if token != "" {
		md.Set("authorization", "Bearer "+token)
	}
	return metadata.NewOutgoingContext(ctx, md)
}

func csrPEM(t *testing.T, uri string) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.CertificateRequest{}
	if uri != "" {
		u, _ := url.Parse(uri)
		tmpl.URIs = []*url.URL{u}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), key
}

func leafOf(t *testing.T, chain []string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(chain[0]))
	if b == nil {
		t.Fatal("leaf is not PEM")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (tb *testbed) issue(cc *grpc.ClientConn, ctx context.Context, csrURI string) (*securityv1alpha1.IstioCertificateResponse, *ecdsa.PrivateKey, error) {
	csr, key := csrPEM(tb.t, csrURI)
	resp, err := securityv1alpha1.NewIstioCertificateServiceClient(cc).CreateCertificate(ctx, &securityv1alpha1.IstioCertificateRequest{
		Csr: string(csr), ValidityDuration: int64((24 * time.Hour).Seconds()),
	})
	return resp, key, err
}

func TestCreateCertificate(t *testing.T) {
	tb := startTestbed(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := tb.authority.MintToken("vm", "vm-sa", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cc := tb.dialTLS(nil)

	// The CSR asks for someone else's identity; the certificate carries the caller's.
	resp, key, err := tb.issue(cc, withAuth(ctx, tok), "spiffe://cluster.local/ns/kube-system/sa/admin")
	if err != nil {
		t.Fatal(err)
	}
	chain := resp.GetCertChain()
	if len(chain) < 2 || strings.TrimSpace(chain[len(chain)-1]) != strings.TrimSpace(string(tb.authority.RootPEM())) {
		t.Fatalf("chain of %d elements does not end with the root", len(chain))
	}
	leaf := leafOf(t, chain)
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://cluster.local/ns/vm/sa/vm-sa" {
		t.Fatalf("leaf identity %v, want the token's spiffe://cluster.local/ns/vm/sa/vm-sa", leaf.URIs)
	}
	if l := leaf.NotAfter.Sub(leaf.NotBefore); l != time.Hour {
		t.Fatalf("lifetime %s, want 24h request capped to the 1h max", l)
	}

	// Renewal over mTLS with the issued certificate and no token.
	der := [][]byte{leaf.Raw}
	mtls := tb.dialTLS(&tls.Certificate{Certificate: der, PrivateKey: key, Leaf: leaf})
	resp2, _, err := tb.issue(mtls, withAuth(ctx, ""), "")
	if err != nil {
		t.Fatalf("mTLS renewal: %v", err)
	}
	if got := leafOf(t, resp2.GetCertChain()).URIs[0].String(); got != "spiffe://cluster.local/ns/vm/sa/vm-sa" {
		t.Fatalf("renewed identity %s", got)
	}

	// Expired token: minted by the same authority an hour and a half ago.
	past, err := ca.New(ca.Options{StateDir: tb.state, Now: func() time.Time { return time.Now().Add(-90 * time.Minute) }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := past.MintToken("vm", "vm-sa", time.Hour)
	// A token signed by another control plane's key.
	other, _ := ca.New(ca.Options{}, nil)
	foreign, _ := other.MintToken("vm", "vm-sa", time.Hour)

	for _, tc := range []struct {
		name string
		ctx  context.Context
		csr  bool
		want codes.Code
		msg  string
	}{
		{"expired token", withAuth(ctx, expired), true, codes.Unauthenticated, "expired at"},
		{"bad signature", withAuth(ctx, foreign), true, codes.Unauthenticated, "signature"},
		{"no credentials", withAuth(ctx, ""), true, codes.Unauthenticated, "authentication failed"},
		{"no ClusterID", metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok), true, codes.Unauthenticated, "ClusterID"},
		{"bad CSR", withAuth(ctx, tok), false, codes.InvalidArgument, "CSR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &securityv1alpha1.IstioCertificateRequest{Csr: "not a csr"}
			if tc.csr {
				c, _ := csrPEM(t, "")
				req.Csr = string(c)
			}
			_, err := securityv1alpha1.NewIstioCertificateServiceClient(cc).CreateCertificate(tc.ctx, req)
			if status.Code(err) != tc.want || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %s containing %q", err, tc.want, tc.msg)
			}
		})
	}
}

func vmNode(ip, ns string, extra map[string]any) *corev3.Node {
	m := map[string]any{
		"NAMESPACE":     ns,
		"INSTANCE_IPS":  ip + ",fd00::5",
		"CLUSTER_ID":    "Kubernetes",
		"ISTIO_VERSION": "1.28.0",
		"DNS_CAPTURE":   "true",
	}
	for k, v := range extra {
		m[k] = v
	}
	md, err := structpb.NewStruct(m)
	if err != nil {
		panic(err)
	}
	return &corev3.Node{Id: "sidecar~" + ip + "~vm1." + ns + "~" + ns + ".svc.cluster.local", Metadata: md}
}

type adsClient struct {
	t      *testing.T
	stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	cancel context.CancelFunc
}

func openADS(t *testing.T, cc *grpc.ClientConn, token string, node *corev3.Node) *adsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(cc).StreamAggregatedResources(withAuth(ctx, token))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	// io.EOF: the server already ended the stream; Recv returns its status.
	if err := stream.Send(&discoveryv3.DiscoveryRequest{Node: node, TypeUrl: ndspb.TypeURL}); err != nil && err != io.EOF {
		cancel()
		t.Fatal(err)
	}
	a := &adsClient{t: t, stream: stream, cancel: cancel}
	t.Cleanup(cancel)
	return a
}

// recvTable receives one NDS response and ACKs it.
func (a *adsClient) recvTable() (*ndspb.NameTable, *discoveryv3.DiscoveryResponse) {
	a.t.Helper()
	resp, err := a.stream.Recv()
	if err != nil {
		a.t.Fatalf("recv: %v", err)
	}
	if resp.GetTypeUrl() != ndspb.TypeURL || len(resp.GetResources()) != 1 || resp.GetNonce() == "" || resp.GetVersionInfo() == "" {
		a.t.Fatalf("response %v: want one NDS resource with version and nonce", resp)
	}
	nt := &ndspb.NameTable{}
	if err := resp.GetResources()[0].UnmarshalTo(nt); err != nil {
		a.stream.Send(&discoveryv3.DiscoveryRequest{TypeUrl: ndspb.TypeURL, ResponseNonce: resp.GetNonce(),
			ErrorDetail: &rpcstatus.Status{Code: int32(codes.Internal), Message: "unmarshal: " + err.Error()}})
		return nil, resp
	}
	if err := a.stream.Send(&discoveryv3.DiscoveryRequest{TypeUrl: ndspb.TypeURL, VersionInfo: resp.GetVersionInfo(), ResponseNonce: resp.GetNonce()}); err != nil {
		a.t.Fatal(err)
	}
	return nt, resp
}

func (tb *testbed) getJSON(path string, v any) {
	tb.t.Helper()
	resp, err := http.Get("http://" + tb.srv.DebugAddr() + path)
	if err != nil {
		tb.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		tb.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		tb.t.Fatalf("GET %s: %v: %s", path, err, b)
	}
}

func eventually(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestADSNameTableAndPushOnChange(t *testing.T) {
	tb := startTestbed(t, "")
	tok, _ := tb.authority.MintToken("ns1", "default", time.Hour)
	node := vmNode("10.0.0.5", "ns1", nil)
	a := openADS(t, tb.dialTLS(nil), tok, node)
	nt, resp := a.recvTable()
	if got := nt.GetTable()["productpage.ns1.svc.cluster.local"]; got == nil || got.GetIps()[0] != "10.96.0.20" || got.GetRegistry() != "Kubernetes" {
		t.Fatalf("table %v lacks productpage", nt)
	}

	var conns []ConnectionInfo
	eventually(t, 2*time.Second, "ACK recorded", func() bool {
		tb.getJSON("/debug/connections", &conns)
		return len(conns) == 1 && conns[0].NDS.AckedNonce == resp.GetNonce()
	})
	if conns[0].Identity != "spiffe://cluster.local/ns/ns1/sa/default" || conns[0].Auth != "jwt" || !conns[0].TLS {
		t.Fatalf("connection %+v", conns[0])
	}

	// A new ServiceEntry file reaches the client within 1 s.
	start := time.Now()
	se := `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: fruits, namespace: ns1}
spec:
  hosts: [my-fruits.internal]
  addresses: [10.103.1.1]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
`
	if err := os.WriteFile(filepath.Join(tb.config, "fruits.yaml"), []byte(se), 0o644); err != nil {
		t.Fatal(err)
	}
	nt2, resp2 := a.recvTable()
	if took := time.Since(start); took > time.Second {
		t.Fatalf("push took %s, want < 1s", took)
	}
	if got := nt2.GetTable()["my-fruits.internal"]; got == nil || got.GetIps()[0] != "10.103.1.1" {
		t.Fatalf("pushed table %v lacks my-fruits.internal", nt2)
	}
	if resp2.GetVersionInfo() == resp.GetVersionInfo() || resp2.GetNonce() == resp.GetNonce() {
		t.Fatal("push reused version or nonce")
	}

	// The debug table for the node is what was sent.
	var dbg map[string]any
	tb.getJSON("/debug/nametable?proxy="+url.QueryEscape(node.GetId()), &dbg)
	if tab, _ := dbg["table"].(map[string]any); tab["my-fruits.internal"] == nil {
		t.Fatalf("/debug/nametable = %v", dbg)
	}

	// Fault injection: a malformed table is NACKed and the NACK recorded.
	r, err := http.Post("http://"+tb.srv.DebugAddr()+"/debug/fault?nds=malformed", "", nil)
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("POST fault: %v %v", r, err)
	}
	r.Body.Close()
	if bad, _ := a.recvTable(); bad != nil {
		t.Fatal("malformed fault sent a parsable table")
	}
	eventually(t, 2*time.Second, "NACK recorded", func() bool {
		tb.getJSON("/debug/connections", &conns)
		return len(conns) == 1 && conns[0].NDS.Nacks == 1 && strings.Contains(conns[0].NDS.LastNack, "unmarshal")
	})
	tb.srv.SetFault(Fault{})
	if good, _ := a.recvTable(); good == nil {
		t.Fatal("table still malformed after clearing the fault")
	}
}

func recvCode(t *testing.T, a *adsClient) (codes.Code, string) {
	t.Helper()
	_, err := a.stream.Recv()
	return status.Code(err), status.Convert(err).Message()
}

func TestADSRejections(t *testing.T) {
	tb := startTestbed(t, "")
	vmTok, _ := tb.authority.MintToken("vm", "vm-sa", time.Hour)

	t.Run("missing group", func(t *testing.T) {
		a := openADS(t, tb.dialTLS(nil), vmTok, vmNode("10.0.0.6", "vm", map[string]any{"AUTO_REGISTER_GROUP": "no-such-group"}))
		code, msg := recvCode(t, a)
		if code != codes.FailedPrecondition || !strings.Contains(msg, "vm/no-such-group") {
			t.Fatalf("got %s %q, want FailedPrecondition naming vm/no-such-group", code, msg)
		}
	})
	t.Run("namespace mismatch", func(t *testing.T) {
		a := openADS(t, tb.dialTLS(nil), vmTok, vmNode("10.0.0.6", "ns1", nil))
		if code, msg := recvCode(t, a); code != codes.PermissionDenied {
			t.Fatalf("got %s %q, want PermissionDenied", code, msg)
		}
	})
	t.Run("service account mismatch", func(t *testing.T) {
		a := openADS(t, tb.dialTLS(nil), vmTok, vmNode("10.0.0.6", "vm", map[string]any{"SERVICE_ACCOUNT": "other"}))
		if code, msg := recvCode(t, a); code != codes.PermissionDenied {
			t.Fatalf("got %s %q, want PermissionDenied", code, msg)
		}
	})
	t.Run("no credentials over TLS", func(t *testing.T) {
		a := openADS(t, tb.dialTLS(nil), "", vmNode("10.0.0.6", "vm", nil))
		if code, msg := recvCode(t, a); code != codes.Unauthenticated {
			t.Fatalf("got %s %q, want Unauthenticated", code, msg)
		}
	})
	t.Run("bad node id", func(t *testing.T) {
		n := vmNode("10.0.0.6", "vm", nil)
		n.Id = "just-a-name"
		a := openADS(t, tb.dialTLS(nil), vmTok, n)
		if code, msg := recvCode(t, a); code != codes.InvalidArgument {
			t.Fatalf("got %s %q, want InvalidArgument", code, msg)
		}
	})
	t.Run("plaintext anonymous allowed", func(t *testing.T) {
		a := openADS(t, tb.dialPlain(), "", vmNode("10.0.0.6", "ns1", nil))
		if nt, _ := a.recvTable(); nt.GetTable()["productpage.ns1.svc.cluster.local"] == nil {
			t.Fatalf("plaintext table %v", nt)
		}
	})
	t.Run("plaintext token still checked", func(t *testing.T) {
		a := openADS(t, tb.dialPlain(), vmTok, vmNode("10.0.0.6", "ns1", nil))
		if code, msg := recvCode(t, a); code != codes.PermissionDenied {
			t.Fatalf("got %s %q, want PermissionDenied", code, msg)
		}
	})
	t.Run("delta unimplemented", func(t *testing.T) {
		s, err := discoveryv3.NewAggregatedDiscoveryServiceClient(tb.dialPlain()).DeltaAggregatedResources(context.Background())
		if err == nil {
			_, err = s.Recv()
		}
		if status.Code(err) != codes.Unimplemented {
			t.Fatalf("delta: %v", err)
		}
	})
}

func TestAutoRegistrationLifecycle(t *testing.T) {
	tb := startTestbed(t, "")
	vmTok, _ := tb.authority.MintToken("vm", "vm-sa", time.Hour)
	node := vmNode("10.0.0.7", "vm", map[string]any{
		"AUTO_REGISTER_GROUP": "vm-group",
		"SERVICE_ACCOUNT":     "vm-sa",
		"NETWORK":             "net1",
		"LABELS":              map[string]any{"version": "v2", "site": "dc1"},
		"PROXY_CONFIG":        map[string]any{"readinessProbe": map[string]any{"httpGet": map[string]any{"path": "/ready", "port": 8080}}},
	})
	a := openADS(t, tb.dialTLS(nil), vmTok, node)
	a.recvTable()

	type entry struct {
		Metadata struct {
			Name, Namespace string
			Labels          map[string]string
			Annotations     map[string]string
		}
		Spec   map[string]any
		Status struct {
			Conditions []struct{ Type, Status, Message string }
		}
	}
	var list []entry
	tb.getJSON("/debug/workloadentries", &list)
	if len(list) != 1 {
		t.Fatalf("entries %+v, want 1", list)
	}
	e := list[0]
	if e.Metadata.Name != "vm-group-10.0.0.7-net1" || e.Metadata.Namespace != "vm" {
		t.Fatalf("entry %s/%s", e.Metadata.Namespace, e.Metadata.Name)
	}
	if l := e.Metadata.Labels; l["app"] != "myvmapi" || l["version"] != "v2" || l["site"] != "dc1" {
		t.Fatalf("labels %v: want group labels overridden by the node's", l)
	}
	an := e.Metadata.Annotations
	if an[workloadentry.AnnotationAutoRegistrationGroup] != "vm-group" || an[workloadentry.AnnotationWorkloadController] != "istiod-test" ||
		an[workloadentry.AnnotationConnectedAt] == "" || an[workloadentry.AnnotationHealthChecksEnabled] != "true" {
		t.Fatalf("annotations %v", an)
	}
	if e.Spec["address"] != "10.0.0.7" || e.Spec["network"] != "net1" || e.Spec["serviceAccount"] != "vm-sa" {
		t.Fatalf("spec %v", e.Spec)
	}

	health := func(healthy bool, msg string) {
		req := &discoveryv3.DiscoveryRequest{TypeUrl: HealthInfoTypeURL}
		if !healthy {
			req.ErrorDetail = &rpcstatus.Status{Code: int32(codes.Internal), Message: msg}
		}
		if err := a.stream.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	cond := func() (string, string) {
		got, ok := tb.srv.Registry().Get("vm", "vm-group-10.0.0.7-net1")
		if !ok {
			return "", ""
		}
		c, _ := got.Condition(workloadentry.ConditionHealthy)
		return c.Status, c.Message
	}
	health(false, "probe /ready: 503")
	eventually(t, 2*time.Second, "Healthy=False", func() bool { s, m := cond(); return s == "False" && m == "probe /ready: 503" })
	health(true, "")
	eventually(t, 2*time.Second, "Healthy=True", func() bool { s, m := cond(); return s == "True" && m == "" })

	// Disconnect: disconnectedAt set, then deleted after the grace period.
	a.cancel()
	eventually(t, 2*time.Second, "disconnectedAt", func() bool {
		got, ok := tb.srv.Registry().Get("vm", "vm-group-10.0.0.7-net1")
		return ok && got.Annotations[workloadentry.AnnotationDisconnectedAt] != ""
	})
	eventually(t, 3*time.Second, "deleted after grace", func() bool {
		_, ok := tb.srv.Registry().Get("vm", "vm-group-10.0.0.7-net1")
		return !ok
	})
}

func TestRootPersistsAcrossRestart(t *testing.T) {
	state := t.TempDir()
	get := func(tb *testbed) string {
		r, err := http.Get("http://" + tb.srv.DebugAddr() + "/debug/ca")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return string(b)
	}
	tb1 := startTestbed(t, state)
	root1 := get(tb1)
	tok, _ := tb1.authority.MintToken("vm", "vm-sa", time.Hour)
	tb1.srv.Close()
	tb2 := startTestbed(t, state)
	if root2 := get(tb2); root1 != root2 || !strings.Contains(root1, "BEGIN CERTIFICATE") {
		t.Fatal("root changed across restart")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := tb2.issue(tb2.dialTLS(nil), withAuth(ctx, tok), ""); err != nil {
		t.Fatalf("token minted before restart: %v", err)
	}
}

func TestPushDoesNotBlockOnSlowClients(t *testing.T) {
	tb := startTestbed(t, "")
	a := openADS(t, tb.dialPlain(), "", vmNode("10.0.0.8", "ns1", nil))
	a.recvTable()
	for range 100 {
		tb.srv.Push() // coalesced: never blocks
	}
	a.recvTable()
	if n := len(tb.srv.Connections()); n != 1 {
		t.Fatalf("%d connections", n)
	}
}
