#!/bin/sh
# onramp preremove (deb prerm: remove|upgrade NEW|deconfigure|failed-upgrade...;
# rpm %preun: $1 = 0 erase, 1 upgrade).
#
# On removal (not on upgrade): stop and disable the units, then undo the
# resolver redirect. `onramp redirect remove` restores what the record under
# /var/lib/onramp says was changed, and is safe when the agent is already
# dead or never ran (and a no-op for a binary without the command). A marker
# in /var/lib/onramp tells a later reinstall of a removed (not purged) deb
# to enable the units again.
set -e
case "$1" in
remove | deconfigure | 0) ;;
*) exit 0 ;;
esac
if [ -d /run/systemd/system ]; then
	systemctl stop onramp.service onramp.socket >/dev/null 2>&1 || true
fi
systemctl disable onramp.service onramp.socket >/dev/null 2>&1 || true
if command -v onramp >/dev/null 2>&1; then
	onramp redirect remove >/dev/null 2>&1 || true
fi
if [ -d /var/lib/onramp ]; then
	: >/var/lib/onramp/.package-removed 2>/dev/null || true
fi
exit 0
