#!/usr/bin/env bash
# Deterministic cost per cache hit: instructions per request for hydrant and the bare-hyper
# ceiling in the same run, counted by callgrind (user space), long run minus short run. See
# benches/README.md ("Cost per request").
#
#   benches/cost.sh                                   # build, then ≈ 4 min per hydrant build
#   HYDRANT_BINS="old=/tmp/a/hydrant new=/tmp/b/hydrant" SKIP_BUILD=1 benches/cost.sh   # A/B
#   COST_WRK=1 benches/cost.sh                        # also wrk req/s and CPU per request
#
# Knobs (defaults in brackets):
#   HYDRANT_BINS ["hydrant=$HYDRANT_BIN"]  builds to measure, NAME=PATH, in one run (the first a
#                    hydrant; a NAME starting with "bare" is run as another bare build)
#   COST_ROUTES ["redirect hydrate json"]   routes: redirect hit, hydrate hit, GET /files/{id}
#   COST_FILES [200] warm files   COST_SHORT [1000] / COST_LONG [6000] requests per run
#   COST_WORKERS [1] worker threads for every server under callgrind (`--workers N` when the
#                    binary has the flag, else TOKIO_WORKER_THREADS=N, which tokio honours)
#   COST_TOP [30]    functions listed per profile
#   COST_WRK [0]     then wrk: WRK_CONNS ["50 256"], ROUNDS [3], DURATION [10s], THREADS [1],
#                    WRK_WORKERS [nproc] for every server, WRK_NGINX [1] nginx proxy_cache too,
#                    WS_N [10000] working set
#   COST_REDIS [0]   also run each hydrant build with --redis-url on a loopback redis-server
#                    (wrk phase only)
#   SKIP_BUILD, SKIP_INSTALL, RESULTS_DIR, KEEP_WORKDIR, BARE_BIN, HYDRANT_RUST_LOG [warn]
#
# Each callgrind run is its own process: start, warm COST_FILES files on the route, COUNT hits
# on one keep-alive connection, SIGTERM; callgrind writes its totals at exit. The difference
# between the COST_LONG and the COST_SHORT run, ÷ (COST_LONG − COST_SHORT), is the cost of one
# hit with start-up, warming, the connection and shutdown cancelled out. The per-function
# table is the same difference per function (callgrind_annotate of both runs).

set -euo pipefail

# shellcheck source=benches/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

COST_ROUTES="${COST_ROUTES:-redirect hydrate json}"
COST_FILES="${COST_FILES:-200}"
COST_SHORT="${COST_SHORT:-1000}"
COST_LONG="${COST_LONG:-6000}"
COST_WORKERS="${COST_WORKERS:-1}"
COST_TOP="${COST_TOP:-30}"
CLIENT="$BENCH_DIR/lib/cost_client.py"

# has_workers_flag BIN: whether `BIN serve` takes --workers.
has_workers_flag() { "$1" serve --help 2>/dev/null | grep -q -- '--workers'; }

# server_cmd KIND BIN PORT WORKERS: the command line of one server, into CMD (an array).
server_cmd() {
    local kind="$1" bin="$2" port="$3" workers="$4"
    if [[ "$kind" == bare ]]; then
        CMD=("$bin" --listen "127.0.0.1:$port" --body-file "$WORK/body.json" --location "$(cat "$WORK/location.txt")")
    else
        CMD=("$bin" serve --listen "127.0.0.1:$port" --upstream "http://127.0.0.1:$SIM_PORT"
            --api-key "$SIM_KEY" --hydrate-rate 1000000/s --hydrate-burst 1000000)
        if has_workers_flag "$bin"; then CMD+=(--workers "$workers"); fi
    fi
}

# client_route KIND ROUTE: what the client asks of this server for ROUTE (bare answers its
# JSON body only under /v1/, so its "json" run asks GET /v1/files/{id}).
client_route() {
    if [[ "$1" == bare && "$2" == json ]]; then echo v1get; else echo "$2"; fi
}

# stop_slow PID: TERM, then up to 120 s for a process under valgrind to write its output.
stop_slow() {
    local pid="$1" n=0
    kill -TERM "$pid" 2>/dev/null || true
    while is_ours "$pid" && [[ "$(proc_state "$pid")" != Z ]] && ((n < 1200)); do
        sleep 0.1
        n=$((n + 1))
    done
    stop_pid "$pid"
}

# cg_run NAME KIND BIN ROUTE COUNT: one callgrind run; sets CG_IR to its total instructions.
# (Not called in $(...): a subshell would not be the parent that stop_pid checks for.)
cg_run() {
    local name="$1" kind="$2" bin="$3" route="$4" count="$5" port out croute
    out="$CG_DIR/$name-$route-$count.cg"
    croute=$(client_route "$kind" "$route")
    port=$(free_port)
    server_cmd "$kind" "$bin" "$port" "$COST_WORKERS"
    TOKIO_WORKER_THREADS="$COST_WORKERS" RUST_LOG="${HYDRANT_RUST_LOG:-warn}" start_bg "cg-$name-$route-$count" \
        valgrind --tool=callgrind --callgrind-out-file="$out" "${CMD[@]}"
    local pid=$LAST_PID
    wait_port "$port" "$pid" 180 || die "$name did not start under valgrind: $(tail -3 "$WORK/cg-$name-$route-$count.log")"
    local warm got
    warm=$(python3 "$CLIENT" "$port" "$croute" "$WS_FIRST" "$COST_FILES" "$COST_FILES") || die "warming $name failed"
    got=$(python3 "$CLIENT" "$port" "$croute" "$WS_FIRST" "$COST_FILES" "$count") || die "client on $name failed"
    stop_slow "$pid"
    [[ -s "$out" ]] || die "no callgrind output for $name"
    CG_IR=$(awk '/^(summary|totals):/ {print $2; exit}' "$out")
    log "$name $route ×$count: warm $warm; run $got; $CG_IR Ir"
}

# profile_diff NAME ROUTE: the per-function difference (long − short) ÷ extra requests.
profile_diff() {
    local name="$1" route="$2" mode
    local short="$CG_DIR/$name-$route-$COST_SHORT.cg" long="$CG_DIR/$name-$route-$COST_LONG.cg"
    for mode in no yes; do
        callgrind_annotate --auto=no --inclusive="$mode" --threshold=100 "$short" >"$CG_DIR/$name-$route-short-incl-$mode.txt" 2>/dev/null
        callgrind_annotate --auto=no --inclusive="$mode" --threshold=100 "$long" >"$CG_DIR/$name-$route-long-incl-$mode.txt" 2>/dev/null
    done
    python3 - "$CG_DIR/$name-$route" "$((COST_LONG - COST_SHORT))" "$COST_TOP" <<'PY'
import re, sys
base, extra, top = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
line_re = re.compile(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*)$")

def load(path):
    costs, in_table = {}, False
    for line in open(path, errors="replace"):
        if line.startswith("Ir") and "file:function" in line:
            in_table = True
            continue
        if not in_table:
            continue
        m = line_re.match(line)
        if not m:
            continue
        fn = re.sub(r"\s+\[[^\]]*\]$", "", m.group(2).strip())
        # Shorter locations: registry sources by crate, std by its path, the repo's own relative.
        fn = re.sub(r"^/\S*?/registry/src/[^/]+/", "", fn)
        fn = re.sub(r"^/rustc/[0-9a-f]+/", "", fn)
        fn = re.sub(r"^/\S*?/(src|benches)/", r"\1/", fn)
        costs[fn] = costs.get(fn, 0) + int(m.group(1).replace(",", ""))
    return costs

def source(fn):
    # "file:function": the file the instructions come from (inlined code keeps its own file).
    f = fn.split(":", 1)[0]
    m = re.match(r"^([A-Za-z0-9_-]+)-\d+\.\d+[^/]*/", f)
    if m:
        return m.group(1)  # a registry crate, e.g. http-1.5.0/src/... -> http
    if f.startswith(("src/", "benches/")):
        return f  # hydrant's own (or bare's) file
    if f.startswith("library/"):
        return "Rust std/core/alloc"
    if "mimalloc" in f:
        return "mimalloc"
    return "libc and other" if f.startswith(".") else "other"

s, l = load(f"{base}-short-incl-no.txt"), load(f"{base}-long-incl-no.txt")
by = {}
for fn in set(s) | set(l):
    src = source(fn)
    by[src] = by.get(src, 0) + (l.get(fn, 0) - s.get(fn, 0)) / extra
print("\nself instructions per request by source (file of the code, inlined code included):\n")
print("| Ir/req | source |\n|---:|---|")
for src, v in sorted(by.items(), key=lambda kv: -kv[1]):
    if abs(v) >= 5:
        print(f"| {v:,.0f} | `{src}` |")
print(f"| {sum(by.values()):,.0f} | **total** |")

for mode, title in (("no", "self"), ("yes", "inclusive")):
    s, l = load(f"{base}-short-incl-{mode}.txt"), load(f"{base}-long-incl-{mode}.txt")
    diff = {fn: (l.get(fn, 0) - s.get(fn, 0)) / extra for fn in set(s) | set(l)}
    rows = sorted(diff.items(), key=lambda kv: -kv[1])[:top]
    print(f"\n{title} instructions per request (long − short), top {top}:\n")
    print("| Ir/req | function |\n|---:|---|")
    for fn, v in rows:
        name = fn if len(fn) <= 150 else fn[:147] + "..."
        print(f"| {v:,.0f} | `{name.replace('|', '/')}` |")
PY
}

cost_main() {
    local stamp
    stamp="$(date +%Y%m%d-%H%M%S)"
    bench_init
    CG_DIR="$RESULTS_DIR/cost-$stamp"
    mkdir -p "$CG_DIR"
    command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null || apt_install valgrind ||
        die "cannot install valgrind"
    ensure_tools
    build_release
    [[ -x "$BARE_BIN" ]] || die "missing $BARE_BIN"
    local bins=() spec
    read -r -a bins <<<"${HYDRANT_BINS:-hydrant=$HYDRANT_BIN}"
    for spec in "${bins[@]}"; do
        [[ -x "${spec#*=}" ]] || die "missing ${spec#*=}"
    done

    HYDRANT_BIN="${bins[0]#*=}"
    start_sim --seed-files 100000
    # Capture what hydrant serves, so bare answers the same bytes (as compare.sh does).
    start_hydrant capture
    curl -sS --max-time 10 -o /dev/null -D "$WORK/redirect.head" \
        "http://127.0.0.1:$HY_PORT/files/$(file_id "$WS_FIRST")/redirect"
    awk 'tolower($1) == "location:" {sub(/\r$/, ""); print $2}' "$WORK/redirect.head" >"$WORK/location.txt"
    curl -sS --max-time 10 -X POST -H "Authorization: Bearer $SIM_KEY" -H "Content-Length: 0" \
        -o "$WORK/body.json" "http://127.0.0.1:$HY_PORT/v1/files/$(file_id "$WS_FIRST")/hydrate"
    stop_pid "$HY_PID"
    log "hydrate body $(wc -c <"$WORK/body.json") B, Location $(wc -c <"$WORK/location.txt") B"

    local table="$CG_DIR/cost.md" route name kind bin s l per
    declare -A IR
    for route in $COST_ROUTES; do
        for spec in "bare=$BARE_BIN" "${bins[@]}"; do
            name="${spec%%=*}" bin="${spec#*=}" kind=hydrant
            [[ "$name" == bare* ]] && kind=bare # "bare" itself, or another bare build to compare
            cg_run "$name" "$kind" "$bin" "$route" "$COST_SHORT"
            s=$CG_IR
            cg_run "$name" "$kind" "$bin" "$route" "$COST_LONG"
            l=$CG_IR
            per=$(awk -v s="$s" -v l="$l" -v n="$((COST_LONG - COST_SHORT))" 'BEGIN {printf "%.0f", (l - s) / n}')
            IR["$name/$route"]=$per
            log "$name $route: $per instructions per request"
            profile_diff "$name" "$route" >"$CG_DIR/$name-$route-functions.md"
        done
    done

    {
        echo "Instructions per request — $(date -u '+%Y-%m-%d %H:%M UTC'); callgrind (user space), $COST_WORKERS worker thread(s) per server, one keep-alive connection, $COST_FILES warm files, ($COST_LONG − $COST_SHORT)-request difference"
        echo "Machine: $(nproc) CPUs, $(cpu_model); $(uname -sr); valgrind $(valgrind --version | sed 's/valgrind-//')"
        echo
        local hdr="| route | bare |" sep="|---|---:|"
        for spec in "${bins[@]}"; do
            hdr+=" ${spec%%=*} | ${spec%%=*} ÷ bare |"
            sep+="---:|---:|"
        done
        echo "$hdr"
        echo "$sep"
        for route in $COST_ROUTES; do
            local row="| $route | ${IR[bare/$route]} |"
            for spec in "${bins[@]}"; do
                name="${spec%%=*}"
                row+=" ${IR[$name/$route]} | $(awk -v a="${IR[$name/$route]}" -v b="${IR[bare/$route]}" 'BEGIN {printf "%.2f", a / b}') |"
            done
            echo "$row"
        done
        echo
        echo "Per-function profiles: $CG_DIR/NAME-ROUTE-functions.md; raw callgrind files beside them."
    } | tee "$table"

    if [[ "${COST_WRK:-0}" == 1 ]]; then
        cost_wrk "${bins[@]}"
    fi
}

# cost_wrk NAME=BIN...: wrk (THREADS [1]) against every build, bare (and nginx) alternating.
cost_wrk() {
    local specs=("$@") spec servers=() names=()
    ROUNDS="${ROUNDS:-3}" DURATION="${DURATION:-10s}" THREADS="${THREADS:-1}"
    local conns_list="${WRK_CONNS:-50 256}" workers="${WRK_WORKERS:-$(nproc)}"
    RESULTS_TSV="$CG_DIR/wrk.tsv"
    : >"$RESULTS_TSV"
    ensure_tools nginx
    declare -A PORT PID
    export TOKIO_WORKER_THREADS="$workers"
    for spec in "${specs[@]}"; do
        HYDRANT_BIN="${spec#*=}"
        local extra=()
        if has_workers_flag "$HYDRANT_BIN"; then extra=(--workers "$workers"); fi
        start_hydrant "${spec%%=*}" "${extra[@]}"
        PORT[${spec%%=*}]=$HY_PORT PID[${spec%%=*}]=$HY_PID
        names+=("${spec%%=*}")
        if [[ "${COST_REDIS:-0}" == 1 ]]; then
            command -v redis-server >/dev/null || apt_install redis-server redis-tools || die "no redis-server"
            [[ -n "${REDIS_PORT:-}" ]] || start_redis
            start_hydrant "${spec%%=*}+redis" "${extra[@]}" --redis-url "redis://127.0.0.1:$REDIS_PORT"
            PORT[${spec%%=*}+redis]=$HY_PORT PID[${spec%%=*}+redis]=$HY_PID
            names+=("${spec%%=*}+redis")
        fi
    done
    start_bare
    PORT[bare]=$BARE_PORT PID[bare]=$BARE_PID
    names+=(bare)
    local with_nginx=0
    if [[ "${WRK_NGINX:-1}" == 1 ]] && start_nginx; then
        PORT[nginx]=$NGINX_PORT PID[nginx]=$NGINX_PID
        with_nginx=1
    fi
    unset TOKIO_WORKER_THREADS
    local n
    for n in "${names[@]}"; do
        [[ "$n" == bare ]] && continue
        log "warm $n: redirect $(warm "http://127.0.0.1:${PORT[$n]}" redirect "$WS_FIRST" "$WS_N"), hydrate $(warm "http://127.0.0.1:${PORT[$n]}" hydrate "$WS_FIRST" "$WS_N")"
    done
    ((with_nginx)) && log "warm nginx: $(warm "http://127.0.0.1:${PORT[nginx]}" hydrate "$WS_FIRST" "$WS_N")"
    write_lua
    local round c w s
    for ((round = 1; round <= ROUNDS; round++)); do
        servers=("${names[@]}")
        ((with_nginx)) && servers+=(nginx)
        ((round % 2)) || mapfile -t servers < <(printf '%s\n' "${servers[@]}" | tac)
        for c in $conns_list; do
            for w in redirect hydrate; do
                for s in "${servers[@]}"; do
                    [[ "$w" == redirect && "$s" == nginx ]] && continue
                    run_wrk "$w/$s" "${PORT[$s]}" "${PID[$s]}" "$c" "$DURATION" "$w" "$WS_FIRST" "$WS_N"
                    sleep 1
                done
            done
        done
    done
    python3 - "$RESULTS_TSV" "$ROUNDS" "$DURATION" "$THREADS" "$workers" <<'PY' | tee "$CG_DIR/wrk.md"
import statistics, sys
from collections import defaultdict
path, rounds, dur, threads, workers = sys.argv[1:6]
rows = defaultdict(list)
for line in open(path):
    f = line.rstrip("\n").split("\t")
    if len(f) >= 10:
        rows[(f[0].split("/")[0], int(f[1]), f[0].split("/", 1)[1])].append([float(x) for x in f[2:10]])
print(f"\nwrk -t{threads}, {dur} per run, {rounds} rounds alternating the order, {workers} worker threads per server; medians\n")
print("| workload | conns | server | req/s | p50 µs | p99 µs | CPU µs/req | req per server CPU-s | ÷ bare (req/CPU-s) | ÷ bare (req/s) | p99 − bare µs | errors |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
med = statistics.median
for (w, c, s) in sorted(rows, key=lambda k: (k[0] != "redirect", k[1], k[2] != "bare", k[2])):
    v = list(zip(*rows[(w, c, s)]))
    b = list(zip(*rows.get((w, c, "bare"), [])))
    rps, p50, p99, cpu = med(v[0]), med(v[1]), med(v[2]), med(v[4])
    eff = 1e6 / cpu if cpu else 0
    if b:
        beff = 1e6 / med(b[4]) if med(b[4]) else 0
        ratio_eff, ratio_rps, dp99 = f"{eff / beff:.2f}", f"{rps / med(b[0]):.2f}", f"{p99 - med(b[2]):+,.0f}"
    else:
        ratio_eff = ratio_rps = dp99 = "n/a"
    print(f"| {w} | {c} | {s} | {rps:,.0f} | {p50:,.0f} | {p99:,.0f} | {cpu:.2f} | {eff:,.0f} | {ratio_eff} | {ratio_rps} | {dp99} | {sum(v[6]):.0f} |")
PY
}

cost_main "$@"
