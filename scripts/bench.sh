#!/usr/bin/env bash
# bench.sh -- CPU cost per answered query of `meridian serve` under dnsperf.
#
# The server is pinned to SERVER_CPU and dnsperf to CLIENT_CPU, all traffic on
# 127.0.0.1, every dnsperf run bounded by -l DUR. For each scenario it prints the
# answered qps, lost queries, the server's CPU share and its CPU time per answered
# query (utime+stime from /proc/PID/stat over the run, divided by answers).
#
#   scripts/bench.sh                       # RATE=50000 (fixed offered load) and unthrottled
#   RATE=50000 DUR=10 REPS=3 scripts/bench.sh
#   MODES=fixed SCENARIOS=static scripts/bench.sh
#
# Knobs: RATE (offered qps in mode "fixed"), MODES ("fixed max"), SCENARIOS
# ("static geo nx"; "static-do" and "geo-do" ask the same names with the DO
# bit of a zone signed for the run, so that signed and unsigned answers of
# one server are compared in one run), DUR (s per run), REPS, PORT, SERVER_CPU, CLIENT_CPU, CLIENTS,
# OUTSTANDING, WORKERS (UDP sockets/goroutines, default 1 = one core).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RATE=${RATE:-50000}
MODES=${MODES:-"fixed max"}
SCENARIOS=${SCENARIOS:-"static geo nx"}
DUR=${DUR:-10}
REPS=${REPS:-3}
PORT=${PORT:-5391}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
CLIENTS=${CLIENTS:-16}
OUTSTANDING=${OUTSTANDING:-100}
WORKERS=${WORKERS:-1}

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v dnsperf >/dev/null || ! command -v dig >/dev/null; then
  log "installing dnsperf and dig"
  as_root apt-get install -y dnsperf bind9-dnsutils >/dev/null 2>&1 ||
    { as_root apt-get update >/dev/null && as_root apt-get install -y dnsperf bind9-dnsutils >/dev/null; }
fi

WORK=$(mktemp -d /tmp/meridian-bench.XXXXXX)
PID=
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if ss -Hlun "sport = :$PORT" | grep -q .; then
  log "port $PORT is in use; set PORT"; exit 1
fi

log "building meridian"
(cd "$ROOT" && go build -o "$WORK/meridian" ./cmd/meridian)

bash "$ROOT/scripts/bench/mkzone.sh" "$ROOT/scripts/bench/svc.example.zone" "$ROOT/scripts/bench/geo.json" > "$WORK/svc.example.yaml"
GEOIP=${GEOIP:-$ROOT/examples/GeoLite2-City.mmdb}
"$ROOT/scripts/fetch-geoip.sh" "$(dirname "$GEOIP")"
geoargs=()
if [ -s "$GEOIP" ]; then
  geoargs=(--geoip "$GEOIP")
else
  log "no GeoIP database: skipping the geo scenario"; SCENARIOS=$(tr ' ' '\n' <<<"$SCENARIOS" | grep -v '^geo' | xargs)
fi
# ECS 81.2.69.0/24 (RFC 7871 section 6): family 1, source 24, scope 0, 3 octets.
ECS_OPT="8:00011800510245"

echo "static.svc.example A" > "$WORK/static.txt"
echo "www.svc.example A" > "$WORK/geo.txt"
cp "$WORK/static.txt" "$WORK/static-do.txt"
cp "$WORK/geo.txt" "$WORK/geo-do.txt"
# A scenario asking with DO signs the zone with a combined ECDSA P-256 key.
if [[ " $SCENARIOS " == *"-do "* ]]; then
  mkdir -p "$WORK/keys"
  "$WORK/meridian" keys generate --dir "$WORK/keys" --zone svc.example. >/dev/null
  export MERIDIAN_DNSSEC_KEY_DIR="$WORK/keys"
fi
for i in $(seq 1 20000); do echo "nx$i.svc.example A"; done > "$WORK/nx.txt"

MERIDIAN_DNS_UDP_WORKERS=$WORKERS taskset -c "$SERVER_CPU" "$WORK/meridian" serve \
  --listen "127.0.0.1:$PORT" --zone-file "$WORK/svc.example.yaml" "${geoargs[@]}" --log-level warn &
PID=$!
for _ in $(seq 1 100); do
  dig +short +time=1 +tries=1 @127.0.0.1 -p "$PORT" static.svc.example A 2>/dev/null | grep -q 192.0.2.10 && break
  sleep 0.1
done
dig +short +time=1 +tries=1 @127.0.0.1 -p "$PORT" static.svc.example A | grep -q 192.0.2.10 ||
  { log "server did not answer"; exit 1; }
if [[ " $SCENARIOS " == *" geo "* ]]; then
  dig +short +time=1 +tries=1 @127.0.0.1 -p "$PORT" www.svc.example A +subnet=81.2.69.0/24 | head -1 | grep -q '^192.0.2.3[12]$' ||
    { log "geo name did not answer eu-west first"; exit 1; }
fi
[ "$(dig +time=1 +tries=1 @127.0.0.1 -p "$PORT" nx1.svc.example A | grep -c NXDOMAIN)" -ge 1 ] ||
  { log "nx name did not get NXDOMAIN"; exit 1; }

TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }

printf '%-7s %-6s %4s %10s %8s %8s %10s\n' scenario mode rep qps lost cpu% "µs/query"
for mode in $MODES; do
  # Scenarios are interleaved within each repetition, so that a noisy
  # moment of the machine falls on all of them alike.
  for rep in $(seq 1 "$REPS"); do
    for sc in $SCENARIOS; do
      extra=()
      [ "$mode" = fixed ] && extra=(-Q "$RATE")
      [[ "$sc" == geo* ]] && extra+=(-E "$ECS_OPT")
      [[ "$sc" == *-do ]] && extra+=(-D)
      t0=$(cpu_ticks); s0=$(date +%s.%N)
      out=$(taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "$PORT" -d "$WORK/$sc.txt" -l "$DUR" \
        -n 100000000 -c "$CLIENTS" -T 1 -q "$OUTSTANDING" -t 2 "${extra[@]}" 2>&1)
      t1=$(cpu_ticks); s1=$(date +%s.%N)
      completed=$(awk '/Queries completed:/ {print $3}' <<<"$out")
      lost=$(awk '/Queries lost:/ {print $3}' <<<"$out")
      qps=$(awk '/Queries per second:/ {print $4}' <<<"$out")
      awk -v sc="$sc" -v mode="$mode" -v rep="$rep" -v qps="$qps" -v lost="$lost" -v c="$completed" \
        -v dt=$((t1 - t0)) -v tck="$TCK" -v s0="$s0" -v s1="$s1" 'BEGIN {
          cpu = dt / tck; wall = s1 - s0
          printf "%-7s %-6s %4d %10.0f %8d %7.1f%% %10.2f\n", sc, mode, rep, qps, lost, 100 * cpu / wall, 1e6 * cpu / c
        }'
    done
  done
done
