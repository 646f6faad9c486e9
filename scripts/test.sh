#!/usr/bin/env bash
# test.sh -- everything CI runs: vet, the race-enabled test suite (which
# includes end-to-end tests driving the real binary with dig) and a short
# run of every native fuzz target.
#
# Works on a fresh Debian 12 machine with Go installed: dig (package
# bind9-dnsutils) is installed with apt-get when missing.
#
#   scripts/test.sh
#   FUZZTIME=30s scripts/test.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
FUZZTIME=${FUZZTIME:-10s}

log() { printf '==> %s\n' "$*" >&2; }

# install_dig installs dig, which the end-to-end tests need, using sudo
# only when not root and refreshing the package lists only when a plain
# install fails.
install_dig() {
	command -v dig >/dev/null 2>&1 && return 0
	log "installing dig (bind9-dnsutils)"
	local sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		sudo=(sudo)
	fi
	export DEBIAN_FRONTEND=noninteractive
	if ! "${sudo[@]}" apt-get install -y --no-install-recommends bind9-dnsutils; then
		"${sudo[@]}" apt-get update
		"${sudo[@]}" apt-get install -y --no-install-recommends bind9-dnsutils
	fi
	command -v dig >/dev/null 2>&1 || { log "dig still missing after install"; exit 1; }
}

install_dig

log "go vet ./..."
go vet ./...

log "go test -race -count=1 ./..."
go test -race -count=1 -timeout 8m ./...

# Fuzz targets are discovered per package: go test -fuzz takes one
# target in one package at a time.
for pkg in $(go list ./...); do
	targets=$(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
	for name in $targets; do
		log "fuzz $pkg $name for $FUZZTIME"
		go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg"
	done
done

log "all tests passed"
