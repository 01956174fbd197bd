package main

import (
	"encoding/json"
	"io"

	"github.com/spf13/cobra"
)

// output is the -o/--output flag shared by every command that prints a
// result: "text" for people, "json" for programs (one indented document).
//
//	out := addOutputFlag(cmd)
//	...
//	return out.print(cmd.OutOrStdout(), report, report.WriteText)
type output struct{ format string }

// addOutputFlag defines -o/--output on cmd, with text as the default.
func addOutputFlag(cmd *cobra.Command) *output {
	o := &output{format: "text"}
	cmd.Flags().StringVarP(&o.format, "output", "o", "text", "output `FORMAT`: text or json")
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp
	})
	return o
}

// check refuses an unknown format; call it before doing the work, so that a
// typo in -o does not cost a request.
func (o *output) check() error {
	switch o.format {
	case "text", "json":
		return nil
	}
	return usagef("--output %q: want text or json", o.format)
}

// print writes v as JSON, or calls text for the text form.
func (o *output) print(w io.Writer, v any, text func(io.Writer)) error {
	if err := o.check(); err != nil {
		return err
	}
	if o.format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(w)
	return nil
}
