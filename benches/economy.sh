#!/usr/bin/env bash
# Upstream economy: how many upstream hydrate calls hydrant makes for hot files, for a
# cold burst on one file, and what the official SDK's get_hydrated_file costs without it.
#
#   benches/economy.sh
#
# Knobs (defaults in brackets):
#   ECON_FILES [100]      F hot files             ECON_SECONDS [35]  T, seconds of steady traffic
#   ECON_LIFETIME [70]    L, sim URL lifetime (s) ECON_MARGIN [60]   hydrant --expiry-margin (s)
#   BURST [1000]          concurrent connections of the cold burst
#   SDK_FILES [20] SDK_ACCESSES [10]              the SDK comparison: files × accesses each
#   SKIP_BUILD, SKIP_INSTALL, RESULTS_DIR, KEEP_WORKDIR, HYDRANT_BIN as in compare.sh
#
# Cluster mode (REPLICAS > 1): the steady hot files and the cold burst against REPLICAS
# replicas behind a client that rotates requests over their addresses itself (lib/cluster.sh's
# rr.py), once sharing a fresh redis-server and once as independent replicas; no SDK part.
#   REPLICAS [1]          ECON_VARIANTS ["redis none"]   ECON_CONNS [8] the steady client's workers
#   ECON_OUT              where the markdown table goes [RESULTS_DIR/economy-cluster-*.md]
#
# Steady state: the simulator mints URLs living L seconds, hydrant keeps an entry until
# min(expiresAt) − margin, so each file needs at least ⌈T ÷ (L − margin)⌉ hydrate calls over T
# seconds of traffic (the first one included). The score is calls ÷ (F × that); 1.00 is the
# floor for a cache that never serves a URL inside its margin.

set -euo pipefail
# shellcheck source=benches/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

F="${ECON_FILES:-100}"
T="${ECON_SECONDS:-35}"
L="${ECON_LIFETIME:-70}"
M="${ECON_MARGIN:-60}"
BURST="${BURST:-1000}"
SDK_FILES="${SDK_FILES:-20}"
SDK_ACCESSES="${SDK_ACCESSES:-10}"

REPLICAS="${REPLICAS:-1}"

# economy_cluster: the steady and burst figures over REPLICAS replicas, with and without Redis.
economy_cluster() {
    local conns="${ECON_CONNS:-8}" variants="${ECON_VARIANTS:-redis none}" v rows=() n_id=$((WS_FIRST + F + 10))
    local out="${ECON_OUT:-$RESULTS_DIR/economy-cluster-$(date +%Y%m%d-%H%M%S).md}"
    ensure_redis
    write_rr
    start_sim --url-lifetime "${L}s" --seed-files $((F + 100))
    local windows=$(((T + (L - M) - 1) / (L - M)))
    local expected=$((F * windows))
    # lookups PORTS...: "l1 l2 miss coalesced refreshes" summed over the replicas.
    lookups() {
        local p a=0 b=0 c=0 d=0 e=0
        for p in "$@"; do
            a=$((a + $(metric_at "$p" hydrant_cache_lookups_total 'outcome="hit",tier="l1"')))
            b=$((b + $(metric_at "$p" hydrant_cache_lookups_total 'outcome="hit",tier="l2"')))
            c=$((c + $(metric_at "$p" hydrant_cache_lookups_total 'outcome="miss"')))
            d=$((d + $(metric_at "$p" hydrant_cache_lookups_total 'outcome="coalesced"')))
            e=$((e + $(metric_at "$p" hydrant_hydrate_refreshes_total)))
        done
        echo "$a $b $c $d $e"
    }
    for v in $variants; do
        local label="$REPLICAS replicas, no Redis"
        if [[ "$v" == redis ]]; then
            # shellcheck disable=SC2119 # a new port
            start_redis
            label="$REPLICAS replicas + Redis"
        else
            REDIS_PORT=""
        fi
        start_replicas "$REPLICAS" "econ-$v" --expiry-margin "${M}s"
        [[ "$v" == redis ]] && wait_cluster_up "$REPLICAS"
        local bases
        bases=$(printf '127.0.0.1:%s,' "${R_PORTS[@]}")
        bases=${bases%,}
        curl -sS --max-time 10 -o /dev/null -X POST "http://127.0.0.1:$SIM_PORT/_sim/reset"
        log "steady ($label): $F files, ${T}s of redirects rotating over ${#R_PORTS[@]} replicas, $conns workers"
        local res calls per_file ratio l1 l2 mi co rf
        res=$(rr_run loop --bases "$bases" --route redirect --first "$WS_FIRST" --count "$F" --conns "$conns" --seconds "$T")
        sleep 1
        calls=$(sim_stat hydrateCalls)
        per_file=$(curl -sS --max-time 10 "http://127.0.0.1:$SIM_PORT/_sim/stats" |
            jq -r '[.byFile | to_entries[] | .value] | "min \(min) max \(max)"')
        ratio=$(awk -v a="$calls" -v b="$expected" 'BEGIN {printf "%.2f", a / b}')
        read -r l1 l2 mi co rf <<<"$(lookups "${R_PORTS[@]}")"
        log "steady ($label): $calls hydrate calls ÷ $expected = $ratio; $(jget "$res" requests) requests (split $(jget "$res" 'per_base | join("/")')), failed $(jget "$res" failed)"
        rows+=("| steady hot files, $label | F=$F, L=${L}s, margin ${M}s, T=${T}s; $(jget "$res" requests) redirects rotating over the replicas ($(jget "$res" 'per_base | join(" / ")')), $conns workers, $(jget "$res" failed) failed | $calls hydrate calls ÷ ($F × ⌈$T ÷ $((L - M))⌉ = $expected) = **$ratio** (per file $per_file); lookups: $l1 L1 hits, $l2 L2 hits, $mi misses, $co coalesced, $rf refreshes | $([[ "$v" == redis ]] && echo "1.00–1.25" || echo "≈ $REPLICAS × (independent)") |")
        local mode
        for mode in redirect hydrate; do
            local num=$n_id id before after co0 co1 l20 l21
            id=$(file_id "$num")
            n_id=$((n_id + 1))
            before=$(curl -sS --max-time 10 "http://127.0.0.1:$SIM_PORT/_sim/stats" | jq -r ".byFile[\"$id\"] // 0")
            read -r _ l20 _ co0 _ <<<"$(lookups "${R_PORTS[@]}")"
            curl -sS --max-time 10 -o /dev/null -X POST "http://127.0.0.1:$SIM_PORT/_sim/faults" \
                -d '{"route":"hydrate","kind":"latency","ms":500,"count":1}'
            res=$(rr_run burst --bases "$bases" --route "$mode" --first "$num" --conns "$BURST" --timeout 30)
            sleep 0.5
            after=$(curl -sS --max-time 10 "http://127.0.0.1:$SIM_PORT/_sim/stats" | jq -r ".byFile[\"$id\"] // 0")
            read -r _ l21 _ co1 _ <<<"$(lookups "${R_PORTS[@]}")"
            log "cold burst ($label, $mode): $((after - before)) upstream call(s) for $BURST requests; statuses $(jget "$res" status | tr -d ' \n'), x-cache $(jget "$res" xcache | tr -d ' \n')"
            rows+=("| cold burst, $mode, $label | $BURST concurrent requests for one new file, connection i to replica i mod $REPLICAS ($(jget "$res" 'per_base | join(" / ")')), upstream 500 ms | **$((after - before))** upstream call(s); $(jget "$res" ok) ok, $(jget "$res" failed) failed; x-cache $(jget "$res" 'xcache | to_entries | map("\(.key) \(.value)") | join(", ")'); $((co1 - co0)) coalesced, $((l21 - l20)) L2 hits; $(jget "$res" seconds) s | $([[ "$v" == redis ]] && echo 1 || echo "$REPLICAS (one per replica)") |")
        done
        stop_replicas
        [[ "$v" == redis ]] && stop_redis
    done
    {
        echo "Upstream economy, $REPLICAS replicas — $(date -u +%Y-%m-%d); $(nproc) CPUs, $(cpu_model)"
        echo
        echo "| measurement | setting | result | target |"
        echo "|---|---|---|---|"
        printf '%s\n' "${rows[@]}"
    } | tee "$out"
    log "written: $out"
}

bench_init
# shellcheck disable=SC2119 # no server names: wrk, curl, jq and python3 only
ensure_tools
build_release
if ((REPLICAS > 1)); then
    economy_cluster
    exit 0
fi
write_lua
OUT="$RESULTS_DIR/economy-$(date +%Y%m%d-%H%M%S).md"
RESULTS_TSV="$WORK/economy.tsv"

start_sim --url-lifetime "${L}s" --seed-files $((F + 100))
start_hydrant hydrant --expiry-margin "${M}s"

# --- steady state --------------------------------------------------------------------------
curl -sS --max-time 10 -o /dev/null -X POST "http://127.0.0.1:$SIM_PORT/_sim/reset"
log "steady: $F files, ${T}s of redirect traffic, URL lifetime ${L}s, margin ${M}s"
run_wrk "steady/hydrant" "$HY_PORT" "$HY_PID" 8 "${T}s" redirect "$WS_FIRST" "$F"
steady_calls=$(sim_stat hydrateCalls)
windows=$(((T + (L - M) - 1) / (L - M)))
expected=$((F * windows))
steady_reqs=$(awk -F'\t' '{print $6}' "$RESULTS_TSV" | tail -1)
per_file=$(curl -sS --max-time 10 "http://127.0.0.1:$SIM_PORT/_sim/stats" |
    jq -r '[.byFile | to_entries[] | .value] | "min \(min) max \(max)"')
steady_ratio=$(awk -v a="$steady_calls" -v b="$expected" 'BEGIN {printf "%.2f", a / b}')
log "steady: $steady_calls hydrate calls for $steady_reqs requests; expected $expected → ratio $steady_ratio"

# --- cold burst ----------------------------------------------------------------------------
# One file nobody asked for yet; the upstream answers after 500 ms, so the whole burst arrives
# while the first call is in flight.
burst_one() { # burst_one MODE N: prints "calls coalesced requests"
    local mode="$1" n="$2" id before co0 co1
    id=$(file_id "$n")
    before=$(curl -sS --max-time 10 "http://127.0.0.1:$SIM_PORT/_sim/stats" | jq -r ".byFile[\"$id\"] // 0")
    co0=$(metric 'hydrant_cache_lookups_total{outcome="coalesced"}')
    curl -sS --max-time 10 -o /dev/null -X POST "http://127.0.0.1:$SIM_PORT/_sim/faults" \
        -d '{"route":"hydrate","kind":"latency","ms":500,"count":1}'
    run_wrk "burst-$mode/hydrant" "$HY_PORT" "$HY_PID" "$BURST" 2s "$mode" "$n" 1 >/dev/null
    co1=$(metric 'hydrant_cache_lookups_total{outcome="coalesced"}')
    local after
    after=$(curl -sS --max-time 10 "http://127.0.0.1:$SIM_PORT/_sim/stats" | jq -r ".byFile[\"$id\"] // 0")
    echo "$((after - before)) $(awk -v a="$co0" -v b="$co1" 'BEGIN {print b - a}') $(awk -F'\t' '{print $6}' "$RESULTS_TSV" | tail -1)"
}
read -r burst_r_calls burst_r_co burst_r_reqs <<<"$(burst_one redirect $((WS_FIRST + F + 10)))"
log "cold burst (redirect, $BURST connections): $burst_r_calls upstream call(s), $burst_r_co coalesced waiters, $burst_r_reqs requests"
read -r burst_h_calls burst_h_co burst_h_reqs <<<"$(burst_one hydrate $((WS_FIRST + F + 11)))"
log "cold burst (hydrate, $BURST connections): $burst_h_calls upstream call(s), $burst_h_co coalesced waiters, $burst_h_reqs requests"

# --- the official SDK, directly and through hydrant -----------------------------------------
VENV="$TARGET_DIR/sdk-venv"
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import videogen' 2>/dev/null; then
    log "creating $VENV with videogen==2.5.3"
    python3 -m venv "$VENV" && timeout 600 "$VENV/bin/pip" install -q videogen==2.5.3 >&2
fi
cat >"$WORK/sdk_economy.py" <<'PY'
"""Upstream calls per get_hydrated_file access, counted by the simulator."""
import json, sys, urllib.request
from videogen import VideoGen

sim, base, files, accesses = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
first = int(sys.argv[5])

def stats():
    with urllib.request.urlopen(f"{sim}/_sim/stats", timeout=10) as r:
        return json.load(r)

client = VideoGen(api_key="vg_sim_key_alpha", base_url=base, timeout=30)
s0 = stats()
for _ in range(accesses):
    for n in range(first, first + files):
        f = client.get_hydrated_file(f"vg_file_alpha_{n:04d}")
        assert f.get("download_source", f.get("downloadSource", {})).get("url"), "no url"
s1 = stats()
get = s1["getFileCalls"] - s0["getFileCalls"]
hyd = s1["hydrateCalls"] - s0["hydrateCalls"]
n = files * accesses
print(f"{n} {get} {hyd} {(get + hyd) / n:.2f}")
PY
sdk_first=$((WS_FIRST + F + 20))
read -r sdk_n sdk_get sdk_hyd sdk_per <<<"$("$VENV/bin/python" "$WORK/sdk_economy.py" \
    "http://127.0.0.1:$SIM_PORT" "http://127.0.0.1:$SIM_PORT" "$SDK_FILES" "$SDK_ACCESSES" "$sdk_first")"
log "SDK direct: $sdk_n accesses → $sdk_get GET + $sdk_hyd hydrate = $sdk_per upstream calls per access"
read -r px_n px_get px_hyd px_per <<<"$("$VENV/bin/python" "$WORK/sdk_economy.py" \
    "http://127.0.0.1:$SIM_PORT" "http://127.0.0.1:$HY_PORT" "$SDK_FILES" "$SDK_ACCESSES" "$((sdk_first + SDK_FILES))")"
log "SDK via hydrant: $px_n accesses → $px_get GET + $px_hyd hydrate = $px_per upstream calls per access"
start_hydrant hydrant-gfc --expiry-margin "${M}s" --serve-get-from-cache
read -r gc_n gc_get gc_hyd gc_per <<<"$("$VENV/bin/python" "$WORK/sdk_economy.py" \
    "http://127.0.0.1:$SIM_PORT" "http://127.0.0.1:$HY_PORT" "$SDK_FILES" "$SDK_ACCESSES" "$((sdk_first + 2 * SDK_FILES))")"
log "SDK via hydrant --serve-get-from-cache: $gc_n accesses → $gc_get GET + $gc_hyd hydrate = $gc_per per access"

{
    echo "Upstream economy — $(date -u +%Y-%m-%d); $(nproc) CPUs, $(cpu_model)"
    echo
    echo "| measurement | setting | result | target |"
    echo "|---|---|---|---|"
    echo "| steady hot files | F=$F, L=${L}s, margin ${M}s, T=${T}s, $steady_reqs redirects | $steady_calls hydrate calls ÷ ($F × ⌈$T ÷ $((L - M))⌉ = $expected) = **$steady_ratio** (per file $per_file) | 1.00 |"
    echo "| cold burst, redirect | $BURST connections on one new file, upstream 500 ms | **$burst_r_calls** upstream call ($burst_r_co coalesced waiters, $burst_r_reqs requests in 2 s) | 1 |"
    echo "| cold burst, hydrate | $BURST connections on one new file, upstream 500 ms | **$burst_h_calls** upstream call ($burst_h_co coalesced waiters, $burst_h_reqs requests in 2 s) | 1 |"
    echo "| SDK get_hydrated_file, direct | $SDK_FILES files × $SDK_ACCESSES accesses | $sdk_get GET + $sdk_hyd hydrate = **$sdk_per** calls/access | (2) |"
    echo "| SDK get_hydrated_file via hydrant | same, new files | $px_get GET + $px_hyd hydrate = **$px_per** calls/access | |"
    echo "| SDK via hydrant --serve-get-from-cache | same, new files | $gc_get GET + $gc_hyd hydrate = **$gc_per** calls/access | |"
} | tee "$OUT"
log "written: $OUT"
