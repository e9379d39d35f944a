"""Files API through hydrant: same answers as straight from the simulator.

Signed URLs and their expiries differ per call and are masked by `normalize`; everything else,
including the CDN path a signed URL points to, must be equal.
"""

import pytest
from videogen import VideoGenError

from conftest import normalize

SEEDED = [
    "vg_file_alpha_0001",  # every rendition ready
    "vg_file_alpha_0002",  # preview pending
    "vg_file_alpha_0003",  # download failed, hls skipped
    "vg_file_alpha_0004",  # IMAGE with a permanent public preview
]


@pytest.mark.parametrize("file_id", SEEDED)
def test_get_file_equals_direct(proxy, direct, file_id):
    via_proxy = proxy.files.get_file(file_id=file_id)
    via_direct = direct.files.get_file(file_id=file_id)
    assert normalize(via_proxy) == normalize(via_direct)
    assert via_proxy["file_id"] == file_id
    # GET omits the signed URLs.
    assert "url" not in via_proxy["download_source"] or via_proxy["download_source"]["url"] is None


@pytest.mark.parametrize("file_id", SEEDED)
def test_hydrate_file_equals_direct(proxy, direct, file_id):
    via_proxy = proxy.files.hydrate_file(file_id=file_id)
    via_direct = direct.files.hydrate_file(file_id=file_id)
    assert normalize(via_proxy) == normalize(via_direct)
    assert via_proxy["file_id"] == file_id


def test_hydrated_urls_work(proxy, raw):
    hydrated = proxy.files.hydrate_file(file_id="vg_file_alpha_0001")
    for key in ("download_source", "preview_source", "thumbnail_source", "hls_source"):
        src = hydrated[key]
        assert src["status"] == "ready", key
        assert "X-Amz-Signature=" in src["url"], key
        r = raw.get(src["url"])
        assert r.status_code == 200, (key, r.text)
        assert r.content, key
    assert hydrated["download_url"] == hydrated["download_source"]["url"]


def _all_pages(client, limit):
    pages = []
    cursor = None
    for _ in range(50):  # bounded: 20 files / limit pages at most
        kwargs = {"limit": limit}
        if cursor:
            kwargs["cursor"] = cursor
        page = client.files.get_files(**kwargs)
        pages.append(page)
        if not page["has_more"]:
            return pages
        cursor = page["next_cursor"]
        assert cursor, page
    raise AssertionError("list_files never reached the last page")


def test_list_files_paging_equals_direct(proxy, direct):
    via_proxy = _all_pages(proxy, limit=7)
    via_direct = _all_pages(direct, limit=7)
    assert len(via_proxy) == 3
    assert normalize(via_proxy) == normalize(via_direct)
    ids = [f["file_id"] for page in via_proxy for f in page["files"]]
    assert ids == [f"vg_file_alpha_{n:04d}" for n in range(1, 21)]
    assert [p["next_cursor"] for p in via_proxy] == [p["next_cursor"] for p in via_direct]


def test_search_equals_direct(proxy, direct):
    via_proxy = proxy.files.search_files(query="intro", num_results=5)
    via_direct = direct.files.search_files(query="intro", num_results=5)
    assert via_proxy["results"], via_proxy
    assert normalize(via_proxy) == normalize(via_direct)
    for hit in via_proxy["results"]:
        assert "intro" in hit["file"]["display_name"].lower()


def test_archive_equals_direct_and_hides_the_file(proxy, direct):
    # Warm whatever hydrant caches for the file first, so a stale entry would show.
    proxy.files.hydrate_file(file_id="vg_file_alpha_0005")
    via_proxy = proxy.files.archive_file(file_id="vg_file_alpha_0005")
    via_direct = direct.files.archive_file(file_id="vg_file_alpha_0006")
    assert via_proxy == {"file_id": "vg_file_alpha_0005", "archived": True}
    assert via_direct == {"file_id": "vg_file_alpha_0006", "archived": True}
    for client in (proxy, direct):
        for call in (client.files.get_file, client.files.hydrate_file):
            with pytest.raises(VideoGenError) as e:
                call(file_id="vg_file_alpha_0005")
            assert e.value.status == 404, (call, e.value)
    ids = [f["file_id"] for f in proxy.files.get_files(limit=50)["files"]]
    assert "vg_file_alpha_0005" not in ids and "vg_file_alpha_0006" not in ids


def test_public_preview_toggle_equals_direct(proxy, direct, raw):
    fid = "vg_file_alpha_0001"
    before = proxy.files.hydrate_file(file_id=fid)  # may be cached by hydrant
    assert before["static_public_preview_source"] is None
    assert before["is_public_preview_enabled"] is False

    enabled_via_proxy = proxy.files.enable_public_preview(file_id=fid)
    assert enabled_via_proxy["is_public_preview_enabled"] is True
    public = enabled_via_proxy["static_public_preview_source"]
    assert public["status"] == "ready" and public["expires_at"] is None
    assert raw.get(public["url"]).status_code == 200
    # The change is visible through hydrant at once (no stale cached hydrate).
    after = proxy.files.hydrate_file(file_id=fid)
    assert after["static_public_preview_source"] == public

    disabled_via_direct = direct.files.disable_public_preview(file_id=fid)
    enabled_via_direct = direct.files.enable_public_preview(file_id=fid)
    assert normalize(enabled_via_proxy) == normalize(enabled_via_direct)

    disabled_via_proxy = proxy.files.disable_public_preview(file_id=fid)
    assert normalize(disabled_via_proxy) == normalize(disabled_via_direct)
    assert disabled_via_proxy["static_public_preview_source"] is None
    again = proxy.files.hydrate_file(file_id=fid)
    assert again["static_public_preview_source"] is None
    assert again["is_public_preview_enabled"] is False
