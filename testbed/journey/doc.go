// Package journey is the install journey of a user, proven on real systemd
// machines (testbed/nspawn: Debian 12 and 13): the .deb installed with apt
// and the .rpm with rpm, `onramp bootstrap` with a bundle from the testbed
// control plane across a veth, restart and upgrade under dnsperf load, the
// watchdog, a crash loop healed by a fixed configuration, a reboot with the
// control plane down, purge back to the host as it was, rpmlint in a
// throwaway root, and the cloud-init user-data checked by cloud-init itself.
// The tests run as root (make test) and skip otherwise.
package journey
