#!/usr/bin/env bash
# Memory: hydrant's RSS per cached entry with 100,000 entries of realistic StorageFile
# bodies, and RSS under a steady load (it should stay flat).
#
#   benches/memory.sh
#
# Knobs (defaults in brackets):
#   MEM_ENTRIES [100000]  entries primed (the simulator seeds at most 100,000 files per account)
#   LOAD_SECONDS [60]     length of the load run     SAMPLE_EVERY [5]  RSS sample period (s)
#   MEM_SEED_SKIPPED [preview,hls,thumbnail]  renditions the seeded files have skipped and
#   MEM_DESCRIPTION_BYTES [241]  the length of their description (the simulator's --seed-skipped
#                         and --seed-description-bytes): together a hydrated body of 1,500 B
#                         (± 4 B), the 1.5 KB StorageFile the target is set for. Both empty/0:
#                         the simulator's own 2.4 KB body with four signed URLs.
#   SKIP_BUILD, SKIP_INSTALL, RESULTS_DIR, KEEP_WORKDIR, HYDRANT_BIN as in compare.sh
#
# Method: start the simulator (100,000 files for each of the two accounts) and hydrant (limiter
# open, cache bound 1 GiB so nothing is evicted). Prime 1,000 entries of the *beta* account
# first, so the runtime, connection pools and allocator arenas are warm; read RSS (before).
# Prime MEM_ENTRIES entries of the alpha account with POST /v1/files/{id}/hydrate; read RSS
# (after). Per entry = (after − before) ÷ entries, compared with the mean body size. Then run
# wrk (hydrate hits over the whole set, 50 connections) for LOAD_SECONDS and sample RSS.

set -euo pipefail
# shellcheck source=benches/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

N="${MEM_ENTRIES:-100000}"
LOAD_SECONDS="${LOAD_SECONDS:-60}"
SAMPLE_EVERY="${SAMPLE_EVERY:-5}"

bench_init
# shellcheck disable=SC2119 # no server names: wrk, curl, jq and python3 only
ensure_tools
build_release
write_lua
OUT="$RESULTS_DIR/memory-$(date +%Y%m%d-%H%M%S).md"
RESULTS_TSV="$WORK/memory.tsv"

# prime KEY FIRST COUNT: hydrate each id once through hydrant; prints "codes bytes".
prime() {
    local key="$1" first="$2" n="$3" list="$WORK/prime.curl" short i
    short="${key#vg_sim_key_}"
    for ((i = first; i < first + n; i++)); do
        printf 'url = "http://127.0.0.1:%s/v1/files/vg_file_%s_%04d/hydrate"\noutput = "/dev/null"\n' \
            "$HY_PORT" "$short" "$i"
    done >"$list"
    timeout 900 curl -sS --no-progress-meter --parallel --parallel-max 32 --max-time 30 -X POST \
        -H "Authorization: Bearer $key" -H "Content-Length: 0" -w '%{http_code} %{size_download}\n' \
        -K "$list" | awk '{c[$1]++; b += $2} END {for (k in c) printf "%s×%d,", k, c[k]; printf " %d\n", b}'
}

SEED_SKIPPED="${MEM_SEED_SKIPPED-preview,hls,thumbnail}"
DESCRIPTION_BYTES="${MEM_DESCRIPTION_BYTES:-241}"
start_sim --seed-files 100000 --seed-description-bytes "$DESCRIPTION_BYTES" \
    ${SEED_SKIPPED:+--seed-skipped "$SEED_SKIPPED"}
start_hydrant hydrant --cache-max-bytes 1GiB

log "warm-up: 1000 beta entries"
log "  $(prime vg_sim_key_beta 1 1000)"
sleep 2
rss_before=$(rss_kb "$HY_PID")
log "RSS before: $rss_before kB"

log "priming $N alpha entries"
t0=$(date +%s)
read -r codes bytes <<<"$(prime "$SIM_KEY" 1 "$N")"
log "  $codes $bytes body bytes in $(($(date +%s) - t0)) s"
sleep 2
rss_after=$(rss_kb "$HY_PID")
entries=$(metric hydrant_cache_entries)
cache_bytes=$(metric hydrant_cache_bytes)
log "RSS after: $rss_after kB; hydrant_cache_entries $entries, hydrant_cache_bytes $cache_bytes"

per_entry=$(awk -v a="$rss_after" -v b="$rss_before" -v n="$N" 'BEGIN {printf "%.0f", (a - b) * 1024 / n}')
mean_body=$(awk -v b="$bytes" -v n="$N" 'BEGIN {printf "%.0f", b / n}')
ratio=$(awk -v p="$per_entry" -v m="$mean_body" 'BEGIN {printf "%.2f", p / m}')
log "per entry: $per_entry B of RSS for a $mean_body B body → $ratio × body"

log "load: ${LOAD_SECONDS}s of hydrate hits over the $N entries, RSS every ${SAMPLE_EVERY}s"
samples="$WORK/rss.txt"
: >"$samples"
(
    s=0
    while ((s <= LOAD_SECONDS)) && kill -0 "$HY_PID" 2>/dev/null; do
        echo "$s $(rss_kb "$HY_PID")" >>"$samples"
        sleep "$SAMPLE_EVERY"
        s=$((s + SAMPLE_EVERY))
    done
) &
SAMPLER=$!
PIDS+=("$SAMPLER")
run_wrk "load/hydrant" "$HY_PORT" "$HY_PID" 50 "${LOAD_SECONDS}s" hydrate 1 "$N"
wait "$SAMPLER" 2>/dev/null || true
load_row=$(tail -1 "$RESULTS_TSV")
series=$(awk '{printf "%s%.1f", (NR > 1 ? ", " : ""), $2 / 1024}' "$samples")
drift=$(awk 'NR == 1 {f = $2} {l = $2; if ($2 > mx) mx = $2; if (mn == "" || $2 < mn) mn = $2}
    END {printf "first %.1f MB, last %.1f MB, min %.1f, max %.1f, last − first %+.1f MB", f / 1024, l / 1024, mn / 1024, mx / 1024, (l - f) / 1024}' "$samples")
log "RSS samples (MB): $series"
log "$drift"

{
    echo "Memory — $(date -u +%Y-%m-%d); $(nproc) CPUs, $(cpu_model); seeded files: skipped ${SEED_SKIPPED:-none}, description $DESCRIPTION_BYTES B"
    echo
    echo "| measurement | result | target |"
    echo "|---|---|---|"
    echo "| RSS before / after priming $N entries | $(awk -v k="$rss_before" 'BEGIN {printf "%.1f", k / 1024}') MB / $(awk -v k="$rss_after" 'BEGIN {printf "%.1f", k / 1024}') MB ($entries entries, hydrant_cache_bytes $cache_bytes) | |"
    echo "| RSS per entry | **$per_entry B** for a mean body of $mean_body B = **$ratio ×** body | ≤ 1.30 × |"
    echo "| RSS under ${LOAD_SECONDS}s of hydrate hits (50 conns, $(cut -f3 <<<"$load_row" | cut -d. -f1) req/s), every ${SAMPLE_EVERY}s | $series MB | flat |"
    echo "| drift | $drift | ≈ 0 |"
} | tee "$OUT"
log "written: $OUT"
