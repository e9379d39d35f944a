#!/usr/bin/env bash
# Load comparison for issue 5: hydrant against the bare-hyper ceiling, nginx proxy_cache and
# Varnish, in one run on one machine. See benches/README.md.
#
#   benches/compare.sh            # build, install wrk/nginx/varnish if missing, run, print the table
#   benches/compare.sh --all      # the same, then benches/economy.sh and benches/memory.sh
#
# Environment knobs (defaults in brackets):
#   DURATION [10s]  one wrk run        ROUNDS [2]           rounds, server order alternating
#   CONNS ["50 256"] connection counts THREADS [2]          wrk threads
#   WORKLOADS ["redirect hydrate miss"]                     which workloads
#   SERVERS ["hydrant bare nginx varnish"]                  which servers (varnish only if installed)
#   SKIP_BUILD [0]  reuse target/release binaries           SKIP_INSTALL [0] never call apt-get
#   RESULTS_DIR [target/bench-results]                      raw logs, TSV and the markdown table
#   KEEP_WORKDIR [0] keep the temp dir (configs, server logs)
#   SETTLE_SECONDS [60] wait at most this long after the build for a 1-min load average < 0.5
#   HYDRANT_BIN, BARE_BIN            binaries to measure (before/after comparisons; SKIP_BUILD=1)
#
# Everything listens on 127.0.0.1 on free ports; every process started here is stopped by its
# PID on exit (trap), and every wait is bounded.
#
# This file is also a library: economy.sh and memory.sh source it with BENCH_LIB_ONLY=1.

set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
HYDRANT_BIN="${HYDRANT_BIN:-$TARGET_DIR/release/hydrant}"
BARE_BIN="${BARE_BIN:-$TARGET_DIR/release/examples/bare}"
RESULTS_DIR="${RESULTS_DIR:-$TARGET_DIR/bench-results}"
SIM_KEY="vg_sim_key_alpha"
CLK_TCK="$(getconf CLK_TCK)"

# ---------------------------------------------------------------------------------------------
# Library: processes, ports, accounting
# ---------------------------------------------------------------------------------------------

PIDS=()
PORTS_TAKEN=" "
WORK=""

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

# is_ours PID: still our own child (so a recycled PID of someone else's process is never hit).
is_ours() {
    [[ -r "/proc/$1/stat" ]] && [[ "$(awk '{sub(/^.*\) /, ""); print $2}' "/proc/$1/stat" 2>/dev/null)" == "$$" ]]
}

# stop_pid PID: TERM, up to 5 s, then KILL; reap it and forget it.
stop_pid() {
    local pid="$1" n=0 keep=() p
    if is_ours "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        while is_ours "$pid" && [[ "$(awk '{sub(/^.*\) /, ""); print $1}' "/proc/$pid/stat" 2>/dev/null)" != Z ]] && ((n < 50)); do
            sleep 0.1
            n=$((n + 1))
        done
        if is_ours "$pid" && [[ "$(awk '{sub(/^.*\) /, ""); print $1}' "/proc/$pid/stat" 2>/dev/null)" != Z ]]; then
            log "pid $pid did not stop on TERM; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
    for p in "${PIDS[@]}"; do
        [[ "$p" == "$pid" ]] || keep+=("$p")
    done
    PIDS=("${keep[@]}")
}

# Stop everything started here, newest first.
stop_all() {
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${PIDS[$i]}"
    done
    PIDS=()
}

bench_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_all
    if [[ -n "$WORK" && -d "$WORK" ]]; then
        if [[ "${KEEP_WORKDIR:-0}" == 1 ]]; then
            log "work dir kept: $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
    exit "$rc"
}

bench_init() {
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/hydrant-bench.XXXXXX")"
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    mkdir -p "$RESULTS_DIR"
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

# A free loopback port, not handed out before in this run, below the ephemeral range (where
# outgoing connections of anything else on the machine could take it between check and bind).
free_port() {
    local p n lo=10000 hi
    hi=$(awk '{print $1 - 1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32767)
    ((hi > lo + 1000)) || { lo=20000 hi=60000; }
    for n in $(seq 1 200); do
        p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo)))
        [[ "$PORTS_TAKEN" == *" $p "* ]] && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            PORTS_TAKEN+="$p "
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

# retry3 FN ARGS...: run a start function up to 3 times (a port taken meanwhile), else fail.
retry3() {
    local i
    for i in 1 2 3; do
        "$@" && return 0
        log "$1 failed (attempt $i)"
    done
    return 1
}

# start_bg NAME CMD... : run CMD in the background, output to $WORK/NAME.log; sets LAST_PID.
start_bg() {
    local name="$1"
    shift
    "$@" >"$WORK/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

# wait_port PORT PID [SECONDS]: until 127.0.0.1:PORT accepts, the process is alive, bounded.
wait_port() {
    local port="$1" pid="$2" secs="${3:-60}" n=0
    while ((n < secs * 10)); do
        kill -0 "$pid" 2>/dev/null || return 1
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
        n=$((n + 1))
    done
    return 1
}

# A process and all its descendants.
proc_tree() {
    local todo=("$@") found=() p c
    while ((${#todo[@]})); do
        p="${todo[0]}"
        todo=("${todo[@]:1}")
        [[ -d "/proc/$p" ]] || continue
        found+=("$p")
        for c in $(ps -o pid= --ppid "$p" 2>/dev/null); do
            todo+=("$c")
        done
    done
    echo "${found[@]:-}"
}

# Sum of utime+stime (clock ticks) over the given PIDs (all threads of each).
cpu_ticks() {
    local p s=0 t
    for p in "$@"; do
        t=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$p/stat" 2>/dev/null || echo 0)
        s=$((s + ${t:-0}))
    done
    echo "$s"
}

# Sum of VmRSS (kB) over the given PIDs.
rss_kb() {
    local p s=0 t
    for p in "$@"; do
        t=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        s=$((s + ${t:-0}))
    done
    echo "$s"
}

# Seconds from a duration like 10s, 2m, 500ms.
dur_secs() {
    case "$1" in
    *ms) echo $((${1%ms} / 1000)) ;;
    *s) echo "${1%s}" ;;
    *m) echo $((${1%m} * 60)) ;;
    *) echo "$1" ;;
    esac
}

# sim_stat FIELD: one counter from the simulator's /_sim/stats.
sim_stat() {
    curl -sS --max-time 10 "http://127.0.0.1:$SIM_PORT/_sim/stats" | jq -r ".$1 // 0"
}

# ---------------------------------------------------------------------------------------------
# Library: install, build, start
# ---------------------------------------------------------------------------------------------

APT_UPDATED=0
apt_install() {
    [[ "${SKIP_INSTALL:-0}" == 1 ]] && return 1
    command -v apt-get >/dev/null || return 1
    local sudo=()
    [[ "$(id -u)" == 0 ]] || sudo=(sudo -n)
    if [[ "$APT_UPDATED" == 0 ]]; then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive timeout 600 "${sudo[@]}" apt-get update -qq >&2 || return 1
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive timeout 900 "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >&2
}

# ensure_tools [varnish]: wrk, nginx, curl, jq, python3 (and Varnish when asked; optional).
ensure_tools() {
    local want=() t
    for t in wrk curl jq python3; do
        command -v "$t" >/dev/null || want+=("$t")
    done
    if [[ " $* " == *" nginx "* ]] && ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
        want+=(nginx)
    fi
    if ((${#want[@]})); then
        apt_install "${want[@]}" || die "cannot install: ${want[*]}"
    fi
    if [[ " $* " == *" varnish "* ]] && ! command -v varnishd >/dev/null && [[ ! -x /usr/sbin/varnishd ]]; then
        apt_install varnish || log "varnish did not install: its rows are skipped"
    fi
    export PATH="$PATH:/usr/sbin:/sbin"
}

build_release() {
    if [[ "${SKIP_BUILD:-0}" == 1 ]]; then
        log "SKIP_BUILD=1: using $HYDRANT_BIN and $BARE_BIN"
    else
        log "cargo build --release --locked --bin hydrant --example bare"
        (cd "$ROOT" && timeout 3600 cargo build --release --locked --bin hydrant --example bare >&2)
    fi
    [[ -x "$HYDRANT_BIN" ]] || die "missing $HYDRANT_BIN"
}

# start_sim [extra sim flags...]: sets SIM_PORT, SIM_PID.
start_sim() { retry3 start_sim_once "$@" || die "start_sim failed"; }
start_sim_once() {
    SIM_PORT=$(free_port)
    start_bg sim "$HYDRANT_BIN" sim --listen "127.0.0.1:$SIM_PORT" --hydrate-quota 1000000000 "$@"
    SIM_PID=$LAST_PID
    wait_port "$SIM_PORT" "$SIM_PID" 120 || { log "simulator did not start: $(tail -3 "$WORK/sim.log")"; stop_pid "$SIM_PID"; return 1; }
    log "simulator pid $SIM_PID on 127.0.0.1:$SIM_PORT"
}

# start_hydrant NAME [extra serve flags...]: sets HY_PORT, HY_PID.
start_hydrant() { retry3 start_hydrant_once "$@" || die "start_hydrant failed"; }
start_hydrant_once() {
    local name="$1"
    shift
    HY_PORT=$(free_port)
    RUST_LOG="${HYDRANT_RUST_LOG:-warn}" start_bg "$name" "$HYDRANT_BIN" serve \
        --listen "127.0.0.1:$HY_PORT" --upstream "http://127.0.0.1:$SIM_PORT" --api-key "$SIM_KEY" \
        --hydrate-rate 1000000/s --hydrate-burst 1000000 "$@"
    HY_PID=$LAST_PID
    wait_port "$HY_PORT" "$HY_PID" 30 || { log "hydrant did not start: $(tail -3 "$WORK/$name.log")"; stop_pid "$HY_PID"; return 1; }
    log "hydrant pid $HY_PID on 127.0.0.1:$HY_PORT"
}

start_bare() { retry3 start_bare_once || die "start_bare failed"; }
start_bare_once() {
    BARE_PORT=$(free_port)
    local args=(--listen "127.0.0.1:$BARE_PORT")
    [[ -s "$WORK/body.json" ]] && args+=(--body-file "$WORK/body.json")
    [[ -s "$WORK/location.txt" ]] && args+=(--location "$(cat "$WORK/location.txt")")
    start_bg bare "$BARE_BIN" "${args[@]}"
    BARE_PID=$LAST_PID
    wait_port "$BARE_PORT" "$BARE_PID" 30 || { log "bare did not start: $(tail -3 "$WORK/bare.log")"; stop_pid "$BARE_PID"; return 1; }
    log "bare pid $BARE_PID on 127.0.0.1:$BARE_PORT"
}

start_nginx() { retry3 start_nginx_once || die "start_nginx failed"; }
start_nginx_once() {
    NGINX_PORT=$(free_port)
    local dir="$WORK/nginx" user_line="" nginx_bin
    nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
    mkdir -p "$dir/cache"
    [[ "$(id -u)" == 0 ]] && user_line="user root root;"
    sed -e "s|@USER_LINE@|$user_line|" -e "s|@DIR@|$dir|g" -e "s|@WORKERS@|${NGINX_WORKERS:-2}|" \
        -e "s|@UPSTREAM@|127.0.0.1:$SIM_PORT|" -e "s|@LISTEN@|127.0.0.1:$NGINX_PORT|" \
        "$BENCH_DIR/nginx.conf.tmpl" >"$dir/nginx.conf"
    "$nginx_bin" -t -q -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' >&2 || die "nginx config invalid"
    start_bg nginx "$nginx_bin" -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;'
    NGINX_PID=$LAST_PID
    wait_port "$NGINX_PORT" "$NGINX_PID" 30 || { log "nginx did not start: $(tail -3 "$dir/error.log")"; stop_pid "$NGINX_PID"; return 1; }
    log "nginx master pid $NGINX_PID on 127.0.0.1:$NGINX_PORT"
}

start_varnish() { retry3 start_varnish_once; }
start_varnish_once() {
    VARNISH_PORT=$(free_port)
    local dir="$WORK/varnish" varnishd_bin jail=()
    varnishd_bin="$(command -v varnishd || echo /usr/sbin/varnishd)"
    mkdir -p "$dir"
    sed -e "s|@HOST@|127.0.0.1|" -e "s|@PORT@|$SIM_PORT|" "$BENCH_DIR/varnish.vcl.tmpl" >"$dir/bench.vcl"
    [[ "$(id -u)" == 0 ]] && jail=(-j none)
    start_bg varnish "$varnishd_bin" -F "${jail[@]}" -n "$dir/state" -a "127.0.0.1:$VARNISH_PORT" \
        -f "$dir/bench.vcl" -s malloc,512m -T 127.0.0.1:0 -p thread_pools=2
    VARNISH_PID=$LAST_PID
    wait_port "$VARNISH_PORT" "$VARNISH_PID" 60 || {
        log "varnish did not start: $(tail -3 "$WORK/varnish.log")"
        stop_pid "$VARNISH_PID"
        return 1
    }
    log "varnish manager pid $VARNISH_PID on 127.0.0.1:$VARNISH_PORT"
}

# ---------------------------------------------------------------------------------------------
# Library: ids, warming, wrk
# ---------------------------------------------------------------------------------------------

# Working set: ids FIRST..FIRST+N-1. Seeds 1-4 are special (pending, failed, image): skipped.
WS_FIRST=5
WS_N=${WS_N:-10000}

file_id() { printf 'vg_file_alpha_%04d' "$1"; }

# warm BASE MODE FIRST N: one pass over the ids with curl --parallel; prints the status tally.
warm() {
    local base="$1" mode="$2" first="$3" n="$4" list="$WORK/warm-$RANDOM.curl" i
    : >"$list"
    for ((i = first; i < first + n; i++)); do
        if [[ "$mode" == redirect ]]; then
            printf 'url = "%s/files/%s/redirect"\noutput = "/dev/null"\n' "$base" "$(file_id "$i")"
        else
            printf 'url = "%s/v1/files/%s/hydrate"\noutput = "/dev/null"\n' "$base" "$(file_id "$i")"
        fi
    done >>"$list"
    local extra=()
    [[ "$mode" == redirect ]] || extra=(-X POST -H "Authorization: Bearer $SIM_KEY" -H "Content-Length: 0")
    timeout 600 curl -sS --no-progress-meter --parallel --parallel-max "${WARM_PARALLEL:-32}" --max-time 30 "${extra[@]}" \
        -w '%{http_code}\n' -K "$list" | sort | uniq -c | awk '{printf "%s×%s ", $2, $1}'
    rm -f "$list"
}

write_lua() {
    cat >"$WORK/load.lua" <<'LUA'
-- wrk script: args mode(redirect|hydrate) first n [missStart missCount missPer10000 nthreads]
-- Requests for the working set are built once per thread; each request picks one at random.
-- With missPer10000 > 0, that share of requests goes to ids never requested before: each
-- thread walks its own slice of [missStart, missStart+missCount).
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end

local reqs, n, mode = {}, 0, "redirect"
local miss_rate, miss_next, miss_end = 0, 0, 0

local function build(k)
  local id = string.format("vg_file_alpha_%04d", k)
  if mode == "redirect" then
    return wrk.format("GET", "/files/" .. id .. "/redirect")
  end
  return wrk.format("POST", "/v1/files/" .. id .. "/hydrate",
    { ["Host"] = wrk.headers["Host"], ["Authorization"] = "Bearer vg_sim_key_alpha" }, "")
end

function init(args)
  mode = args[1]
  local first = tonumber(args[2])
  n = tonumber(args[3])
  local ms, mc = tonumber(args[4] or "0"), tonumber(args[5] or "0")
  miss_rate = tonumber(args[6] or "0")
  local nthreads = tonumber(args[7] or "1")
  math.randomseed((tid or 1) * 7919 + os.time())
  for i = 0, n - 1 do reqs[i] = build(first + i) end
  local per = math.floor(mc / nthreads)
  miss_next = ms + ((tid or 1) - 1) * per
  miss_end = miss_next + per
end

function request()
  if miss_rate > 0 and math.random(10000) <= miss_rate and miss_next < miss_end then
    local r = build(miss_next)
    miss_next = miss_next + 1
    return r
  end
  return reqs[math.random(0, n - 1)]
end
LUA
}

# to_us VALUE: wrk's 123.45us / 1.23ms / 1.02s → microseconds.
to_us() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.1f", v }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.1f", v * 1000 }
        else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.1f", v * 60e6 }
        else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.1f", v * 1e6 }
        else printf "%s", v }'
}

# run_wrk LABEL PORT PID CONNS DURATION LUA_ARGS...: one measured run; appends a TSV row to
# $RESULTS_TSV: label conns rps p50_us p99_us requests cpu_us_per_req rss_mb errors upstream
run_wrk() {
    local label="$1" port="$2" pid="$3" conns="$4" dur="$5"
    shift 5
    local pids t0 t1 up0 up1 out="$WORK/wrk-${label//\//-}-$conns-$RANDOM.txt" secs
    secs=$(dur_secs "$dur")
    pids=$(proc_tree "$pid")
    up0=$(sim_stat hydrateCalls)
    # shellcheck disable=SC2086
    t0=$(cpu_ticks $pids)
    timeout $((secs + 60)) wrk -t"${THREADS:-2}" -c"$conns" -d"$dur" --timeout 10s --latency \
        -s "$WORK/load.lua" "http://127.0.0.1:$port" -- "$@" >"$out" 2>&1 || log "wrk exited non-zero ($label)"
    # shellcheck disable=SC2086
    t1=$(cpu_ticks $pids)
    up1=$(sim_stat hydrateCalls)
    pids=$(proc_tree "$pid")
    local rss reqs rps p50 p99 errs
    # shellcheck disable=SC2086
    rss=$(rss_kb $pids)
    reqs=$(awk '/requests in/ {print $1; exit}' "$out")
    rps=$(awk '/^Requests\/sec:/ {print $2; exit}' "$out")
    p50=$(to_us "$(awk '$1 == "50%" {print $2; exit}' "$out")")
    p99=$(to_us "$(awk '$1 == "99%" {print $2; exit}' "$out")")
    errs=$(awk '/Non-2xx or 3xx/ {e += $NF} /Socket errors/ {gsub(/,/, ""); e += $4 + $6 + $8 + $10} END {print e + 0}' "$out")
    if [[ -z "$reqs" || -z "$rps" ]]; then
        log "wrk produced no result for $label: $(head -c 400 "$out")"
        reqs=0 rps=0 p50=0 p99=0
    fi
    local cpu_us_req
    cpu_us_req=$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" -v r="$reqs" \
        'BEGIN { if (r > 0) printf "%.2f", (b - a) / hz * 1e6 / r; else print 0 }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%s\t%s\n' "$label" "$conns" "$rps" "$p50" "$p99" "$reqs" \
        "$cpu_us_req" "$(awk -v k="$rss" 'BEGIN {print k / 1024}')" "$errs" "$((up1 - up0))" >>"$RESULTS_TSV"
    log "$(printf '%-22s c=%-4s %10s req/s  p50 %8sus  p99 %8sus  cpu %7sus/req  rss %6.1fMB  err %s  upstream %s' \
        "$label" "$conns" "$rps" "$p50" "$p99" "$cpu_us_req" "$(awk -v k="$rss" 'BEGIN {print k / 1024}')" "$errs" "$((up1 - up0))")"
}

# ---------------------------------------------------------------------------------------------
# The comparison
# ---------------------------------------------------------------------------------------------

print_table() {
    python3 - "$RESULTS_TSV" "$@" <<'PY'
import statistics, sys
from collections import defaultdict

path = sys.argv[1]
meta = dict(a.split("=", 1) for a in sys.argv[2:])
rows = defaultdict(list)
for line in open(path):
    f = line.rstrip("\n").split("\t")
    if len(f) < 10:
        continue
    label, conns = f[0], int(f[1])
    workload, server = label.split("/", 1)
    vals = [float(x) for x in f[2:10]]
    rows[(workload, conns, server)].append(vals)

def med(xs):
    return statistics.median(xs) if xs else float("nan")

agg = {}
for k, runs in rows.items():
    cols = list(zip(*runs))
    # rps p50 p99 reqs cpu rss errors upstream: medians over rounds (errors, upstream: sums)
    agg[k] = dict(rps=med(cols[0]), p50=med(cols[1]), p99=med(cols[2]), cpu=med(cols[4]),
                  rss=max(cols[5]), err=sum(cols[6]), up=sum(cols[7]), reqs=sum(cols[3]),
                  n=len(runs))

names = {"redirect": "(a) GET /files/{id}/redirect, hits",
         "hydrate": "(b) POST /v1/files/{id}/hydrate, hits",
         "miss": "(c) hydrate, 1 % misses, 50 ms upstream latency"}
order = ["hydrant", "bare", "nginx", "varnish"]
print()
print(f"Load comparison — {meta.get('date','')}; wrk -t{meta.get('threads','2')}, "
      f"{meta.get('duration','')} per run, {meta.get('rounds','')} rounds, median per cell; "
      f"working set {meta.get('ws','')} files")
print()
print("| workload | conns | server | req/s | p50 µs | p99 µs | CPU µs/req | RSS MB | errors | upstream calls |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
workloads = [w for w in ["redirect", "hydrate", "miss"] if any(k[0] == w for k in agg)]
conns_all = sorted({k[1] for k in agg})
for w in workloads:
    for c in conns_all:
        for s in order:
            a = agg.get((w, c, s))
            if not a:
                continue
            print(f"| {names[w]} | {c} | {s} | {a['rps']:,.0f} | {a['p50']:,.0f} | {a['p99']:,.0f} | "
                  f"{a['cpu']:.1f} | {a['rss']:.1f} | {a['err']:.0f} | {a['up']:.0f} |")
print()
print("| workload | conns | hydrant/bare req/s | hydrant/bare CPU/req | hydrant/nginx req/s | hydrant/nginx CPU/req | hydrant/varnish req/s | hydrant/varnish CPU/req |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
def ratio(w, c, other, key):
    h, o = agg.get((w, c, "hydrant")), agg.get((w, c, other))
    if not h or not o or not o[key]:
        return "n/a"
    return f"{h[key] / o[key]:.2f}"
for w in workloads:
    for c in conns_all:
        if (w, c, "hydrant") not in agg:
            continue
        print(f"| {w} | {c} | " + " | ".join(ratio(w, c, o, k) for o in ["bare", "nginx", "varnish"] for k in ["rps", "cpu"]) + " |")

# The issue's targets, checked where the cells exist.
print()
checks = []
def chk(name, w, c, other, key, op, bound):
    r = ratio(w, c, other, key)
    if r == "n/a":
        checks.append(f"- {name}: n/a")
        return
    ok = float(r) >= bound if op == ">=" else float(r) <= bound
    checks.append(f"- {name}: {r} (target {op} {bound}) {'met' if ok else 'MISSED'}")
chk("redirect hits, req/s vs bare @50", "redirect", 50, "bare", "rps", ">=", 0.90)
chk("redirect hits, CPU/req vs bare @50", "redirect", 50, "bare", "cpu", "<=", 1.15)
h = agg.get(("redirect", 50, "hydrant"))
if h:
    checks.append(f"- redirect hits, p99 @50: {h['p99']:.0f} µs (target <= 1000 µs) {'met' if h['p99'] <= 1000 else 'MISSED'}")
chk("hydrate hits, req/s vs bare @50", "hydrate", 50, "bare", "rps", ">=", 0.85)
chk("hydrate hits, req/s vs nginx @50", "hydrate", 50, "nginx", "rps", ">=", 1.5)
chk("hydrate hits, CPU/req vs nginx @50", "hydrate", 50, "nginx", "cpu", "<=", 0.7)
print("Targets (issue 5):")
print("\n".join(checks))
PY
}

compare_main() {
    local all=0
    [[ "${1:-}" == "--all" ]] && all=1
    DURATION="${DURATION:-10s}"
    ROUNDS="${ROUNDS:-2}"
    CONNS="${CONNS:-50 256}"
    THREADS="${THREADS:-2}"
    WORKLOADS="${WORKLOADS:-redirect hydrate miss}"
    SERVERS="${SERVERS:-hydrant bare nginx varnish}"
    local stamp
    stamp="$(date +%Y%m%d-%H%M%S)"
    bench_init
    RESULTS_TSV="$RESULTS_DIR/compare-$stamp.tsv"
    : >"$RESULTS_TSV"

    # shellcheck disable=SC2086 # a list of words
    ensure_tools $SERVERS
    build_release
    [[ " $SERVERS " == *" bare "* && ! -x "$BARE_BIN" ]] && die "missing $BARE_BIN"
    local have_varnish=0
    if [[ " $SERVERS " == *" varnish "* ]] && { command -v varnishd >/dev/null || [[ -x /usr/sbin/varnishd ]]; }; then
        have_varnish=1
    fi

    # The miss pool: ids after the working set, never warmed; each (round, conns) run gets its
    # own slice, shared by the servers (each has its own cache).
    local nconns nruns miss_first=$((WS_FIRST + WS_N)) seed=100000 slice
    nconns=$(wc -w <<<"$CONNS")
    nruns=$((ROUNDS * nconns))
    slice=$(((seed - miss_first + 1) / nruns))

    log "load comparison: DURATION=$DURATION ROUNDS=$ROUNDS CONNS='$CONNS' THREADS=$THREADS WORKLOADS='$WORKLOADS' SERVERS='$SERVERS'"
    # Let the build's load fade: up to SETTLE_SECONDS for a 1-minute load average below 0.5.
    local settle=0
    while ((settle < ${SETTLE_SECONDS:-60})) && awk '{exit !($1 >= 0.5)}' /proc/loadavg; do
        sleep 5
        settle=$((settle + 5))
    done
    LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
    log "machine: $(nproc) cpus, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), load $LOAD_START"
    if awk -v l="${LOAD_START%% *}" 'BEGIN {exit !(l >= 0.5)}'; then
        log "WARNING: load average $LOAD_START: the machine is not quiet; numbers are indicative only"
    fi
    start_sim --seed-files "$seed"
    start_hydrant hydrant
    # Capture what hydrant serves, so the bare server answers with the same bytes.
    curl -sS --max-time 10 -o /dev/null -D "$WORK/redirect.head" \
        "http://127.0.0.1:$HY_PORT/files/$(file_id $WS_FIRST)/redirect"
    awk 'tolower($1) == "location:" {sub(/\r$/, ""); print $2}' "$WORK/redirect.head" >"$WORK/location.txt"
    curl -sS --max-time 10 -X POST -H "Authorization: Bearer $SIM_KEY" -H "Content-Length: 0" \
        -o "$WORK/body.json" "http://127.0.0.1:$HY_PORT/v1/files/$(file_id $WS_FIRST)/hydrate"
    log "hydrate body $(wc -c <"$WORK/body.json") bytes; Location $(wc -c <"$WORK/location.txt") bytes"

    local servers=()
    [[ " $SERVERS " == *" hydrant "* ]] && servers+=(hydrant)
    if [[ " $SERVERS " == *" bare "* ]]; then start_bare && servers+=(bare); fi
    if [[ " $SERVERS " == *" nginx "* ]]; then start_nginx && servers+=(nginx); fi
    if ((have_varnish)) && start_varnish; then servers+=(varnish); fi

    # Warm: one pass over the working set per cache and route.
    local s port
    for s in "${servers[@]}"; do
        [[ "$s" == bare ]] && continue
        port=$(server_port "$s")
        if [[ " $WORKLOADS " == *" redirect "* && "$s" == hydrant ]]; then
            log "warm $s redirect: $(warm "http://127.0.0.1:$port" redirect "$WS_FIRST" "$WS_N")"
        fi
        log "warm $s hydrate: $(warm "http://127.0.0.1:$port" hydrate "$WS_FIRST" "$WS_N")"
    done
    write_lua

    local round c w i=0 idx order
    for ((round = 1; round <= ROUNDS; round++)); do
        # Alternate the order of the servers from round to round.
        if ((round % 2)); then order=("${servers[@]}"); else mapfile -t order < <(printf '%s\n' "${servers[@]}" | tac); fi
        for c in $CONNS; do
            idx=$((i))
            i=$((i + 1))
            for w in $WORKLOADS; do
                if [[ "$w" == miss ]]; then
                    # 50 ms on every upstream hydrate while the miss runs.
                    curl -sS --max-time 10 -o /dev/null -X POST "http://127.0.0.1:$SIM_PORT/_sim/faults" \
                        -d '{"route":"hydrate","kind":"latency","ms":50,"count":4000000000}'
                fi
                for s in "${order[@]}"; do
                    # No nginx/Varnish equivalent of a redirect; bare has no upstream to miss.
                    [[ "$w" == redirect && ("$s" == nginx || "$s" == varnish) ]] && continue
                    [[ "$w" == miss && "$s" == bare ]] && continue
                    local mode=hydrate args
                    [[ "$w" == redirect ]] && mode=redirect
                    args=("$mode" "$WS_FIRST" "$WS_N")
                    [[ "$w" == miss ]] && args+=("$((miss_first + idx * slice))" "$slice" 100 "$THREADS")
                    run_wrk "$w/$s" "$(server_port "$s")" "$(server_pid "$s")" "$c" "$DURATION" "${args[@]}"
                    sleep 1
                done
                if [[ "$w" == miss ]]; then
                    curl -sS --max-time 10 -o /dev/null -X DELETE "http://127.0.0.1:$SIM_PORT/_sim/faults"
                fi
            done
        done
    done

    local table="$RESULTS_DIR/compare-$stamp.md"
    {
        echo "Machine: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM; $(uname -sr)"
        echo "Load average (1/5/15 min) at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg) (includes this run's own load)"
        echo "Versions: $("$HYDRANT_BIN" --version 2>/dev/null || echo hydrant), $(nginx -v 2>&1 | sed 's/^nginx version: //'), $(varnishd -V 2>&1 | head -1 | sed 's/^varnishd (\(.*\) revision.*/\1/' || true), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
        print_table date="$(date -u +%Y-%m-%d)" threads="$THREADS" duration="$DURATION" rounds="$ROUNDS" ws="$WS_N"
    } | tee "$table"
    log "raw rows: $RESULTS_TSV; table: $table"

    if ((all)); then
        log "--all: economy and memory"
        stop_all
        "$BENCH_DIR/economy.sh"
        "$BENCH_DIR/memory.sh"
    fi
}

server_port() {
    case "$1" in
    hydrant) echo "$HY_PORT" ;;
    bare) echo "$BARE_PORT" ;;
    nginx) echo "$NGINX_PORT" ;;
    varnish) echo "$VARNISH_PORT" ;;
    esac
}

server_pid() {
    case "$1" in
    hydrant) echo "$HY_PID" ;;
    bare) echo "$BARE_PID" ;;
    nginx) echo "$NGINX_PID" ;;
    varnish) echo "$VARNISH_PID" ;;
    esac
}

if [[ "${BENCH_LIB_ONLY:-0}" != 1 ]]; then
    compare_main "$@"
fi
