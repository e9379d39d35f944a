"""Fixtures for the official VideoGen Python SDK suite run through hydrant.

Every test gets its own simulator (`hydrant sim`) and, when it asks for one, its own proxy
(`hydrant serve`), both on free 127.0.0.1 ports, so counters, faults and caches never leak
between tests. Processes write their output to files under the test's tmp dir; a failing test
shows the tail of every process still running. Every wait is bounded in time.

Environment:
  HYDRANT_BIN       the hydrant binary (default: <repo>/target/debug/hydrant)
  HYDRANT_SIM_CMD   optional command that runs the simulator and takes its flags (for working
                    on the suite before `hydrant sim` exists); default: "$HYDRANT_BIN sim"
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import httpx
import pytest
from videogen import VideoGen

REPO_ROOT = Path(__file__).resolve().parents[2]

ALPHA_KEY = "vg_sim_key_alpha"
BETA_KEY = "vg_sim_key_beta"
CLIENT_TOKEN = "sdk-client-token"

READY_TIMEOUT_S = 10.0
STOP_GRACE_S = 5.0
HTTP_TIMEOUT_S = 20.0
START_ATTEMPTS = 3
LOG_TAIL_CHARS = 6000

# Request ids minted by the simulator (`req_` + 24 hex digits), i.e. by "the upstream".
UPSTREAM_REQUEST_ID = re.compile(r"^req_[0-9a-f]{24}$")

# Processes started by fixtures and not yet stopped (their logs go into failure reports).
_LIVE: list["Proc"] = []


class StartupError(RuntimeError):
    """A subprocess did not become ready in time (the message carries its output)."""


def hydrant_bin() -> str:
    path = os.environ.get("HYDRANT_BIN") or str(REPO_ROOT / "target" / "debug" / "hydrant")
    if not Path(path).is_file():
        pytest.fail(f"hydrant binary not found at {path} (run `cargo build` or set HYDRANT_BIN)")
    return path


def sim_command() -> list[str]:
    override = os.environ.get("HYDRANT_SIM_CMD", "").strip()
    if override:
        return shlex.split(override)
    return [hydrant_bin(), "sim"]


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago (a lost race is retried by the caller)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _child_env() -> dict[str, str]:
    """The environment without hydrant/VideoGen settings, so a developer's shell can't leak in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("HYDRANT_") or k.startswith("VIDEOGEN_"))
    }
    env.setdefault("RUST_LOG", "info")
    env["NO_COLOR"] = "1"
    env.setdefault("RUST_BACKTRACE", "1")
    return env


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _read(path: Path) -> str:
    return _ANSI.sub("", path.read_text(errors="replace")) if path.exists() else ""


class Proc:
    """A subprocess whose stdout/stderr go to files; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, argv: list[str], logdir: Path) -> None:
        self.name = name
        self.argv = argv
        logdir.mkdir(parents=True, exist_ok=True)
        self.stdout_path = logdir / f"{name}.stdout.log"
        self.stderr_path = logdir / f"{name}.stderr.log"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=str(REPO_ROOT),
                env=_child_env(),
            )
        _LIVE.append(self)

    def running(self) -> bool:
        return self.popen.poll() is None

    def stdout(self) -> str:
        return _read(self.stdout_path)

    def stderr(self) -> str:
        return _read(self.stderr_path)

    def logs(self) -> str:
        def tail(s: str) -> str:
            return s if len(s) <= LOG_TAIL_CHARS else "...\n" + s[-LOG_TAIL_CHARS:]

        state = "running" if self.running() else f"exited with {self.popen.returncode}"
        return (
            f"$ {shlex.join(self.argv)}   [{state}]\n"
            f"--- stdout ---\n{tail(self.stdout())}\n--- stderr ---\n{tail(self.stderr())}"
        )

    def stop(self) -> Optional[int]:
        """SIGTERM, wait up to STOP_GRACE_S, then SIGKILL; returns the exit code."""
        try:
            if self.popen.poll() is None:
                self.popen.send_signal(signal.SIGTERM)
                try:
                    self.popen.wait(timeout=STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    self.popen.kill()
                    self.popen.wait(timeout=STOP_GRACE_S)
        finally:
            if self in _LIVE:
                _LIVE.remove(self)
        return self.popen.returncode


def _wait_ready(proc: Proc, what: str, probe: Callable[[], bool]) -> None:
    """Polls `probe` until it returns True, the process exits, or READY_TIMEOUT_S passes."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    last_error: Optional[BaseException] = None
    while time.monotonic() < deadline:
        if not proc.running():
            raise StartupError(f"{proc.name} exited before {what}\n{proc.logs()}")
        try:
            if probe():
                return
        except (httpx.HTTPError, OSError) as e:
            last_error = e
        time.sleep(0.05)
    raise StartupError(
        f"{proc.name} not ready ({what}) within {READY_TIMEOUT_S}s"
        f" (last error: {last_error!r})\n{proc.logs()}"
    )


def _start(name: str, argv_for_port: Callable[[int], list[str]], logdir: Path,
           ready: Callable[[Proc, int], Any]) -> tuple[Proc, Any]:
    """Starts a server on a free port; retries with a new port when the process dies early."""
    errors = []
    for attempt in range(START_ATTEMPTS):
        port = free_port()
        proc = Proc(f"{name}-{attempt}" if attempt else name, argv_for_port(port), logdir)
        try:
            return proc, ready(proc, port)
        except StartupError as e:
            errors.append(str(e))
            exited_by_itself = not proc.running()
            proc.stop()
            if not exited_by_itself:
                break  # a hang is not a lost port race: don't retry
    raise StartupError("\n\n".join(errors))


class Sim:
    """A running `hydrant sim`: base URL, accounts, and the `/_sim` control plane."""

    def __init__(self, proc: Proc, url: str, accounts: dict[str, str]) -> None:
        self.proc = proc
        self.url = url
        self.accounts = accounts
        self.control = httpx.Client(base_url=url, timeout=HTTP_TIMEOUT_S)

    def stats(self) -> dict:
        r = self.control.get("/_sim/stats")
        r.raise_for_status()
        return r.json()

    def hydrate_calls(self, file_id: str) -> int:
        return int(self.stats().get("byFile", {}).get(file_id, 0))

    def reset(self) -> None:
        self.control.post("/_sim/reset").raise_for_status()

    def fault(self, kind: str, route: str = "any", count: int = 1, **extra: Any) -> None:
        """Queues a fault (`ms`, `status`, `retryAfter` go in `extra`)."""
        body = {"route": route, "kind": kind, "count": count, **extra}
        self.control.post("/_sim/faults", json=body).raise_for_status()

    def clear_faults(self) -> None:
        self.control.delete("/_sim/faults").raise_for_status()

    def create_file(self, **spec: Any) -> dict:
        r = self.control.post("/_sim/files", json=spec)
        r.raise_for_status()
        return r.json()

    def close(self) -> None:
        self.control.close()


class Hydrant:
    """A running `hydrant serve` in front of a simulator."""

    def __init__(self, proc: Proc, url: str, sim: Sim, argv: list[str]) -> None:
        self.proc = proc
        self.url = url
        self.sim = sim
        self.argv = argv


_SIM_LINE = re.compile(r"^hydrant-sim listening on (http://\S+)\s*$", re.M)
_ACCOUNT_LINE = re.compile(r"^account (.+) key (\S+)\s*$", re.M)


@pytest.fixture
def _procs() -> Iterator[list[Proc]]:
    """Processes of one test, stopped in reverse start order at teardown."""
    procs: list[Proc] = []
    yield procs
    for p in reversed(procs):
        p.stop()


@pytest.fixture
def start_sim(_procs: list[Proc], tmp_path: Path) -> Iterator[Callable[..., Sim]]:
    """Factory: `start_sim("--url-lifetime", "90s")` starts one more simulator."""
    sims: list[Sim] = []

    def start(*extra: str) -> Sim:
        def argv(port: int) -> list[str]:
            return [*sim_command(), "--listen", f"127.0.0.1:{port}", *extra]

        def ready(proc: Proc, port: int) -> Sim:
            found: dict[str, str] = {}

            def printed() -> bool:
                m = _SIM_LINE.search(proc.stdout())
                if m:
                    found["url"] = m.group(1).rstrip("/")
                return bool(m)

            _wait_ready(proc, "printing its address", printed)
            url = found["url"]
            if not url.startswith("http://127.0.0.1:"):
                raise StartupError(f"simulator listens on {url}, not 127.0.0.1\n{proc.logs()}")
            _wait_ready(proc, "GET /_sim/stats", lambda: httpx.get(
                f"{url}/_sim/stats", timeout=2.0).status_code == 200)
            accounts = {key: name for name, key in _ACCOUNT_LINE.findall(proc.stdout())}
            return Sim(proc, url, accounts)

        proc, sim = _start("sim", argv, tmp_path / "logs", ready)
        _procs.append(proc)
        sims.append(sim)
        return sim

    yield start
    for s in sims:
        s.close()


@pytest.fixture
def sim(start_sim: Callable[..., Sim]) -> Sim:
    """A fresh simulator with the default accounts and files."""
    return start_sim()


@pytest.fixture
def start_hydrant(
    _procs: list[Proc], tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[..., Hydrant]:
    """Factory: `start_hydrant("--serve-get-from-cache", sim=other, api_key=None)`.

    Defaults: upstream = the `sim` fixture, `--api-key vg_sim_key_alpha`,
    `--client-tokens sdk-client-token`; pass `api_key=None` / `client_tokens=None` to omit them.
    """

    def start(*extra: str, sim: Optional[Sim] = None, api_key: Optional[str] = ALPHA_KEY,
              client_tokens: Optional[str] = CLIENT_TOKEN) -> Hydrant:
        upstream = sim if sim is not None else request.getfixturevalue("sim")
        flags: list[str] = ["--upstream", upstream.url]
        if api_key is not None:
            flags += ["--api-key", api_key]
        if client_tokens is not None:
            flags += ["--client-tokens", client_tokens]
        flags += list(extra)

        def argv(port: int) -> list[str]:
            return [hydrant_bin(), "serve", "--listen", f"127.0.0.1:{port}", *flags]

        def ready(proc: Proc, port: int) -> Hydrant:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(proc, "GET /healthz", lambda: httpx.get(
                f"{url}/healthz", timeout=2.0).status_code == 200)
            return Hydrant(proc, url, upstream, proc.argv)

        proc, h = _start("hydrant", argv, tmp_path / "logs", ready)
        _procs.append(proc)
        return h

    return start


@pytest.fixture
def hydrant(start_hydrant: Callable[..., Hydrant]) -> Hydrant:
    """hydrant with `--api-key vg_sim_key_alpha --client-tokens sdk-client-token`."""
    return start_hydrant()


@pytest.fixture
def make_direct_client(sim: Sim) -> Iterator[Callable[..., VideoGen]]:
    """Factory: an SDK client talking to the simulator directly (the reference)."""
    clients: list[VideoGen] = []

    def make(api_key: str = ALPHA_KEY, base_url: Optional[str] = None) -> VideoGen:
        c = VideoGen(api_key=api_key, base_url=base_url or sim.url, timeout=HTTP_TIMEOUT_S)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def make_proxy_client(request: pytest.FixtureRequest) -> Iterator[Callable[..., VideoGen]]:
    """Factory: an SDK client whose base_url is hydrant (the `hydrant` fixture by default)."""
    clients: list[VideoGen] = []

    def make(api_key: str = ALPHA_KEY, hydrant: Optional[Hydrant] = None) -> VideoGen:
        h = hydrant if hydrant is not None else request.getfixturevalue("hydrant")
        c = VideoGen(api_key=api_key, base_url=h.url, timeout=HTTP_TIMEOUT_S)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def direct(make_direct_client: Callable[..., VideoGen]) -> VideoGen:
    """SDK client, key vg_sim_key_alpha, straight to the simulator."""
    return make_direct_client()


@pytest.fixture
def proxy(make_proxy_client: Callable[..., VideoGen]) -> VideoGen:
    """SDK client, key vg_sim_key_alpha, through hydrant."""
    return make_proxy_client()


@pytest.fixture
def raw() -> Iterator[httpx.Client]:
    """A plain httpx client for assertions on status lines and headers."""
    with httpx.Client(timeout=HTTP_TIMEOUT_S) as c:
        yield c


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


_SIGNED = "X-Amz-Signature="


def normalize(value: Any) -> Any:
    """Masks what legitimately differs per call: signed URL queries and their expiries.

    The path of a signed URL (`/cdn/{fileId}/{rendition}`), permanent URLs, statuses and every
    other field are kept, so two normalized answers are equal only if they describe the same
    thing. Works on SDK (snake_case) and raw (camelCase) objects.
    """
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            key = str(k)
            if key in ("request_id", "requestId"):
                out[k] = "<request-id>"
            elif (key.endswith("expires_at") or key.endswith("ExpiresAt")) and v not in (None, 0):
                out[k] = "<expiry>"
            else:
                out[k] = normalize(v)
        return out
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, str) and _SIGNED in value:
        return value.split("?", 1)[0] + "?<signed>"
    return value


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """Appends the output of every still-running simulator/hydrant to a failure report."""
    report = yield
    if report.failed:
        for p in list(_LIVE):
            report.sections.append((f"{p.name} output", p.logs()))
    return report
