package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"time"

	"github.com/onramp-mesh/onramp/testbed/ca"
	"github.com/onramp-mesh/onramp/testbed/controlplane"
	"github.com/onramp-mesh/onramp/testbed/mesh"
)

func runControlPlane(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("controlplane", flag.ContinueOnError)
	config := fs.String("config", "", "directory of Istio/Kubernetes YAML (ServiceEntry, Service, Endpoints, Sidecar, WorkloadGroup); watched for changes")
	state := fs.String("state", "", "state directory: root CA, token signing key, VIP allocations (kept across restarts)")
	tlsAddr := fs.String("grpc-tls", "127.0.0.1:15012", "TLS gRPC address for CA and ADS (istiod's 15012); empty disables")
	plainAddr := fs.String("grpc-plaintext", "127.0.0.1:15010", "plaintext gRPC address for CA and ADS (istiod's 15010); empty disables")
	debugAddr := fs.String("debug", "127.0.0.1:15014", "debug HTTP address; empty disables")
	certTTL := fs.Duration("cert-ttl", ca.DefaultMaxCertTTL, "maximum (and default) workload certificate lifetime")
	grace := fs.Duration("grace", 10*time.Second, "how long a disconnected WorkloadEntry survives (PILOT_WORKLOAD_ENTRY_GRACE_PERIOD)")
	maxAge := fs.Duration("max-connection-age", controlplane.DefaultMaxConnectionAge, "gRPC connections are closed after this age (negative: never)")
	trustDomain := fs.String("trust-domain", ca.DefaultTrustDomain, "trust domain of issued identities")
	clusterDomain := fs.String("cluster-domain", "cluster.local", "Kubernetes cluster domain of service names")
	controller := fs.String("controller", "", "instance name written to istio.io/workloadController (default onramp-testbed-<hostname>)")
	logLevel := fs.String("log-level", "info", "trace, debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *config == "" || *state == "" {
		return errors.New("--config DIR and --state DIR are required")
	}
	log := newLogger(*logLevel)

	// The config is checked before any state is created.
	store, err := mesh.Load(*config, mesh.Options{StatePath: filepath.Join(*state, "vips.json"), ClusterDomain: *clusterDomain}, log)
	if err != nil {
		return fmt.Errorf("load mesh config from %s: %w", *config, err)
	}
	authority, err := ca.New(ca.Options{StateDir: *state, TrustDomain: *trustDomain, MaxCertTTL: *certTTL}, log)
	if err != nil {
		return err
	}
	srv, err := controlplane.Start(controlplane.Options{
		Authority:        authority,
		Mesh:             store,
		TLSAddr:          *tlsAddr,
		PlaintextAddr:    *plainAddr,
		DebugAddr:        *debugAddr,
		Controller:       *controller,
		GracePeriod:      *grace,
		MaxConnectionAge: *maxAge,
		Log:              log,
	})
	if err != nil {
		return err
	}
	watchCtx, cancel := context.WithCancel(ctx)
	watchErr := make(chan error, 1)
	go func() { watchErr <- store.Watch(watchCtx, srv.Push) }()
	log.Info("control plane ready", "tls", srv.TLSAddr(), "plaintext", srv.PlaintextAddr(), "debug", srv.DebugAddr(),
		"config", *config, "trust_domain", *trustDomain, "controller", srv.Controller())

	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err = <-watchErr:
		if err != nil {
			err = fmt.Errorf("watching %s stopped: %w", *config, err)
		}
	}
	cancel()
	srv.Close()
	return err
}
