package nspawn_test

import (
	"context"
	"fmt"
	"log"

	"github.com/onramp-mesh/onramp/testbed/nspawn"
)

// A Debian 12 machine: boot it, ask systemd how it is, stop it.
func Example() {
	ctx := context.Background()
	if err := nspawn.Available(); err != nil {
		log.Print(err)
		return
	}
	root, err := nspawn.Rootfs(ctx, "bookworm")
	if err != nil {
		log.Fatal(err)
	}
	m, err := nspawn.Boot(ctx, nspawn.Opts{Root: root})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Stop()
	state, err := m.Run(ctx, "systemctl", "is-system-running")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(state)
}
