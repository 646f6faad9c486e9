#!/usr/bin/env bash
# peers-adapter.sh -- Meridian as the candidate of ../shared/bench/peers.sh.
#
# Writes one YAML zone holding the harness's static zone and the pool of
# geo.json (scripts/bench/mkzone.sh), and execs `meridian serve` in the
# foreground. peers.sh exports BENCH_* (see its README); scripts/bench-peers.sh
# builds the binary and sets CANDIDATE_CMD.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${MERIDIAN_BIN:-$ROOT/bin/meridian}
[ -x "$BIN" ] || { echo "peers-adapter: $BIN missing; run scripts/bench-peers.sh" >&2; exit 1; }
# Meridian reads MERIDIAN_* variables as configuration and warns about this one.
unset MERIDIAN_BIN

zone="$BENCH_WORKDIR/meridian-svc.yaml"
bash "$ROOT/scripts/bench/mkzone.sh" "$BENCH_ZONE_FILE" "$BENCH_GEO_JSON" > "$zone"

workers=()
if [ "${BENCH_THREADS:-0}" != 0 ]; then
  workers=(env "MERIDIAN_DNS_UDP_WORKERS=$BENCH_THREADS")
fi
exec "${workers[@]}" "$BIN" serve --listen "$BENCH_ADDR:$BENCH_PORT" \
  --zone-file "$zone" --geoip "$BENCH_MMDB" --log-level warn
