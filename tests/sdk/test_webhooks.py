"""The webhook loop with real clients: simulator -> hydrant -> a receiver that verifies each
relayed delivery with the official SDK's `verify_webhook_signature` (the same secret)."""

import http.server
import threading
import time

import httpx
import pytest
import videogen

from conftest import free_port

SECRET = "whsec_c2RrLXN1aXRlLXdlYmhvb2stc2VjcmV0LTEyMzQ="


class Receiver:
    """An application endpoint on 127.0.0.1 that verifies deliveries with the SDK."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/videogen-events"
        self.verified: list[dict] = []
        self.rejected = 0
        self.attempts = 0
        self._server = None
        self._thread = None

    def start(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                receiver.attempts += 1
                try:
                    event = videogen.verify_webhook_signature(body, dict(self.headers), SECRET)
                except videogen.VideoGenError:
                    receiver.rejected += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                receiver.verified.append(event)
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture
def receiver():
    r = Receiver(free_port())
    yield r
    r.stop()


def deliver(sim, hydrant, event: str, file_id: str, max_attempts: int = 1, backoff_ms: int = 100):
    r = sim.control.post("/_sim/webhooks", json={
        "url": f"{hydrant.url}/webhooks/videogen", "secret": SECRET, "event": event,
        "fileId": file_id, "apiKey": "vg_sim_key_alpha",
        "maxAttempts": max_attempts, "firstBackoffMs": backoff_ms,
    }, timeout=30.0)
    r.raise_for_status()
    return r.json()


def test_relayed_delivery_verifies_with_the_official_sdk(sim, start_hydrant, receiver):
    receiver.start()
    h = start_hydrant("--webhook-secret", SECRET, "--webhook-forward", receiver.url)
    report = deliver(sim, h, "file.download_ready", "vg_file_alpha_0005")
    assert report["delivered"] is True
    assert len(receiver.verified) == 1 and receiver.rejected == 0
    event = receiver.verified[0]
    assert event["event"] == "file.download_ready"
    assert event["file"]["file_id"] == "vg_file_alpha_0005"
    # The event primed hydrant: the redirect needs no upstream hydrate and points at its URL.
    before = sim.hydrate_calls("vg_file_alpha_0005")
    r = httpx.get(f"{h.url}/files/vg_file_alpha_0005/redirect", follow_redirects=False)
    assert r.status_code == 302
    assert r.headers["x-cache"] == "HIT"
    assert r.headers["location"] == event["file"]["download_source"]["url"]
    assert sim.hydrate_calls("vg_file_alpha_0005") == before


def test_receiver_outage_then_videogen_retry_delivers_once(sim, start_hydrant, receiver):
    # The receiver is down for the first attempt; VideoGen's retry (the simulator's) lands.
    h = start_hydrant("--webhook-secret", SECRET, "--webhook-forward", receiver.url)
    starter = threading.Timer(0.3, receiver.start)
    starter.start()
    try:
        report = deliver(sim, h, "file.playback_ready", "vg_file_alpha_0006",
                         max_attempts=6, backoff_ms=400)
    finally:
        starter.join()
    assert report["delivered"] is True, report
    assert report["attempts"] >= 2, report
    assert len(receiver.verified) == 1, "acknowledged exactly once"
    assert receiver.verified[0]["file_id"] == "vg_file_alpha_0006"


def test_bad_signature_is_rejected_and_not_relayed(sim, start_hydrant, receiver):
    receiver.start()
    h = start_hydrant("--webhook-secret", SECRET, "--webhook-forward", receiver.url)
    r = httpx.post(f"{h.url}/webhooks/videogen", content=b'{"event":"file.download_ready"}',
                   headers={"webhook-id": "msg_x", "webhook-timestamp": str(int(time.time())),
                            "webhook-signature": "v1,AAAA"})
    assert r.status_code == 401
    assert r.json()["code"] == "bad_signature"
    assert receiver.attempts == 0
