#!/usr/bin/env bash
# mkzone.sh ZONE_FILE GEO_JSON -- print one Meridian YAML zone holding the
# static records of the benchmark's master file and the pool described by
# the harness's geo.json (../shared/bench/fixtures; a copy is in this
# directory), for scripts/bench.sh and the peers.sh adapter.
set -euo pipefail
ZONE_FILE=${1:?usage: mkzone.sh ZONE_FILE GEO_JSON}
GEO_JSON=${2:?usage: mkzone.sh ZONE_FILE GEO_JSON}
{
  # The fixture's records are one per line after its multi-line SOA; the SOA
  # is rewritten with the same timers (negative TTL 60).
  origin=$(jq -r .zone "$GEO_JSON")
  printf 'origin: %s\nttl: 300\n' "$origin"
  printf 'soa: {ns: ns1, mbox: hostmaster, serial: 2026112201, refresh: 7200, retry: 3600, expire: 1209600, minimum: 60}\n'
  printf 'records:\n'
  awk '$2 == "IN" && $3 != "SOA" {
         data = $4; for (i = 5; i <= NF; i++) data = data " " $i
         gsub(/'\''/, "'\'''\''", data)
         printf "  - {name: \"%s\", type: %s, data: '\''%s'\''}\n", $1, $3, data
       }' "$ZONE_FILE"
  # The harness's policy: nearest datacenter by great-circle distance, all
  # its addresses of the queried family (2), fallback_dc when the client is
  # unknown (listed first, so it leads the configuration order).
  jq -r '
    . as $g
    | ([$g.datacenters[] | select(.id == $g.fallback_dc)] + [$g.datacenters[] | select(.id != $g.fallback_dc)]) as $dcs
    | "datacenters:",
      ($dcs[] | "  - {name: \(.id), lat: \(.lat), lon: \(.lon)}"),
      "pools:",
      "  - name: \($g.name)",
      "    ttl: \($g.ttl)",
      "    max_answers: 2",
      "    endpoints:",
      ($dcs[] | .id as $id | (.ipv4 + .ipv6)[] | "      - {address: \"\(.)\", datacenter: \($id)}")
  ' "$GEO_JSON"
}
