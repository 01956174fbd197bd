// Command onramp-testbed runs the testbed's istiod-compatible control plane,
// mints onboarding bundles for it, and runs the demo.
//
//	onramp-testbed controlplane --config DIR --state DIR [--grpc-tls 127.0.0.1:15012 --grpc-plaintext 127.0.0.1:15010 --debug 127.0.0.1:15014]
//	onramp-testbed bundle --config DIR --state DIR --group NAME --namespace NS -o DIR [--service-account SA --gateway-ip IP --ip IP --plaintext]
//	onramp-testbed demo [--mesh DIR] [-v]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashicorp/go-hclog"
)

const usage = `usage: onramp-testbed <command> [flags]

commands:
  controlplane  run the istiod-compatible control plane (CA, ADS/NDS, auto-registration)
  bundle        mint an onboarding bundle (istioctl x workload entry configure format)
  demo          run the mesh demo on namespace "VMs" (needs root)

Run onramp-testbed <command> -h for the flags of a command.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "controlplane":
		err = runControlPlane(ctx, args)
	case "bundle":
		err = runBundle(args, os.Stdout)
	case "demo":
		err = runDemo(ctx, args)
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "onramp-testbed: unknown command %q\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "onramp-testbed %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func newLogger(level string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:   "onramp-testbed",
		Level:  hclog.LevelFromString(level),
		Output: os.Stderr,
	})
}
