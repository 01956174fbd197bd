// Package nspawn boots real systemd machines for tests, in about half a
// second each: Debian rootfs trees built once with debootstrap from the host's
// own apt mirror and cached, booted with systemd-nspawn on a network
// namespace of their own whose one veth leads to a namespace the test
// controls.
//
// In a test, ForTest does it all (skip when not root or tools are missing,
// build or reuse the rootfs, boot, stop when the test ends):
//
//	m := nspawn.ForTest(t, "bookworm", nspawn.Opts{}) // or "trixie"
//
// or step by step:
//
//	root, err := nspawn.Rootfs(ctx, "bookworm") // cached under CacheDir
//	m, err := nspawn.Boot(ctx, nspawn.Opts{Root: root,
//		Binds: []nspawn.Bind{{Src: "bin/onramp", Dst: "/usr/bin/onramp"}}})
//	defer m.Stop()
//	out, err := m.Run(ctx, "resolvectl", "status")
//
// The machine sees its end of the veth as host0 with Opts.Addr and a default
// route to Opts.PeerAddr, which lives in m.Peer (a testbed/netns namespace):
// listen there (m.Peer.Listen, m.Peer.Command) to play the control plane or
// an upstream DNS server. systemd-resolved manages /etc/resolv.conf through
// its stub, as on a Debian host with resolved; Opts.NoResolved boots a host
// without it. Boots are volatile (--volatile=overlay, the rootfs stays
// pristine and is shared by parallel machines) unless Opts.StateDir keeps a
// writable layer, which Reboot and a later Boot continue from.
//
// Everything needs root; tests skip only when Available says why not.
package nspawn
