#!/usr/bin/env bash
# test.sh -- everything CI runs: vet, the race-enabled test suite (which
# includes end-to-end tests driving the real binary with dig) and a short
# run of every native fuzz target.
#
# Works on a fresh Debian 12 machine with Go installed: dig (package
# bind9-dnsutils), knotd (package knot: Meridian's replies are compared
# with Knot DNS's), unbound and ldns-keygen (packages unbound and
# ldnsutils: signed answers are validated by Unbound), Chromium (the
# status page is tested in a headless browser), promtool (package prometheus: the alert rules in deploy/ are
# unit-tested), ip (package iproute2, as root: the fleet simulation's
# network namespaces), lego and pebble (a real ACME DNS-01 issuance through
# RFC 2136 updates) and, unless MERIDIAN_TEST_DATABASE_URL names a server for
# the PostgreSQL tests, PostgreSQL's initdb (package postgresql) are
# installed with apt-get when missing.
#
#   scripts/test.sh
#   FUZZTIME=30s scripts/test.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
FUZZTIME=${FUZZTIME:-10s}

log() { printf '==> %s\n' "$*" >&2; }

# install_pkg CHECK PACKAGE installs the Debian package PACKAGE unless
# the command CHECK already succeeds, using sudo only when not root and
# refreshing the package lists only when a plain install fails.
install_pkg() {
	local check=$1 pkg=$2
	"$check" && return 0
	log "installing $pkg"
	local sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		sudo=(sudo)
	fi
	export DEBIAN_FRONTEND=noninteractive
	if ! "${sudo[@]}" apt-get install -y --no-install-recommends "$pkg"; then
		"${sudo[@]}" apt-get update
		"${sudo[@]}" apt-get install -y --no-install-recommends "$pkg"
	fi
	"$check" || { log "$pkg installed, but $check still fails"; exit 1; }
}

# The end-to-end tests drive the binary with dig.
have_dig() { command -v dig >/dev/null 2>&1; }

# Without MERIDIAN_TEST_DATABASE_URL, the PostgreSQL tests start their own
# throwaway server with initdb and pg_ctl, looked up where
# store/postgres/pgtest looks: PATH, then Debian's versioned directories.
have_initdb() {
	command -v initdb >/dev/null 2>&1 && return 0
	compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

# The conformance test (cmd/meridian/e2e_knot_test.go) runs knotd, looked
# up where the test looks: PATH, then /usr/sbin (not on a user's PATH).
have_knotd() { command -v knotd >/dev/null 2>&1 || [ -x /usr/sbin/knotd ]; }

# Signed answers are validated by Unbound (cmd/meridian/e2e_dnssec_test.go),
# looked up where the test looks: PATH, then /usr/sbin. The test runs its
# own unbound on a free loopback port; Debian's service is not needed.
have_unbound() { command -v unbound >/dev/null 2>&1 || [ -x /usr/sbin/unbound ]; }

# The same test signs with a key made by ldns-keygen (package ldnsutils).
have_ldns_keygen() { command -v ldns-keygen >/dev/null 2>&1; }

# The status page is tested in headless Chromium.
have_chromium() { command -v chromium >/dev/null 2>&1; }

# The alert rules are checked and unit-tested with promtool.
have_promtool() { command -v promtool >/dev/null 2>&1; }

# An ACME DNS-01 issuance (cmd/meridian/e2e_acme_test.go): lego's
# rfc2136 provider updates Meridian, pebble validates with it.
have_lego() { command -v lego >/dev/null 2>&1; }
have_pebble() { command -v pebble >/dev/null 2>&1; }

# The systemd units in deploy/ are checked with systemd-analyze verify.
have_systemd_analyze() { command -v systemd-analyze >/dev/null 2>&1; }

# The fleet simulation (internal/fleetsim) builds network namespaces with
# ip (iproute2); it runs as root only, and skips otherwise.
have_ip() { command -v ip >/dev/null 2>&1; }

install_pkg have_dig bind9-dnsutils
install_pkg have_knotd knot
install_pkg have_lego lego
install_pkg have_pebble pebble
install_pkg have_unbound unbound
install_pkg have_ldns_keygen ldnsutils
install_pkg have_chromium chromium
install_pkg have_promtool prometheus
install_pkg have_systemd_analyze systemd
if [ "$(id -u)" -eq 0 ]; then
	install_pkg have_ip iproute2
fi
if [ -z "${MERIDIAN_TEST_DATABASE_URL:-}" ]; then
	install_pkg have_initdb postgresql
fi

log "go vet ./..."
go vet ./...

log "go test -race -count=1 ./..."
go test -race -count=1 -timeout 8m ./...

# fuzz_target PKG NAME fuzzes one target for FUZZTIME. Go 1.26's fuzzing
# coordinator can fail a run at the end of -fuzztime with a bare "context
# deadline exceeded" although nothing failed (golang/go#75804, fixed in
# Go 1.27): such a run, which wrote no failing input, is tried again, up
# to three times. A real finding always writes its input to testdata/fuzz
# and fails at once.
fuzz_target() {
	local pkg=$1 name=$2 out try
	for try in 1 2 3; do
		log "fuzz $pkg $name for $FUZZTIME"
		if out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg" 2>&1); then
			printf '%s\n' "$out"
			return 0
		fi
		printf '%s\n' "$out"
		if ! grep -q 'context deadline exceeded' <<<"$out" || grep -q 'Failing input written to' <<<"$out"; then
			return 1
		fi
		log "fuzz $name: the coordinator's deadline race (golang/go#75804), no input failed; again ($try of 3)"
	done
	return 1
}

# Fuzz targets are discovered per package: go test -fuzz takes one
# target in one package at a time.
for pkg in $(go list ./...); do
	targets=$(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
	for name in $targets; do
		fuzz_target "$pkg" "$name"
	done
done

log "all tests passed"
