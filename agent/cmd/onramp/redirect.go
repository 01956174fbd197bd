package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/onramp-mesh/onramp/agent/config"
	"github.com/onramp-mesh/onramp/agent/redirect"
	"github.com/onramp-mesh/onramp/agent/status"
)

func newRedirectCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "redirect",
		Short: "Show or remove the redirect of this host's resolver to onramp",
		Long: `The agent points the host's resolver at its DNS proxy: through systemd-resolved
(a link of its own, onramp0, with the mesh's domains as routing-only domains) or
through nftables (table inet onramp, redirecting port 53 of the resolv.conf
nameservers). It records what it changed under its state directory, so that
onramp redirect remove can undo it, also with the agent dead.`,
		Example: `  onramp redirect status
  onramp redirect status -o json
  sudo onramp redirect remove`,
	}
	cmd.AddCommand(newRedirectStatusCmd(), newRedirectRemoveCmd())
	return cmd
}

// addStateDirFlag defines --state-dir: the flag when given, else stateDir
// of --config, else the default.
func addStateDirFlag(cmd *cobra.Command) func(cmd *cobra.Command, configPath string) (string, error) {
	var dir string
	cmd.Flags().StringVar(&dir, "state-dir", config.Default().StateDir, "the agent's state `DIR` (default: stateDir of --config)")
	return func(cmd *cobra.Command, configPath string) (string, error) {
		if cmd.Flags().Changed("state-dir") {
			return dir, nil
		}
		cfg, err := config.Load(configPath, !cmd.Flags().Changed("config"))
		if err != nil {
			return "", err
		}
		return cfg.StateDir, nil
	}
}

func newRedirectStatusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status [flags]",
		Short: "Show the redirect in place: backend, link or table, domains, upstreams",
		Long: `Show the redirect of the host's resolver as the running agent reports it. When
the agent does not answer, show the record under its state directory: what
onramp redirect remove would undo.`,
		Example: `  onramp redirect status
  onramp redirect status -o json | jq .state.domains`,
		Args: noArgs,
	}
	out := addOutputFlag(cmd)
	agent := addStatusAddrFlags(cmd)
	stateDir := addStateDirFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := out.check(); err != nil {
			return err
		}
		var r redirect.Report
		addr, err := agent.resolve(cmd)
		if err == nil {
			ctx, cancel := context.WithTimeout(cmd.Context(), requestTimeout)
			var rep status.Report
			err = status.Get(ctx, addr, "/debug/status", &rep)
			cancel()
			if err == nil && rep.Redirect == nil {
				err = fmt.Errorf("the agent at %s reports no redirect", addr)
			}
			if err == nil {
				r = redirect.Report{From: "agent", State: *rep.Redirect}
			}
		}
		if err != nil {
			r.AgentError = err.Error()
			dir, derr := stateDir(cmd, agent.configPath)
			if derr != nil {
				return derr
			}
			s, ok, rerr := redirect.Recorded(dir)
			if rerr != nil {
				return rerr
			}
			r.From, r.State = "none", s
			if ok {
				r.From = "record"
			}
		}
		return out.print(cmd.OutOrStdout(), r, r.WriteText)
	}
	return cmd
}

func newRedirectRemoveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "remove [flags]",
		Short: "Undo the redirect the agent recorded, also with the agent dead",
		Long: `Undo what the agent's record under its state directory says it put in place:
delete table inet onramp, or revert onramp's link in systemd-resolved and delete
the link. Without a record it does nothing. Safe to run at any time, any number
of times; the package runs it when it is removed, and the unit after every stop
of the agent with --stopping, which keeps a systemd-resolved redirect of the
mesh's domains only (mesh lookups wait on the sockets systemd holds, other names
are untouched) and removes the others (an nftables redirect or captureAll sends
every name to the agent: a crash loop would black-hole the host's DNS). A running agent puts its redirect back: stop it first
(systemctl stop onramp) to keep the host without one. Needs root.`,
		Example: `  sudo onramp redirect remove
  sudo onramp redirect remove --state-dir /var/lib/onramp
  onramp redirect remove --stopping   # the unit's ExecStopPost`,
		Args: noArgs,
	}
	configPath := cmd.Flags().String("config", config.DefaultPath, "the agent's configuration `FILE`, for its state directory")
	stopping := cmd.Flags().Bool("stopping", false, "as the unit runs it after every stop: keep a systemd-resolved redirect of the mesh's domains only (harmless while the agent restarts), remove the others")
	stateDir := addStateDirFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		dir, err := stateDir(cmd, *configPath)
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		if *stopping {
			s, removed, err := redirect.RemoveStopping(cmd.Context(), dir)
			if err != nil {
				return err
			}
			if !removed && s.Backend != "" {
				fmt.Fprintf(w, "kept the %s redirect of the mesh's domains: harmless while the agent restarts\n", s.Backend)
				return nil
			}
		}
		s, err := redirect.RemoveRecorded(cmd.Context(), dir)
		if err != nil {
			return err
		}
		switch {
		case s.Backend == "" || s.Backend == redirect.None:
			fmt.Fprintln(w, "no redirect recorded; nothing to remove")
		case s.Table != "":
			fmt.Fprintf(w, "removed the nftables redirect (table inet %s)\n", s.Table)
		default:
			fmt.Fprintf(w, "removed the systemd-resolved redirect (link %s)\n", s.Link)
		}
		return nil
	}
	return cmd
}
