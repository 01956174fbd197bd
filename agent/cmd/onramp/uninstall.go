package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/onramp-mesh/onramp/installer/uninstall"
)

func newUninstallCmd() *cobra.Command {
	var o uninstall.Options
	cmd := &cobra.Command{
		Use:   "uninstall [--purge]",
		Short: "Take this machine off the mesh and undo what onramp changed",
		Long: `Take this machine off the mesh: stop and disable onramp.service and
onramp.socket, remove the resolver redirect (safe with the agent dead), remove
an onramp block from /etc/hosts if there is one, and take bundle: out of
/etc/onramp/onramp.yaml. With --purge, also delete the bundle with its token
and the state in /var/lib/onramp: the private key, the certificates and the
last name table. The package stays installed: apt purge onramp (or rpm -e
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

// removeRedirect runs `onramp redirect remove`, which restores what the record
// in the state directory says the redirect changed. An onramp without that
// command has no redirect to remove.
func removeRedirect(ctx context.Context, _ string) error {
	self, err := os.Executable()
	if err != nil {
		self = "onramp"
	}
	out, err := exec.CommandContext(ctx, self, "redirect", "remove").CombinedOutput()
	if err != nil && strings.Contains(string(out), "unknown command") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("onramp redirect remove: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
