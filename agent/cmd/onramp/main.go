// Command onramp is the agent that puts a virtual machine on an Istio service
// mesh: it bootstraps the VM's mesh identity, registers its WorkloadEntry,
// receives the mesh name table and serves it from a local caching DNS proxy.
//
//	onramp run [--bundle DIR | --name-table FILE.json] [flags]   run the agent
//	onramp status [-o json]                                     show the running agent's state
//	onramp lookup NAME [TYPE]                                   ask the local proxy
//	onramp nametable check FILE.json                            validate a NameTable file
//	onramp nametable show                                       print the served names
//	onramp version
package main

import (
	"fmt"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		usage()
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(args[1:])
	case "status":
		err = cmdStatus(args[1:])
	case "lookup":
		err = cmdLookup(args[1:])
	case "nametable":
		err = cmdNameTable(args[1:])
	case "version", "--version", "-v":
		fmt.Println("onramp", version)
	case "help", "-h", "--help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "onramp: unknown command %q\n\n", args[0])
		usage()
		return 2
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "onramp:", err)
		return 1
	}
	return 0
}

func usage() {
	fmt.Fprint(os.Stderr, `onramp puts this machine on an Istio service mesh.

Usage:
  onramp run [--bundle DIR | --name-table FILE.json] [flags]   run the agent (see onramp run -h)
  onramp status [-o json] [--addr 127.0.0.1:15020]             show the running agent's state
  onramp lookup NAME [TYPE] [--server 127.0.0.1:15053]         ask the local DNS proxy
  onramp nametable check FILE.json                             validate a NameTable file
  onramp nametable show [--addr 127.0.0.1:15020]               print the names the agent serves
  onramp version                                               print the version
`)
}
