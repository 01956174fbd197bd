package main

import (
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/onramp-mesh/onramp/installer/bootstrap"
)

func newBootstrapCmd() *cobra.Command {
	var o bootstrap.Options
	cmd := &cobra.Command{
		Use:   "bootstrap --bundle DIR --data-plane none|proxy [flags]",
		Short: "Join the mesh with an onboarding bundle: install it, start the agent, wait until it is ready",
		Long: `Join this machine to the mesh with the bundle that
istioctl x workload entry configure -o DIR wrote:

  1. check the bundle, reporting every defect at once (nothing is changed then);
  2. install it into /etc/onramp/bundle, owned by root, readable by the onramp
     group (files 0640, the directory 0750), replacing an older bundle whole;
  3. set bundle: and dataPlane: in /etc/onramp/onramp.yaml;
  4. enable onramp.service and onramp.socket, start (or restart) the agent and
     wait until it is READY, showing its progress;
  5. print the identity, the WorkloadEntry, the name table and the redirect.

Run again with the same bundle it changes nothing. /etc/hosts is left alone:
the agent reaches istiod through the bundle's own hosts file.

--data-plane says whether a proxy (Envoy, ztunnel) on this machine carries
traffic to the mesh's auto-allocated VIPs: with none, names that only have such
VIPs are forwarded upstream instead of answered with an address nothing routes.
It is required the first time, then kept in the configuration.`,
		Example: `  onramp bootstrap --bundle ./vm-bundle --data-plane none
  onramp bootstrap --bundle ./vm-bundle --data-plane proxy --ip 10.0.0.7 -o json`,
		Args: noArgs,
	}
	cmd.Flags().StringVar(&o.Bundle, "bundle", "", "the bundle `DIR` (cluster.env, mesh.yaml, root-cert.pem, istio-token, hosts)")
	cmd.Flags().StringVar(&o.IP, "ip", "", "this machine's `IP` for its WorkloadEntry (default: the bundle's ISTIO_SVC_IP, else the address of the route to istiod)")
	cmd.Flags().StringVar(&o.DataPlane, "data-plane", "", "`none` (no proxy on this machine) or proxy")
	cmd.Flags().StringVar(&o.Config, "config", "", "the agent's configuration `FILE` (default /etc/onramp/onramp.yaml)")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 90*time.Second, "how long to wait for the agent to be ready")
	_ = cmd.MarkFlagRequired("bundle")
	_ = cmd.MarkFlagDirname("bundle")
	_ = cmd.RegisterFlagCompletionFunc("data-plane", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"none\tno proxy on this machine", "proxy\tEnvoy or ztunnel carries VIP traffic"}, cobra.ShellCompDirectiveNoFileComp
	})
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := out.check(); err != nil {
			return err
		}
		if o.DataPlane != "" && o.DataPlane != "none" && o.DataPlane != "proxy" {
			return usagef("--data-plane %q: want none or proxy", o.DataPlane)
		}
		o.Out = cmd.ErrOrStderr() // progress on stderr, the result on stdout
		res, err := bootstrap.Run(cmd.Context(), o)
		if err != nil {
			return err
		}
		return out.print(cmd.OutOrStdout(), res, func(w io.Writer) { _ = res.WriteText(w) })
	}
	return cmd
}
