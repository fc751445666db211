#!/usr/bin/python3
"""rpc_seeds.py DIR - starting inputs for fuzz_rpc: HTTP/2 frames a gRPC
client sends, written out by hand (HPACK literals without Huffman coding),
so that the fuzzer begins from requests the server accepts and mutates
from there. The first byte of each input is 0: fuzz_rpc then sends the
connection preface and SETTINGS before the rest."""
import os
import struct
import sys

DATA, HEADERS, RST, SETTINGS, PING, GOAWAY, WINDOW = 0, 1, 3, 4, 6, 7, 8
END_STREAM, END_HEADERS = 0x1, 0x4


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def literal(name, value):
    """Literal header field without indexing, new name (RFC 7541 6.2.2)."""
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def request(path, stream=1, ctype=b"application/grpc", method=b"POST", extra=()):
    block = b"".join(literal(n, v) for n, v in [
        (b":method", method), (b":scheme", b"http"), (b":path", path),
        (b":authority", b"fuzz"), (b"te", b"trailers"), (b"content-type", ctype)] + list(extra))
    return frame(HEADERS, END_HEADERS, stream, block)


def message(body):
    return b"\x00" + struct.pack(">I", len(body)) + body


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    echo = message(b"hello")
    health = message(b"\x0a\x00")  # HealthCheckRequest{service: ""}
    seeds = {
        "unary": request(b"/f.F/Echo") + frame(DATA, END_STREAM, 1, echo),
        "split": request(b"/f.F/Echo") + frame(DATA, 0, 1, echo[:3]) +
        frame(DATA, 0, 1, echo[3:7]) + frame(DATA, END_STREAM, 1, echo[7:]),
        "two_in_one": request(b"/f.F/Echo") + frame(DATA, END_STREAM, 1, echo + echo),
        "oversize": request(b"/f.F/Echo") + frame(DATA, END_STREAM, 1,
                                                  b"\x00" + struct.pack(">I", 5000) + b"x" * 100),
        "compressed": request(b"/f.F/Echo") + frame(DATA, END_STREAM, 1, b"\x01" + echo[1:]),
        "unknown": request(b"/f.F/Nope") + frame(DATA, END_STREAM, 1, echo),
        "refuse": request(b"/f.F/Refuse") + frame(DATA, END_STREAM, 1, echo),
        "get": request(b"/f.F/Echo", method=b"GET") + frame(DATA, END_STREAM, 1, echo),
        "ctype": request(b"/f.F/Echo", ctype=b"text/plain") + frame(DATA, END_STREAM, 1, echo),
        "timeout": request(b"/f.F/Sink", extra=[(b"grpc-timeout", b"1m")]) +
        frame(DATA, 0, 1, echo),
        "bad_timeout": request(b"/f.F/Sink", extra=[(b"grpc-timeout", b"xx")]),
        "encoding": request(b"/f.F/Echo", extra=[(b"grpc-encoding", b"gzip")]),
        "health": request(b"/grpc.health.v1.Health/Check") + frame(DATA, END_STREAM, 1, health),
        "watch": request(b"/grpc.health.v1.Health/Watch") + frame(DATA, 0, 1, health),
        "reset": request(b"/f.F/Sink") + frame(DATA, 0, 1, echo) +
        frame(RST, 0, 1, struct.pack(">I", 8)),
        "streams": b"".join(request(b"/f.F/Echo", stream=s) + frame(DATA, END_STREAM, s, echo)
                            for s in (1, 3, 5, 7)),
        "control": frame(PING, 0, 0, b"12345678") + frame(WINDOW, 0, 0, struct.pack(">I", 1000)) +
        frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 1 << 20)) +
        frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0)),
    }
    for name, body in seeds.items():
        with open(os.path.join(out, "seed-" + name), "wb") as f:
            f.write(b"\x00" + body)


if __name__ == "__main__":
    main()
