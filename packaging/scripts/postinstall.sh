#!/bin/sh
# Register the units. The agent is started by `systemctl enable --now onramp`
# once a bundle is configured, so installing never changes the host's DNS.
set -e
chown onramp:onramp /var/lib/onramp 2>/dev/null || true
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	# On upgrade (deb: configure with a previous version; rpm: $1 >= 2), restart a running agent.
	if systemctl is-active --quiet onramp.service; then
		systemctl restart onramp.service || true
	fi
fi
exit 0
