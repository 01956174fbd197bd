#!/bin/sh
# onramp postinstall (deb postinst: configure [OLD]; RPM %post: $1 = 1 install, 2 upgrade).
#
# Install: enable the units (onramp.service brings onramp.socket through
# Also=) but start nothing until a bundle or a name table is configured, so
# that installing alone never changes the host's DNS. `onramp bootstrap`
# configures and starts. A reinstall after `apt remove` (dpkg passes the old
# version, as for an upgrade) is an install: preremove left a marker.
# Upgrade: restart a running agent. systemd keeps holding the DNS sockets of
# onramp.socket while the service restarts, so no query is lost, and the
# agent comes back with its stored key, certificate and table, so its
# WorkloadEntry stays registered. A disabled or stopped agent stays so.
set -e
case "$1" in
configure | 1 | 2) ;;
*) exit 0 ;; # abort-upgrade, abort-remove...: nothing to do
esac

removed_marker=/var/lib/onramp/.package-removed
upgrade=no
case "$1" in
configure) [ -n "$2" ] && upgrade=yes ;;
2) upgrade=yes ;;
esac
if [ -e "$removed_marker" ]; then
	upgrade=no
	rm -f "$removed_marker"
fi

# Owners and modes (the package manager may have unpacked before the group
# existed): the configuration and the bundle are root's, readable by the
# agent's group; the state is the agent's.
chown root:onramp /etc/onramp /etc/onramp/bundle
chmod 0750 /etc/onramp /etc/onramp/bundle
chown onramp:onramp /var/lib/onramp
chmod 0750 /var/lib/onramp

# configured: the configuration names a name table, or the bundle it names
# (the shipped onramp.yaml: /etc/onramp/bundle) has been filled.
configured() {
	conf=/etc/onramp/onramp.yaml
	grep -Eq '^nameTable:[[:space:]]*[^[:space:]#]' "$conf" 2>/dev/null && return 0
	dir=$(sed -n -E 's/^bundle:[[:space:]]*([^[:space:]#]+).*/\1/p' "$conf" 2>/dev/null | tail -n 1)
	[ -n "$dir" ] && [ -f "$dir/cluster.env" ]
}

if [ "$upgrade" = no ]; then
	# Works without a running systemd too (a chroot, an image build): it only
	# creates the symlinks.
	systemctl enable onramp.service >/dev/null 2>&1 || true
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	if [ "$upgrade" = yes ]; then
		# Only the service: the socket stays open through the restart.
		systemctl try-restart onramp.service >/dev/null 2>&1 || true
	elif configured; then
		systemctl start onramp.socket onramp.service >/dev/null 2>&1 || true
	fi
fi
exit 0
