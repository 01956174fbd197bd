package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/onramp-mesh/onramp/agent/nametable"
)

func cmdNameTable(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("nametable: usage: onramp nametable check FILE.json | onramp nametable show")
	}
	switch args[0] {
	case "check":
		fs := flag.NewFlagSet("nametable check", flag.ContinueOnError)
		ns := fs.String("namespace", "default", "the proxy's namespace, for short names")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return fmt.Errorf("nametable check: usage: onramp nametable check FILE.json")
		}
		t, err := nametable.LoadJSON(fs.Arg(0))
		if err != nil {
			return err
		}
		ix, err := nametable.Build(t, nametable.HostContext{Namespace: *ns, ClusterDomain: "cluster.local"}, nametable.Options{})
		if err != nil {
			return fmt.Errorf("nametable: %s: %w", fs.Arg(0), err)
		}
		fmt.Printf("%s: ok, %d hosts, %d names answered\n", fs.Arg(0), len(t.GetTable()), ix.Len())
		return nil
	case "show":
		fs := flag.NewFlagSet("nametable show", flag.ContinueOnError)
		addr := fs.String("addr", "127.0.0.1:15020", "the agent's status address")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+*addr+"/debug/nametable", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("nametable: no agent answers on %s (is onramp running?): %w", *addr, err)
		}
		defer resp.Body.Close()
		_, err = io.Copy(os.Stdout, resp.Body)
		return err
	default:
		return fmt.Errorf("nametable: unknown subcommand %q: want check or show", args[0])
	}
}
