// Command onramp is the agent that puts a virtual machine on an Istio service
// mesh: it bootstraps the VM's mesh identity, registers its WorkloadEntry,
// receives the mesh name table and serves it from a local caching DNS proxy.
//
// The command tree is built in newRootCmd; run `onramp help` for the list.
// Each command lives in its own file and exposes newXxxCmd() *cobra.Command:
// its flags and a call into the package that does the work. Adding one:
//
//	func newFrobCmd() *cobra.Command {
//		cmd := &cobra.Command{Use: "frob NAME [flags]", Short: "...", Example: "  onramp frob x", Args: exactArgs("NAME")}
//		out := addOutputFlag(cmd) // if it prints a result: -o text|json
//		cmd.RunE = func(cmd *cobra.Command, args []string) error {
//			r, err := frob.Do(cmd.Context(), args[0]) // the work is in its package
//			if err != nil {
//				return err // exit 1, printed as "onramp: <err>"
//			}
//			return out.print(cmd.OutOrStdout(), r, r.WriteText)
//		}
//		return cmd
//	}
//
// plus newFrobCmd() in its group's list in newRootCmd; main_test.go then checks its
// --help, its Examples and its usage errors. Return usagef(...) for a wrong command line found in RunE
// (exit 2 with a hint); cobra's own argument and flag errors are usage
// errors already. Print with cmd.OutOrStdout() and cmd.ErrOrStderr(), so
// that tests see the output.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit statuses of the onramp command.
const (
	exitOK      = 0
	exitFailed  = 1 // the command ran and failed
	exitUsage   = 2 // the command line is wrong; nothing was done
	rootCmdName = "onramp"
)

func main() {
	os.Exit(execute(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// newRootCmd builds the whole command tree. To add a command, write its
// newXxxCmd in its own file and add it to the list below.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   rootCmdName,
		Short: "Put this machine on an Istio service mesh",
		Long: `onramp puts this machine on an Istio service mesh: it joins the mesh with the
onboarding bundle that istioctl x workload entry configure writes, registers its
WorkloadEntry, and serves the mesh's names from a local caching DNS proxy.`,
		Example: `  # Join the mesh with a bundle and serve mesh names
  onramp run --bundle /etc/onramp/bundle

  # What the running agent is doing
  onramp status

  # Ask the local proxy, as an application would
  onramp lookup productpage.default.svc.cluster.local`,
		Version:           versionString(),
		SilenceUsage:      true,
		SilenceErrors:     true,
		Args:              noArgs,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	root.SetHelpCommand(newHelpCmd())
	// The commands, in the groups `onramp help` shows them in.
	for _, g := range []struct {
		id, title string
		cmds      []*cobra.Command
	}{
		{"setup", "Setting up this machine:", []*cobra.Command{
			newBootstrapCmd(),
			newCloudInitCmd(),
			newUninstallCmd(),
			newConfigCmd(),
		}},
		{"agent", "Running the agent:", []*cobra.Command{
			newRunCmd(),
		}},
		{"inspect", "Looking at a running agent:", []*cobra.Command{
			newStatusCmd(),
			newLookupCmd(),
			newNameTableCmd(),
			newDoctorCmd(),
			newRedirectCmd(),
		}},
		{"other", "Other commands:", []*cobra.Command{
			newVersionCmd(),
			newCompletionCmd(),
			newGenDocsCmd(),
		}},
	} {
		root.AddGroup(&cobra.Group{ID: g.id, Title: g.title})
		for _, c := range g.cmds {
			c.GroupID = g.id
			root.AddCommand(c)
		}
	}
	root.SetHelpCommandGroupID("other")
	prepareTree(root)
	return root
}

// newHelpCmd is cobra's help command, except that an unknown topic is a
// usage error rather than a help text with exit status 0.
func newHelpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND]...",
		Short: "Help about any command",
		Long:  "Help about any command: onramp help COMMAND [SUBCOMMAND] prints what onramp COMMAND [SUBCOMMAND] --help prints.",
		Example: `  onramp help
  onramp help nametable check`,
		ValidArgsFunction: func(c *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			cmd, _, err := c.Root().Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []string
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() {
					names = append(names, sub.Name()+"\t"+sub.Short)
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err != nil || len(rest) > 0 {
				return usagef("no help topic %q: run onramp help for the commands", strings.Join(args, " "))
			}
			return cmd.Help()
		},
	}
}

// execute runs the command line args and returns the process's exit status:
// 0 on success, 1 when the command failed, 2 when the command line is wrong
// (with a one-line hint on stderr).
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	var failed *runError
	if errors.As(err, &failed) {
		fmt.Fprintf(stderr, "%s: %v\n", rootCmdName, failed.err)
		return exitFailed
	}
	if cmd == nil {
		cmd = root
	}
	fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", rootCmdName, err, cmd.CommandPath())
	return exitUsage
}

// runError marks an error returned by a command's RunE: the command line was
// right and the work failed. Every other error (unknown flag or command,
// wrong arguments, a usageError from RunE) is a usage error.
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

// usageError is an error of the command line found by a command's RunE,
// e.g. an unknown value of -o.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usagef returns a usage error: exit status 2 and a hint to --help.
func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// prepareTree applies the tree-wide conventions to cmd and its descendants:
// flag errors are usage errors, errors from RunE are runtime errors unless
// they are usageErrors, and a command group given an unknown subcommand
// says so.
func prepareTree(cmd *cobra.Command) {
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(c *cobra.Command, args []string) error {
			err := run(c, args)
			var ue *usageError
			if err == nil || errors.As(err, &ue) {
				return err
			}
			return &runError{err}
		}
	}
	if cmd.HasSubCommands() && cmd.Run == nil && cmd.RunE == nil {
		// A group: with no subcommand it prints its help.
		cmd.Args = noArgs
		cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	}
	for _, c := range cmd.Commands() {
		prepareTree(c)
	}
}

// noArgs refuses any argument, naming the subcommands when cmd has some.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasAvailableSubCommands() {
		var names []string
		for _, c := range cmd.Commands() {
			if c.IsAvailableCommand() {
				names = append(names, c.Name())
			}
		}
		return fmt.Errorf("unknown command %q for %q (want one of: %s)", args[0], cmd.CommandPath(), strings.Join(names, ", "))
	}
	return fmt.Errorf("%q takes no arguments, got %q", cmd.CommandPath(), args)
}

// exactArgs is cobra.ExactArgs with the argument names in the message.
func exactArgs(names ...string) cobra.PositionalArgs {
	return rangeArgs(len(names), names...)
}

// rangeArgs accepts at least min and at most len(names) arguments.
func rangeArgs(min int, names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= min && len(args) <= len(names) {
			return nil
		}
		want := strings.Join(names[:min], " ")
		if len(names) > min {
			want = strings.TrimSpace(want + " [" + strings.Join(names[min:], " ") + "]")
		}
		return fmt.Errorf("%q wants %s, got %d argument(s)", cmd.CommandPath(), want, len(args))
	}
}
