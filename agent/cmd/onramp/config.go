package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/onramp-mesh/onramp/agent/config"
	"github.com/onramp-mesh/onramp/agent/configcheck"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "config",
		Short:   "Work with onramp's configuration file",
		Example: `  onramp config check`,
	}
	cmd.AddCommand(newConfigCheckCmd())
	return cmd
}

func newConfigCheckCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check [FILE] [flags]",
		Short: "Validate a configuration without starting anything",
		Long: `Validate a configuration file (default ` + config.DefaultPath + `) without
starting anything: the file's syntax and values, then what it names that can
be checked from disk: the bundle (every file of it), the name table, the
state directory, and whether the onramp user the service runs as can read
them (and write the state). Each finding names the file and the key. The exit
status is 1 when there is an error; warnings alone exit 0.`,
		Example: `  onramp config check
  onramp config check /tmp/onramp.yaml -o json`,
		Args: rangeArgs(0, "FILE"),
	}
	out := addOutputFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := out.check(); err != nil {
			return err
		}
		path := config.DefaultPath
		if len(args) == 1 {
			path = args[0]
		}
		rep := configcheck.Check(path, configcheck.Options{})
		if err := out.print(cmd.OutOrStdout(), rep, rep.WriteText); err != nil {
			return err
		}
		if !rep.OK {
			return errors.New(path + ": the configuration has errors")
		}
		return nil
	}
	cmd.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
	}
	return cmd
}
