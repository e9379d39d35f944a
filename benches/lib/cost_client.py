#!/usr/bin/env python3
"""One keep-alive connection, an exact number of requests: the client of benches/cost.sh.

    cost_client.py PORT ROUTE FIRST NFILES COUNT

ROUTE is redirect (GET /files/{id}/redirect), hydrate (POST /v1/files/{id}/hydrate with the
simulator's bearer), json (GET /files/{id}), v1get (GET /v1/files/{id}: bare's JSON answer)
or healthz. Request i asks for file
FIRST + (i mod NFILES), so every run walks the same ids in the same order. The request bytes
are wrk's (`wrk.format`): request line, Host, the route's own headers, nothing else. Prints
"STATUS×COUNT ..." tallies; exits 1 on a connection failure. Standard library only; its own
speed does not matter, only the server's instructions are counted.
"""

import socket
import sys
from collections import Counter

KEY = "vg_sim_key_alpha"


def request(route: str, port: int, file_id: str) -> bytes:
    host = f"Host: 127.0.0.1:{port}\r\n"
    if route == "redirect":
        return f"GET /files/{file_id}/redirect HTTP/1.1\r\n{host}\r\n".encode()
    if route == "json":
        return f"GET /files/{file_id} HTTP/1.1\r\n{host}\r\n".encode()
    if route == "v1get":
        return f"GET /v1/files/{file_id} HTTP/1.1\r\n{host}\r\n".encode()
    if route == "hydrate":
        return (
            f"POST /v1/files/{file_id}/hydrate HTTP/1.1\r\n{host}"
            f"Authorization: Bearer {KEY}\r\nContent-Length: 0\r\n\r\n"
        ).encode()
    return f"GET /healthz HTTP/1.1\r\n{host}\r\n".encode()


def read_response(sock: socket.socket, buf: bytearray) -> int:
    """Read one response (Content-Length framed) off `buf`/`sock`; return its status."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed before a response head")
        buf += chunk
    head_end = buf.index(b"\r\n\r\n") + 4
    head = bytes(buf[:head_end]).decode("latin-1")
    status = int(head.split(" ", 2)[1])
    length = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    while len(buf) < head_end + length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed inside a body")
        buf += chunk
    del buf[: head_end + length]
    return status


def main() -> int:
    port, route = int(sys.argv[1]), sys.argv[2]
    first, nfiles, count = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    reqs = [request(route, port, f"vg_file_alpha_{first + i:04d}") for i in range(nfiles)]
    tally: Counter = Counter()
    buf = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(count):
            sock.sendall(reqs[i % nfiles])
            tally[read_response(sock, buf)] += 1
    print(" ".join(f"{s}×{n}" for s, n in sorted(tally.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
