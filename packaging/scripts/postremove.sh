#!/bin/sh
# deb: purge also removes the state (key, certificates, last name table).
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
if [ "$1" = "purge" ]; then
	rm -rf /var/lib/onramp
fi
exit 0
