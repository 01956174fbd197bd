package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/onramp-mesh/onramp/agent/config"
)

// agentAddr is the address of the running agent that a client command talks
// to: the flag when given, else what the agent's configuration file sets
// (status.listen, or the first dns.listen), else the built-in default. A
// configuration file that cannot be read leaves the default: these commands
// must work for users who may not read /etc/onramp.
type agentAddr struct {
	flag       string // "addr" or "server"
	value      string
	configPath string
	pick       func(config.Config) (string, error)
}

// addStatusAddrFlags defines --addr and --config for a command that asks the
// agent's status server.
func addStatusAddrFlags(cmd *cobra.Command) *agentAddr {
	a := &agentAddr{flag: "addr", pick: func(c config.Config) (string, error) {
		if c.Status.Listen == "off" || c.Status.Listen == "" {
			return "", fmt.Errorf("the agent's status server is off (status.listen: off); turn it on, or give --addr")
		}
		return c.Status.Listen, nil
	}}
	cmd.Flags().StringVar(&a.value, "addr", config.Default().Status.Listen, "the agent's status address, `HOST:PORT` (default: status.listen of --config)")
	cmd.Flags().StringVar(&a.configPath, "config", config.DefaultPath, "the agent's configuration `FILE`, for its addresses")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml")
	return a
}

// addDNSAddrFlags defines --server and --config for a command that asks the
// agent's DNS proxy.
func addDNSAddrFlags(cmd *cobra.Command) *agentAddr {
	a := &agentAddr{flag: "server", pick: func(c config.Config) (string, error) {
		return c.DNS.Listen[0], nil
	}}
	cmd.Flags().StringVar(&a.value, "server", config.Default().DNS.Listen[0], "the DNS proxy to ask, `IP:PORT` (default: the first dns.listen of --config)")
	cmd.Flags().StringVar(&a.configPath, "config", config.DefaultPath, "the agent's configuration `FILE`, for its addresses")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml")
	return a
}

// resolve returns the address to use.
func (a *agentAddr) resolve(cmd *cobra.Command) (string, error) {
	if cmd.Flags().Changed(a.flag) {
		return a.value, nil
	}
	cfg, err := config.Load(a.configPath, !cmd.Flags().Changed("config"))
	if err != nil {
		if cmd.Flags().Changed("config") {
			return "", err
		}
		return a.value, nil // unreadable default file: the built-in default
	}
	addr, err := a.pick(cfg)
	if err != nil {
		return "", fmt.Errorf("%s: %w", a.configPath, err)
	}
	return strings.TrimSpace(addr), nil
}
