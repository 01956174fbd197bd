package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

func newGenDocsCmd() *cobra.Command {
	var dir string
	var gz bool
	cmd := &cobra.Command{
		Use:    "gen-docs --dir DIR",
		Short:  "Write the man pages and shell completions, for packaging",
		Hidden: true,
		Long: `Write the man pages and the shell completion scripts generated from the
command tree, laid out as the packages install them:

  DIR/man/man1/onramp.1, onramp-run.1, ...  -> /usr/share/man/man1/
  DIR/completions/bash/onramp               -> /usr/share/bash-completion/completions/
  DIR/completions/zsh/_onramp               -> /usr/share/zsh/vendor-completions/ (site-functions on RPM)
  DIR/completions/fish/onramp.fish          -> /usr/share/fish/vendor_completions.d/

The man pages' date is SOURCE_DATE_EPOCH when set, for reproducible builds.`,
		Example: `  onramp gen-docs --dir bin/docs --gzip`,
		Args:    noArgs,
	}
	cmd.Flags().StringVar(&dir, "dir", "", "the `DIR` to write into (created)")
	cmd.Flags().BoolVar(&gz, "gzip", false, "compress the man pages (onramp.1.gz), as Debian policy wants")
	_ = cmd.MarkFlagRequired("dir")
	_ = cmd.MarkFlagDirname("dir")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		return writeDocs(cmd.Root(), dir, gz)
	}
	return cmd
}

// writeDocs writes the man page of every available command of root and the
// bash, zsh and fish completions under dir.
func writeDocs(root *cobra.Command, dir string, gz bool) error {
	root.DisableAutoGenTag = true
	man := filepath.Join(dir, "man", "man1")
	if err := os.MkdirAll(man, 0o755); err != nil {
		return err
	}
	header := &doc.GenManHeader{Title: "ONRAMP", Section: "1", Source: "onramp " + version, Manual: "onramp manual"}
	var walk func(c *cobra.Command) error
	walk = func(c *cobra.Command) error {
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() && !sub.IsAdditionalHelpTopicCommand() {
				if err := walk(sub); err != nil {
					return err
				}
			}
		}
		var page bytes.Buffer
		h := *header
		h.Title = strings.ToUpper(strings.ReplaceAll(c.CommandPath(), " ", "-"))
		if err := doc.GenMan(c, &h, &page); err != nil {
			return fmt.Errorf("man page of %s: %w", c.CommandPath(), err)
		}
		name := filepath.Join(man, strings.ReplaceAll(c.CommandPath(), " ", "-")+".1")
		if gz {
			return writeGzip(name+".gz", page.Bytes())
		}
		return os.WriteFile(name, page.Bytes(), 0o644)
	}
	if err := walk(root); err != nil {
		return err
	}
	for shell, name := range map[string]string{"bash": "onramp", "zsh": "_onramp", "fish": "onramp.fish"} {
		var buf bytes.Buffer
		if err := writeCompletion(root, shell, &buf); err != nil {
			return err
		}
		d := filepath.Join(dir, "completions", shell)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(d, name), buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeGzip writes data compressed, with no name or time in the header, so
// that the same page gives the same bytes.
func writeGzip(path string, data []byte) error {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(data); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// writeCompletion writes root's completion script for shell.
func writeCompletion(root *cobra.Command, shell string, w io.Writer) error {
	switch shell {
	case "bash":
		return root.GenBashCompletionV2(w, true)
	case "zsh":
		return root.GenZshCompletion(w)
	case "fish":
		return root.GenFishCompletion(w, true)
	}
	return usagef("no completion for shell %q: want bash, zsh or fish", shell)
}
