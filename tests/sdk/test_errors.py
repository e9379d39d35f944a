"""Errors through hydrant reach the SDK as the upstream sent them."""

import pytest
from videogen import VideoGen, VideoGenError

from conftest import HTTP_TIMEOUT_S, UPSTREAM_REQUEST_ID, bearer


def _error(call, **kwargs) -> VideoGenError:
    with pytest.raises(VideoGenError) as e:
        call(**kwargs)
    return e.value


def test_unknown_file_is_the_upstream_404(proxy, direct, sim):
    before = sim.stats()["getFileCalls"]
    via_proxy = _error(proxy.files.get_file, file_id="vg_file_alpha_9999")
    via_direct = _error(direct.files.get_file, file_id="vg_file_alpha_9999")
    assert via_proxy.status == 404
    assert str(via_proxy).startswith("File not found.")
    assert via_proxy.args[0] == via_direct.args[0] == "File not found."
    assert via_proxy.body == via_direct.body == {"message": "File not found.", "code": "not_found"}
    # The request id is the upstream's (the simulator mints `req_...`; hydrant's own differ).
    assert via_proxy.request_id and UPSTREAM_REQUEST_ID.match(via_proxy.request_id), \
        via_proxy.request_id
    assert via_proxy.request_id != via_direct.request_id
    assert sim.stats()["getFileCalls"] == before + 2


def test_unknown_file_raw_response_keeps_upstream_request_id(hydrant, raw):
    r = raw.get(f"{hydrant.url}/v1/files/vg_file_alpha_9999", headers=bearer("vg_sim_key_alpha"))
    assert r.status_code == 404
    assert r.json() == {"message": "File not found.", "code": "not_found"}
    assert UPSTREAM_REQUEST_ID.match(r.headers["x-request-id"]), r.headers


def test_hydrate_unknown_file_is_404(proxy, direct):
    via_proxy = _error(proxy.files.hydrate_file, file_id="vg_file_alpha_9999")
    via_direct = _error(direct.files.hydrate_file, file_id="vg_file_alpha_9999")
    assert via_proxy.status == via_direct.status == 404
    assert via_proxy.body == via_direct.body
    assert via_proxy.args[0] == "File not found."


def test_other_accounts_file_is_404(proxy, direct):
    # beta's file with alpha's key: the upstream hides it, hydrant must too.
    via_proxy = _error(proxy.files.hydrate_file, file_id="vg_file_beta_0001")
    via_direct = _error(direct.files.hydrate_file, file_id="vg_file_beta_0001")
    assert via_proxy.status == via_direct.status == 404
    assert via_proxy.body == via_direct.body


def test_invalid_key_is_401(hydrant, sim, make_proxy_client, make_direct_client):
    via_proxy = _error(make_proxy_client(api_key="vg_not_a_key").account.get_me)
    via_direct = _error(make_direct_client(api_key="vg_not_a_key").account.get_me)
    assert via_proxy.status == via_direct.status == 401
    assert via_proxy.body == via_direct.body
    assert via_proxy.body["code"] == "invalid_api_key"
    assert UPSTREAM_REQUEST_ID.match(via_proxy.request_id or ""), via_proxy.request_id


@pytest.mark.parametrize("method,path", [
    ("GET", "/v1/me"),
    ("GET", "/v1/files/vg_file_alpha_0001"),
    ("POST", "/v1/files/vg_file_alpha_0001/hydrate"),
    ("GET", "/v1/files"),
    ("POST", "/v1/tools/generate-image"),
])
def test_no_key_is_401_locally(hydrant, sim, raw, method, path):
    before = sim.stats()["totalRequests"]
    r = raw.request(method, f"{hydrant.url}{path}", json={} if method == "POST" else None)
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["code"] == "missing_api_key"
    assert isinstance(body["message"], str) and body["message"]
    # hydrant answered by itself: its own request id, and nothing reached the upstream.
    assert r.headers.get("x-request-id")
    assert not UPSTREAM_REQUEST_ID.match(r.headers["x-request-id"])
    assert sim.stats()["totalRequests"] == before


def test_non_bearer_auth_is_401_locally(hydrant, sim, raw):
    before = sim.stats()["totalRequests"]
    r = raw.get(f"{hydrant.url}/v1/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert r.status_code == 401
    assert r.json()["code"] == "missing_api_key"
    assert sim.stats()["totalRequests"] == before


def test_invalid_id_is_400_locally(hydrant, sim, raw):
    before = sim.stats()["totalRequests"]
    r = raw.post(f"{hydrant.url}/v1/files/bad.id!/hydrate", headers=bearer("vg_sim_key_alpha"))
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "invalid_id"
    assert sim.stats()["totalRequests"] == before


def test_sdk_error_object_for_hydrant_errors(hydrant, sim):
    # Errors hydrant makes itself are VideoGen-shaped, so the SDK reads them like upstream ones.
    with VideoGen(api_key="sdk-client-token", base_url=hydrant.url, timeout=HTTP_TIMEOUT_S) as c:
        with pytest.raises(VideoGenError) as e:
            c.files.hydrate_file(file_id="bad.id!")
    assert e.value.status == 400
    assert e.value.body["code"] == "invalid_id"
    assert e.value.request_id
