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
#   BINS="old=/tmp/meridian.old new=/tmp/meridian.new" MODES=fixed REPS=6 scripts/bench.sh
#
# BINS runs an interleaved A/B (A B A B ...): every binary serves at once on its
# own port, all pinned to SERVER_CPU, and each (rep, scenario) step times them in
# turn, so that a noisy moment hits all of them; the idle ones cost nothing.
# ENV_<label>="K=V ..." adds environment to one of them (e.g. GOMAXPROCS=2).
# A summary of medians, min-max and the ratio to the first binary is printed last.
#
# Knobs: RATE (offered qps in mode "fixed"), MODES ("fixed max"), SCENARIOS
# ("static geo nx"; "static-do" and "geo-do" ask the same names with the DO
# bit of a zone signed for the run, so that signed and unsigned answers of
# one server are compared in one run), DUR (s per run), REPS, PORT, SERVER_CPU, CLIENT_CPU, CLIENTS,
# OUTSTANDING, WORKERS (UDP sockets/goroutines, default 1 = one core), BINS
# (label=binary pairs; default: the work tree, built).
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
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    if kill -0 "$p" 2>/dev/null; then kill -TERM "$p"; wait "$p" 2>/dev/null || true; fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ -z "${BINS:-}" ]; then
  log "building meridian"
  (cd "$ROOT" && go build -o "$WORK/meridian" ./cmd/meridian)
  BINS="meridian=$WORK/meridian"
fi
LABELS=()
declare -A BIN_OF PORT_OF PID_OF
p=$PORT
for spec in $BINS; do
  label=${spec%%=*}; bin=${spec#*=}
  [ -x "$bin" ] || { log "$bin is not an executable"; exit 1; }
  if ss -Hlun "sport = :$p" | grep -q .; then
    log "port $p is in use; set PORT"; exit 1
  fi
  LABELS+=("$label"); BIN_OF[$label]=$bin; PORT_OF[$label]=$p
  p=$((p + 1))
done

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
  "${BIN_OF[${LABELS[0]}]}" keys generate --dir "$WORK/keys" --zone svc.example. >/dev/null
  export MERIDIAN_DNSSEC_KEY_DIR="$WORK/keys"
fi
for i in $(seq 1 20000); do echo "nx$i.svc.example A"; done > "$WORK/nx.txt"

for label in "${LABELS[@]}"; do
  envvar=ENV_$label
  # shellcheck disable=SC2086 # ENV_<label> is a list of K=V words
  env MERIDIAN_DNS_UDP_WORKERS="$WORKERS" ${!envvar:-} taskset -c "$SERVER_CPU" "${BIN_OF[$label]}" serve \
    --listen "127.0.0.1:${PORT_OF[$label]}" --zone-file "$WORK/svc.example.yaml" "${geoargs[@]}" --log-level warn &
  PID_OF[$label]=$!; PIDS+=("$!")
done
for label in "${LABELS[@]}"; do
  port=${PORT_OF[$label]}
  for _ in $(seq 1 300); do
    dig +short +time=1 +tries=1 @127.0.0.1 -p "$port" static.svc.example A 2>/dev/null | grep -q 192.0.2.10 && break
    sleep 0.1
  done
  dig +short +time=1 +tries=1 @127.0.0.1 -p "$port" static.svc.example A | grep -q 192.0.2.10 ||
    { log "$label did not answer"; exit 1; }
  if [[ " $SCENARIOS " == *" geo "* ]]; then
    dig +short +time=1 +tries=1 @127.0.0.1 -p "$port" www.svc.example A +subnet=81.2.69.0/24 | head -1 | grep -q '^192.0.2.3[12]$' ||
      { log "$label: geo name did not answer eu-west first"; exit 1; }
  fi
  [ "$(dig +time=1 +tries=1 @127.0.0.1 -p "$port" nx1.svc.example A | grep -c NXDOMAIN)" -ge 1 ] ||
    { log "$label: nx name did not get NXDOMAIN"; exit 1; }
done

TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

printf '%-10s %-7s %-6s %4s %10s %8s %8s %10s\n' binary scenario mode rep qps lost cpu% "µs/query" | tee "$WORK/results.txt"
for mode in $MODES; do
  # Scenarios, and binaries within a scenario, are interleaved within each
  # repetition, so that a noisy moment of the machine falls on all of them alike.
  for rep in $(seq 1 "$REPS"); do
    for sc in $SCENARIOS; do
      for label in "${LABELS[@]}"; do
        pid=${PID_OF[$label]}
        extra=()
        [ "$mode" = fixed ] && extra=(-Q "$RATE")
        [[ "$sc" == geo* ]] && extra+=(-E "$ECS_OPT")
        [[ "$sc" == *-do ]] && extra+=(-D)
        t0=$(cpu_ticks "$pid"); s0=$(date +%s.%N)
        out=$(taskset -c "$CLIENT_CPU" dnsperf -s 127.0.0.1 -p "${PORT_OF[$label]}" -d "$WORK/$sc.txt" -l "$DUR" \
          -n 100000000 -c "$CLIENTS" -T 1 -q "$OUTSTANDING" -t 2 "${extra[@]}" 2>&1)
        t1=$(cpu_ticks "$pid"); s1=$(date +%s.%N)
        completed=$(awk '/Queries completed:/ {print $3}' <<<"$out")
        lost=$(awk '/Queries lost:/ {print $3}' <<<"$out")
        qps=$(awk '/Queries per second:/ {print $4}' <<<"$out")
        awk -v label="$label" -v sc="$sc" -v mode="$mode" -v rep="$rep" -v qps="$qps" -v lost="$lost" -v c="$completed" \
          -v dt=$((t1 - t0)) -v tck="$TCK" -v s0="$s0" -v s1="$s1" 'BEGIN {
            cpu = dt / tck; wall = s1 - s0
            printf "%-10s %-7s %-6s %4d %10.0f %8d %7.1f%% %10.2f\n", label, sc, mode, rep, qps, lost, 100 * cpu / wall, 1e6 * cpu / c
          }' | tee -a "$WORK/results.txt"
      done
    done
  done
done

# Summary: per binary, scenario and mode, the median µs/query with its range,
# and the median of the per-repetition ratios to the first binary (pairs
# from the same repetition, so that drift of the machine cancels out). A
# fixed-load run that answered under 99% of RATE is left out: dnsperf was
# starved by other work, and the CPU accounting of such a run is off too.
echo
awk -v first="${LABELS[0]}" -v rate="$RATE" -v REPS="$REPS" 'NR > 1 {
    k = $2 " " $3; labels[$1] = 1; keys[k] = 1
    if ($3 == "fixed" && $5 < 0.99 * rate) { short[$1 SUBSEP k]++; next }
    key = $1 SUBSEP k; n[key]++; v[key, n[key]] = $8
    val[$1, k, $4] = $8
  }
  function median(arr, m,   i, j, t) {
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (arr[j] < arr[i]) { t = arr[i]; arr[i] = arr[j]; arr[j] = t }
    return m % 2 ? arr[(m + 1) / 2] : (arr[m / 2] + arr[m / 2 + 1]) / 2
  }
  END {
    printf "%-10s %-14s %5s %10s %16s %18s %s\n", "binary", "scenario", "runs", "median µs", "min-max", "ratio to " first, "(left out: short runs)"
    for (k in keys) for (l in labels) {
      key = l SUBSEP k; m = n[key]; if (!m) continue
      delete a; lo = 1e9; hi = 0
      for (i = 1; i <= m; i++) { a[i] = v[key, i]; if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i] }
      med = median(a, m)
      delete r; rn = 0; rlo = 1e9; rhi = 0
      for (rep = 1; rep <= REPS; rep++) if (val[first, k, rep] > 0 && val[l, k, rep] > 0) {
        x = val[l, k, rep] / val[first, k, rep]; r[++rn] = x; if (x < rlo) rlo = x; if (x > rhi) rhi = x
      }
      rs = rn ? sprintf("%.3f (%.2f-%.2f)", median(r, rn), rlo, rhi) : "-"
      printf "%-10s %-14s %5d %10.2f %16s %18s %s\n", l, k, m, med, sprintf("%.2f-%.2f", lo, hi), rs, short[key] ? "(" short[key] ")" : ""
    }
  }' "$WORK/results.txt" | { IFS= read -r header; echo "$header"; sort -k2,2 -k1,1; }
