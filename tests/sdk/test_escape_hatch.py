"""`client.request(...)`, the SDK's escape hatch for arbitrary REST calls, through hydrant."""

from conftest import normalize


def test_request_get_file_equals_direct(proxy, direct):
    path = "/v1/files/vg_file_alpha_0001"
    via_proxy = proxy.request(method="GET", path=path)
    assert via_proxy == direct.request(method="GET", path=path)
    assert via_proxy["file_id"] == "vg_file_alpha_0001"


def test_request_hydrate_equals_direct(proxy, direct):
    path = "/v1/files/vg_file_alpha_0004/hydrate"
    via_proxy = proxy.request(method="POST", path=path)
    assert normalize(via_proxy) == normalize(direct.request(method="POST", path=path))
    assert via_proxy["static_public_preview_source"]["expires_at"] is None


def test_request_with_query_and_body_equals_direct(proxy, direct):
    q = {"limit": 3}
    assert normalize(proxy.request(method="GET", path="/v1/files", query=q)) == normalize(
        direct.request(method="GET", path="/v1/files", query=q))
    body = {"query": "keynote", "num_results": 2}
    via_proxy = proxy.request(method="POST", path="/v1/files/search", body=body)
    assert via_proxy["results"]
    assert normalize(via_proxy) == normalize(
        direct.request(method="POST", path="/v1/files/search", body=body))


def test_request_account_alias_equals_direct(proxy, direct):
    assert proxy.request(method="GET", path="/v1/account") == direct.request(
        method="GET", path="/v1/account")
