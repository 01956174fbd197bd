package controlplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	securityv1alpha1 "istio.io/api/security/v1alpha1"

	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
	"github.com/onramp-mesh/onramp/testbed/ca"
	"github.com/onramp-mesh/onramp/testbed/mesh"
	"github.com/onramp-mesh/onramp/workloadentry"
)

// Mesh is the configuration the control plane serves; *mesh.Store
// implements it.
type Mesh interface {
	// NameTable is the NDS table for a proxy.
	NameTable(p mesh.Proxy) *ndspb.NameTable
	// WorkloadGroup returns a WorkloadGroup by namespace and name.
	WorkloadGroup(namespace, name string) (*workloadentry.Group, bool)
	// Version changes whenever the configuration does.
	Version() string
}

// Options configure a Server.
type Options struct {
	// Authority is the CA; required.
	Authority *ca.Authority
	// Mesh is the configuration; required.
	Mesh Mesh
	// TLSAddr is the TLS gRPC address (istiod's :15012); empty disables it.
	TLSAddr string
	// PlaintextAddr is the plaintext gRPC address (istiod's :15010); empty
	// disables it.
	PlaintextAddr string
	// DebugAddr is the debug HTTP address (istiod's :15014); empty disables it.
	DebugAddr string
	// ServingNames are the names in the serving certificate; default
	// ca.DefaultServingNames.
	ServingNames []string
	// Controller is this instance's name, written to
	// istio.io/workloadController; default onramp-testbed-<hostname>.
	Controller string
	// GracePeriod is how long a disconnected WorkloadEntry survives;
	// default 10s. Ignored when Registry is set.
	GracePeriod time.Duration
	// MaxConnectionAge closes gRPC connections after this age, as istiod
	// does (default 30m); negative disables it.
	MaxConnectionAge time.Duration
	// Registry holds the WorkloadEntries; created when nil.
	Registry *workloadentry.Registry
	// Log is the logger; the server logs under "controlplane".
	Log hclog.Logger
}

// DefaultMaxConnectionAge is istiod's MAX_CONNECTION_AGE.
const DefaultMaxConnectionAge = 30 * time.Minute

// Server is a running control plane.
type Server struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer

	opts     Options
	log      hclog.Logger
	registry *workloadentry.Registry
	ownReg   bool

	tlsLis, plainLis, debugLis net.Listener
	tlsSrv, plainSrv           *grpc.Server
	httpSrv                    *http.Server

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu     sync.Mutex
	conns  map[uint64]*connection
	nextID uint64
	fault  Fault

	pushSeq atomic.Uint64
	stats   struct {
		caIssued, caFailures atomic.Uint64
		pushes               atomic.Uint64
	}
}

// Start listens on the configured addresses and serves until Close.
func Start(opts Options) (*Server, error) {
	if opts.Authority == nil || opts.Mesh == nil {
		return nil, errors.New("controlplane: Options.Authority and Options.Mesh are required")
	}
	if opts.Log == nil {
		opts.Log = hclog.NewNullLogger()
	}
	if opts.Controller == "" {
		h, _ := os.Hostname()
		if h == "" {
			h = "local"
		}
		opts.Controller = "onramp-testbed-" + h
	}
	if opts.MaxConnectionAge == 0 {
		opts.MaxConnectionAge = DefaultMaxConnectionAge
	}
	s := &Server{
		opts:  opts,
		log:   opts.Log.Named("controlplane"),
		done:  make(chan struct{}),
		conns: map[uint64]*connection{},
	}
	s.registry = opts.Registry
	if s.registry == nil {
		s.registry = workloadentry.NewRegistry(workloadentry.RegistryOptions{
			Controller:       opts.Controller,
			GracePeriod:      opts.GracePeriod,
			MaxConnectionAge: max(opts.MaxConnectionAge, 0),
		}, opts.Log)
		s.ownReg = true
	}

	if err := s.listen(); err != nil {
		s.closeListeners()
		if s.ownReg {
			s.registry.Close()
		}
		return nil, err
	}
	s.serve()
	return s, nil
}

func (s *Server) grpcOptions(creds credentials.TransportCredentials) []grpc.ServerOption {
	ka := keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}
	if s.opts.MaxConnectionAge > 0 {
		ka.MaxConnectionAge = s.opts.MaxConnectionAge
		ka.MaxConnectionAgeGrace = 10 * time.Second
	}
	o := []grpc.ServerOption{
		grpc.KeepaliveParams(ka),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.MaxRecvMsgSize(4 << 20),
	}
	if creds != nil {
		o = append(o, grpc.Creds(creds))
	}
	return o
}

func (s *Server) listen() error {
	var err error
	if s.opts.TLSAddr != "" {
		cert, cerr := s.opts.Authority.ServingCertificate(s.opts.ServingNames...)
		if cerr != nil {
			return fmt.Errorf("controlplane: %w", cerr)
		}
		tc := &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.VerifyClientCertIfGiven,
			ClientCAs:    s.opts.Authority.Pool(),
		}
		if s.tlsLis, err = net.Listen("tcp", s.opts.TLSAddr); err != nil {
			return fmt.Errorf("controlplane: listen for TLS gRPC on %s: %w; pick a free address with --grpc-tls", s.opts.TLSAddr, err)
		}
		s.tlsSrv = grpc.NewServer(s.grpcOptions(credentials.NewTLS(tc))...)
		s.register(s.tlsSrv)
	}
	if s.opts.PlaintextAddr != "" {
		if s.plainLis, err = net.Listen("tcp", s.opts.PlaintextAddr); err != nil {
			return fmt.Errorf("controlplane: listen for plaintext gRPC on %s: %w; pick a free address with --grpc-plaintext", s.opts.PlaintextAddr, err)
		}
		s.plainSrv = grpc.NewServer(s.grpcOptions(nil)...)
		s.register(s.plainSrv)
	}
	if s.opts.DebugAddr != "" {
		if s.debugLis, err = net.Listen("tcp", s.opts.DebugAddr); err != nil {
			return fmt.Errorf("controlplane: listen for debug HTTP on %s: %w; pick a free address with --debug", s.opts.DebugAddr, err)
		}
		s.httpSrv = &http.Server{Handler: s.debugHandler(), ReadHeaderTimeout: 5 * time.Second}
	}
	return nil
}

func (s *Server) register(g *grpc.Server) {
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, s)
	securityv1alpha1.RegisterIstioCertificateServiceServer(g, &caService{s: s})
}

func (s *Server) serve() {
	run := func(name string, f func() error) {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := f(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, grpc.ErrServerStopped) {
				select {
				case <-s.done:
				default:
					s.log.Error("server stopped", "server", name, "error", err)
				}
			}
		}()
	}
	if s.tlsSrv != nil {
		s.log.Info("serving gRPC over TLS (CA, ADS)", "addr", s.tlsLis.Addr().String())
		run("grpc-tls", func() error { return s.tlsSrv.Serve(s.tlsLis) })
	}
	if s.plainSrv != nil {
		s.log.Info("serving plaintext gRPC (CA, ADS)", "addr", s.plainLis.Addr().String())
		run("grpc-plaintext", func() error { return s.plainSrv.Serve(s.plainLis) })
	}
	if s.httpSrv != nil {
		s.log.Info("serving debug HTTP", "addr", s.debugLis.Addr().String())
		run("debug-http", func() error { return s.httpSrv.Serve(s.debugLis) })
	}
}

func (s *Server) closeListeners() {
	for _, l := range []net.Listener{s.tlsLis, s.plainLis, s.debugLis} {
		if l != nil {
			l.Close()
		}
	}
}

func addrString(l net.Listener) string {
	if l == nil {
		return ""
	}
	return l.Addr().String()
}

// TLSAddr is the bound TLS gRPC address ("" when disabled).
func (s *Server) TLSAddr() string { return addrString(s.tlsLis) }

// PlaintextAddr is the bound plaintext gRPC address ("" when disabled).
func (s *Server) PlaintextAddr() string { return addrString(s.plainLis) }

// DebugAddr is the bound debug HTTP address ("" when disabled).
func (s *Server) DebugAddr() string { return addrString(s.debugLis) }

// Registry returns the WorkloadEntry registry.
func (s *Server) Registry() *workloadentry.Registry { return s.registry }

// Controller returns this instance's name.
func (s *Server) Controller() string { return s.opts.Controller }

// Close ends every ADS stream (clients see Unavailable and reconnect), stops
// the servers and, when the server created it, the registry.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		stopGRPC := func(g *grpc.Server) {
			if g == nil {
				return
			}
			ch := make(chan struct{})
			go func() { g.GracefulStop(); close(ch) }()
			select {
			case <-ch:
			case <-time.After(5 * time.Second):
				g.Stop()
			}
		}
		stopGRPC(s.tlsSrv)
		stopGRPC(s.plainSrv)
		if s.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			s.httpSrv.Shutdown(ctx)
			cancel()
		}
		s.wg.Wait()
		if s.ownReg {
			s.registry.Close()
		}
		s.log.Info("stopped")
	})
	return nil
}
