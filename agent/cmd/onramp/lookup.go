package main

import (
	"github.com/spf13/cobra"

	"github.com/onramp-mesh/onramp/agent/lookup"
)

func newLookupCmd() *cobra.Command {
	q := lookup.Query{}
	cmd := &cobra.Command{
		Use:   "lookup NAME|IP [TYPE] [flags]",
		Short: "Ask the local DNS proxy, as an application would",
		Long: `Ask the local DNS proxy one question and print the answer, with whether it
came from the mesh name table or was forwarded upstream. An IP address asks for
its PTR record. The exit status is 1 when the answer is not NOERROR.`,
		Example: `  onramp lookup productpage.default.svc.cluster.local
  onramp lookup productpage AAAA
  onramp lookup 10.96.0.12            # PTR of the address
  onramp lookup reviews -o json --tcp`,
		Args: rangeArgs(1, "NAME", "TYPE"),
	}
	cmd.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) == 1 {
			return []string{"A", "AAAA", "PTR", "SRV", "CNAME", "TXT", "MX", "NS", "SOA"}, cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	out := addOutputFlag(cmd)
	agent := addDNSAddrFlags(cmd)
	cmd.Flags().BoolVar(&q.TCP, "tcp", false, "ask over TCP")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := out.check(); err != nil {
			return err
		}
		q.Name = args[0]
		if len(args) == 2 {
			q.Type = args[1]
		}
		_, _, err := q.Question()
		if err != nil {
			return &usageError{err}
		}
		if q.Server, err = agent.resolve(cmd); err != nil {
			return err
		}
		res, err := lookup.Do(cmd.Context(), q)
		if res.Rcode != "" {
			if perr := out.print(cmd.OutOrStdout(), res, res.WriteText); perr != nil {
				return perr
			}
		}
		return err
	}
	return cmd
}
