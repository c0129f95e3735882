"""A Python `websockets` peer for tests/deflate_interop.rs and
benches/deflate.sh, always with permessage-deflate.

    python3 ws_peer.py client URL VARIANT   echo round trips against URL; the
                                            content of every echo is checked
                                            here; prints "OK ext=<header>" and
                                            exits 0, or exits 1 with the reason
    python3 ws_peer.py server VARIANT       echo server on 127.0.0.1:0; prints
                                            "PORT <n>"; a text "__report__" is
                                            answered with JSON {ext, digests}
                                            (SHA-1 of every message received)

VARIANT: "default" = websockets' defaults (compression="deflate": a client
offers client_max_window_bits, a server answers with windows of 12 bits);
"small" = both windows at 10 bits, asked for by the client or imposed by
the server; "bench" = the defaults.
"""

import hashlib
import json
import os
import sys

from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)
from websockets.sync.client import connect
from websockets.sync.server import serve

MAX = 64 << 20


def json_like(n: int) -> str:
    """JSON-like text of exactly n bytes (the generator of ws_peer.js)."""
    parts, size, i = [], 0, 0
    while size < n:
        r = (
            f'{{"id":{i},"user":"user-{i}","email":"user-{i}@example.com",'
            f'"active":{"true" if i % 3 == 0 else "false"},"score":{(i * 37) % 1000},'
            f'"tags":["alpha","beta"],"note":"caf\u00e9 \u2713"}},'
        )
        parts.append(r)
        size += len(r.encode())
        i += 1
    b = "".join(parts).encode()
    cut = min(n, len(b))
    while 0 < cut < len(b) and (b[cut] & 0xC0) == 0x80:
        cut -= 1
    return (b[:cut] + b" " * (n - cut)).decode()


def messages():
    out = []
    for n in (16, 1024, 65536, 1 << 20):
        out.append((json_like(n), 1))
        out.append((os.urandom(n), 1))
    out.append((json_like(65536), 3))
    out.append((os.urandom(100000), 4))
    out.append((json_like(200000).encode(), 5))
    out.append(("", 1))
    return out


def split(m, k):
    step = -(-len(m) // k)
    return [m[i * step : (i + 1) * step] for i in range(k)]


def fail(msg):
    print("FAIL " + msg, flush=True)
    sys.exit(1)


def client(url, variant):
    kw = {"max_size": MAX, "compression": "deflate"}
    if variant == "small":
        kw["extensions"] = [
            ClientPerMessageDeflateFactory(
                client_max_window_bits=10, server_max_window_bits=10
            )
        ]
    msgs = messages()
    with connect(url, **kw) as ws:
        ext = ws.response.headers.get("Sec-WebSocket-Extensions")
        if not ext or not ext.startswith("permessage-deflate"):
            fail(f"not negotiated: {ext}")
        for i, (m, frags) in enumerate(msgs):
            ws.send(m if frags == 1 else iter(split(m, frags)))
            back = ws.recv()
            if type(back) is not type(m):
                fail(f"message {i}: got {type(back).__name__}, sent {type(m).__name__}")
            if back != m:
                fail(f"message {i}: {len(back)} back, {len(m)} sent, content differs")
    print(f"OK ext={ext} messages={len(msgs)}", flush=True)


def server(variant):
    kw = {"max_size": MAX, "compression": "deflate"}
    if variant == "small":
        kw["extensions"] = [
            ServerPerMessageDeflateFactory(
                server_max_window_bits=10, client_max_window_bits=10
            )
        ]

    def handler(ws):
        ext = ws.response.headers.get("Sec-WebSocket-Extensions")
        digests = []
        for m in ws:
            if m == "__report__":
                ws.send(json.dumps({"ext": ext, "digests": digests}))
                continue
            b = m.encode() if isinstance(m, str) else m
            kind = "t" if isinstance(m, str) else "b"
            digests.append(f"{kind}:{len(b)}:{hashlib.sha1(b).hexdigest()}")
            ws.send(m)

    with serve(handler, "127.0.0.1", 0, **kw) as srv:
        print(f"PORT {srv.socket.getsockname()[1]}", flush=True)
        srv.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "client":
        client(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 3 and sys.argv[1] == "server":
        server(sys.argv[2])
    else:
        fail("usage: ws_peer.py client URL VARIANT | server VARIANT")
