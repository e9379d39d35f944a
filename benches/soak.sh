#!/usr/bin/env bash
# Soak test under faults: mixed traffic over several tenants against hydrant in front of the
# simulator, with upstream faults injected all along and, in cluster mode, Redis killed,
# stalled and restarted; every answer is checked by the oracle in benches/soak.rs, and the
# processes' RSS, descriptors and tokio tasks must stay flat. Prints one summary table per
# mode and exits non-zero on any violation.
#
#   bash benches/soak.sh                         10 minutes, standalone then cluster (5 + 5)
#   SOAK_SECONDS=60 bash benches/soak.sh         one minute in all (30 s per mode)
#   SOAK_MODE=standalone|cluster|both            which set-up (default both)
#   SOAK_PROFILE=debug|release                   which build (default debug)
#   SOAK_CONCURRENCY=16                          requests in flight
#   SKIP_BUILD=1                                 use the binaries already built
#   SOAK_BIN_DIR=DIR                             ... in DIR (hydrant, examples/soak)
#
# Standalone: one hydrant. Cluster: two replicas sharing one redis-server started here on a
# free loopback port. Both get the soak configuration below: small timeouts, so the client
# deadline (upstream timeout + hydrate max wait + 2 s) is short, and a small hydrate quota
# (2/s, burst 10 per tenant), so the limiter is exhausted and the quota check means something.
set -euo pipefail
# shellcheck source=benches/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

SOAK_SECONDS="${SOAK_SECONDS:-600}"
SOAK_MODE="${SOAK_MODE:-both}"
SOAK_PROFILE="${SOAK_PROFILE:-debug}"
SOAK_CONCURRENCY="${SOAK_CONCURRENCY:-16}"
BIN_DIR="${SOAK_BIN_DIR:-$TARGET_DIR/$SOAK_PROFILE}"
HYDRANT_BIN="$BIN_DIR/hydrant"
SOAK_BIN="$BIN_DIR/examples/soak"

# The soak configuration (the oracle is told the same numbers).
UPSTREAM_TIMEOUT_S=2
HYDRATE_MAX_WAIT_S=1
EXPIRY_MARGIN_S=2
HYDRATE_RATE=2
HYDRATE_BURST=10
DEADLINE_S=$((UPSTREAM_TIMEOUT_S + HYDRATE_MAX_WAIT_S + 2))
CLIENT_TOKEN="soak-client-token"
ADMIN_TOKEN="soak-admin-token"
# base64 of "hydrant-soak-webhook-secret".
WEBHOOK_SECRET="whsec_aHlkcmFudC1zb2FrLXdlYmhvb2stc2VjcmV0"

case "$SOAK_MODE" in
standalone | cluster) MODES=("$SOAK_MODE") PER_MODE="$SOAK_SECONDS" ;;
both) MODES=(standalone cluster) PER_MODE=$((SOAK_SECONDS / 2)) ;;
*) die "SOAK_MODE must be standalone, cluster or both" ;;
esac
((PER_MODE >= 10)) || die "SOAK_SECONDS too small (at least 10 s per mode)"

build_soak() {
    if [[ "${SKIP_BUILD:-0}" == 1 ]]; then
        log "SKIP_BUILD=1: using $HYDRANT_BIN and $SOAK_BIN"
    else
        local release=()
        [[ "$SOAK_PROFILE" == release ]] && release=(--release)
        log "cargo build ${release[*]} --locked --bin hydrant --example soak"
        (cd "$ROOT" && timeout 3600 cargo build "${release[@]}" --locked --bin hydrant --example soak >&2)
    fi
    [[ -x "$HYDRANT_BIN" && -x "$SOAK_BIN" ]] || die "missing $HYDRANT_BIN or $SOAK_BIN"
}

# start_replica NAME [extra flags...]: one hydrant with the soak configuration.
start_replica() { retry3 start_replica_once "$@" || die "hydrant did not start"; }
start_replica_once() {
    local name="$1"
    shift
    HY_PORT=$(free_port)
    HYDRANT_SERVE_GET_FROM_CACHE=true RUST_LOG="${HYDRANT_RUST_LOG:-error}" start_bg "$name" \
        "$HYDRANT_BIN" serve --listen "127.0.0.1:$HY_PORT" \
        --upstream "http://127.0.0.1:$SIM_PORT" --api-key "$SIM_KEY" \
        --client-tokens "$CLIENT_TOKEN" --admin-token "$ADMIN_TOKEN" \
        --webhook-secret "$WEBHOOK_SECRET" \
        --upstream-timeout "${UPSTREAM_TIMEOUT_S}s" --connect-timeout 1s \
        --hydrate-max-wait "${HYDRATE_MAX_WAIT_S}s" --expiry-margin "${EXPIRY_MARGIN_S}s" \
        --pending-ttl 2s --negative-ttl 5s \
        --hydrate-rate "$HYDRATE_RATE/s" --hydrate-burst "$HYDRATE_BURST" "$@"
    HY_PID=$LAST_PID
    wait_port "$HY_PORT" "$HY_PID" 60 || { log "hydrant did not start: $(tail -3 "$WORK/$name.log")"; stop_pid "$HY_PID"; return 1; }
    log "hydrant $name pid $HY_PID on 127.0.0.1:$HY_PORT"
}

# run_mode MODE SECONDS: fresh simulator (and Redis), replicas, the driver; its exit status.
run_mode() {
    local mode="$1" secs="$2" ports=() pids=() redis=() extra=() started rc=0
    start_sim --url-lifetime 40s --webhook-secret "$WEBHOOK_SECRET" \
        --extra-account vg_sim_key_gamma --extra-account vg_sim_key_delta
    started=$(date +%s.%N)
    if [[ "$mode" == cluster ]]; then
        start_redis
        extra=(--redis-url "redis://127.0.0.1:$REDIS_PORT/0" --redis-timeout 100ms)
        redis=(--redis-port "$REDIS_PORT" --redis-pid "$REDIS_PID")
        start_replica "hydrant-$mode-1" "${extra[@]}"
        ports+=("127.0.0.1:$HY_PORT") pids+=("$HY_PID")
        start_replica "hydrant-$mode-2" "${extra[@]}"
        ports+=("127.0.0.1:$HY_PORT") pids+=("$HY_PID")
    else
        start_replica "hydrant-$mode"
        ports+=("127.0.0.1:$HY_PORT") pids+=("$HY_PID")
    fi
    log "soak $mode for ${secs}s against ${ports[*]}"
    "$SOAK_BIN" --mode "$mode" --seconds "$secs" \
        --hydrants "$(IFS=,; echo "${ports[*]}")" --pids "$(IFS=,; echo "${pids[*]}")" \
        --sim "127.0.0.1:$SIM_PORT" --proxy-key "$SIM_KEY" --client-token "$CLIENT_TOKEN" \
        --admin-token "$ADMIN_TOKEN" --webhook-secret "$WEBHOOK_SECRET" \
        --concurrency "$SOAK_CONCURRENCY" --deadline "$DEADLINE_S" --margin "$EXPIRY_MARGIN_S" \
        --hydrate-rate "$HYDRATE_RATE" --hydrate-burst "$HYDRATE_BURST" \
        --started-unix "$started" "${redis[@]}" || rc=$?
    local p
    for p in "${pids[@]}"; do
        kill -0 "$p" 2>/dev/null || { log "hydrant pid $p died during the soak"; rc=1; }
    done
    stop_all
    REDIS_PID="" REDIS_PORT=""
    return "$rc"
}

bench_init
build_soak
[[ " ${MODES[*]} " == *" cluster "* ]] && ensure_redis
FAILED=()
for mode in "${MODES[@]}"; do
    run_mode "$mode" "$PER_MODE" || FAILED+=("$mode")
done
if ((${#FAILED[@]})); then
    log "soak FAILED: ${FAILED[*]}"
    exit 1
fi
log "soak passed: ${MODES[*]}"
