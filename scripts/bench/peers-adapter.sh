#!/usr/bin/env bash
# peers-adapter.sh -- Meridian as the candidate of ../shared/bench/peers.sh.
#
# Turns the harness's geo.json into a Meridian pool definition (a YAML overlay
# for the harness's zone file) and execs `meridian serve` in the foreground.
# peers.sh substitutes the placeholders and exports BENCH_* (see its README);
# scripts/bench-peers.sh builds the binary and sets CANDIDATE_CMD.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${MERIDIAN_BIN:-$ROOT/bin/meridian}
[ -x "$BIN" ] || { echo "peers-adapter: $BIN missing; run scripts/bench-peers.sh" >&2; exit 1; }

overlay="$BENCH_WORKDIR/meridian-pools.yaml"
# The harness's policy: nearest datacenter by great-circle distance, all its
# addresses of the queried family (2), fallback_dc when the client is unknown
# (listed first, so it leads the configuration order).
jq -r '
  . as $g
  | ([$g.datacenters[] | select(.id == $g.fallback_dc)] + [$g.datacenters[] | select(.id != $g.fallback_dc)]) as $dcs
  | "origin: \($g.zone)",
    "datacenters:",
    ($dcs[] | "  - {name: \(.id), lat: \(.lat), lon: \(.lon)}"),
    "pools:",
    "  - name: \($g.name)",
    "    ttl: \($g.ttl)",
    "    max_answers: 2",
    "    endpoints:",
    ($dcs[] | .id as $id | (.ipv4 + .ipv6)[] | "      - {address: \"\(.)\", datacenter: \($id)}")
' "$BENCH_GEO_JSON" > "$overlay"

workers=()
if [ "${BENCH_THREADS:-0}" != 0 ]; then
  workers=(env "MERIDIAN_DNS_UDP_WORKERS=$BENCH_THREADS")
fi
exec "${workers[@]}" "$BIN" serve --listen "$BENCH_ADDR:$BENCH_PORT" \
  --zone-file "$BENCH_ZONE_FILE" --zone-file "$overlay" --geoip "$BENCH_MMDB" --log-level warn
