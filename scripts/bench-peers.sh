#!/usr/bin/env bash
# bench-peers.sh -- run ../shared/bench/peers.sh with Meridian as candidate, so
# that Meridian, gdnsd, PowerDNS and Knot are measured in one interleaved run.
# Any knob of peers.sh passes through (DUR, REPS, RATE, PEERS, MODES, ...).
#
#   scripts/bench-peers.sh
#   RATE=50000 PEERS="gdnsd pdnsgeo" MODES=1t scripts/bench-peers.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HARNESS=${HARNESS:-$ROOT/../shared/bench/peers.sh}
[ -f "$HARNESS" ] || { echo "bench-peers: harness $HARNESS not found; set HARNESS" >&2; exit 1; }
(cd "$ROOT" && go build -o bin/meridian ./cmd/meridian)
export CANDIDATE_NAME=${CANDIDATE_NAME:-meridian}
export CANDIDATE_SCENARIOS=${CANDIDATE_SCENARIOS:-"static geo nx"}
export CANDIDATE_CMD="bash $ROOT/scripts/bench/peers-adapter.sh"
exec bash "$HARNESS"
