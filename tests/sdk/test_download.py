"""`client.download_file(...)` through hydrant returns the very bytes the upstream serves."""

import pytest

SEEDED = [
    "vg_file_alpha_0001",  # download rendition
    "vg_file_alpha_0003",  # download failed: the SDK falls back to the preview
    "vg_file_alpha_0004",  # IMAGE
]


@pytest.mark.parametrize("file_id", SEEDED)
def test_download_equals_direct(proxy, direct, file_id):
    via_proxy = proxy.download_file(file_id)
    via_direct = direct.download_file(file_id)
    assert via_proxy, "empty download"
    assert via_proxy == via_direct


def test_download_to_path(proxy, direct, tmp_path):
    out = tmp_path / "nested" / "intro.mp4"
    data = proxy.download_file("vg_file_alpha_0001", output_path=out)
    assert out.read_bytes() == data == direct.download_file("vg_file_alpha_0001")


def test_download_of_new_file_equals_direct(proxy, direct, sim):
    created = sim.create_file(apiKey="vg_sim_key_alpha", type="VIDEO", displayName="fresh upload")
    fid = created["fileId"]
    assert proxy.download_file(fid) == direct.download_file(fid)
