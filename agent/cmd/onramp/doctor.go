package main

import (
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/onramp-mesh/onramp/agent/doctor"
)

func newDoctorCmd() *cobra.Command {
	var o doctor.Options
	cmd := &cobra.Command{
		Use:   "doctor [flags]",
		Short: "Check that applications on this host get mesh answers, and say what is broken",
		Long: `Check the whole path of a DNS query as an application on this host sees it,
one link at a time, and name the first broken link with what to do:

  agent        the agent is running, ready, and has a name table
  redirect     the redirect of the host's resolver is in place as planned
  mesh-name    a mesh name looked up through the system resolver (getent ahosts,
               glibc's getaddrinfo) gets the mesh's addresses, answered by onramp
  public-name  a name outside the mesh still resolves through the real upstream
  loop         onramp does not forward to itself
  vips         with no data-plane proxy, whether applications looked up names the
               mesh knows only by auto-allocated VIPs

The exit status is 1 when a link is broken, 0 when the path works (also with
warnings).`,
		Example: `  onramp doctor
  onramp doctor -o json
  onramp doctor --name productpage.default.svc.cluster.local --public-name debian.org`,
		Args: noArgs,
	}
	out := addOutputFlag(cmd)
	agent := addStatusAddrFlags(cmd)
	cmd.Flags().StringVar(&o.MeshName, "name", "", "the mesh `NAME` to look up (default: one from the agent's name table)")
	cmd.Flags().StringVar(&o.PublicName, "public-name", doctor.DefaultPublicName, "a `NAME` outside the mesh that this host's network resolves")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 15*time.Second, "bound of each lookup")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := out.check(); err != nil {
			return err
		}
		addr, err := agent.resolve(cmd)
		if err != nil {
			return err
		}
		o.Agent = doctor.HTTPStatus{Address: addr}
		o.Resolve = doctor.GetentResolver("getent", "ahosts")
		o.Exchange = doctor.DNSExchange
		o.Inspect = doctor.HostInspector
		o.Now = time.Now
		if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
			o.ResolvConf = string(b)
		}
		rep := doctor.Run(cmd.Context(), o)
		if err := out.print(cmd.OutOrStdout(), rep, rep.WriteText); err != nil {
			return err
		}
		return rep.Err()
	}
	return cmd
}
