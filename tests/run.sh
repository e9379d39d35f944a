#!/usr/bin/env bash
# The one test command of the project: the guardrails (rustfmt, clippy with warnings denied,
# rustdoc with warnings denied), the build, the Rust tests, then the official Python SDK suite
# (tests/sdk) against the built binary, then the observability pack (tests/observability.sh:
# promtool checks and unit tests of every alert, and the rules and dashboard queried on a real
# Prometheus scraping hydrant), then the browser test (tests/browser: headless Chromium); the
# soak under faults (benches/soak.sh, one minute) runs between the SDK suite and the pack.
#
#   tests/run.sh          everything (what CI runs)
#   tests/run.sh lint     guardrails only
#   tests/run.sh rust     build + Rust tests only
#   tests/run.sh sdk      build + SDK suite only (extra arguments go to pytest)
#   tests/run.sh obs      build + observability pack only
#   tests/run.sh browser  build + the headless-Chromium frontend test (tests/browser)
#   tests/run.sh soak     build + the one-minute soak under faults (benches/soak.sh)
#   tests/run.sh fuzz     fuzz every cargo-fuzz target for FUZZ_SECONDS (default 60) each
#
# Needs only the Rust toolchain, gcc and python3 (python3-venv is installed with apt-get when
# missing and running as root). The venv lives in target/sdk-venv and is reused. The Rust tests
# start their own redis-server on free loopback ports (never 6379): it is installed with
# apt-get when missing and running as root, and its absence fails the run, never skips it.
# The observability stage gets prometheus (with promtool) and python3-yaml the same way.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

MODE="${1:-all}"
case "$MODE" in
  all | lint | rust | sdk | obs | browser | soak | fuzz) shift || true ;;
  -h | --help)
    sed -n '2,18p' "$0"
    exit 0
    ;;
  *)
    echo "usage: tests/run.sh [all|lint|rust|sdk|obs|browser|soak|fuzz] [pytest args...]" >&2
    exit 2
    ;;
esac

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="$ROOT/target/sdk-venv"
REQUIREMENTS="$ROOT/tests/sdk/requirements.txt"

section() {
  printf '\n==== %s ====\n' "$*"
}

guardrails() {
  section "cargo fmt --check"
  cargo fmt --all -- --check || return 1
  section "cargo clippy --all-targets --all-features -- -D warnings"
  # --all-features: also the feature-gated benchmark binary `bare`.
  cargo clippy --locked --all-targets --all-features -- -D warnings || return 1
  section "cargo doc --no-deps (warnings denied)"
  RUSTDOCFLAGS=-Dwarnings cargo doc --locked --no-deps || return 1
}

build() {
  section "cargo build --locked"
  cargo build --locked --bins
}

# redis-server for the tests that start their own (tests/common/redis.rs). A service the
# package may start on 6379 is left alone: the tests never use it.
ensure_redis() {
  section "redis-server"
  if command -v redis-server >/dev/null 2>&1 || [[ -x /usr/bin/redis-server ]]; then
    echo "found $(command -v redis-server || echo /usr/bin/redis-server)"
    return 0
  fi
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "redis-server missing: installing redis-server"
    export DEBIAN_FRONTEND=noninteractive
    # The package lists are refreshed only when the install fails without it; a failure
    # falls through to the error below.
    if ! apt-get install -y -qq redis-server >/dev/null 2>&1; then
      if apt-get update -qq; then
        apt-get install -y -qq redis-server >/dev/null || true
      fi
    fi
  fi
  if ! command -v redis-server >/dev/null 2>&1 && [[ ! -x /usr/bin/redis-server ]]; then
    echo "error: redis-server not found and could not be installed; the Rust tests need it" \
      "(install the redis-server package)" >&2
    return 1
  fi
  echo "installed $(command -v redis-server || echo /usr/bin/redis-server)"
}

rust_tests() {
  ensure_redis || return 1
  section "Rust tests"
  if cargo nextest --version >/dev/null 2>&1; then
    local no_tests=()
    # Newer nextest fails a run that finds no tests; a crate between tests is not a failure.
    if cargo nextest run --help 2>/dev/null | grep -q -- '--no-tests'; then
      no_tests=(--no-tests=warn)
    fi
    cargo nextest run --locked --all-targets --no-fail-fast "${no_tests[@]}" || return 1
  else
    cargo test --locked --all-targets --no-fail-fast || return 1
  fi
  section "Rust doc tests"
  cargo test --locked --doc || return 1
}

ensure_venv() {
  section "Python venv ($VENV)"
  if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    echo "reusing $VENV"
  else
    rm -rf "$VENV"
    if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
      if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "python3 venv module missing: installing python3-venv"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq || return 1
        apt-get install -y -qq python3-venv >/dev/null || return 1
      else
        echo "error: python3 lacks the venv module; install python3-venv" >&2
        return 1
      fi
    fi
    python3 -m venv "$VENV" || { rm -rf "$VENV"; return 1; }
  fi
  local stamp="$VENV/.requirements.sha256"
  local want
  want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)" || return 1
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] \
    && "$VENV/bin/python" -c 'import videogen, httpx, pytest' >/dev/null 2>&1; then
    echo "requirements already satisfied"
  else
    echo "pip install -r tests/sdk/requirements.txt"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS" \
      || return 1
    echo "$want" >"$stamp"
  fi
}

sdk_tests() {
  ensure_redis || return 1
  ensure_venv || return 1
  section "SDK suite (pytest tests/sdk)"
  local bin="$TARGET_DIR/debug/hydrant"
  if [[ ! -x "$bin" ]]; then
    echo "error: $bin not built" >&2
    return 1
  fi
  HYDRANT_BIN="$bin" PYTHONDONTWRITEBYTECODE=1 \
    "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/sdk "$@"
}

# Prometheus + promtool (Debian's prometheus package) and PyYAML for the observability pack,
# installed with apt-get when missing and running as root. A service the package may start on
# 9090 is left alone: the tests run their own Prometheus on a free loopback port.
ensure_prometheus() {
  section "prometheus, promtool, python3-yaml"
  local have=1
  command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || have=0
  { python3 -c 'import yaml' || /usr/bin/python3 -c 'import yaml'; } >/dev/null 2>&1 || have=0
  if ((have == 0)) && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing prometheus python3-yaml"
    export DEBIAN_FRONTEND=noninteractive
    local apt=(apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 prometheus python3-yaml)
    if ! "${apt[@]}" >/dev/null 2>&1; then
      apt-get update -qq && "${apt[@]}" >/dev/null || true
    fi
  fi
  if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    echo "error: prometheus/promtool not found and could not be installed (install the" \
      "prometheus package)" >&2
    return 1
  fi
  prometheus --version 2>&1 | head -n 1
}

observability_tests() {
  ensure_redis || return 1
  ensure_prometheus || return 1
  section "observability pack (tests/observability.sh)"
  HYDRANT_BIN="$TARGET_DIR/debug/hydrant" bash tests/observability.sh || return 1
}

# apt-get install for the browser stage: the lists are refreshed only when the install fails
# without it.
apt_install() {
  if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "$@" >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq "$@" >/dev/null; }
}

# The frontend test: Debian's chromium driven by playwright-core (npm ci in tests/browser),
# against a simulator and hydrant instances it starts on loopback (tests/browser/harness.mjs).
browser_tests() {
  section "browser test (tests/browser, headless chromium)"
  if ! command -v chromium >/dev/null 2>&1; then
    echo "chromium missing: installing chromium"
    apt_install chromium || { echo "error: chromium not found and could not be installed" >&2; return 1; }
  fi
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "node/npm missing: installing nodejs npm"
    apt_install nodejs npm || { echo "error: node/npm not found and could not be installed" >&2; return 1; }
  fi
  local dir="$ROOT/tests/browser" stamp="$ROOT/tests/browser/node_modules/.lock.sha256" want
  want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)" || return 1
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "npm ci (tests/browser)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || return 1
    echo "$want" >"$stamp"
  fi
  local bin="$TARGET_DIR/debug/hydrant"
  HYDRANT_BIN="$bin" CHROMIUM="$(command -v chromium)" \
    timeout 300 node --test --test-reporter=spec --test-timeout=120000 "$dir/frontend.test.mjs"
}

# The soak under faults (benches/soak.sh), one minute split over standalone and cluster mode,
# on the debug build; any violation of its oracle fails the stage.
soak_tests() {
  ensure_redis || return 1
  section "soak (benches/soak.sh, 60 s: 30 s standalone + 30 s cluster, debug build)"
  SOAK_SECONDS=60 SOAK_MODE=both SOAK_PROFILE=debug CARGO_TARGET_DIR="$TARGET_DIR" \
    bash "$ROOT/benches/soak.sh"
}

# Fuzzing (not part of `all`; the corpus and past crashes replay in the Rust tests): each
# target of fuzz/ for FUZZ_SECONDS, one process, on the stable toolchain (RUSTC_BOOTSTRAP=1 lets
# it take the nightly-only sanitizer flags; no sanitizer: hydrant has no unsafe code, and
# debug assertions catch overflow). New inputs go to fuzz/corpus-work/ (git-ignored), the
# committed fuzz/corpus/ is read only; a crash is kept in fuzz/artifacts/<target>/ and fails
# the run: fix it and commit the input under fuzz/regressions/<target>/.
fuzz_run() {
  section "cargo fuzz (${FUZZ_SECONDS:-60} s per target)"
  if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz missing: installing it"
    cargo install cargo-fuzz --locked || return 1
  fi
  export RUSTC_BOOTSTRAP=1
  local flags=(--sanitizer none --debug-assertions)
  cargo fuzz build "${flags[@]}" || return 1
  local failed=() t
  for t in $(cargo fuzz list); do
    mkdir -p "fuzz/corpus-work/$t"
    section "fuzz $t"
    cargo fuzz run "${flags[@]}" "$t" "fuzz/corpus-work/$t" "fuzz/corpus/$t" -- \
      -max_total_time="${FUZZ_SECONDS:-60}" -max_len=16384 \
      -rss_limit_mb=2048 -print_final_stats=1 || failed+=("$t")
  done
  if ((${#failed[@]})); then
    echo "crashing targets: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    return 1
  fi
}

START=$SECONDS
if [[ "$MODE" == fuzz ]]; then
  fuzz_run || { section "FAILED: fuzz ($((SECONDS - START)) s)"; exit 1; }
  section "fuzz passed in $((SECONDS - START)) s"
  exit 0
fi
# Every stage runs even when an earlier one failed, so one run reports every failure.
FAILED=()
if [[ "$MODE" == all || "$MODE" == lint ]]; then
  guardrails || FAILED+=("guardrails")
fi
if [[ "$MODE" == lint ]]; then
  if ((${#FAILED[@]})); then
    section "FAILED: ${FAILED[*]} ($((SECONDS - START)) s)"
    exit 1
  fi
  section "guardrails passed in $((SECONDS - START)) s"
  exit 0
fi
build
if [[ "$MODE" == all || "$MODE" == rust ]]; then
  rust_tests || FAILED+=("rust")
fi
if [[ "$MODE" == all || "$MODE" == sdk ]]; then
  sdk_tests "$@" || FAILED+=("sdk")
fi
if [[ "$MODE" == all || "$MODE" == soak ]]; then
  soak_tests || FAILED+=("soak")
fi
if [[ "$MODE" == all || "$MODE" == obs ]]; then
  observability_tests || FAILED+=("obs")
fi
if [[ "$MODE" == all || "$MODE" == browser ]]; then
  browser_tests || FAILED+=("browser")
fi
if ((${#FAILED[@]})); then
  section "FAILED: ${FAILED[*]} ($MODE, $((SECONDS - START)) s)"
  exit 1
fi
section "all passed ($MODE) in $((SECONDS - START)) s"
