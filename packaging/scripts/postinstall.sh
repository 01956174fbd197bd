#!/bin/sh
# onramp postinstall (deb postinst: configure [OLD]; RPM %post: $1 = 1 install, 2 upgrade).
#
# Install: enable the units (onramp.service brings onramp.socket through
# Also=) but start nothing until a bundle or a name table is configured, so
# that installing alone never changes the host's DNS. `onramp bootstrap`
# configures and starts.
# Upgrade: restart a running agent. systemd keeps holding the DNS sockets of
# onramp.socket while the service restarts, so no query is lost, and the
# agent comes back with its stored key, certificate and table, so its
# WorkloadEntry stays registered.
set -e
case "$1" in
configure | 1 | 2) ;;
*) exit 0 ;; # abort-upgrade, abort-remove...: nothing to do
esac

upgrade=no
case "$1" in
configure) [ -n "$2" ] && upgrade=yes ;;
2) upgrade=yes ;;
esac

chown onramp:onramp /var/lib/onramp
chmod 0750 /var/lib/onramp

# configured: the configuration names a bundle or a name table.
configured() {
	grep -Eq '^(bundle|nameTable):[[:space:]]*[^[:space:]#]' /etc/onramp/onramp.yaml 2>/dev/null
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
