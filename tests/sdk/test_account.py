"""`client.account.get_me()` (GET /v1/me) through hydrant equals the simulator's own answer."""

from conftest import ALPHA_KEY, BETA_KEY


def test_get_me_through_hydrant_equals_direct(proxy, direct, sim):
    via_proxy = proxy.account.get_me()
    via_direct = direct.account.get_me()
    assert via_proxy == via_direct
    assert via_proxy["name"] == sim.accounts[ALPHA_KEY]
    assert via_proxy["account_id"] == "vg_acct_alpha"
    # Both calls reached the upstream: hydrant does not answer /v1/me itself.
    assert sim.stats()["byRoute"].get("GET /v1/me") == 2


def test_other_keys_are_forwarded_as_is(make_proxy_client, make_direct_client, sim):
    # hydrant's own key is alpha; a beta caller must still see beta's account.
    via_proxy = make_proxy_client(api_key=BETA_KEY).account.get_me()
    assert via_proxy == make_direct_client(api_key=BETA_KEY).account.get_me()
    assert via_proxy["name"] == sim.accounts[BETA_KEY]
