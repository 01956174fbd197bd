#!/bin/sh
# onramp postremove (deb postrm: remove|purge|upgrade NEW|...; RPM %postun:
# $1 = 0 erase, 1 upgrade).
#
# deb remove: the configuration, the bundle and the state stay (dpkg keeps
# conffiles until purge). deb purge: everything goes: the state (private key,
# certificates, the last name table, the redirect record), /etc/onramp with
# the bundle and its token, and the onramp user and group.
# RPM erase: RPM never passes "purge", so erase removes the secrets and the
# state, like purge: /var/lib/onramp and /etc/onramp/bundle (the private key
# and the istio-token must not outlive the package). RPM itself keeps a
# modified onramp.yaml as onramp.yaml.rpmsave, and the user and group stay
# (Fedora's rule: a uid is never handed out again while files may carry it);
# `userdel onramp` after erasing removes them too.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
case "$1" in
purge)
	rm -rf /var/lib/onramp /etc/onramp
	if getent passwd onramp >/dev/null; then
		userdel onramp >/dev/null 2>&1 || true
	fi
	if getent group onramp >/dev/null; then
		groupdel onramp >/dev/null 2>&1 || true
	fi
	;;
0)
	rm -rf /var/lib/onramp /etc/onramp/bundle
	rmdir /etc/onramp 2>/dev/null || true
	;;
esac
exit 0
