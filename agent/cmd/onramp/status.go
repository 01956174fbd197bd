package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/onramp-mesh/onramp/agent/status"
)

func cmdStatus(args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	out := fs.String("o", "text", "output format: text or json")
	addr := fs.String("addr", "127.0.0.1:15020", "the agent's status address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rep, err := status.Fetch(ctx, *addr)
	if err != nil {
		return err
	}
	switch *out {
	case "json":
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case "text":
		rep.WriteText(os.Stdout)
		return nil
	default:
		return fmt.Errorf("status: -o %q: want text or json", *out)
	}
}
