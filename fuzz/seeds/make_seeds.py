#!/usr/bin/env python3
"""Writes the hand-made seed corpus of every fuzz target into fuzz/corpus/<target>/.

Seeds follow the shapes the built-in simulator and VideoGen send (StorageFile JSON with
SigV4-style and CloudFront-style signed URLs, webhook payloads, signed links, paths, config
values). `bash tests/run.sh fuzz` grows the corpus from these; `cargo fuzz cmin` keeps it small.
The `wire` seeds that are encoder output are written by the replay test's seed writer
(`cargo test --test it fuzz_corpus::write_wire_seeds -- --ignored`).
"""
import hashlib, json, os, struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus")
NOW = 1704067200  # the fixed "now" of hydrant::fuzzing (2024-01-01T00:00:00Z)


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def amz(fid, r, date="20240101T000000Z", exp=3600):
    return (f"https://127.0.0.1:9000/cdn/{fid}/{r}?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            f"&X-Amz-Credential=SIM0123456789ABCDEF&X-Amz-Date={date}&X-Amz-Expires={exp}"
            f"&X-Amz-Signature=" + "ab" * 32)


def src(status, url=None, exp=None, w=None, h=None, size=None):
    s = {"status": status}
    if status == "ready":
        s["url"] = url
        s["expiresAt"] = exp
    elif status == "skipped":
        s["url"], s["expiresAt"] = "", 0
    if w is not None:
        s["width"], s["height"] = w, h
    if size is not None:
        s["fileBytes"] = size
    return s


def storage_file(fid, pending=False, root=True, public=True, cloudfront=False):
    f = {
        "fileId": fid, "type": "VIDEO", "scope": "GLOBAL",
        "displayName": "Launch video #1", "description": "Intro \"take 2\"",
        "durationSeconds": 12.5, "createdAt": "2024-01-01T00:00:00Z",
        "isPublicPreviewEnabled": public,
        "transcript": {"text": "Hello", "segments": [{"start": 0.0, "end": 1.2, "text": "Hello"}]},
        "downloadSource": src("ready", amz(fid, "download"), NOW + 3599.5, 1920, 1080, 12345678),
        "previewSource": src("ready", (f"https://d1.cloudfront.net/p/{fid}.mp4?Expires={NOW + 1800}"
                                       "&Signature=abc~def&Key-Pair-Id=K2EXAMPLE") if cloudfront
                             else amz(fid, "preview", exp=1800), NOW + 1799.25, 640, 360, 734221),
        "thumbnailSource": src("ready", amz(fid, "thumbnail"), NOW + 3600, 256, 256, 18234),
        "hlsSource": src("pending") if pending else src("skipped"),
        "sourceToolType": "AVATAR_VIDEO", "sourceToolExecutionId": "vg_exec_123",
        "fileAnalysisMetadata": {"labels": ["person"], "nsfw": False},
    }
    if public:
        f["staticPublicPreviewSource"] = src("ready", f"https://127.0.0.1:9000/cdn/public/{fid}",
                                             None, 640, 360, 5000)
        f["publicPlaybackId"] = "vg_play_0123456789abcdef"
    if root:
        f["downloadUrl"] = amz(fid, "download")
        f["downloadUrlExpiresAt"] = NOW + 3599.5
        f["thumbnailUrl"] = ""
        f["thumbnailUrlExpiresAt"] = None
    return f


FILES = [
    storage_file("vg_file_alpha_0001"),
    storage_file("vg_file_beta_0002", pending=True, root=False, public=False),
    storage_file("vg_file_gamma_0003", cloudfront=True),
    {"fileId": "vg_file_new", "type": None, "downloadSource": src("pending"),
     "previewSource": None, "thumbnailSource": src("failed"), "hlsSource": "ready"},
    {"fileId": "vg_file_odd", "downloadSource": {"status": "ready", "url": "http://cdn/x\\u0026y=1",
                                                "expiresAt": "1704070000", "width": 1e30}},
]
BODIES = [json.dumps(f, separators=(",", ":")) for f in FILES]
BODIES.append(json.dumps(FILES[0], indent=2).replace("/", "\\/"))  # escaped urls: copied places

# Leading control bytes of the policy targets: margin, pending, negative, max (selector + u32).
POLICY_DEFAULT = bytes([4, 60, 0, 0, 0, 4, 5, 0, 0, 0, 4, 30, 0, 0, 0, 4, 0x80, 0x51, 1, 0])
POLICY_HUGE = bytes([1, 1, 1, 1])

for b in BODIES:
    put("file_view", b)
    put("ttl_policy", POLICY_DEFAULT + struct.pack("<i", 0) + b.encode())
    put("entry", POLICY_DEFAULT + b"\x00" + b.encode())
    put("wire", b"\x01" + POLICY_DEFAULT + b"\x00\x00" + b.encode())
put("ttl_policy", POLICY_DEFAULT + struct.pack("<i", 3000) + BODIES[0].encode())
put("entry", POLICY_HUGE + b"\x01" + BODIES[0].encode())
put("wire", b"\x01" + POLICY_DEFAULT + b"\x00\x01" + b'{"message":"File not found","code":"not_found"}')
put("file_view", "[1,2]")
put("file_view", '{"fileId":"a","fileId":"b"}')

for u in [
    amz("f", "download"),
    "https://storage.googleapis.com/b/o?X-Goog-Date=20240229T235959Z&X-Goog-Expires=600",
    f"https://d.cloudfront.net/a?Expires={NOW + 1000}&Signature=x&expires=1704069000",
    "https://h/a?x-amz-date=20241301T000000Z&X-AMZ-EXPIRES=10#frag&Expires=1",
    "https://h/a?Expires=99999999999999999999&X-Amz-Expires=%36%30&X-Amz-Date=20240101T000000Z",
]:
    put("url_expiry", u)

put("prime_scan", json.dumps({"files": FILES[:3], "hasMore": False, "nextCursor": None}))
put("prime_scan", json.dumps({"results": [{"score": 0.9, "file": FILES[1]}, {"file": 3}]}))
put("prime_scan", json.dumps({"executionId": "vg_exec_123", "status": "succeeded", "file": FILES[2]}))
put("prime_scan", '{"files":[{"fileId":"bad id!"},{"fileId":"ok\\u002dok"}],"file":null}')

# signed_url: id \n query \n exp seed. Signatures below are made by the fuzz keys at run time
# for the round trip; the query lines carry typical and malformed spellings.
for fid, q in [
    ("vg_file_alpha_0001", "rendition=preview&exp=1704070800&sig=" + "A" * 43),
    ("vg_file_alpha_0001", "exp=01704070800&sig=abc=&rendition=download"),
    ("vg_file_alpha_0001", "sig=%2B%2F" + "a" * 41 + "&exp=1704070800&exp=2"),
    ("bad/id", "rendition=hls&exp=18446744073709551615&sig=" + "_" * 43),
    ("", "rendition=nope"),
]:
    put("signed_url", f"{fid}\n{q}\n\x07\x01")

# webhook: control \n id \n timestamp \n signature \n body
for ctl, body in [
    (b"\x01", {"event": "file.playback_ready", "fileId": "vg_file_alpha_0001",
               "occurredAt": "2024-01-01T00:00:00Z", "file": FILES[0]}),
    (b"\x01", {"type": "file.upload.failed", "fileId": "vg_file_beta_0002"}),
    (b"\x01", {"event": "tool_execution.succeeded", "executionId": "vg_exec_1", "files": FILES[:2]}),
    (b"\x00", {"event": "file.download_ready", "fileId": "x"}),
]:
    put("webhook", ctl + b"\nmsg_p5jXN8AQM9LWM0D4loKWxJek\n" + str(NOW).encode()
        + b"\nv1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1a,x\n"
        + json.dumps(body).encode())
put("webhook", b"\x00\nmsg_1\n +1_704_067_200 \nv1,AAAA\n[1]")

for m, p in [(0, "/files/vg_file_alpha_0001/redirect"), (1, "/files/vg_file_alpha_0001"),
             (2, "/v1/files/vg_file_alpha_0001/hydrate"), (0, "/v1/files/vg_file_x"),
             (2, "/v1/files/a/enable-public-preview"), (3, "/admin/files/vg_file_x"),
             (2, "/webhooks/videogen"), (0, "/v1/tools/executions/vg_exec_1"),
             (0, "/files/" + "a" * 129 + "/redirect"), (4, "/healthz"), (0, "/files/%41/x"),
             (0, "vg_file_alpha_0001")]:
    put("route", bytes([m]) + p.encode())

for u in ["30s", "500ms", "1.5s", "5m", "1h", "1d", " 0.000001s ", "18446744073709551615s",
          "64MiB", "1GiB", "10MB", "1024", "1.5kib", "2500/h", "50/10s", "10/s", "+5/m",
          "1/0s", "1..5s", "99999999999999999999999d"]:
    put("config_units", u)
