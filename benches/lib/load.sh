# shellcheck shell=bash
# Load: the working set, warming caches, the wrk script, one measured wrk run, and reading the
# simulator's and hydrant's counters. Sourced by lib/common.sh.
#
# run_wrk appends one TSV row per run to $RESULTS_TSV, which the caller sets.

RESULTS_TSV="${RESULTS_TSV:-}"

# Working set: ids FIRST..FIRST+N-1. Seeds 1-4 are special (pending, failed, image): skipped.
# shellcheck disable=SC2034 # used by the entry scripts
WS_FIRST=5
WS_N=${WS_N:-10000}

file_id() { printf 'vg_file_alpha_%04d' "$1"; }

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

# metric NAME_WITH_LABELS: one sample value from hydrant's /metrics (0 when absent).
metric() {
    curl -sS --max-time 10 "http://127.0.0.1:$HY_PORT/metrics" |
        awk -v m="$1" 'index($0, m) == 1 {v = $NF} END {print v + 0}'
}

# warm BASE MODE FIRST N: one pass over the ids with curl --parallel; prints the status tally.
# WARM_PARALLEL [32] requests at a time.
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

# write_lua: the wrk script, into $WORK/load.lua.
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
# THREADS [2] wrk threads.
run_wrk() {
    local label="$1" port="$2" pid="$3" conns="$4" dur="$5"
    shift 5
    local pids t0 t1 up0 up1 out="$WORK/wrk-${label//\//-}-$conns-$RANDOM.txt" secs
    secs=$(dur_secs "$dur")
    pids=$(proc_tree "$pid")
    up0=$(sim_stat hydrateCalls)
    # shellcheck disable=SC2086 # a list of PIDs
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
