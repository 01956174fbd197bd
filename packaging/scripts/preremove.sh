#!/bin/sh
# Stop the agent when the package is removed, not when it is upgraded
# (deb: $1 = remove; rpm: $1 = 0).
set -e
case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl disable --now onramp.service onramp.socket >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
