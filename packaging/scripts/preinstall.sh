#!/bin/sh
# Create the system user the agent runs as (deb: install/upgrade; rpm: $1 = 1 or 2).
set -e
if ! getent group onramp >/dev/null; then
	groupadd --system onramp
fi
if ! getent passwd onramp >/dev/null; then
	useradd --system --gid onramp --home-dir /var/lib/onramp --no-create-home \
		--shell /usr/sbin/nologin --comment "onramp mesh agent" onramp
fi
exit 0
