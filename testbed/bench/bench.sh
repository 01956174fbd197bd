#!/usr/bin/env bash
# make bench: dnsperf against onramp, unbound, dnsmasq, CoreDNS and a UDP echo
# ceiling, all answering the same generated name table. See README.md.
#
# Environment:
#   BENCH_SECONDS     dnsperf -l of every run (default 10; 3 for a quick run)
#   BENCH_ROUNDS      rounds over all servers; figures are medians (default 3)
#   BENCH_QPS         dnsperf -Q of the latency runs (default 20000)
#   BENCH_SERVERS     servers to run (default onramp,unbound,dnsmasq,coredns,echo)
#   BENCH_NICE        niceness of the servers, dnsperf and the upstream (default -10; 0 to leave it)
#   BENCH_SERVER_CPU  core the servers run on (default 0)
#   BENCH_CLIENT_CPU  core dnsperf and the upstream run on (default 1)
#   BENCH_OUT         output directory (default testbed/bench/out, git-ignored)
#   BENCH_CACHE       where CoreDNS is built, outside the repo (default /var/cache/onramp-bench)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
GO=${GO:-go}
COREDNS_VERSION=v1.15.0
SECS=${BENCH_SECONDS:-10}
QPS=${BENCH_QPS:-20000}
ROUNDS=${BENCH_ROUNDS:-3}
SERVERS=${BENCH_SERVERS:-onramp,unbound,dnsmasq,coredns,echo}
NICE=${BENCH_NICE:--10}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
CLIENT_CPU=${BENCH_CLIENT_CPU:-1}
OUT=$(realpath -m "${BENCH_OUT:-$ROOT/testbed/bench/out}")
CACHE=${BENCH_CACHE:-/var/cache/onramp-bench}
COREDNS=$CACHE/coredns-$COREDNS_VERSION/coredns

say() { printf 'bench: %s\n' "$*" >&2; }

if [ "$(nproc)" -lt 2 ]; then
	say "needs two cores (server on one, dnsperf on the other); this machine has $(nproc)"
	exit 1
fi
case "$SECS" in '' | *[!0-9]*) say "BENCH_SECONDS=$SECS is not a whole number of seconds"; exit 1 ;; esac

# Peers and the load generator from Debian's packages. dnsmasq-base is the
# binary without the system service.
missing=""
command -v dnsperf >/dev/null || missing="$missing dnsperf"
command -v unbound >/dev/null || [ -x /usr/sbin/unbound ] || missing="$missing unbound"
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || missing="$missing dnsmasq-base"
command -v taskset >/dev/null || missing="$missing util-linux"
if [ -n "$missing" ]; then
	say "installing:$missing"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
export PATH=$PATH:/usr/sbin:/sbin

# CoreDNS, pinned, built once into a cache outside the repo.
if [[ ",$SERVERS," == *,coredns,* ]] && [ ! -x "$COREDNS" ]; then
	say "building CoreDNS $COREDNS_VERSION into $(dirname "$COREDNS") (once; several minutes)"
	mkdir -p "$(dirname "$COREDNS")"
	if ! (cd "$(dirname "$COREDNS")" && GOBIN="$(dirname "$COREDNS")" GOFLAGS=-buildvcs=false "$GO" install "github.com/coredns/coredns@$COREDNS_VERSION"); then
		say "CoreDNS $COREDNS_VERSION did not build; it is left out of this run"
	fi
fi

mkdir -p "$OUT/bin"
"$GO" build -o "$OUT/bin/" ./testbed/bench/gentable ./testbed/bench/udpecho ./testbed/bench/upstream ./testbed/bench/runner

ONRAMP=""
if [[ ",$SERVERS," == *,onramp,* ]]; then
	if "$GO" build -o "$ROOT/bin/onramp" ./agent/cmd/onramp 2>"$OUT/onramp-build.log"; then
		ONRAMP=$ROOT/bin/onramp
	else
		say "bin/onramp did not build (see $OUT/onramp-build.log); onramp is left out and ratios are to unbound"
	fi
fi

# One table in every format; the miss files hold more unique names than any
# server can ask for in one run, so a miss stays a miss.
say "generating the name tables"
"$OUT/bin/gentable" -n 10000 -fwd 10000 -miss $((150000 * SECS)) -miss-lat $((QPS * SECS * 12 / 10)) -out "$OUT/table-10k"
"$OUT/bin/gentable" -n 100000 -fwd 1 -miss 1 -miss-lat 1 -out "$OUT/table-100k"

# The handler micro-benchmark, when the proxy package has one.
GOBENCH=""
if [ -d agent/dnsproxy ]; then
	say "go test -bench ./agent/dnsproxy/..."
	if taskset -c "$SERVER_CPU" "$GO" test -run '^$' -bench . -benchmem -timeout 5m ./agent/dnsproxy/... >"$OUT/gobench.txt" 2>&1; then
		GOBENCH=$OUT/gobench.txt
	else
		say "the dnsproxy micro-benchmark failed; see $OUT/gobench.txt"
	fi
fi

PRIO=()
if [ "$NICE" != 0 ] && [ "$(id -u)" = 0 ]; then PRIO=(nice -n "$NICE"); fi

args=(-out "$OUT" -table "$OUT/table-10k" -table-100k "$OUT/table-100k" -seconds "$SECS" -rounds "$ROUNDS" -qps "$QPS"
	-server-cpu "$SERVER_CPU" -client-cpu "$CLIENT_CPU" -servers "$SERVERS"
	-upstream "$OUT/bin/upstream" -echo "$OUT/bin/udpecho"
	-unbound "$(command -v unbound)" -dnsmasq "$(command -v dnsmasq)")
[ -n "$ONRAMP" ] && args+=(-onramp "$ONRAMP")
[ -x "$COREDNS" ] && args+=(-coredns "$COREDNS")
[ -n "$GOBENCH" ] && args+=(-go-bench "$GOBENCH")

# The runner stops every server it started by PID on exit; forward a Ctrl-C
# or TERM to it and wait until it has.
"${PRIO[@]}" taskset -c "$CLIENT_CPU" "$OUT/bin/runner" "${args[@]}" > >(tee "$OUT/report.txt") &
runner=$!
trap 'kill -TERM $runner 2>/dev/null; wait $runner' INT TERM
wait $runner
