"""Upstream-call economy: what hydrant's hydration cache saves an SDK user.

These depend on the cache (docs/ARCHITECTURE.md, "Cache semantics"): a hydrate is answered from cache while
its URLs are valid (`x-cache: HIT|MISS|STALE`), concurrent misses coalesce, tool outputs and
listings prime the cache, and `--serve-get-from-cache` answers GET /v1/files/{id} from it.
"""

import threading
import time

import httpx
import pytest
from videogen import VideoGenError

from conftest import ALPHA_KEY, CLIENT_TOKEN, bearer


def _hydrate(raw, hydrant, fid, key=ALPHA_KEY):
    return raw.post(f"{hydrant.url}/v1/files/{fid}/hydrate", headers=bearer(key))


def test_second_hydrate_is_a_byte_identical_hit(hydrant, sim, raw):
    fid = "vg_file_alpha_0001"
    first = _hydrate(raw, hydrant, fid)
    second = _hydrate(raw, hydrant, fid)
    assert first.status_code == second.status_code == 200
    assert first.headers.get("x-cache") == "MISS", dict(first.headers)
    assert second.headers.get("x-cache") == "HIT", dict(second.headers)
    assert second.headers.get("age", "").isdigit(), dict(second.headers)
    assert second.content == first.content
    assert sim.hydrate_calls(fid) == 1


def test_get_hydrated_file_costs_one_upstream_hydrate(proxy, sim):
    fid = "vg_file_alpha_0001"
    results = [proxy.get_hydrated_file(fid) for _ in range(5)]
    assert all(r == results[0] for r in results)
    assert sim.hydrate_calls(fid) <= 1
    assert sim.stats()["getFileCalls"] == 5  # GET passes through without the flag


def test_download_file_costs_one_upstream_hydrate(proxy, direct, sim):
    fid = "vg_file_alpha_0004"
    data = [proxy.download_file(fid) for _ in range(3)]
    assert data[0] and all(d == data[0] for d in data)
    assert sim.hydrate_calls(fid) <= 1
    assert sim.stats()["cdnCalls"] == 3


def test_client_token_and_proxy_key_share_one_entry(proxy, make_proxy_client, sim):
    fid = "vg_file_alpha_0002"
    proxy.files.hydrate_file(file_id=fid)
    make_proxy_client(api_key=CLIENT_TOKEN).files.hydrate_file(file_id=fid)
    assert sim.hydrate_calls(fid) == 1


def test_serve_get_from_cache_makes_repeats_free(start_hydrant, make_proxy_client, sim):
    h = start_hydrant("--serve-get-from-cache")
    client = make_proxy_client(hydrant=h)
    fid = "vg_file_alpha_0001"
    warm = client.get_hydrated_file(fid)
    before = sim.stats()
    again = [client.get_hydrated_file(fid) for _ in range(5)]
    after = sim.stats()
    assert all(a == warm for a in again)
    assert after["totalRequests"] == before["totalRequests"], (before, after)
    assert warm["download_source"]["url"]


def test_without_the_flag_get_passes_through(hydrant, proxy, sim):
    fid = "vg_file_alpha_0001"
    proxy.get_hydrated_file(fid)
    before = sim.stats()["getFileCalls"]
    plain = proxy.files.get_file(file_id=fid)
    assert sim.stats()["getFileCalls"] == before + 1
    assert plain["download_source"].get("url") is None


def test_concurrent_misses_make_one_upstream_call(hydrant, sim):
    fid = "vg_file_alpha_0008"
    sim.fault("latency", route="hydrate", ms=400, count=20)
    barrier = threading.Barrier(8, timeout=10)
    out: list = []

    def worker():
        with httpx.Client(timeout=15) as c:
            barrier.wait()
            out.append(_hydrate(c, hydrant, fid))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert len(out) == 8
    assert all(r.status_code == 200 for r in out)
    assert len({r.content for r in out}) == 1
    assert sim.hydrate_calls(fid) == 1


def test_tool_output_is_primed(proxy, sim, raw, hydrant):
    done = proxy.tools.generate_image_and_wait(prompt="primed", poll_interval_ms=50,
                                               timeout_ms=10_000)
    fid = done["results"][0]["file_id"]
    r = _hydrate(raw, hydrant, fid)
    assert r.status_code == 200
    assert r.headers.get("x-cache") == "HIT", dict(r.headers)
    assert sim.hydrate_calls(fid) == 0


def test_listing_primes_the_cache(proxy, sim, raw, hydrant):
    listed = proxy.files.get_files(limit=5)["files"]
    fid = listed[2]["file_id"]
    r = _hydrate(raw, hydrant, fid)
    assert r.status_code == 200
    assert r.headers.get("x-cache") == "HIT", dict(r.headers)
    assert sim.hydrate_calls(fid) == 0


def test_not_found_is_cached_negatively(proxy, sim):
    fid = "vg_file_alpha_9999"
    for _ in range(3):
        with pytest.raises(VideoGenError) as e:
            proxy.files.hydrate_file(file_id=fid)
        assert e.value.status == 404
        assert e.value.body == {"message": "File not found.", "code": "not_found"}
    assert sim.hydrate_calls(fid) == 1


def test_stale_is_served_when_upstream_fails(start_sim, start_hydrant, raw):
    # URLs live 63 s and the default margin is 60 s: the entry is fresh for about 3 s, then
    # still servable as stale until the URLs really expire. hydrant runs on the real clock in
    # another process, so this one waits for real.
    s = start_sim("--url-lifetime", "63s")
    h = start_hydrant(sim=s)
    fid = "vg_file_alpha_0001"
    first = _hydrate(raw, h, fid)
    assert first.status_code == 200
    assert _hydrate(raw, h, fid).headers.get("x-cache") == "HIT"
    time.sleep(3.5)
    s.fault("status", route="hydrate", status=503, count=10)
    r = _hydrate(raw, h, fid)
    assert r.status_code == 200, r.text
    assert r.headers.get("x-cache") == "STALE", dict(r.headers)
    assert r.content == first.content
