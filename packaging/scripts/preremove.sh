#!/bin/sh
# onramp preremove (deb prerm: remove|upgrade NEW|deconfigure...; RPM %preun:
# $1 = 0 erase, 1 upgrade).
#
# On removal (not on upgrade): stop and disable the units, then undo the
# resolver redirect. `onramp redirect remove` restores what the record under
# /var/lib/onramp says was changed, and is safe when the agent is already
# dead or never ran.
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
exit 0
