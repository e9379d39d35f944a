"""Client tokens: an SDK holding a hydrant token acts as the proxy's own VideoGen account."""

import pytest
from videogen import VideoGenError

from conftest import ALPHA_KEY, BETA_KEY, CLIENT_TOKEN, normalize


@pytest.fixture
def token_client(make_proxy_client):
    return make_proxy_client(api_key=CLIENT_TOKEN)


def test_client_token_acts_as_proxy_account(token_client, direct, sim):
    assert token_client.account.get_me() == direct.account.get_me()
    assert token_client.account.get_me()["name"] == sim.accounts[ALPHA_KEY]


def test_client_token_reads_proxy_accounts_files(token_client, direct):
    fid = "vg_file_alpha_0001"
    assert normalize(token_client.files.get_file(file_id=fid)) == normalize(
        direct.files.get_file(file_id=fid))
    assert normalize(token_client.files.hydrate_file(file_id=fid)) == normalize(
        direct.files.hydrate_file(file_id=fid))
    assert token_client.download_file(fid) == direct.download_file(fid)


def test_client_token_is_not_an_upstream_key(make_direct_client):
    with pytest.raises(VideoGenError) as e:
        make_direct_client(api_key=CLIENT_TOKEN).account.get_me()
    assert e.value.status == 401


def test_client_token_unknown_to_hydrant_is_forwarded_as_is(start_hydrant, make_proxy_client):
    h = start_hydrant(client_tokens=None)
    with pytest.raises(VideoGenError) as e:
        make_proxy_client(api_key=CLIENT_TOKEN, hydrant=h).account.get_me()
    assert e.value.status == 401
    assert e.value.body["code"] == "invalid_api_key"


def test_tenants_do_not_share_cached_files(proxy, make_proxy_client, token_client):
    fid = "vg_file_alpha_0001"
    assert proxy.files.hydrate_file(file_id=fid)["file_id"] == fid  # alpha warms the cache
    assert token_client.files.hydrate_file(file_id=fid)["file_id"] == fid  # same tenant
    beta = make_proxy_client(api_key=BETA_KEY)
    for _ in range(2):
        with pytest.raises(VideoGenError) as e:
            beta.files.hydrate_file(file_id=fid)
        assert e.value.status == 404
    with pytest.raises(VideoGenError) as e:
        make_proxy_client(api_key="vg_not_a_key").files.hydrate_file(file_id=fid)
    assert e.value.status == 401
