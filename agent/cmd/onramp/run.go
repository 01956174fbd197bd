package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"github.com/onramp-mesh/onramp/agent/config"
	"github.com/onramp-mesh/onramp/agent/daemon"
)

func cmdRun(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	flags := config.NewFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := flags.Resolve()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return daemon.Run(ctx, cfg, version)
}
