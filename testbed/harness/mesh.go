package harness

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/onramp-mesh/onramp/testbed/netns"
)

// ControlPlane is a running `onramp-testbed controlplane`.
type ControlPlane struct {
	*Process
	Bin    Binaries
	NS     *netns.NS // nil: the host
	Host   netip.Addr
	Config string // the mesh YAML directory it watches
	State  string // root CA, signing key, VIP allocations
	Grace  time.Duration
	echo   io.Writer
}

// Ports of the testbed control plane, as istiod's.
const (
	PortTLS       = 15012
	PortPlaintext = 15010
	PortDebug     = 15014
)

// TLSAddr, PlaintextAddr and DebugAddr are the control plane's addresses.
func (c *ControlPlane) TLSAddr() string { return netip.AddrPortFrom(c.Host, PortTLS).String() }
func (c *ControlPlane) PlaintextAddr() string {
	return netip.AddrPortFrom(c.Host, PortPlaintext).String()
}
func (c *ControlPlane) DebugAddr() string { return netip.AddrPortFrom(c.Host, PortDebug).String() }

// StartControlPlane starts the control plane on host (inside ns when not nil)
// and waits until its debug endpoint answers.
func StartControlPlane(ctx context.Context, bin Binaries, ns *netns.NS, host netip.Addr, config, state string, grace time.Duration, echo io.Writer) (*ControlPlane, error) {
	c := &ControlPlane{Bin: bin, NS: ns, Host: host, Config: config, State: state, Grace: grace, echo: echo}
	return c, c.Start(ctx)
}

// Start (re)starts the process with the same state.
func (c *ControlPlane) Start(ctx context.Context) error {
	p, err := Start("controlplane", c.NS, c.echo, c.Bin.Testbed, "controlplane",
		"--config", c.Config, "--state", c.State,
		"--grpc-tls", c.TLSAddr(), "--grpc-plaintext", c.PlaintextAddr(), "--debug", c.DebugAddr(),
		"--grace", c.Grace.String())
	if err != nil {
		return err
	}
	c.Process = p
	return WaitHTTP(ctx, DialerFor(c.NS), "http://"+c.DebugAddr()+"/healthz", p, 20*time.Second)
}

// BundleOptions are the inputs of `onramp-testbed bundle`.
type BundleOptions struct {
	Group, Namespace, ServiceAccount string
	VMIP                             netip.Addr // ISTIO_SVC_IP; zero: let the agent choose
	TokenTTL                         time.Duration
	Plaintext                        bool
	Extra                            []string
}

// MintBundle writes a bundle for a VM into dir, as istioctl would.
func (c *ControlPlane) MintBundle(ctx context.Context, dir string, o BundleOptions) error {
	args := []string{"bundle", "--state", c.State, "--config", c.Config,
		"--group", o.Group, "--namespace", o.Namespace, "-o", dir,
		"--gateway-ip", c.Host.String()}
	if o.ServiceAccount != "" {
		args = append(args, "--service-account", o.ServiceAccount)
	}
	if o.VMIP.IsValid() {
		args = append(args, "--ip", o.VMIP.String())
	}
	if o.TokenTTL != 0 {
		args = append(args, "--token-ttl", o.TokenTTL.String())
	}
	if o.Plaintext {
		args = append(args, "--plaintext", "--discovery-address", "istiod.istio-system.svc:15010")
	}
	args = append(args, o.Extra...)
	out, err := exec.CommandContext(ctx, c.Bin.Testbed, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("onramp-testbed %v: %v\n%s", args, err, out)
	}
	return nil
}

// Agent is a running `onramp run`.
type Agent struct {
	*Process
	NS         *netns.NS
	StatusAddr string
	DNSAddr    string
}

// StartAgent runs `onramp run` with args (inside ns when not nil), its DNS on
// dnsAddr and status on statusAddr, with state in stateDir.
func StartAgent(bin Binaries, ns *netns.NS, dnsAddr, statusAddr, stateDir string, echo io.Writer, args ...string) (*Agent, error) {
	argv := append([]string{bin.Onramp, "run",
		"--config", filepath.Join(stateDir, "onramp.yaml"),
		"--state-dir", stateDir, "--dns-listen", dnsAddr, "--status-listen", statusAddr}, args...)
	if err := writeEmpty(filepath.Join(stateDir, "onramp.yaml")); err != nil {
		return nil, err
	}
	p, err := Start("agent", ns, echo, argv...)
	if err != nil {
		return nil, err
	}
	return &Agent{Process: p, NS: ns, StatusAddr: statusAddr, DNSAddr: dnsAddr}, nil
}

// WaitReady waits for /healthz/ready.
func (a *Agent) WaitReady(ctx context.Context, timeout time.Duration) error {
	return WaitHTTP(ctx, DialerFor(a.NS), "http://"+a.StatusAddr+"/healthz/ready", a.Process, timeout)
}
