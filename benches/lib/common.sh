# shellcheck shell=bash
# The benchmark library: everything compare.sh, economy.sh and memory.sh share. Source it
# (after `set -euo pipefail`); it defines functions and a few paths and starts nothing.
#
#   lib/common.sh   paths, logging, processes by PID, free ports, CPU and RSS accounting,
#                   apt-get installs, the release build; sources the four below
#   lib/servers.sh  starting the simulator, hydrant, bare, nginx and Varnish on loopback
#   lib/load.sh     the working set, warming, the wrk script, one measured wrk run, counters
#   lib/report.sh   the load comparison's markdown table, ratios and targets (Python)
#   lib/cluster.sh  Redis, replicas sharing it, Redis counters, the cluster load clients
#
# Everything listens on 127.0.0.1 on free ports; every process started through start_bg is
# stopped by its PID on exit (bench_init's trap), and every wait is bounded.
#
# Environment read here: CARGO_TARGET_DIR, HYDRANT_BIN, BARE_BIN, RESULTS_DIR, KEEP_WORKDIR,
# SKIP_BUILD, SKIP_INSTALL, TMPDIR.

[[ -n "${BENCH_LIB_LOADED:-}" ]] && return 0
BENCH_LIB_LOADED=1

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
HYDRANT_BIN="${HYDRANT_BIN:-$TARGET_DIR/release/hydrant}"
BARE_BIN="${BARE_BIN:-$TARGET_DIR/release/bare}"
RESULTS_DIR="${RESULTS_DIR:-$TARGET_DIR/bench-results}"
SIM_KEY="vg_sim_key_alpha"
CLK_TCK="$(getconf CLK_TCK)"

# ---------------------------------------------------------------------------------------------
# Logging
# ---------------------------------------------------------------------------------------------

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

# ---------------------------------------------------------------------------------------------
# Processes: started in the background, stopped by PID
# ---------------------------------------------------------------------------------------------

PIDS=()
PORTS_TAKEN=" "
WORK=""
LAST_PID=""

# is_ours PID: still our own child (so a recycled PID of someone else's process is never hit).
is_ours() {
    [[ -r "/proc/$1/stat" ]] && [[ "$(awk '{sub(/^.*\) /, ""); print $2}' "/proc/$1/stat" 2>/dev/null)" == "$$" ]]
}

# proc_state PID: the state letter from /proc/PID/stat (Z for a zombie), empty when gone.
proc_state() {
    awk '{sub(/^.*\) /, ""); print $1}' "/proc/$1/stat" 2>/dev/null || true
}

# stop_pid PID: TERM, up to 5 s, then KILL; reap it and forget it.
stop_pid() {
    local pid="$1" n=0 keep=() p
    if is_ours "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        while is_ours "$pid" && [[ "$(proc_state "$pid")" != Z ]] && ((n < 50)); do
            sleep 0.1
            n=$((n + 1))
        done
        if is_ours "$pid" && [[ "$(proc_state "$pid")" != Z ]]; then
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

# bench_init: the temp work dir, the exit trap that stops everything, the results dir.
bench_init() {
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/hydrant-bench.XXXXXX")"
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    mkdir -p "$RESULTS_DIR"
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

# start_bg NAME CMD... : run CMD in the background, output to $WORK/NAME.log; sets LAST_PID.
start_bg() {
    local name="$1"
    shift
    "$@" >"$WORK/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
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

# ---------------------------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------------------------

# A free loopback port, not handed out before in this run, below the ephemeral range (where
# outgoing connections of anything else on the machine could take it between check and bind).
free_port() {
    local p lo=10000 hi
    hi=$(awk '{print $1 - 1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32767)
    ((hi > lo + 1000)) || { lo=20000 hi=60000; }
    for _ in $(seq 1 200); do
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

# ---------------------------------------------------------------------------------------------
# Accounting: CPU time and RSS from /proc
# ---------------------------------------------------------------------------------------------

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

# ---------------------------------------------------------------------------------------------
# Tools and the build
# ---------------------------------------------------------------------------------------------

APT_UPDATED=0
# apt_install PKG...: apt-get install (root, or passwordless sudo); fails with SKIP_INSTALL=1.
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

# ensure_tools [nginx] [varnish]: wrk, curl, jq, python3 always; nginx and Varnish when named
# (Varnish is optional: when it does not install, its rows are skipped).
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

# build_release: hydrant and the bare ceiling, release (unless SKIP_BUILD=1).
build_release() {
    if [[ "${SKIP_BUILD:-0}" == 1 ]]; then
        log "SKIP_BUILD=1: using $HYDRANT_BIN and $BARE_BIN"
    else
        # Binaries only, no example or test in the same invocation: those would switch on the
        # dev-dependencies' features (tokio test-util) for hydrant too (Cargo.toml, [[bin]] bare).
        log "cargo build --release --locked --features bench-bare --bin hydrant --bin bare"
        (cd "$ROOT" && timeout 3600 cargo build --release --locked --features bench-bare --bin hydrant --bin bare >&2)
    fi
    [[ -x "$HYDRANT_BIN" ]] || die "missing $HYDRANT_BIN"
}

# cpu_model: the CPU's name as /proc/cpuinfo gives it.
cpu_model() {
    awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo
}

# ---------------------------------------------------------------------------------------------
# The rest of the library
# ---------------------------------------------------------------------------------------------

# shellcheck source=benches/lib/servers.sh
source "$BENCH_DIR/lib/servers.sh"
# shellcheck source=benches/lib/load.sh
source "$BENCH_DIR/lib/load.sh"
# shellcheck source=benches/lib/report.sh
source "$BENCH_DIR/lib/report.sh"
# shellcheck source=benches/lib/cluster.sh
source "$BENCH_DIR/lib/cluster.sh"
