#!/usr/bin/env bash
# fleet.sh -- the fleet simulation of issue 18, long version: a whole
# Meridian fleet across four regions of an emulated WAN on this machine
# (internal/fleetsim: network namespaces joined by a router with one-way
# delays of 25-75 ms), every component real: a PostgreSQL primary, two
# hot standbys, four meridian serve, three meridian-checker. It times
# CHANGES commits on the primary to the answer of every server, holds
# each failure longer than make test does (a checker region partitioned
# for 30 s, a standby down and back until its servers fail back to it,
# the primary down for 15 s) and prints the table that docs/benchmarks.md
# shows ("Fleet simulation (issue 18)").
#
#   sudo scripts/fleet.sh
#   CHANGES=100 LOGDIR=/tmp/fleet-logs scripts/fleet.sh
#
# Needs root (network namespaces, TUN devices), iproute2, PostgreSQL's
# initdb (scripts/test.sh installs it) and Go. The short version runs in
# make test: go test -run TestFleet ./internal/fleetsim.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CHANGES=${CHANGES:-60}
LOGDIR=${LOGDIR:-}

if [ "$(id -u)" -ne 0 ]; then
	echo "fleet.sh: needs root (network namespaces and TUN devices)" >&2
	exit 1
fi

report=$(mktemp)
trap 'rm -f "$report"' EXIT
args=(-fleet.long -fleet.changes "$CHANGES" -fleet.report "$report")
if [ -n "$LOGDIR" ]; then
	mkdir -p "$LOGDIR"
	args+=(-fleet.logdir "$LOGDIR")
fi

echo "==> go test -run '^TestFleet\$' ./internal/fleetsim ($CHANGES changes, long holds)" >&2
start=$(date +%s)
# Without -race: the router runs in the test process, and its timing is
# what is measured.
go test -count=1 -timeout 20m -run '^TestFleet$' -v ./internal/fleetsim -args "${args[@]}" \
	| grep -E '^(=== RUN|--- |    fleet_test|PASS|FAIL|ok )' >&2
echo "==> $(( $(date +%s) - start )) s; $(nproc) cores, $(uname -r), $(date -u +%Y-%m-%d)" >&2
cat "$report"
