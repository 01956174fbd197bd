package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/onramp-mesh/onramp/agent/status"
)

// requestTimeout bounds one request to the running agent.
const requestTimeout = 5 * time.Second

func newStatusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status [flags]",
		Short: "Show the running agent's state",
		Long: `Show what the running agent is doing: its mode, the DNS addresses it serves,
the control plane connection, its identity, the name table and the health
probe. It asks the agent's status server (status.listen in the configuration).`,
		Example: `  onramp status
  onramp status -o json
  onramp status --addr 127.0.0.1:15021`,
		Args: noArgs,
	}
	out := addOutputFlag(cmd)
	agent := addStatusAddrFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := out.check(); err != nil {
			return err
		}
		addr, err := agent.resolve(cmd)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), requestTimeout)
		defer cancel()
		var rep status.Report
		if err := status.Get(ctx, addr, "/debug/status", &rep); err != nil {
			return err
		}
		return out.print(cmd.OutOrStdout(), rep, rep.WriteText)
	}
	return cmd
}
