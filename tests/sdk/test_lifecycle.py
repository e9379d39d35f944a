"""Process behaviour the SDK suite relies on: readiness and a clean SIGTERM."""

import signal
import subprocess

from conftest import ALPHA_KEY, bearer


def test_healthz_and_readyz(hydrant, sim, raw):
    before = sim.stats()["totalRequests"]
    assert raw.get(f"{hydrant.url}/healthz").status_code == 200
    assert raw.get(f"{hydrant.url}/readyz").status_code == 200
    # Readiness never calls the upstream.
    assert sim.stats()["totalRequests"] == before


def test_sigterm_exits_zero(hydrant, raw):
    assert raw.get(f"{hydrant.url}/v1/me", headers=bearer(ALPHA_KEY)).status_code == 200
    raw.close()  # no idle keep-alive connection left behind
    hydrant.proc.popen.send_signal(signal.SIGTERM)
    try:
        code = hydrant.proc.popen.wait(timeout=5)
    except subprocess.TimeoutExpired:
        raise AssertionError("hydrant still running 5 s after SIGTERM with nothing in flight")
    assert code == 0, hydrant.proc.logs()
