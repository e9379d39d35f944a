"""Upstream failures through hydrant: VideoGen-shaped errors, never a hang or an empty reply."""

import time

import pytest
from videogen import VideoGenError

from conftest import ALPHA_KEY, bearer

# More than any sane retry policy would use, so the outcome doesn't depend on retries.
MANY = 10


def _json_error(r, status, code):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), dict(r.headers)
    body = r.json()
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    assert r.headers.get("x-request-id")
    return body


@pytest.mark.parametrize("method,path", [
    ("GET", "/v1/me"),
    ("POST", "/v1/files/vg_file_alpha_0001/hydrate"),
])
def test_dropped_connection_is_502(hydrant, sim, raw, method, path):
    sim.fault("drop", count=MANY)
    r = raw.request(method, f"{hydrant.url}{path}", headers=bearer(ALPHA_KEY))
    _json_error(r, 502, "upstream_unavailable")
    sim.clear_faults()
    r = raw.request(method, f"{hydrant.url}{path}", headers=bearer(ALPHA_KEY))
    assert r.status_code == 200, r.text


def test_dropped_connection_reaches_the_sdk_as_502(hydrant, sim, proxy):
    sim.fault("drop", count=MANY)
    with pytest.raises(VideoGenError) as e:
        proxy.account.get_me()
    assert e.value.status == 502
    assert e.value.body["code"] == "upstream_unavailable"


@pytest.mark.parametrize("method,path", [
    ("GET", "/v1/me"),
    ("POST", "/v1/files/vg_file_alpha_0001/hydrate"),
])
def test_hung_upstream_is_504_after_upstream_timeout(start_hydrant, sim, raw, method, path):
    h = start_hydrant("--upstream-timeout", "1s")
    sim.fault("hang", count=MANY)
    t0 = time.monotonic()
    r = raw.request(method, f"{h.url}{path}", headers=bearer(ALPHA_KEY), timeout=15)
    elapsed = time.monotonic() - t0
    _json_error(r, 504, "upstream_timeout")
    assert 0.8 <= elapsed < 5.0, elapsed


@pytest.mark.parametrize("method,path,route", [
    ("GET", "/v1/me", "any"),
    ("GET", "/v1/files/vg_file_alpha_0001", "get_file"),
    ("POST", "/v1/files/vg_file_alpha_0001/hydrate", "hydrate"),
])
def test_upstream_500_passes_through(hydrant, sim, raw, method, path, route):
    sim.fault("status", route=route, status=500, count=1)
    direct = raw.request(method, f"{sim.url}{path}", headers=bearer(ALPHA_KEY))
    assert direct.status_code == 500
    sim.fault("status", route=route, status=500, count=MANY)
    r = raw.request(method, f"{hydrant.url}{path}", headers=bearer(ALPHA_KEY))
    assert r.status_code == 500, r.text
    assert r.json() == direct.json() == {
        "message": "Simulated upstream error (500).", "code": "internal_error"}


def test_upstream_503_reaches_the_sdk(hydrant, sim, proxy):
    sim.fault("status", route="get_file", status=503, count=MANY)
    with pytest.raises(VideoGenError) as e:
        proxy.files.get_file(file_id="vg_file_alpha_0001")
    assert e.value.status == 503
    assert e.value.args[0] == "Simulated upstream error (503)."
    assert e.value.body == {"message": "Simulated upstream error (503).",
                            "code": "service_unavailable"}


def test_insufficient_credits_429_passes_through(hydrant, sim, proxy, raw):
    sim.fault("insufficient_credits", route="hydrate", count=1)
    with pytest.raises(VideoGenError) as e:
        proxy.files.hydrate_file(file_id="vg_file_alpha_0001")
    assert e.value.status == 429
    assert e.value.body["code"] == "insufficient_credits"
    # It pauses nothing: the next hydrate goes through at once.
    t0 = time.monotonic()
    assert proxy.files.hydrate_file(file_id="vg_file_alpha_0001")["file_id"] == "vg_file_alpha_0001"
    assert time.monotonic() - t0 < 2.0
