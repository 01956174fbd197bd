package main

import (
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/onramp-mesh/onramp/installer/bundle"
	"github.com/onramp-mesh/onramp/testbed/ca"
	"github.com/onramp-mesh/onramp/testbed/controlplane"
	"github.com/onramp-mesh/onramp/testbed/mesh"
)

func runBundle(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bundle", flag.ContinueOnError)
	group := fs.String("group", "", "WorkloadGroup name (required)")
	namespace := fs.String("namespace", "", "WorkloadGroup namespace (required)")
	sa := fs.String("service-account", "", "service account (default: the group template's, else default)")
	out := fs.String("o", "", "output directory (required)")
	config := fs.String("config", "", "mesh config directory holding the WorkloadGroup (required)")
	state := fs.String("state", "", "the control plane's state directory (root CA and token key; created if missing) (required)")
	tokenTTL := fs.Duration("token-ttl", ca.DefaultTokenTTL, "istio-token lifetime")
	discovery := fs.String("discovery-address", "", "istiod address in mesh.yaml (default istiod.istio-system.svc:15012, or :15010 with --plaintext)")
	gatewayIP := fs.String("gateway-ip", "", "IP the hosts file maps the istiod name to (empty: no hosts entry)")
	clusterID := fs.String("cluster-id", controlplane.DefaultClusterID, "ISTIO_META_CLUSTER_ID")
	network := fs.String("network", "", "ISTIO_META_NETWORK (default: the group template's network)")
	meshID := fs.String("mesh-id", "", "ISTIO_META_MESH_ID")
	ip := fs.String("ip", "", "the VM's IP (ISTIO_SVC_IP); empty lets the agent choose")
	plaintext := fs.Bool("plaintext", false, "plaintext ADS (controlPlaneAuthPolicy: NONE) for the control plane's plaintext port")
	autoRegister := fs.Bool("autoregister", true, "set ISTIO_META_AUTO_REGISTER_GROUP so the control plane creates the WorkloadEntry")
	trustDomain := fs.String("trust-domain", ca.DefaultTrustDomain, "trust domain (must match the control plane's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var missing []string
	for name, v := range map[string]string{"--group": *group, "--namespace": *namespace, "-o": *out, "--config": *config, "--state": *state} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing required flags %s", strings.Join(sortStrings(missing), ", "))
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o := controlplane.BundleOptions{
		ServiceAccount:   *sa,
		TokenTTL:         *tokenTTL,
		DiscoveryAddress: *discovery,
		ClusterID:        *clusterID,
		Network:          *network,
		MeshID:           *meshID,
		Plaintext:        *plaintext,
		AutoRegister:     *autoRegister,
	}
	if o.DiscoveryAddress == "" {
		o.DiscoveryAddress = bundle.DefaultDiscoveryAddress
		if *plaintext {
			o.DiscoveryAddress = "istiod.istio-system.svc:15010"
		}
	}
	var err error
	if *gatewayIP != "" {
		if o.GatewayIP, err = netip.ParseAddr(*gatewayIP); err != nil {
			return fmt.Errorf("--gateway-ip %q is not an IP address", *gatewayIP)
		}
	}
	if *ip != "" {
		if o.IP, err = netip.ParseAddr(*ip); err != nil {
			return fmt.Errorf("--ip %q is not an IP address", *ip)
		}
	}
	if *tokenTTL <= 0 {
		return fmt.Errorf("--token-ttl %s must be positive", *tokenTTL)
	}

	// No VIP state: the bundle needs only the group, and must not race the
	// running control plane's allocations.
	store, err := mesh.Load(*config, mesh.Options{}, nil)
	if err != nil {
		return fmt.Errorf("load mesh config from %s: %w", *config, err)
	}
	g, ok := store.WorkloadGroup(*namespace, *group)
	if !ok {
		return fmt.Errorf("WorkloadGroup %s/%s not found in %s; add it there or fix --group/--namespace", *namespace, *group, *config)
	}
	authority, err := ca.New(ca.Options{StateDir: *state, TrustDomain: *trustDomain}, nil)
	if err != nil {
		return err
	}
	files, err := controlplane.MintBundle(authority, g, o)
	if err != nil {
		return err
	}
	if err := files.WriteDir(*out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote bundle for %s/%s (service account %s, token valid %s) to %s\n",
		*namespace, *group, files.ClusterEnv["SERVICE_ACCOUNT"], *tokenTTL, *out)
	return nil
}

func sortStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}
