#!/bin/sh
# nfpm-config.sh BINARY DOCS: print packaging/nfpm.yaml for the agent binary
# BINARY and the man pages and completions in DOCS (from onramp gen-docs),
# with one %doc entry per man page for the rpm (contents: is the file's last
# key, so the entries are appended to it). Run from the repository root.
set -eu
bin=$1 docs=$2
sed -e "s#\./bin/pkg/onramp#$bin#g" -e "s#\./bin/docs#$docs#g" packaging/nfpm.yaml
for page in "$docs"/man/man1/*.1*; do
	printf '  - src: %s\n    dst: /usr/share/man/man1/%s\n    packager: rpm\n    type: doc\n    file_info: {mode: 0644}\n' \
		"$page" "$(basename "$page")"
done
