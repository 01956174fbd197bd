#!/bin/sh
# onramp preinstall (deb preinst: install|upgrade OLD; RPM %pre: $1 = 1 install, 2 upgrade).
# Create the system user and group the agent runs as, before the files that
# name them are unpacked.
set -e
if ! getent group onramp >/dev/null; then
	groupadd --system onramp
fi
if ! getent passwd onramp >/dev/null; then
	useradd --system --gid onramp --home-dir /var/lib/onramp --no-create-home \
		--shell /usr/sbin/nologin --comment "onramp mesh agent" onramp
fi
exit 0
