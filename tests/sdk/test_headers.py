"""Pass-through responses keep the upstream's rate-limit headers and request id."""

import time

import pytest

from conftest import ALPHA_KEY, UPSTREAM_REQUEST_ID, bearer

RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


@pytest.mark.parametrize("method,path,json", [
    ("GET", "/v1/me", None),
    ("GET", "/v1/files", None),
    ("GET", "/v1/files/vg_file_alpha_0001", None),
    ("POST", "/v1/files/search", {"query": "intro"}),
    ("GET", "/v1/tools/executions", None),
])
def test_rate_limit_headers_and_request_id(hydrant, sim, raw, method, path, json):
    r = raw.request(method, f"{hydrant.url}{path}", headers=bearer(ALPHA_KEY), json=json)
    assert r.status_code == 200, r.text
    for h in RATE_HEADERS:
        assert r.headers.get(h, "").isdigit(), (h, dict(r.headers))
    assert int(r.headers["x-ratelimit-limit"]) == 50_000
    assert int(r.headers["x-ratelimit-reset"]) > time.time()
    assert UPSTREAM_REQUEST_ID.match(r.headers.get("x-request-id", "")), dict(r.headers)
    assert r.headers["content-type"].startswith("application/json")


def test_rate_limit_headers_are_live_upstream_values(hydrant, sim, raw):
    def remaining(base):
        r = raw.get(f"{base}/v1/me", headers=bearer(ALPHA_KEY))
        assert r.status_code == 200
        return int(r.headers["x-ratelimit-remaining"]), r.headers["x-request-id"]

    a, id_a = remaining(hydrant.url)
    b, id_b = remaining(sim.url)
    c, id_c = remaining(hydrant.url)
    # One window per key upstream: every call, through hydrant or not, counts in it.
    assert (a - 1, b - 1) == (b, c)
    assert len({id_a, id_b, id_c}) == 3

