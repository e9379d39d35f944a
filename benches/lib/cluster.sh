# shellcheck shell=bash
# Cluster mode: Redis, replicas sharing it, reading hydrant's and Redis's counters, and the two
# load clients the cluster figures need besides compare.sh's wrk script. Sourced by
# lib/common.sh (uses its start_bg, stop_pid, free_port, wait_port, retry3, apt_install and
# lib/servers.sh's start_hydrant).
#
#   ensure_redis                  redis-server and redis-cli, apt-get when missing
#   start_redis [PORT]            redis-server on 127.0.0.1 (no persistence)  REDIS_PORT, REDIS_PID
#   kill_redis                    SIGKILL it (a crash), reaped
#   rcli ARGS...                  redis-cli against it
#   start_replicas N NAME [flags] N hydrants with --redis-url when REDIS_PORT is set
#                                 (CLUSTER_REDIS=0: without)            R_PORTS[], R_PIDS[]
#   stop_replicas                 stop them by PID
#   wait_cluster_up N [SECONDS]   until every replica reports hydrant_redis_up 1 and N replicas
#   metric_at PORT NAME [LABELS]  sum of NAME's samples whose labels contain LABELS
#   redis_ops PORT...             "op count" lines: hydrant_redis_commands_total by op, summed
#   cmdstats                      "command calls usec" lines from INFO commandstats
#   ops_delta A B                 "op=n ..." between two redis_ops snapshots (files)
#   cmd_delta A B                 "cmd=n ..." between two cmdstats snapshots, the replicas'
#                                 heartbeats taken out (see below)
#   write_rr                      the asyncio client, $WORK/rr.py (rr_run MODE ARGS... runs it)
#   write_pinned_lua              the wrk script with each thread pinned to one replica
#
# Heartbeats: every replica runs one HEARTBEAT script a second (EVALSHA; inside it TIME, ZADD,
# ZREMRANGEBYSCORE, PEXPIRE, ZCARD), outside hydrant_redis_commands_total. cmd_delta takes
# the number of ZADD calls (only the heartbeat sends ZADD) as the number of heartbeats and
# subtracts one EVALSHA, TIME, PEXPIRE, ZADD, ZREMRANGEBYSCORE and ZCARD per heartbeat; INFO
# itself is left out too.

REDIS_PORT="" REDIS_PID=""
R_PORTS=() R_PIDS=()
REDIS_STARTS=0

ensure_redis() {
    if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
        apt_install redis-server redis-tools || die "cannot install redis-server"
    fi
}

rcli() {
    timeout 30 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"
}

# start_redis [PORT]: a fresh redis-server (a restart when PORT is the old one).
# shellcheck disable=SC2120 # PORT is optional
start_redis() {
    if [[ -n "${1:-}" ]]; then
        start_redis_once "$1" || die "redis-server did not start on $1"
    else
        retry3 start_redis_once || die "start_redis failed"
    fi
}
start_redis_once() {
    REDIS_PORT="${1:-$(free_port)}"
    REDIS_STARTS=$((REDIS_STARTS + 1))
    start_bg "redis-$REDIS_STARTS" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
        --save '' --appendonly no
    REDIS_PID=$LAST_PID
    wait_port "$REDIS_PORT" "$REDIS_PID" 30 || { log "redis did not start: $(tail -3 "$WORK/redis-$REDIS_STARTS.log")"; stop_pid "$REDIS_PID"; return 1; }
    local n=0
    until [[ "$(rcli PING 2>/dev/null)" == PONG ]]; do
        n=$((n + 1))
        ((n < 100)) || { stop_pid "$REDIS_PID"; return 1; }
        sleep 0.05
    done
    log "redis-server pid $REDIS_PID on 127.0.0.1:$REDIS_PORT"
}

kill_redis() {
    kill -KILL "$REDIS_PID" 2>/dev/null || true
    stop_pid "$REDIS_PID"
}

stop_redis() {
    [[ -n "$REDIS_PID" ]] && stop_pid "$REDIS_PID"
    REDIS_PID="" REDIS_PORT=""
}

# start_replicas N NAME [extra serve flags...]: appends to R_PORTS and R_PIDS.
start_replicas() {
    local n="$1" name="$2" i
    shift 2
    local redis=()
    [[ -n "$REDIS_PORT" && "${CLUSTER_REDIS:-1}" == 1 ]] && redis=(--redis-url "redis://127.0.0.1:$REDIS_PORT/0")
    for ((i = 1; i <= n; i++)); do
        start_hydrant "$name-$i" "${redis[@]}" "$@"
        R_PORTS+=("$HY_PORT")
        R_PIDS+=("$HY_PID")
    done
}

stop_replicas() {
    local p
    for p in "${R_PIDS[@]}"; do stop_pid "$p"; done
    R_PORTS=() R_PIDS=()
}

# metric_at PORT NAME [LABELS]: the sum of NAME's samples whose label text contains LABELS.
metric_at() {
    curl -sS --max-time 10 "http://127.0.0.1:$1/metrics" |
        awk -v n="$2" -v s="${3:-}" '
            { name = $1; sub(/\{.*/, "", name) }
            name == n && index($1, s) { v += $NF }
            END { printf "%.0f\n", v + 0 }'
}

# wait_cluster_up N [SECONDS]: every replica in R_PORTS has hydrant_redis_up 1 and sees N.
wait_cluster_up() {
    local want="$1" secs="${2:-30}" n=0 p ok
    while ((n < secs * 10)); do
        ok=1
        for p in "${R_PORTS[@]}"; do
            [[ "$(metric_at "$p" hydrant_redis_up)" == 1 && "$(metric_at "$p" hydrant_cluster_replicas)" -ge "$want" ]] || { ok=0; break; }
        done
        ((ok)) && return 0
        sleep 0.1
        n=$((n + 1))
    done
    die "the replicas did not all report hydrant_redis_up 1 and $want replicas within ${secs}s"
}

# redis_ops PORT...: hydrant_redis_commands_total per op (all outcomes), summed over replicas.
redis_ops() {
    local p
    for p in "$@"; do
        curl -sS --max-time 10 "http://127.0.0.1:$p/metrics"
    done | awk '/^hydrant_redis_commands_total\{/ {
            if (match($1, /op="[^"]*"/)) { c[substr($1, RSTART + 4, RLENGTH - 5)] += $NF }
            if (match($1, /outcome="[^"]*"/) && substr($1, RSTART + 9, RLENGTH - 10) != "ok") { c["not-ok"] += $NF }
        }
        END { for (o in c) printf "%s %.0f\n", o, c[o] }' | sort
}

# cmdstats: "command calls usec" from INFO commandstats.
cmdstats() {
    rcli INFO commandstats | tr -d '\r' |
        awk -F'[:,=]' '/^cmdstat_/ { sub(/^cmdstat_/, "", $1); print $1, $3, $5 }' | sort
}

# ops_delta BEFORE AFTER: "op=n op=n ..." (ops that moved) and, last, "total=n".
ops_delta() {
    awk 'FILENAME == ARGV[1] { a[$1] = $2; next } { d = $2 - a[$1]; if (d != 0 && $1 != "not-ok") { printf "%s=%d ", $1, d; t += d } else if (d != 0) { printf "%s=%d ", $1, d } }
        END { printf "total=%d\n", t }' "$1" "$2"
}

# cmd_delta BEFORE AFTER: "cmd=n ..." (commands that moved, heartbeats removed), then
# "total=n heartbeats=h".
cmd_delta() {
    local h
    h=$(awk 'FILENAME == ARGV[1] { a[$1] = $2; next } $1 == "zadd" { print $2 - a[$1] }' "$1" "$2")
    h=${h:-0}
    awk -v h="$h" 'FILENAME == ARGV[1] { a[$1] = $2; next } { d[$1] = $2 - a[$1] }
        END {
            d["evalsha"] -= h; d["time"] -= h; d["pexpire"] -= h
            delete d["zadd"]; delete d["zremrangebyscore"]; delete d["zcard"]; delete d["info"]
            for (c in d) if (d[c] != 0) { n = c; gsub(/\|/, "_", n); print n "=" d[c] }
        }' "$1" "$2" | sort | awk -v h="$h" '{ split($0, kv, "="); t += kv[2]; printf "%s ", $0 }
        END { printf "total=%d heartbeats=%d\n", t, h }'
}

# per_req "k=v k=v total=n" N: every value ÷ N, two decimals ("k=0.50 ...").
per_req() {
    awk -v n="$2" -v s="$1" 'BEGIN {
        m = split(s, f, " ")
        for (i = 1; i <= m; i++) { split(f[i], kv, "="); if (kv[1] == "heartbeats") continue
            printf "%s%s %.2f", (i > 1 ? ", " : ""), kv[1], kv[2] / n }
        print "" }'
}

# cpu_of PID: utime+stime ticks of one process (all threads).
cpu_of() { cpu_ticks "$1"; }

# jget JSON FIELD: one field of the client's JSON line.
jget() { jq -r ".$2" <<<"$1"; }

# rr_run MODE ARGS...: the asyncio client; prints its JSON line.
rr_run() {
    timeout 900 python3 "$WORK/rr.py" "$@"
}

write_rr() {
    cat >"$WORK/rr.py" <<'PY'
"""rr: a small HTTP/1.1 keep-alive load client for hydrant's cluster benchmarks (asyncio,
standard library only) that rotates requests over several base addresses itself.

  rr.py MODE --bases 127.0.0.1:P1,127.0.0.1:P2 [--route redirect|hydrate] --first N --count K
        [--conns C] [--seconds S] [--rotate request|conn] [--timeout S] [--lat]

  loop   C workers for S seconds, each request a random id of [first, first+count); with
         --rotate request (default) consecutive requests of the run go to consecutive bases
         (each worker keeps one keep-alive connection per base); --rotate conn pins worker w
         to base w mod n
  walk   every id of [first, first+count) exactly once, C at a time, id i to base i mod n
  burst  C connections opened first (connection i to base i mod n), then one request each for
         the single id `first`, all written in the same event-loop turn

Prints one JSON line: requests, ok (2xx/3xx), failed (other status, socket error or
timeout), seconds, rps, latency percentiles in µs (p50 p90 p99 max; with --lat), status and
x-cache tallies, requests per base.
"""
import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter


def build(route, n):
    fid = "vg_file_alpha_%04d" % n
    if route == "redirect":
        return ("GET /files/%s/redirect HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % fid).encode()
    return ("POST /v1/files/%s/hydrate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Authorization: Bearer vg_sim_key_alpha\r\nContent-Length: 0\r\n\r\n" % fid).encode()


class Conn(asyncio.Protocol):
    """One keep-alive connection, one request in flight at a time."""

    def __init__(self):
        self.transport = None
        self.buf = bytearray()
        self.waiter = None
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buf += data
        w = self.waiter
        if w is not None and not w.done():
            r = self._parse()
            if r is not None:
                self.waiter = None
                w.set_result(r)

    def connection_lost(self, exc):
        self.closed = True
        w = self.waiter
        if w is not None and not w.done():
            w.set_exception(ConnectionError("connection closed"))

    def _parse(self):
        buf = self.buf
        i = buf.find(b"\r\n\r\n")
        if i < 0:
            return None
        head = bytes(buf[:i]).lower()
        status = int(head[9:12])
        cl = 0
        j = head.find(b"\r\ncontent-length:")
        if j >= 0:
            k = head.find(b"\r\n", j + 2)
            cl = int(head[j + 17:k if k >= 0 else len(head)])
        total = i + 4 + cl
        if len(buf) < total:
            return None
        xc = b"-"
        j = head.find(b"\r\nx-cache:")
        if j >= 0:
            k = head.find(b"\r\n", j + 2)
            xc = head[j + 10:k if k >= 0 else len(head)].strip()
        del buf[:total]
        return status, xc

    def send(self, data, loop):
        if self.closed:
            raise ConnectionError("connection closed")
        self.waiter = loop.create_future()
        self.transport.write(data)
        return self.waiter


class Run:
    def __init__(self, args):
        self.args = args
        self.bases = [b.rsplit(":", 1) for b in args.bases.split(",")]
        self.lat = []
        self.status = Counter()
        self.xcache = Counter()
        self.per_base = Counter()
        self.errors = Counter()
        self.requests = 0
        self.ok = 0
        self.failed = 0
        self.next = 0  # the rotation counter (loop) or the next index (walk)

    async def connect(self, b):
        loop = asyncio.get_running_loop()
        host, port = self.bases[b]
        _, proto = await loop.create_connection(Conn, host, int(port))
        return proto

    async def one(self, conns, b, data):
        """One request to base b over conns[b], (re)connecting when needed."""
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter_ns()
        self.requests += 1
        self.per_base[b] += 1
        try:
            async with asyncio.timeout(self.args.timeout):
                c = conns.get(b)
                if c is None or c.closed:
                    c = conns[b] = await self.connect(b)
                status, xc = await c.send(data, loop)
        except (OSError, ConnectionError, asyncio.TimeoutError) as e:
            self.failed += 1
            self.errors[type(e).__name__] += 1
            c = conns.pop(b, None)
            if c is not None and c.transport is not None:
                c.transport.close()
            await asyncio.sleep(0.01)
            return
        if self.args.lat:
            self.lat.append(time.perf_counter_ns() - t0)
        self.status[status] += 1
        self.xcache[xc.decode()] += 1
        if 200 <= status < 400:
            self.ok += 1
        else:
            self.failed += 1

    def pick_base(self, worker):
        n = len(self.bases)
        if self.args.rotate == "conn":
            return worker % n
        b = self.next % n
        self.next += 1
        return b

    async def loop_worker(self, w, reqs, deadline):
        conns = {}
        while time.monotonic() < deadline:
            await self.one(conns, self.pick_base(w), reqs[random.randrange(len(reqs))])
        for c in conns.values():
            c.transport.close()

    async def walk_worker(self, reqs):
        conns = {}
        while self.next < len(reqs):
            i = self.next
            self.next += 1
            await self.one(conns, i % len(self.bases), reqs[i])
        for c in conns.values():
            c.transport.close()

    async def burst(self, data):
        n, nb = self.args.conns, len(self.bases)
        conns = []
        for i in range(0, n, 100):  # connect 100 at a time (the listen backlog)
            conns += await asyncio.gather(*(self.connect(j % nb) for j in range(i, min(n, i + 100))))
        await asyncio.sleep(0.2)
        pools = [{j % nb: c} for j, c in enumerate(conns)]
        await asyncio.gather(*(self.one(pools[j], j % nb, data) for j in range(n)))
        for c in conns:
            c.transport.close()

    async def main(self):
        a = self.args
        reqs = [build(a.route, a.first + i) for i in range(a.count)]
        t0 = time.perf_counter()
        if a.mode == "loop":
            deadline = time.monotonic() + a.seconds
            await asyncio.gather(*(self.loop_worker(w, reqs, deadline) for w in range(a.conns)))
        elif a.mode == "walk":
            await asyncio.gather(*(self.walk_worker(reqs) for _ in range(a.conns)))
        else:
            await self.burst(reqs[0])
        secs = time.perf_counter() - t0
        lat = sorted(self.lat)

        def pct(p):
            return round(lat[min(len(lat) - 1, int(len(lat) * p))] / 1000, 1) if lat else 0

        print(json.dumps({
            "mode": a.mode, "route": a.route, "conns": a.conns, "bases": len(self.bases),
            "requests": self.requests, "ok": self.ok, "failed": self.failed,
            "seconds": round(secs, 3), "rps": round(self.requests / secs, 1) if secs else 0,
            "p50_us": pct(0.50), "p90_us": pct(0.90), "p99_us": pct(0.99),
            "max_us": round(lat[-1] / 1000, 1) if lat else 0,
            "status": {str(k): v for k, v in sorted(self.status.items())},
            "xcache": dict(sorted(self.xcache.items())),
            "errors": dict(self.errors),
            "per_base": [self.per_base[i] for i in range(len(self.bases))],
        }))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["loop", "walk", "burst"])
    p.add_argument("--bases", required=True)
    p.add_argument("--route", default="redirect", choices=["redirect", "hydrate"])
    p.add_argument("--first", type=int, required=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--conns", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--rotate", default="request", choices=["request", "conn"])
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--lat", action="store_true", help="record latencies (percentiles)")
    a = p.parse_args()
    if a.mode == "burst":
        a.count = 1
    asyncio.run(Run(a).main())


if __name__ == "__main__":
    sys.exit(main())
PY
}

# write_pinned_lua: $WORK/pinned.lua, compare.sh's request mix with wrk thread i pinned to port
# i mod n of WRK_PORTS (space-separated, read from the environment by wrk's Lua). Arguments:
# mode first n [missStart missCount missPer10000]: with missPer10000 > 0, that share of
# requests walks [missStart, missStart+missCount) in order, every thread the *same* sequence
# (so each new file is asked of every replica at about the same time).
write_pinned_lua() {
    cat >"$WORK/pinned.lua" <<'LUA'
local ports = {}
for p in string.gmatch(os.getenv("WRK_PORTS") or "", "%d+") do ports[#ports + 1] = p end
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  if #ports > 0 then
    local p = ports[(counter - 1) % #ports + 1]
    thread.addr = wrk.lookup("127.0.0.1", p)[1]
  end
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
  miss_next = tonumber(args[4] or "0")
  miss_end = miss_next + tonumber(args[5] or "0")
  miss_rate = tonumber(args[6] or "0")
  math.randomseed((tid or 1) * 7919 + os.time())
  for i = 0, n - 1 do reqs[i] = build(first + i) end
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
