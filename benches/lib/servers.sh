# shellcheck shell=bash
# Starting the servers under test on 127.0.0.1, each on a free port, each stopped by its PID on
# exit. Sourced by lib/common.sh (uses its start_bg, free_port, wait_port, retry3, stop_pid).
#
#   start_sim [flags...]        the VideoGen simulator          SIM_PORT, SIM_PID
#   start_hydrant NAME [flags]  hydrant in front of it          HY_PORT, HY_PID
#   start_bare                  the bare-hyper ceiling          BARE_PORT, BARE_PID
#   start_nginx                 nginx proxy_cache               NGINX_PORT, NGINX_PID
#   start_varnish               Varnish                         VARNISH_PORT, VARNISH_PID
#   server_port NAME, server_pid NAME   the port / PID of hydrant, bare, nginx or varnish

SIM_PORT="" SIM_PID="" HY_PORT="" HY_PID="" BARE_PORT="" BARE_PID=""
NGINX_PORT="" NGINX_PID="" VARNISH_PORT="" VARNISH_PID=""

# start_sim [extra sim flags...]: sets SIM_PORT, SIM_PID. SIM_BIN [$HYDRANT_BIN] runs it (a newer
# build, when an older hydrant is measured against the simulator flags it lacks).
start_sim() { retry3 start_sim_once "$@" || die "start_sim failed"; }
start_sim_once() {
    SIM_PORT=$(free_port)
    start_bg sim "${SIM_BIN:-$HYDRANT_BIN}" sim --listen "127.0.0.1:$SIM_PORT" --hydrate-quota 1000000000 "$@"
    SIM_PID=$LAST_PID
    wait_port "$SIM_PORT" "$SIM_PID" 120 || { log "simulator did not start: $(tail -3 "$WORK/sim.log")"; stop_pid "$SIM_PID"; return 1; }
    log "simulator pid $SIM_PID on 127.0.0.1:$SIM_PORT"
}

# start_hydrant NAME [extra serve flags...]: sets HY_PORT, HY_PID. The limiter is opened wide
# so warming is not throttled; HYDRANT_RUST_LOG [warn] is its RUST_LOG.
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

# start_bare: answers with $WORK/body.json and $WORK/location.txt when they exist.
start_bare() { retry3 start_bare_once || die "start_bare failed"; }
start_bare_once() {
    BARE_PORT=$(free_port)
    local args=(--listen "127.0.0.1:$BARE_PORT")
    [[ -s "$WORK/body.json" ]] && args+=(--body-file "$WORK/body.json")
    [[ -s "$WORK/location.txt" ]] && args+=(--location "$(cat "$WORK/location.txt")")
    # shellcheck disable=SC2153 # BARE_BIN is set by lib/common.sh
    start_bg bare "$BARE_BIN" "${args[@]}"
    BARE_PID=$LAST_PID
    wait_port "$BARE_PORT" "$BARE_PID" 30 || { log "bare did not start: $(tail -3 "$WORK/bare.log")"; stop_pid "$BARE_PID"; return 1; }
    log "bare pid $BARE_PID on 127.0.0.1:$BARE_PORT"
}

# start_nginx: benches/nginx.conf.tmpl in front of the simulator; NGINX_WORKERS [2].
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

# start_varnish: benches/varnish.vcl.tmpl in front of the simulator. Failing is not fatal.
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
