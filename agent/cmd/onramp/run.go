package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/onramp-mesh/onramp/agent/config"
	"github.com/onramp-mesh/onramp/agent/daemon"
)

func newRunCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run [flags]",
		Short: "Run the agent",
		Long: `Run the agent in the foreground: join the mesh with the onboarding bundle and
serve mesh names from the local DNS proxy, or serve a NameTable file with no
control plane. systemd runs it as the onramp service.

The configuration is the built-in defaults, overlaid by the file given with
--config (default ` + config.DefaultPath + `, which may be absent), overlaid by
the flags given on the command line.`,
		Example: `  # Join the mesh
  onramp run --bundle /etc/onramp/bundle

  # Serve a static name table, no control plane
  onramp run --name-table table.json --upstream 1.1.1.1

  # Use a configuration file, with one setting overridden
  onramp run --config /etc/onramp/onramp.yaml --log-level debug`,
		Args: noArgs,
	}
	flags := config.NewFlags(cmd.Flags())
	_ = cmd.MarkFlagDirname("bundle")
	_ = cmd.MarkFlagDirname("state-dir")
	_ = cmd.MarkFlagFilename("name-table", "json")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if cmd.Flags().Changed("bundle") && cmd.Flags().Changed("name-table") {
			return usagef("--bundle and --name-table exclude each other: the bundle joins a mesh, the name table is served with no control plane")
		}
		cfg, err := flags.Resolve()
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err = daemon.Run(ctx, cfg, version)
		if errors.Is(err, daemon.ErrNotConfigured) {
			// Its own exit status, on which onramp.service does not
			// restart: nothing will change until someone configures.
			fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", rootCmdName, err)
			os.Exit(daemon.ExitNotConfigured)
		}
		return err
	}
	return cmd
}
