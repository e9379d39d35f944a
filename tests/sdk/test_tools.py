"""Tools and executions through hydrant: start a tool, poll it to success, use its output."""

import json
import time

from conftest import normalize

POLL = {"poll_interval_ms": 50, "timeout_ms": 10_000}


def _assert_hydrated(file_obj):
    """A hydrated StorageFile: ready renditions carry a signed URL that is not about to expire."""
    now = time.time()
    ready = [
        file_obj[k]
        for k in ("download_source", "preview_source", "thumbnail_source", "hls_source")
        if file_obj.get(k) and file_obj[k]["status"] == "ready"
    ]
    assert ready, file_obj
    for src in ready:
        assert "X-Amz-Signature=" in src["url"], src
        assert src["expires_at"] > now + 60, src


def test_generate_image_and_poll_through_hydrant(proxy, direct, sim, raw):
    started = proxy.tools.generate_image(prompt="sdk suite sunset")
    assert started["status"] == "pending"
    assert started["tool_type"] == "GENERATE_IMAGE"
    exec_id = started["tool_execution_id"]
    assert exec_id.startswith("vg_exec_")

    done = proxy.poll_executed_tool(exec_id, **POLL)
    assert done["status"] == "succeeded", done
    assert done["tool_execution_id"] == exec_id
    assert len(done["results"]) == 1
    result = done["results"][0]
    out = result["file"]
    assert out["type"] == "IMAGE"
    assert out["display_name"] == "sdk suite sunset"
    assert out["source_tool_execution_id"] == exec_id
    _assert_hydrated(out)
    assert raw.get(out["download_source"]["url"]).status_code == 200

    # The output file is a normal file, for both hydrant and the upstream.
    fid = result["file_id"]
    assert fid == out["file_id"]
    assert normalize(proxy.files.hydrate_file(file_id=fid)) == normalize(
        direct.files.hydrate_file(file_id=fid))
    assert normalize(proxy.get_hydrated_file(fid)) == normalize(out)

    # The execution as seen directly is the same execution.
    assert normalize(direct.tools.get_tool_execution_info(tool_execution_id=exec_id)) == \
        normalize(done)
    assert sim.stats()["toolCalls"] == 1


def test_execution_shape_equals_direct(proxy, direct):
    via_proxy = proxy.tools.generate_video_clip_and_wait(prompt="same prompt", **POLL)
    via_direct = direct.tools.generate_video_clip_and_wait(prompt="same prompt", **POLL)

    def shape(x):
        # Ids and timestamps differ between two executions; everything else must not.
        text = json.dumps(normalize(x))
        text = text.replace(x["tool_execution_id"], "<exec>")
        text = text.replace(x["results"][0]["file_id"], "<file>")
        y = json.loads(text)
        for k in ("created_at", "completed_at"):
            y.pop(k)
        y["results"][0]["file"].pop("created_at")
        return y

    assert via_proxy["status"] == "succeeded"
    assert shape(via_proxy) == shape(via_direct)


def test_list_and_cancel_executions_through_hydrant(proxy, direct):
    first = proxy.tools.text_to_speech(text="hello")
    second = proxy.tools.upscale_video(file_id="vg_file_alpha_0001")
    cancelled = proxy.tools.cancel_tool_execution(tool_execution_id=second["tool_execution_id"])
    assert cancelled["status"] == "cancelled"
    via_proxy = proxy.tools.list_tool_executions(limit=10)
    via_direct = direct.tools.list_tool_executions(limit=10)
    assert normalize(via_proxy) == normalize(via_direct)
    ids = [e["tool_execution_id"] for e in via_proxy["executions"]]
    assert ids == [second["tool_execution_id"], first["tool_execution_id"]]
