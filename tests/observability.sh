#!/usr/bin/env bash
# Tests of the observability pack (deploy/observability) with a real Prometheus:
#
#  1. static: `promtool check rules` and `check config`, `promtool test rules` (unit tests of
#     every alert, firing and not firing), and the dashboard's shape (every panel reads
#     recording rules that exist);
#  2. end to end: a redis-server, `hydrant sim`, `hydrant serve` in cluster mode and a
#     Prometheus (1 s scrapes, the pack's rule files) on free loopback ports, all in a temp
#     dir; a little traffic of every kind (redirects, the JSON view, hydrates, pass-through,
#     a coalesced burst, a negative entry, a purge, a stale answer, an upstream 5xx and a
#     dropped connection, a webhook relay failure and a refused delivery, an upstream 429 and
#     the pause it causes); then every rule expression, every alert expression (as `bool`),
#     every raw selector the rules use and every dashboard query is asked of Prometheus's HTTP
#     API and the run fails if any returns no data (tests/observability_check.py).
#
#   tests/observability.sh            both
#   tests/observability.sh static     only 1 (no hydrant binary needed)
#
# Needs prometheus + promtool (Debian's `prometheus` package), redis-server, curl and a python3
# with PyYAML (Debian's python3-yaml); tests/run.sh installs them when missing. The hydrant
# binary is $HYDRANT_BIN, else $CARGO_TARGET_DIR/debug/hydrant, else target/debug/hydrant.
# Every process it starts is stopped by PID. Set OBS_KEEP=1 to keep the temp dir.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PACK="$ROOT/deploy/observability"
RULES="$PACK/prometheus"
DASHBOARD="$PACK/grafana/dashboards/hydrant.json"
CHECK="$ROOT/tests/observability_check.py"
MODE="${1:-all}"
START=$SECONDS

say() { printf -- '--- [%2d s] %s\n' "$((SECONDS - START))" "$*"; }
die() {
  echo "observability: $*" >&2
  exit 1
}

PY=""
for candidate in python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import yaml' 2>/dev/null; then
    PY="$candidate"
    break
  fi
done
[[ -n "$PY" ]] || die "no python3 with PyYAML (apt-get install python3-yaml)"
for tool in promtool prometheus curl; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (apt-get install prometheus curl)"
done

static_checks() {
  say "promtool check rules"
  promtool check rules "$RULES"/*.rules.yml
  say "promtool check config (example)"
  promtool check config "$RULES/prometheus.example.yml"
  say "promtool test rules"
  promtool test rules "$PACK"/tests/*.test.yml
  say "dashboard and provisioning"
  "$PY" "$CHECK" static "$RULES" "$DASHBOARD"
  "$PY" -c 'import sys, yaml; [yaml.safe_load(open(p)) for p in sys.argv[1:]]' \
    "$PACK"/grafana/provisioning/*/*.yml
}

static_checks
if [[ "$MODE" == static ]]; then
  say "observability static checks passed in $((SECONDS - START)) s"
  exit 0
fi

# ---- end to end ----
BIN="${HYDRANT_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/hydrant}"
# A developer's own hydrant or VideoGen settings must not reach the processes started here.
while read -r var; do unset "$var"; done < <(compgen -e | grep -E '^(HYDRANT_|VIDEOGEN_)' || true)
[[ -x "$BIN" ]] || die "hydrant binary not found at $BIN (cargo build, or set HYDRANT_BIN)"
command -v redis-server >/dev/null 2>&1 || die "redis-server not found"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/hydrant-obs.XXXXXX")"
PIDS=()
NAMES=()

stop_pid() {
  local pid="$1"
  kill -TERM "$pid" 2>/dev/null || return 0
  local i
  for i in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    stop_pid "${PIDS[$i]}"
  done
  if ((rc != 0)); then
    for i in "${!NAMES[@]}"; do
      echo "==== tail of ${NAMES[$i]}.log ====" >&2
      tail -n 25 "$TMP/${NAMES[$i]}.log" >&2 2>/dev/null || true
    done
  fi
  if [[ "${OBS_KEEP:-0}" == 1 ]]; then
    echo "kept $TMP" >&2
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT
trap "exit 130" INT TERM

# start NAME CMD...: run in the background, output to $TMP/NAME.log, remember the PID.
start() {
  local name="$1"
  shift
  "$@" >"$TMP/$name.log" 2>&1 &
  PIDS+=($!)
  NAMES+=("$name")
}

# wait_for NAME URL: poll URL for up to 30 s while the process NAME started last lives (generous:
# CI shares two cores with builds).
wait_for() {
  local name="$1" url="$2" pid="${PIDS[-1]}" i
  for i in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || die "$name exited early"
    if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  die "$name not ready at $url within 30 s"
}

# Five ports free a moment ago. The last one is left closed: the webhook receiver that
# never answers.
read -r P_REDIS P_SIM P_HYD P_PROM P_DEAD < <("$PY" -c '
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
')
SECRET="whsec_$(printf 'hydrant-observability-test' | base64)"
H="http://127.0.0.1:$P_HYD"
S="http://127.0.0.1:$P_SIM"
P="http://127.0.0.1:$P_PROM"
TOKEN=obs-client-token
ADMIN=obs-admin-token
JOB=hydrant

say "starting redis-server, hydrant sim, hydrant serve (cluster mode), prometheus"
start redis redis-server --port "$P_REDIS" --bind 127.0.0.1 --save '' --appendonly no
start sim "$BIN" sim --listen "127.0.0.1:$P_SIM" --webhook-secret "$SECRET"
wait_for sim "$S/_sim/stats"
start hydrant env RUST_LOG=warn "$BIN" serve --listen "127.0.0.1:$P_HYD" --upstream "$S" \
  --api-key vg_sim_key_alpha --client-tokens "$TOKEN" --admin-token "$ADMIN" \
  --webhook-secret "$SECRET" --webhook-forward "http://127.0.0.1:$P_DEAD/events" \
  --redis-url "redis://127.0.0.1:$P_REDIS/0"
wait_for hydrant "$H/readyz"

cat >"$TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $RULES/recording.rules.yml
  - $RULES/alerts.rules.yml
scrape_configs:
  - job_name: $JOB
    static_configs:
      - targets: ["127.0.0.1:$P_HYD"]
EOF
promtool check config "$TMP/prometheus.yml" >/dev/null
start prometheus prometheus --config.file="$TMP/prometheus.yml" \
  --storage.tsdb.path="$TMP/tsdb" --web.listen-address="127.0.0.1:$P_PROM" --log.level=warn
wait_for prometheus "$P/-/ready"
say "prometheus ready; waiting for its first scrape of hydrant"
for i in $(seq 1 300); do
  if curl -fsS "$P/api/v1/query?query=up%7Bjob%3D%22$JOB%22%7D%3D%3D1" | grep -q '"value"'; then
    break
  fi
  ((i < 300)) || die "Prometheus did not scrape hydrant within 30 s"
  sleep 0.1
done
# The Redis series: cluster mode reached Redis (the probe runs every second).
for i in $(seq 1 100); do
  curl -fsS "$H/metrics" | grep -q '^hydrant_redis_up 1' && break
  ((i < 100)) || die "hydrant did not reach its redis-server within 10 s"
  sleep 0.1
done

# expect CODE METHOD PATH [curl args...]: one request, its status checked.
expect() {
  local want="$1" method="$2" url="$3"
  shift 3
  local got
  got="$(curl -s -o "$TMP/body" -w '%{http_code}' --max-time 10 -X "$method" "$@" "$url")" || true
  [[ "$got" == "$want" ]] || die "$method $url: expected $want, got $got: $(head -c 300 "$TMP/body")"
}
sim() { curl -fsS --max-time 10 -X POST -H 'content-type: application/json' "$S/_sim/$1" -d "$2"; }

say "traffic"
f=vg_file_alpha_
for r in download download preview thumbnail download; do
  expect 302 GET "$H/files/${f}0001/redirect?rendition=$r"
done
expect 200 GET "$H/files/${f}0002"
expect 200 GET "$H/files/${f}0002"
for _ in 1 2 3; do
  expect 200 POST "$H/v1/files/${f}0003/hydrate" -H "Authorization: Bearer $TOKEN"
done
expect 200 POST "$H/v1/files/vg_file_beta_0001/hydrate" -H 'Authorization: Bearer vg_sim_key_beta'
expect 200 GET "$H/v1/files/${f}0003" -H "Authorization: Bearer $TOKEN"
expect 404 GET "$H/files/vg_file_alpha_9999/redirect"
expect 404 GET "$H/files/vg_file_alpha_9999/redirect"
expect 404 GET "$H/nothing-here"
expect 200 DELETE "$H/admin/files/${f}0001" -H "Authorization: Bearer $ADMIN"
# A coalesced burst: one slow upstream call, four requests waiting on it.
sim faults '{"route":"hydrate","kind":"latency","ms":400,"count":1}' >/dev/null
burst=()
for _ in 1 2 3 4 5; do
  curl -s -o /dev/null --max-time 10 "$H/files/${f}0005/redirect" &
  burst+=($!)
done
for pid in "${burst[@]}"; do wait "$pid" || true; done
# Webhooks: a verified delivery whose relay fails (nothing listens on the forward port), and
# one refused by verification.
report="$(sim webhooks "{\"url\":\"$H/webhooks/videogen\",\"fileId\":\"${f}0004\",\"event\":\"file.download_ready\",\"maxAttempts\":1}")"
grep -q '"delivered":false' <<<"$report" || die "the webhook relay did not fail: $report"
expect 401 POST "$H/webhooks/videogen" -H 'webhook-id: msg_obs' \
  -H "webhook-timestamp: $(date +%s)" -H 'webhook-signature: v1,AAAA' -d '{}'
# A stale answer: an entry fresh for 3 s (URLs living 63 s, 60 s margin), then a 503 upstream.
sim url-lifetime '{"seconds": 63}' >/dev/null
expect 302 GET "$H/files/${f}0006/redirect"
sim url-lifetime '{"seconds": 3600}' >/dev/null
sleep 3.5
sim faults '{"route":"hydrate","kind":"status","status":503,"count":1}' >/dev/null
curl -s -D "$TMP/headers" -o /dev/null --max-time 10 "$H/files/${f}0006/redirect"
grep -qi '^x-cache: STALE' "$TMP/headers" || die "no stale answer: $(cat "$TMP/headers")"
# An upstream call without a response (status 0).
sim faults '{"route":"hydrate","kind":"drop","count":1}' >/dev/null
expect 502 GET "$H/files/${f}0007/redirect"
# Last, since it pauses hydrant's tenant: an upstream 429, then a request refused by the pause.
sim faults '{"route":"hydrate","kind":"rate_limited","retryAfter":20,"count":1}' >/dev/null
expect 429 GET "$H/files/${f}0008/redirect"
expect 429 GET "$H/files/${f}0009/redirect"
# A listing (pass-through; it primes the cache with every file it lists, so it comes after the
# requests above that need misses).
expect 200 GET "$H/v1/files" -H "Authorization: Bearer $TOKEN"
say "traffic done after $((SECONDS - START)) s"

say "querying every rule and panel expression"
# One replica of the two the constants expect, and a stale answer among few lookups: these two
# alerts must be pending (their `for:` keeps them from firing this soon).
"$PY" "$CHECK" live "$P" "$RULES" "$DASHBOARD" "$JOB" 30 HydrantReplicasMissing,HydrantServingStale

say "observability checks passed in $((SECONDS - START)) s"
