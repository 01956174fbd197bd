package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/onramp-mesh/onramp/agent/redirect"
	"github.com/onramp-mesh/onramp/installer/uninstall"
)

func newUninstallCmd() *cobra.Command {
	var o uninstall.Options
	cmd := &cobra.Command{
		Use:   "uninstall [--purge]",
		Short: "Take this machine off the mesh and undo what onramp changed",
		Long: `Take this machine off the mesh: stop and disable onramp.service and
onramp.socket, remove the resolver redirect (safe with the agent dead), remove
an onramp block from /etc/hosts if there is one. With --purge, also delete the
bundle with its token and the state in /var/lib/onramp: the private key, the
certificates and the last name table. /etc/onramp/onramp.yaml is left as it is. The package stays installed: apt purge onramp (or rpm -e
onramp) removes it, running the same steps.`,
		Example: `  onramp uninstall
  onramp uninstall --purge && apt purge onramp`,
		Args: noArgs,
	}
	cmd.Flags().BoolVar(&o.Purge, "purge", false, "also delete the bundle and the state (key, certificates, name table)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		o.Out = cmd.OutOrStdout()
		o.RemoveRedirect = removeRedirect
		if err := uninstall.Run(cmd.Context(), o); err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), "This machine is off the mesh.")
		return nil
	}
	return cmd
}

// removeRedirect restores what the redirect's record in the state directory
// says was changed; it needs no running agent.
func removeRedirect(ctx context.Context, stateDir string) error {
	_, err := redirect.RemoveRecorded(ctx, stateDir)
	return err
}
