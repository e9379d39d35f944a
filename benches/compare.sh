#!/usr/bin/env bash
# Load comparison: hydrant against the bare-hyper ceiling, nginx proxy_cache and Varnish, in one
# run on one machine. See benches/README.md.
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
# PID on exit (trap), and every wait is bounded. The shared machinery is in benches/lib/.
# Sourced with BENCH_LIB_ONLY=1, this file only loads that library.

set -euo pipefail

# shellcheck source=benches/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

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
    log "machine: $(nproc) cpus, $(cpu_model), load $LOAD_START"
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
        echo "Machine: $(nproc) CPUs, $(cpu_model), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM; $(uname -sr)"
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

if [[ "${BENCH_LIB_ONLY:-0}" != 1 ]]; then
    compare_main "$@"
fi
