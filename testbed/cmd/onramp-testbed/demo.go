package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/onramp-mesh/onramp/testbed/demo"
	"github.com/onramp-mesh/onramp/testbed/harness"
)

func runDemo(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	meshDir := fs.String("mesh", "", "directory of Istio YAML to serve (default: the embedded sample mesh)")
	onramp := fs.String("onramp", "", "path of the onramp binary (default: next to this binary, else $PATH)")
	verbose := fs.Bool("v", false, "echo the processes' logs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	bin := harness.Binaries{Testbed: self, Onramp: *onramp}
	if bin.Onramp == "" {
		next := filepath.Join(filepath.Dir(self), "onramp")
		if _, err := os.Stat(next); err == nil {
			bin.Onramp = next
		} else if p, err := exec.LookPath("onramp"); err == nil {
			bin.Onramp = p
		} else {
			return fmt.Errorf("no onramp binary next to %s or in $PATH; build it (make build) or pass --onramp", self)
		}
	}
	return demo.Run(ctx, demo.Options{Bin: bin, MeshDir: *meshDir, Out: os.Stdout, Verbose: *verbose})
}
