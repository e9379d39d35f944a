#!/usr/bin/env bash
# Cluster mode: hydrant replicas sharing one redis-server, measured. See benches/README.md
# ("Cluster mode").
#
#   benches/cluster.sh            # build, then the six figures below (≈ 6 min after the build)
#   benches/cluster.sh --quick    # short settings (≈ 2.5 min): a functional pass
#
#   economy   benches/economy.sh with REPLICAS=3: hot files and a cold burst over 3 replicas
#             behind a client that rotates requests over them, with Redis and without
#   l1        L1 hit throughput, one replica with --redis-url and one without, alternating
#             over ROUNDS rounds of wrk (compare.sh's redirect-hit workload)
#   l2        replica A warms the files, replica B (L1 cold) serves each once (L2 hits), then
#             again (L1 hits): latency and throughput; Redis memory per cached file
#   commands  Redis round trips (hydrant_redis_commands_total) and Redis commands (INFO
#             commandstats) per request for an L1 hit, an L2 hit, a miss, a coalesced waiter
#             on the same replica and a waiter on another replica's fill
#   outage    wrk on 2 replicas; redis-server killed (SIGKILL) and restarted on the same port
#             mid-run: failed requests, and the time until both report hydrant_redis_up 1
#   capacity  the capacity model computed from the figures above
#
# Knobs: [default] (--quick's, where it differs):
#   PHASES ["economy l1 l2 commands outage"]   (capacity is always computed from what ran)
#   economy:  REPLICAS [3], and economy.sh's ECON_FILES [100], ECON_SECONDS [35] (12),
#             ECON_LIFETIME [70], ECON_MARGIN [60], BURST [1000], ECON_CONNS [8]
#   l1:       DURATION [10s] (3s), ROUNDS [3] (2), L1_CONNS [50], L1_THREADS [1], WS_N [10000] (2000)
#   l2:       L2_FILES [5000] (1000) files per client setting, L2_CONNS ["1 16"]
#   commands: CMD_REQUESTS [1000] (200), CO_FILES [10] (3), CO_CONNS [50]
#   outage:   OUTAGE_SECONDS [20], OUTAGE_KILL_AT [5], OUTAGE_RESTART_AT [12], OUTAGE_FILES [2000],
#             OUTAGE_CONNS [50], OUTAGE_MISS [100] (per 10,000 requests: new files),
#             RECOVERY_REPEATS [5] (2): idle kill/restart cycles timed after the loaded one
#   capacity: CAP_INPUTS (a cluster-*-capacity.env of an earlier run: PHASES=capacity
#             recomputes the model from it), CAP_RPS [100000], CAP_FILES [1000000],
#             CAP_WINDOW [3540] (s: URL lifetime − margin), CAP_L1_HIT ["0.99 0.95 0.90"],
#             CAP_CORES [2] per replica, CAP_UTIL [0.5],
#             CAP_L1_ENTRY_BYTES [3356] (RSS per in-memory entry: memory.sh's last recorded figure)
#   SKIP_BUILD, SKIP_INSTALL, RESULTS_DIR, KEEP_WORKDIR, HYDRANT_BIN, HYDRANT_RUST_LOG as in
#   compare.sh; HYDRANT_COMMIT names the measured build in the report when HYDRANT_BIN is not
#   this checkout's.
#
# Everything listens on 127.0.0.1 on free ports; every process started here is stopped by its
# PID on exit (trap); every wait and loop is bounded. The shared machinery is in benches/lib/.

set -euo pipefail
WS_N_ENV="${WS_N:-}" # lib/load.sh sets its own default
# shellcheck source=benches/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

QUICK=0
[[ "${1:-}" == --quick ]] && QUICK=1
q() { if ((QUICK)); then echo "$2"; else echo "$1"; fi; }

PHASES="${PHASES:-economy l1 l2 commands outage}"
CAP_INPUTS="${CAP_INPUTS:-}" # a capacity.env of an earlier run: recompute the model from it
REPLICAS="${REPLICAS:-3}"
DURATION="${DURATION:-$(q 10s 3s)}"
ROUNDS="${ROUNDS:-$(q 3 2)}"
L1_CONNS="${L1_CONNS:-50}"
L1_THREADS="${L1_THREADS:-1}"
WS_N="${WS_N_ENV:-$(q 10000 2000)}"
L2_FILES="${L2_FILES:-$(q 5000 1000)}"
L2_CONNS="${L2_CONNS:-1 16}"
CMD_REQUESTS="${CMD_REQUESTS:-$(q 1000 200)}"
CO_FILES="${CO_FILES:-$(q 10 3)}"
CO_CONNS="${CO_CONNS:-50}"
OUTAGE_SECONDS="${OUTAGE_SECONDS:-20}"
OUTAGE_KILL_AT="${OUTAGE_KILL_AT:-5}"
OUTAGE_RESTART_AT="${OUTAGE_RESTART_AT:-12}"
OUTAGE_FILES="${OUTAGE_FILES:-2000}"
OUTAGE_CONNS="${OUTAGE_CONNS:-50}"
OUTAGE_MISS="${OUTAGE_MISS:-100}"
RECOVERY_REPEATS="${RECOVERY_REPEATS:-$(q 5 2)}"
export ECON_SECONDS="${ECON_SECONDS:-$(q 35 12)}"

STAMP="$(date +%Y%m%d-%H%M%S)"
bench_init
OUT="$RESULTS_DIR/cluster-$STAMP.md"
CAP="$WORK/capacity.env" # measured inputs of the capacity model, KEY=VALUE lines
: >"$CAP"
[[ -n "$CAP_INPUTS" ]] && cat "$CAP_INPUTS" >>"$CAP"
# shellcheck disable=SC2119 # no server names: wrk, curl, jq and python3 only
ensure_tools
ensure_redis
build_release
write_rr

# now_ms: wall clock in milliseconds.
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# cpu_ns PID: CPU time of all the process's threads in ns (/proc/PID/task/*/schedstat).
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f\n", s}'; }
# section TEXT...: appended to the report.
section() { printf '%s\n' "$@" >>"$WORK/report.md"; }
# per NUM DEN [DIGITS]: NUM ÷ DEN.
per() { awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN { if (b > 0) printf "%.*f", d, a / b; else print "n/a" }'; }
# settle: up to 30 s for the 1-minute load average to fall under 1 (the previous phase's load).
settle() {
    local n=0
    while ((n < 30)) && awk '{exit !($1 >= 1.0)}' /proc/loadavg; do
        sleep 1
        n=$((n + 1))
    done
}
bases_of() {
    local b
    b=$(printf '127.0.0.1:%s,' "$@")
    echo "${b%,}"
}

# --- economy ---------------------------------------------------------------------------------
phase_economy() {
    log "=== economy: REPLICAS=$REPLICAS (benches/economy.sh)"
    local eout="$RESULTS_DIR/cluster-$STAMP-economy.md"
    ECON_OUT="$eout" REPLICAS="$REPLICAS" SKIP_BUILD=1 HYDRANT_BIN="$HYDRANT_BIN" RESULTS_DIR="$RESULTS_DIR" \
        "$BENCH_DIR/economy.sh" || die "economy.sh failed"
    section "" "#### 1. Upstream economy over $REPLICAS replicas" "" "$(cat "$eout")"
}

# --- l1: L1 hit throughput with and without --redis-url --------------------------------------
phase_l1() {
    log "=== l1: redirect hits, wrk -t$L1_THREADS -c$L1_CONNS, $DURATION × $ROUNDS rounds, with and without Redis"
    start_sim --seed-files $((WS_FIRST + WS_N + 10))
    start_redis
    start_hydrant l1-plain
    local p_port=$HY_PORT p_pid=$HY_PID
    start_hydrant l1-redis --redis-url "redis://127.0.0.1:$REDIS_PORT/0"
    local r_port=$HY_PORT r_pid=$HY_PID
    R_PORTS=("$r_port")
    wait_cluster_up 1
    log "warm plain: $(warm "http://127.0.0.1:$p_port" redirect "$WS_FIRST" "$WS_N")"
    log "warm redis: $(warm "http://127.0.0.1:$r_port" redirect "$WS_FIRST" "$WS_N")"
    sleep 1
    write_lua
    RESULTS_TSV="$WORK/l1.tsv"
    : >"$RESULTS_TSV"
    : >"$WORK/l1-redis.txt"
    settle
    local round s order
    for ((round = 1; round <= ROUNDS; round++)); do
        if ((round % 2)); then order=(plain redis); else order=(redis plain); fi
        for s in "${order[@]}"; do
            local port=$p_port pid=$p_pid
            [[ "$s" == redis ]] && port=$r_port pid=$r_pid
            redis_ops "$r_port" >"$WORK/o0"
            cmdstats >"$WORK/c0"
            local h0
            h0=$(metric_at "$port" hydrant_cache_lookups_total 'outcome="hit"')
            THREADS="$L1_THREADS" run_wrk "l1/$s" "$port" "$pid" "$L1_CONNS" "$DURATION" redirect "$WS_FIRST" "$WS_N"
            redis_ops "$r_port" >"$WORK/o1"
            cmdstats >"$WORK/c1"
            echo "$s $round $(($(metric_at "$port" hydrant_cache_lookups_total 'outcome="hit"') - h0)) | $(ops_delta "$WORK/o0" "$WORK/o1") | $(cmd_delta "$WORK/c0" "$WORK/c1")" >>"$WORK/l1-redis.txt"
            log "  during l1/$s: $(tail -1 "$WORK/l1-redis.txt")"
            sleep 1
        done
    done
    local table
    table=$(python3 - "$RESULTS_TSV" "$WORK/l1-redis.txt" "$CAP" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
notes = [l.rstrip("\n") for l in open(sys.argv[2]) if l.strip()]
by = {"plain": [], "redis": []}
for r in rows:
    by[r[0].split("/")[1]].append(r)
def col(s, i):
    return [float(r[i]) for r in by[s]]
med = {s: {k: statistics.median(col(s, i)) for k, i in
           (("rps", 2), ("p50", 3), ("p99", 4), ("cpu", 6), ("rss", 7))} for s in by}
errs = {s: int(sum(col(s, 8))) for s in by}
ups = {s: int(sum(col(s, 9))) for s in by}
reqs = {s: int(sum(col(s, 5))) for s in by}
print("| server | rounds | req/s (median) | p50 µs | p99 µs | CPU µs/req | RSS MB | requests | errors | upstream calls |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
name = {"plain": "hydrant, no Redis", "redis": "hydrant --redis-url (Redis up)"}
for s in ("plain", "redis"):
    m = med[s]
    print(f"| {name[s]} | {len(by[s])} | {m['rps']:,.0f} | {m['p50']:,.0f} | {m['p99']:,.0f} | {m['cpu']:.2f} | {m['rss']:.1f} | {reqs[s]:,} | {errs[s]} | {ups[s]} |")
print()
rr = med["redis"]["rps"] / med["plain"]["rps"]
rc = med["redis"]["cpu"] / med["plain"]["cpu"]
pairs = [float(b[2]) / float(a[2]) for a, b in zip(by["plain"], by["redis"])]
cpairs = [float(b[6]) / float(a[6]) for a, b in zip(by["plain"], by["redis"])]
verdict = "met" if rr >= 0.97 else "MISSED"
print(f"Ratio Redis/no Redis: req/s **{rr:.3f}** (per round {', '.join(f'{x:.3f}' for x in pairs)}; target ≥ 0.97: {verdict}), "
      f"CPU per request **{rc:.3f}** (per round {', '.join(f'{x:.3f}' for x in cpairs)}).")
print()
print("Redis traffic while the Redis-configured replica served its L1 hits (per run: L1 hits counted, "
      "hydrant_redis_commands_total delta, INFO commandstats delta with the 1/s heartbeats taken out):")
print()
for n in notes:
    if n.startswith("redis "):
        head, ops, cmds = (x.strip() for x in n.split(" | "))
        _, rnd, hits = head.split()
        print(f"- round {rnd}: {int(hits):,} L1 hits; hydrant_redis_commands_total: {ops}; Redis commands: {cmds}")
with open(sys.argv[3], "a") as f:
    f.write(f"L1_CPU_US={med['redis']['cpu']:.2f}\nL1_RPS={med['redis']['rps']:.0f}\nL1_RATIO={rr:.3f}\n")
PY
)
    section "" "#### 2. L1 hit throughput, Redis configured vs not" "" \
        "wrk -t$L1_THREADS -c$L1_CONNS, $DURATION per run, $ROUNDS rounds alternating the order, GET /files/{id}/redirect over $WS_N warm files (compare.sh's Lua script); both replicas run side by side against one simulator, the Redis one with a live redis-server." "" "$table"
    stop_all
    R_PORTS=() R_PIDS=()
}

# --- l2: L2 hit cost, and Redis memory per file ------------------------------------------------
phase_l2() {
    local nc total
    nc=$(wc -w <<<"$L2_CONNS")
    total=$((L2_FILES * nc))
    log "=== l2: A warms $total files, B serves them from Redis ($L2_CONNS client connections)"
    start_sim --seed-files $((WS_FIRST + total + 10))
    start_redis
    start_replicas 2 l2
    local a=${R_PORTS[0]} b=${R_PORTS[1]} b_pid=${R_PIDS[1]}
    wait_cluster_up 2
    local mem0 mem1 keys
    mem0=$(rcli INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory" {print $2}')
    log "warm A: $(warm "http://127.0.0.1:$a" redirect "$WS_FIRST" "$total")"
    sleep 1
    mem1=$(rcli INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory" {print $2}')
    rcli --scan --pattern '*:e:*' >"$WORK/keys-all.txt"
    keys=$(wc -l <"$WORK/keys-all.txt")
    local sample="$WORK/keys.txt"
    head -200 "$WORK/keys-all.txt" >"$sample"
    local usage vlen
    usage=$(sed 's/^/MEMORY USAGE /' "$sample" | rcli | awk '{s += $1; n++} END {printf "%.0f", s / n}')
    vlen=$(sed 's/$/ v/; s/^/HSTRLEN /' "$sample" | rcli | awk '{s += $1; n++} END {printf "%.0f", s / n}')
    local per_file
    per_file=$(per $((mem1 - mem0)) "$keys" 0)
    log "Redis: used_memory $mem0 → $mem1 for $keys entries = $per_file B/file; MEMORY USAGE mean $usage B, wire value mean $vlen B"
    {
        echo "REDIS_BYTES_PER_FILE=$per_file"
        echo "REDIS_VALUE_BYTES=$vlen"
    } >>"$CAP"
    local up0 i=0 c rows=() rpid=$REDIS_PID
    up0=$(sim_stat hydrateCalls)
    settle
    for c in $L2_CONNS; do
        local first=$((WS_FIRST + i * L2_FILES)) kind
        i=$((i + 1))
        for kind in L2 L1; do
            local c0 r0 u0 res c1 r1 u1 l2a l2b
            redis_ops "$b" >"$WORK/o0"
            cmdstats >"$WORK/c0"
            l2a=$(metric_at "$b" hydrant_cache_lookups_total 'tier="l2"')
            u0=$(sim_stat hydrateCalls)
            c0=$(cpu_ns "$b_pid")
            r0=$(cpu_ns "$rpid")
            res=$(rr_run walk --bases "127.0.0.1:$b" --first "$first" --count "$L2_FILES" --conns "$c" --lat)
            c1=$(cpu_ns "$b_pid")
            r1=$(cpu_ns "$rpid")
            sleep 0.5
            u1=$(sim_stat hydrateCalls)
            l2b=$(metric_at "$b" hydrant_cache_lookups_total 'tier="l2"')
            redis_ops "$b" >"$WORK/o1"
            cmdstats >"$WORK/c1"
            local n
            n=$(jget "$res" requests)
            local bcpu rcpu
            bcpu=$(per $(((c1 - c0) / 10)) $((n * 100)) 1)
            rcpu=$(per $(((r1 - r0) / 10)) $((n * 100)) 1)
            log "  $kind c=$c: $(jget "$res" rps) req/s p50 $(jget "$res" p50_us) p99 $(jget "$res" p99_us) µs; x-cache $(jget "$res" xcache | tr -d ' \n'); L2 hits $((l2b - l2a)); B $bcpu µs/req, Redis $rcpu µs/req; upstream $((u1 - u0)); ops $(ops_delta "$WORK/o0" "$WORK/o1")"
            rows+=("| $kind hits on B | $c | $n | $(jget "$res" rps) | $(jget "$res" p50_us) | $(jget "$res" p90_us) | $(jget "$res" p99_us) | $(jget "$res" max_us) | $(jget "$res" 'xcache | to_entries | map("\(.key) \(.value)") | join(", ")'); $((l2b - l2a)) counted L2 | $bcpu | $rcpu | $(jget "$res" failed) | $((u1 - u0)) |")
            if [[ "$kind" == L2 && "$c" == "$(awk '{print $NF}' <<<"$L2_CONNS")" ]]; then
                {
                    echo "L2_B_CPU_US=$bcpu"
                    echo "L2_REDIS_CPU_US=$rcpu"
                } >>"$CAP"
            fi
        done
    done
    section "" "#### 3. L2 hit cost" "" \
        "Replica A warmed $total files (\`GET /files/{id}/redirect\`, curl --parallel 32); replica B, its memory cold, then walked each of $L2_FILES of them once per client setting with the asyncio client (\`rr.py walk\`: every id exactly once, C requests in flight, latency from write to last byte in the client) — all L2 hits — and walked the same ids again: L1 hits. CPU per request from /proc/PID/task/*/schedstat over the walk. The client is Python: its own cost per request (tens of µs) is in every latency here, so compare the rows with each other, and L1 hits against wrk's in figure 2." "" \
        "| path | client conns | requests | req/s | p50 µs | p90 µs | p99 µs | max µs | x-cache | B CPU µs/req | Redis CPU µs/req | failed | upstream calls |" \
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|" "${rows[@]}" "" \
        "Redis memory: \`used_memory\` $mem0 → $mem1 B for $keys entry keys = **$per_file B per cached file** (\`MEMORY USAGE\` of 200 entry keys: mean $usage B; the stored value, hydrant's wire encoding of the entry: mean $vlen B)."
    stop_all
    R_PORTS=() R_PIDS=()
}

# --- commands: Redis commands per request for each path ---------------------------------------
phase_commands() {
    local k=$CMD_REQUESTS
    local set1=$WS_FIRST set2=$((WS_FIRST + k)) co1=$((WS_FIRST + 2 * k)) co2=$((WS_FIRST + 2 * k + CO_FILES))
    log "=== commands: $k requests per path; $CO_FILES files × $CO_CONNS concurrent requests for the waiters"
    start_sim --seed-files $((co2 + CO_FILES + 10))
    start_redis
    start_replicas 2 cmd
    local a=${R_PORTS[0]} b=${R_PORTS[1]}
    wait_cluster_up 2
    log "warm A: $(warm "http://127.0.0.1:$a" redirect "$set1" "$k")"
    sleep 1
    local rows=()
    # measure PATH REQUESTS CMD...: the deltas on A, on B and in Redis over CMD.
    measure() {
        local path="$1" nreq="$2"
        shift 2
        redis_ops "$a" >"$WORK/a0"
        redis_ops "$b" >"$WORK/b0"
        cmdstats >"$WORK/c0"
        local u0 u1 out r0 r1
        u0=$(sim_stat hydrateCalls)
        r0=$(cpu_ns "$REDIS_PID")
        out=$("$@")
        sleep 0.3 # stores and announcements run after the response
        r1=$(cpu_ns "$REDIS_PID")
        sleep 0.7
        u1=$(sim_stat hydrateCalls)
        redis_ops "$a" >"$WORK/a1"
        redis_ops "$b" >"$WORK/b1"
        cmdstats >"$WORK/c1"
        local da db dc
        da=$(ops_delta "$WORK/a0" "$WORK/a1")
        db=$(ops_delta "$WORK/b0" "$WORK/b1")
        dc=$(cmd_delta "$WORK/c0" "$WORK/c1")
        log "  $path ($nreq requests): upstream $((u1 - u0)); A ops: $da; B ops: $db; Redis: $dc; client: $(tr '\n' ' ' <<<"${out:0:400}")"
        local rcpu
        rcpu=$(per $(((r1 - r0) / 10)) $((nreq * 100)) 1)
        rows+=("| $path | $nreq | $((u1 - u0)) | $(per_req "$da" "$nreq") | $(per_req "$db" "$nreq") | $(per_req "$dc" "$nreq") | $rcpu |")
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$path" "$nreq" "$da" "$db" "$dc" "$rcpu" >>"$WORK/cmd.txt"
    }
    : >"$WORK/cmd.txt"
    measure "L1 hit (A, its own entries)" "$k" rr_run walk --bases "127.0.0.1:$a" --first "$set1" --count "$k" --conns 8
    measure "L2 hit (B, entries A stored)" "$k" rr_run walk --bases "127.0.0.1:$b" --first "$set1" --count "$k" --conns 8
    measure "miss (B, new files)" "$k" rr_run walk --bases "127.0.0.1:$b" --first "$set2" --count "$k" --conns 8
    # Waiters: CO_CONNS concurrent requests for one new file while the upstream takes 500 ms.
    co_local() {
        local f
        for ((f = 0; f < CO_FILES; f++)); do
            curl -sS --max-time 10 -o /dev/null -X POST "http://127.0.0.1:$SIM_PORT/_sim/faults" \
                -d '{"route":"hydrate","kind":"latency","ms":500,"count":1}'
            rr_run burst --bases "127.0.0.1:$b" --first $((co1 + f)) --conns "$CO_CONNS" | jq -c '{status, xcache}'
        done
    }
    co_cross() {
        local f lead
        for ((f = 0; f < CO_FILES; f++)); do
            curl -sS --max-time 10 -o /dev/null -X POST "http://127.0.0.1:$SIM_PORT/_sim/faults" \
                -d '{"route":"hydrate","kind":"latency","ms":500,"count":1}'
            curl -sS --max-time 10 -o /dev/null "http://127.0.0.1:$a/files/$(file_id $((co2 + f)))/redirect" &
            lead=$!
            sleep 0.1
            rr_run burst --bases "127.0.0.1:$b" --first $((co2 + f)) --conns "$CO_CONNS" | jq -c '{status, xcache}'
            wait "$lead" || true
        done
    }
    measure "1 miss + $((CO_CONNS - 1)) coalesced waiters, one replica (B), per request" $((CO_FILES * CO_CONNS)) co_local
    measure "leader on A + $CO_CONNS requests on B waiting for A's fill, per B request" $((CO_FILES * CO_CONNS)) co_cross
    local table
    table=$(python3 - "$WORK/cmd.txt" "$CAP" "$CO_CONNS" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
co = int(sys.argv[3])
def parse(s):
    d = {}
    for f in s.split():
        k, v = f.split("=")
        d[k] = int(v)
    return d
r = {}
for path, n, da, db, dc, rc in rows:
    r[path] = (int(n), parse(da), parse(db), parse(dc), rc)
def tot(d):
    return d.get("total", 0)
keys = list(r)
l1, l2, miss, loc, cross = (r[k] for k in keys)
out = []
def line(name, ops, cmds, n):
    out.append(f"| {name} | {ops / n:.2f} | {cmds / n:.2f} |")
line("L1 hit", tot(l1[1]) + tot(l1[2]), tot(l1[3]), l1[0])
line("L2 hit", tot(l2[1]) + tot(l2[2]), tot(l2[3]), l2[0])
line("miss (upstream fill)", tot(miss[1]) + tot(miss[2]), tot(miss[3]), miss[0])
files = loc[0] // co
miss_ops = (tot(miss[1]) + tot(miss[2])) / miss[0]
miss_cmds = tot(miss[3]) / miss[0]
w_ops = (tot(loc[1]) + tot(loc[2]) - files * miss_ops) / (files * (co - 1))
w_cmds = (tot(loc[3]) - files * miss_cmds) / (files * (co - 1))
out.append(f"| coalesced waiter, same replica (beyond its leader's miss) | {w_ops:.2f} | {w_cmds:.2f} |")
# Cross-replica: B's requests only (A's leader is a miss); Redis commands minus A's misses.
b_ops = tot(cross[2]) / cross[0]
b_cmds = (tot(cross[3]) - files * miss_cmds) / cross[0]
b_file_ops = tot(cross[2]) / files
out.append(f"| waiter on another replica's fill (B's {co} requests per file; {b_file_ops:.1f} round trips per file on B) | {b_ops:.2f} | {b_cmds:.2f} |")
print("| path | Redis round trips per request (hydrant_redis_commands_total) | Redis commands executed per request (INFO commandstats, scripts' inner commands included) |")
print("|---|---:|---:|")
print("\n".join(out))
with open(sys.argv[2], "a") as f:
    f.write(f"CMD_L2_OPS={(tot(l2[1]) + tot(l2[2])) / l2[0]:.2f}\nCMD_L2_CMDS={tot(l2[3]) / l2[0]:.2f}\n")
    f.write(f"CMD_MISS_OPS={miss_ops:.2f}\nCMD_MISS_CMDS={miss_cmds:.2f}\n")
    f.write(f"CMD_L1_OPS={(tot(l1[1]) + tot(l1[2])) / l1[0]:.2f}\nCMD_L1_CMDS={tot(l1[3]) / l1[0]:.2f}\n")
    f.write(f"CMD_MISS_REDIS_CPU_US={miss[4]}\nCMD_L2_REDIS_CPU_US={l2[4]}\n")
PY
)
    section "" "#### 4. Redis per request, by path" "" \
        "Two replicas A and B on one redis-server. Each row's deltas are taken around a fixed number of requests (the asyncio client, 8 at a time; the waiter rows: $CO_FILES new files, each with a 500 ms upstream latency fault and $CO_CONNS concurrent requests written at once). Round trips = hydrant_redis_commands_total on both replicas, by op; commands = INFO commandstats (every command Redis ran, those inside hydrant's scripts included), with the replicas' 1/s heartbeats taken out (see lib/cluster.sh). Redis CPU = redis-server's CPU time (/proc schedstat) from the first request to 0.3 s after the last, ÷ requests: it includes Redis's own background (serverCron, heartbeats, the INFO calls of this measurement), which the L1 row, sending Redis nothing, shows." "" \
        "| requests | count | upstream calls | round trips on A per request, by op | round trips on B per request, by op | Redis commands per request, by command | Redis CPU µs/request |" \
        "|---|---:|---:|---|---|---|---:|" "${rows[@]}" "" "Summary:" "" "$table"
    stop_all
    R_PORTS=() R_PIDS=()
}

# --- outage: redis-server killed and restarted under load ---------------------------------------
phase_outage() {
    local miss_first=$((WS_FIRST + OUTAGE_FILES)) miss_n=20000
    log "=== outage: wrk on 2 replicas for ${OUTAGE_SECONDS}s; kill redis at ${OUTAGE_KILL_AT}s, restart at ${OUTAGE_RESTART_AT}s"
    start_sim --seed-files $((miss_first + miss_n + 10))
    start_redis
    local rport=$REDIS_PORT
    start_replicas 2 out
    local a=${R_PORTS[0]} b=${R_PORTS[1]}
    wait_cluster_up 2
    log "warm A: $(warm "http://127.0.0.1:$a" redirect "$WS_FIRST" "$OUTAGE_FILES")"
    sleep 1
    log "warm B (from Redis): $(warm "http://127.0.0.1:$b" redirect "$WS_FIRST" "$OUTAGE_FILES")"
    write_pinned_lua
    local e0a e0b
    e0a=$(metric_at "$a" hydrant_cache_entries)
    e0b=$(metric_at "$b" hydrant_cache_entries)
    settle
    # One sample: ms, then per replica hydrant_redis_up, misses (fills that went upstream), L2
    # hits and requests answered, then the simulator's hydrateCalls.
    rep() {
        curl -sS --max-time 2 "http://127.0.0.1:$1/metrics" | awk '
            /^hydrant_redis_up / { u = $NF } /^hydrant_cache_lookups_total\{outcome="miss"/ { m += $NF }
            /^hydrant_cache_lookups_total\{outcome="hit",tier="l2"/ { l += $NF }
            /^hydrant_http_requests_total\{/ && /route="redirect"/ { r += $NF }
            END { printf "%d %d %d %.0f", u, m, l, r }'
    }
    local samples="$WORK/outage-samples.txt"
    : >"$samples"
    rm -f "$WORK/sampler.stop"
    (
        n=0
        while ((n < (OUTAGE_SECONDS + 30) * 20)) && [[ ! -e "$WORK/sampler.stop" ]]; do
            echo "$(now_ms) $(rep "$a") $(rep "$b") $(sim_stat hydrateCalls)" >>"$samples"
            sleep 0.03
            n=$((n + 1))
        done
    ) &
    local sampler=$!
    PIDS+=("$sampler")
    sleep 0.5
    local t0 t_kill t_launch t_ready wrk_pid
    t0=$(now_ms)
    WRK_PORTS="$a $b" start_bg outage-wrk timeout $((OUTAGE_SECONDS + 60)) wrk -t2 -c"$OUTAGE_CONNS" -d"${OUTAGE_SECONDS}s" \
        --timeout 10s --latency -s "$WORK/pinned.lua" "http://127.0.0.1:$a" -- \
        redirect "$WS_FIRST" "$OUTAGE_FILES" "$miss_first" "$miss_n" "$OUTAGE_MISS"
    wrk_pid=$LAST_PID
    sleep "$(awk -v t="$OUTAGE_KILL_AT" -v s="$t0" -v n="$(now_ms)" 'BEGIN {d = t - (n - s) / 1000; print (d > 0 ? d : 0)}')"
    t_kill=$(now_ms)
    kill_redis
    log "  redis-server killed at +$((t_kill - t0))ms"
    sleep "$(awk -v t="$OUTAGE_RESTART_AT" -v s="$t0" -v n="$(now_ms)" 'BEGIN {d = t - (n - s) / 1000; print (d > 0 ? d : 0)}')"
    t_launch=$(now_ms)
    start_redis "$rport"
    t_ready=$(now_ms)
    log "  redis-server restarted at +$((t_launch - t0))ms, answering PING at +$((t_ready - t0))ms"
    wait "$wrk_pid" || log "wrk exited non-zero"
    stop_pid "$wrk_pid"
    sleep 3
    touch "$WORK/sampler.stop"
    wait "$sampler" 2>/dev/null || true
    stop_pid "$sampler"
    local w="$WORK/outage-wrk.log" reqs rps p99 maxl errs
    reqs=$(awk '/requests in/ {print $1; exit}' "$w")
    rps=$(awk '/^Requests\/sec:/ {print $2; exit}' "$w")
    p99=$(to_us "$(awk '$1 == "99%" {print $2; exit}' "$w")")
    maxl=$(to_us "$(awk '$1 == "Latency" {print $4; exit}' "$w")")
    errs=$(awk '/Non-2xx or 3xx/ {e += $NF} /Socket errors/ {gsub(/,/, ""); e += $4 + $6 + $8 + $10} END {print e + 0}' "$w")
    local sockline non2xx
    sockline=$(grep 'Socket errors' "$w" || echo "Socket errors: none")
    non2xx=$(awk '/Non-2xx or 3xx/ {print $NF}' "$w")
    # From the samples (ms upA missA l2A upB missB l2B calls): when each replica saw Redis go
    # and come back, and what the upstream and the replicas did in each period.
    local timeline periods
    timeline=$(awk -v k="$t_kill" -v l="$t_launch" -v r="$t_ready" '
        { t = $1 }
        t >= k && !da && $2 == 0 { da = t } t >= k && !db && $6 == 0 { db = t }
        t >= l && !ua && $2 == 1 { ua = t } t >= l && !ub && $6 == 1 { ub = t }
        t >= l && !both && $2 == 1 && $6 == 1 { both = t }
        function d(x, ref) { return x ? x - ref : -1 }
        END { printf "%d %d %d %d %d %d %.0f\n", d(da, k), d(db, k), d(ua, l), d(ub, l), d(both, l), d(both, r), both }' "$samples")
    local interval
    interval=$(awk 'NR == 1 {f = $1} {l = $1; n++} END {printf "%.0f", (n > 1 ? (l - f) / (n - 1) : 0)}' "$samples")
    local down_a down_b up_a up_b both_l both_r t_both
    read -r down_a down_b up_a up_b both_l both_r t_both <<<"$timeline"
    # Period rows: name, from, to (ms); the deltas of calls, misses and L2 hits over it.
    periods=$(awk -v s="$t0" -v k="$t_kill" -v l="$t_launch" -v b="$t_both" -v e=$((t0 + OUTAGE_SECONDS * 1000)) '
        function at(t,   i) { for (i = 1; i <= n; i++) if (T[i] >= t) return i; return n }
        { n++; T[n] = $1; C[n] = $10; M[n] = $3 + $7; L[n] = $4 + $8; R[n] = $5 + $9 }
        END {
            split("start→kill kill→restart restart→both-up both-up→end", names, " ")
            split(s " " k " " l " " b " " e, ts, " ")
            for (p = 1; p <= 4; p++) { i = at(ts[p]); j = at(ts[p + 1]); secs = (T[j] - T[i]) / 1000
                rq = R[j] - R[i]
                printf "| %s | %.1f s | %.0f | %.0f/s | %d | %d | %d | %.2f |\n", names[p], secs, rq, (secs > 0 ? rq / secs : 0), C[j] - C[i], M[j] - M[i], L[j] - L[i], (rq > 0 ? (C[j] - C[i]) * 1000 / rq : 0) }
        }' "$samples")
    # From the replicas' own logs (warn lines, UTC timestamps): the memory drop on resubscribing
    # and "reachable again", in ms after the relaunch.
    logt() {
        sed 's/\x1b\[[0-9;]*m//g' "$1" | grep -F "$2" | while read -r ts _; do
            local ms
            ms=$(date -d "$ts" +%s%3N 2>/dev/null || echo 0)
            if ((ms >= t_launch - 2000)); then
                echo $((ms - t_launch))
                return
            fi
        done
    }
    local la lb
    la="subscription restored (memory dropped) +$(logt "$WORK/out-1.log" "subscription restored") ms, \"reachable again\" +$(logt "$WORK/out-1.log" "reachable again") ms"
    lb="subscription restored (memory dropped) +$(logt "$WORK/out-2.log" "subscription restored") ms, \"reachable again\" +$(logt "$WORK/out-2.log" "reachable again") ms"
    local e1a e1b
    e1a=$(metric_at "$a" hydrant_cache_entries)
    e1b=$(metric_at "$b" hydrant_cache_entries)
    # Sharing after the restart: a new file through A, then B must answer it from Redis.
    local probe=$((miss_first + miss_n + 5)) pid_calls xa xb
    xa=$(curl -sS --max-time 10 -o /dev/null -D - "http://127.0.0.1:$a/files/$(file_id "$probe")/redirect" | tr -d '\r' | awk 'tolower($1) == "x-cache:" {print $2}')
    sleep 0.3
    xb=$(curl -sS --max-time 10 -o /dev/null -D - "http://127.0.0.1:$b/files/$(file_id "$probe")/redirect" | tr -d '\r' | awk 'tolower($1) == "x-cache:" {print $2}')
    pid_calls=$(curl -sS --max-time 10 "http://127.0.0.1:$SIM_PORT/_sim/stats" | jq -r ".byFile[\"$(file_id "$probe")\"] // 0")
    log "  wrk: $reqs requests, $errs failed ($sockline; non-2xx/3xx ${non2xx:-0}); p99 $p99 µs, max $maxl µs"
    log "  redis_up 0 after kill: A +${down_a}ms, B +${down_b}ms; 1 after restart: A +${up_a}ms, B +${up_b}ms, both +${both_l}ms from launch (+${both_r}ms from PING)"
    log "  entries A $e0a→$e1a, B $e0b→$e1b; probe A $xa, B $xb, upstream $pid_calls; periods:"
    log "$periods"
    echo "OUTAGE_RECOVERY_MS=$both_l" >>"$CAP"
    # Idle kill/restart cycles: the time from relaunch (and from the first PONG) until both
    # replicas report hydrant_redis_up 1, polled every 20 ms.
    wait_both() { # VALUE SECONDS: prints the ms when both replicas report VALUE, or -1
        local v="$1" n=0
        while ((n < $2 * 50)); do
            if [[ "$(metric_at "$a" hydrant_redis_up)" == "$v" && "$(metric_at "$b" hydrant_redis_up)" == "$v" ]]; then
                now_ms
                return
            fi
            sleep 0.02
            n=$((n + 1))
        done
        echo -1
    }
    local rec_l=() rec_r=() i tl tr tu
    for ((i = 1; i <= RECOVERY_REPEATS; i++)); do
        kill_redis
        wait_both 0 10 >/dev/null
        sleep 1
        tl=$(now_ms)
        start_redis "$rport"
        tr=$(now_ms)
        tu=$(wait_both 1 15)
        if ((tu > 0)); then rec_l+=($((tu - tl))) rec_r+=($((tu - tr))); else rec_l+=(never) rec_r+=(never); fi
        log "  idle cycle $i: both up +${rec_l[-1]} ms after relaunch (+${rec_r[-1]} ms after PONG)"
    done
    local rec_sum rl rr
    rl=$(printf '%s, ' "${rec_l[@]}")
    rr=$(printf '%s, ' "${rec_r[@]}")
    rec_sum=$(printf '%s\n' "${rec_r[@]}" | sort -n | awk '{v[NR] = $1} END {printf "min %s, median %s, max %s ms", v[1], v[int((NR + 1) / 2)], v[NR]}')
    section "" "#### 5. Redis outage under load" "" \
        "Two replicas; wrk -t2 -c$OUTAGE_CONNS for ${OUTAGE_SECONDS}s, thread 1 on A and thread 2 on B (lib/cluster.sh's pinned.lua): redirects over $OUTAGE_FILES files warm in both (A fetched them, B got them from Redis), plus $OUTAGE_MISS in 10,000 requests for new files, both threads walking the same sequence of new ids. redis-server was killed (SIGKILL) at +$((t_kill - t0))ms and started again on the same port, empty, at +$((t_launch - t0))ms (answering PING at +$((t_ready - t0))ms). hydrant_redis_up of both replicas and the simulator's hydrateCalls sampled every $interval ms on average (\`rep\` in phase_outage), so the times below are ± that." "" \
        "| measurement | result | target |" "|---|---|---|" \
        "| requests, failed | $reqs requests ($rps req/s), **$errs failed** ($sockline; non-2xx/3xx: ${non2xx:-0}) | 0 failed |" \
        "| latency | p99 $p99 µs, max $maxl µs | |" \
        "| Redis gone noticed (hydrant_redis_up 0) | A +$down_a ms, B +$down_b ms after the kill | |" \
        "| sharing again (hydrant_redis_up 1) | A +$up_a ms, B +$up_b ms after the restart; **both +$both_l ms** (+$both_r ms after the first PONG) | ≈ 1 s |" \
        "| the replicas' logs, after the restart | A: $la; B: $lb | |" \
        "| $RECOVERY_REPEATS more kill/restart cycles, replicas idle (polled every 20 ms) | both up after the relaunch: ${rl%, } ms; after the first PONG: ${rr%, } ms ($rec_sum) | ≈ 1 s |" \
        "| entries in memory | A $e0a → $e1a, B $e0b → $e1b (before → after the run) | |" \
        "| sharing after the restart | a new file through A: x-cache $xa; then through B: x-cache $xb; upstream calls for it: $pid_calls | HIT on B, 1 call |" \
        "" "Per period of the run (from the samples nearest each moment):" "" \
        "| period | length | requests answered (A + B) | req/s | upstream hydrate calls | misses counted (A + B: fills that went upstream) | L2 hits (A + B) | upstream calls per 1,000 requests |" \
        "|---|---:|---:|---:|---:|---:|---:|---:|" "$periods" "" \
        "With Redis up, a new file costs one upstream call for both replicas; standalone, one per replica: at the same request mix the calls per 1,000 requests should double while Redis is gone, and go back afterwards."
    stop_all
    R_PORTS=() R_PIDS=()
}

# --- capacity model ----------------------------------------------------------------------------
phase_capacity() {
    local table
    table=$(python3 - "$CAP" "${CAP_RPS:-100000}" "${CAP_FILES:-1000000}" "${CAP_WINDOW:-3540}" \
        "${CAP_L1_HIT:-0.99 0.95 0.90}" "${CAP_CORES:-2}" "${CAP_UTIL:-0.5}" "${CAP_L1_ENTRY_BYTES:-3356}" <<'PY'
import math, sys
cap = {}
for l in open(sys.argv[1]):
    if "=" in l:
        k, v = l.strip().split("=", 1)
        try:
            cap[k] = float(v)
        except ValueError:
            pass
rps, files, window = float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
hits = [float(x) for x in sys.argv[5].split()]
cores, util, l1_entry = float(sys.argv[6]), float(sys.argv[7]), float(sys.argv[8])
need = ["REDIS_BYTES_PER_FILE", "L1_CPU_US", "CMD_L2_CMDS", "CMD_MISS_CMDS", "L2_REDIS_CPU_US"]
missing = [k for k in need if k not in cap]
if missing:
    print(f"(not computed: {', '.join(missing)} not measured in this run)")
    sys.exit(0)
mem = files * cap["REDIS_BYTES_PER_FILE"]
fills = files / window
l2_cpu = cap["L2_REDIS_CPU_US"]
miss_cpu = cap.get("CMD_MISS_REDIS_CPU_US", l2_cpu)
l2_rep = cap.get("L2_B_CPU_US", cap["L1_CPU_US"])
print(f"Inputs measured above: Redis {cap['REDIS_BYTES_PER_FILE']:.0f} B per cached file; replica CPU "
      f"{cap['L1_CPU_US']:.2f} µs per L1 redirect hit (figure 2, wrk on the same 2 cores); "
      f"{cap['CMD_L2_CMDS']:.2f} Redis commands ({cap.get('CMD_L2_OPS', 0):.2f} round trips) per L2 hit, "
      f"{cap['CMD_MISS_CMDS']:.2f} ({cap.get('CMD_MISS_OPS', 0):.2f}) per miss, 0 per L1 hit; "
      f"replica CPU {l2_rep:.1f} µs and Redis CPU {l2_cpu:.1f} µs per L2 hit (figure 3, 16 in flight); Redis CPU {miss_cpu:.1f} µs per miss (figure 4, 8 in flight). "
      f"Not measured here: {l1_entry:.0f} B of replica RSS per in-memory entry (memory.sh's last recorded figure).")
print()
print(f"Model: {rps:,.0f} redirects/s over {files:,.0f} files, one tenant; entries fresh {window:,.0f} s "
      f"(URL lifetime − margin), every file refreshed upstream once per window by one replica "
      f"(≈ {fills:,.0f} fills/s for the cluster, each costing Redis a miss); every request that is not an "
      f"L1 hit costs Redis an L2 hit; replicas of {cores:.0f} cores at ≤ {util:.0%} CPU "
      f"(L1 hits and L2 hits at their measured CPU; the fills' own CPU, {fills:,.0f}/s, left out); each replica holding every file in memory needs {files * l1_entry / 2**30:.1f} GiB "
      f"(--cache-max-bytes; the default 256 MiB holds {256 * 2**20 / l1_entry:,.0f} entries).")
print()
print("| L1 hit ratio | L2 lookups/s | Redis commands/s | Redis CPU (one core) | upstream fills/s | replicas for CPU (+1 spare) | Redis memory |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for h in hits:
    l2 = rps * (1 - h)
    replicas = math.ceil((rps * h * cap["L1_CPU_US"] + l2 * l2_rep) / 1e6 / (cores * util))
    cmds = l2 * cap["CMD_L2_CMDS"] + fills * cap["CMD_MISS_CMDS"] + replicas * 6
    rcpu = (l2 * l2_cpu + fills * miss_cpu) / 1e6
    print(f"| {h:.2f} | {l2:,.0f} | {cmds:,.0f} | {rcpu:.0%} | {fills:,.0f} | {replicas} (+1) | {mem / 1e9:.2f} GB |")
PY
)
    section "" "#### 6. Capacity model (computed from this run)" "" "$table"
}

# --- run ---------------------------------------------------------------------------------------
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
commit="${HYDRANT_COMMIT:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)}"
if [[ -z "${HYDRANT_COMMIT:-}" && -n "$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]]; then
    commit="$commit (+ uncommitted changes under src/)"
fi
cmdline="benches/cluster.sh${*:+ $*}"
: >"$WORK/report.md"
log "cluster: PHASES='$PHASES' quick=$QUICK"
for ph in $PHASES; do
    case "$ph" in
    economy) phase_economy ;;
    l1) phase_l1 ;;
    l2) phase_l2 ;;
    commands) phase_commands ;;
    outage) phase_outage ;;
    capacity) ;; # always computed, last
    *) die "unknown phase $ph" ;;
    esac
done
phase_capacity
cp "$CAP" "$RESULTS_DIR/cluster-$STAMP-capacity.env"
{
    echo "### $(date -u '+%Y-%m-%d %H:%M') UTC — cluster mode"
    echo
    echo "Commit $commit. Command: \`$cmdline\` (PHASES '$PHASES'; DURATION $DURATION, ROUNDS $ROUNDS, WS_N $WS_N, L2_FILES $L2_FILES, CMD_REQUESTS $CMD_REQUESTS, ECON_SECONDS $ECON_SECONDS)."
    echo
    echo "Machine: $(nproc) CPUs, $(cpu_model), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM; $(uname -sr)"
    echo "Load average (1/5/15 min) at start: $LOAD_START; at end: $(cut -d' ' -f1-3 /proc/loadavg) (includes this run's own load)"
    echo "Versions: $("$HYDRANT_BIN" --version 2>/dev/null || echo hydrant), $(redis-server --version | awk '{print $1, $2, $3}'), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), $(python3 --version)"
    cat "$WORK/report.md"
} | tee "$OUT"
log "written: $OUT"
