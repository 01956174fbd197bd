package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/onramp-mesh/onramp/agent/nametable"
	"github.com/onramp-mesh/onramp/agent/status"
)

func newNameTableCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "nametable",
		Short: "Check a NameTable file, or show the names the agent serves",
		Example: `  onramp nametable check table.json
  onramp nametable show -o json`,
	}
	cmd.AddCommand(newNameTableCheckCmd(), newNameTableShowCmd())
	return cmd
}

func newNameTableCheckCmd() *cobra.Command {
	hc := nametable.HostContext{ClusterDomain: nametable.DefaultClusterDomain}
	cmd := &cobra.Command{
		Use:   "check FILE.json [flags]",
		Short: "Validate a NameTable file (protojson), as onramp run --name-table reads it",
		Long: `Validate a NameTable file in protojson form, the form onramp run --name-table
serves. Every problem is reported, each naming its entry; an entry with no
address is a problem (the agent would skip it). The exit status is 1 when
there is any.`,
		Example: `  onramp nametable check table.json
  onramp nametable check --namespace bookinfo table.json
  onramp nametable check table.json -o json | jq -r '.problems[]'`,
		Args: exactArgs("FILE.json"),
	}
	cmd.Flags().StringVar(&hc.Namespace, "namespace", "default", "the proxy's `NAMESPACE`, for short names")
	cmd.Flags().StringVar(&hc.ClusterDomain, "cluster-domain", hc.ClusterDomain, "the mesh's cluster `DOMAIN`")
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := out.check(); err != nil {
			return err
		}
		path := args[0]
		t, err := nametable.LoadJSON(path)
		if err != nil {
			return err
		}
		ix, problems := nametable.Lint(t, hc, nametable.Options{})
		r := tableCheck{File: path, OK: len(problems) == 0, Hosts: ix.Hosts(), Names: ix.Len(), Problems: problems}
		if r.Problems == nil {
			r.Problems = []string{}
		}
		if err := out.print(cmd.OutOrStdout(), r, r.writeText); err != nil {
			return err
		}
		if !r.OK {
			return fmt.Errorf("%s: %d problem(s)", path, len(problems))
		}
		return nil
	}
	cmd.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return []string{"json"}, cobra.ShellCompDirectiveFilterFileExt
	}
	return cmd
}

// tableCheck is the result of nametable check.
type tableCheck struct {
	File     string   `json:"file"`
	OK       bool     `json:"ok"`
	Hosts    int      `json:"hosts"` // entries of the table
	Names    int      `json:"names"` // names the agent would answer
	Problems []string `json:"problems"`
}

func (r tableCheck) writeText(w io.Writer) {
	for _, p := range r.Problems {
		fmt.Fprintf(w, "%s: %s\n", r.File, p)
	}
	if r.OK {
		fmt.Fprintf(w, "%s: ok, %d hosts, %d names answered\n", r.File, r.Hosts, r.Names)
	}
}

func newNameTableShowCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show [flags]",
		Short: "Print the names the running agent serves",
		Example: `  onramp nametable show
  onramp nametable show -o json | jq '.entries[].name'`,
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
		s, err := status.FetchNameTable(ctx, addr)
		if err != nil {
			return err
		}
		return out.print(cmd.OutOrStdout(), s, s.WriteText)
	}
	return cmd
}
