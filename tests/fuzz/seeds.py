"""Seed inputs for fuzz_packet from the nDPI corpus captures.

Each seed is one packet: a first byte naming its link type the way
fuzz_packet.c reads it, then the frame. Up to PER_FILE packets from every
classic pcap in ../shared/corpus/ndpi-4.2, so the fuzzer starts from real
DNS, TLS, HTTP, tunnels and the rest instead of from nothing; the corpus
has no DHCP, so a DHCP exchange is built here byte by byte.

    /usr/bin/python3 tests/fuzz/seeds.py CORPUS_DIR OUT_DIR
"""

import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import util  # noqa: E402

PER_FILE = 12
# pcap linktype -> index in fuzz_packet.c's link_types[]
SELECTOR = {1: 0, 101: 1, 113: 2, 276: 3, 0: 4, 9: 5, 104: 6, 228: 7, 229: 8, 51: 9}


def _csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def dhcp_frame(op, msg_type, src, dst, sport, dport, opts=b""):
    """An Ethernet/IPv4/UDP frame carrying one DHCP message."""
    mac = bytes.fromhex("020000000011")
    bootp = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", op, 1, 6, 0, 0x1234abcd, 0, 0x8000,
                        bytes(4), bytes([10, 0, 0, 50]) if op == 2 else bytes(4), bytes(4),
                        bytes(4), mac, b"", b"")
    body = bootp + bytes([99, 130, 83, 99, 53, 1, msg_type]) + opts + b"\xff"
    udp = struct.pack("!HHHH", sport, dport, 8 + len(body), 0) + body
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    return b"\xff" * 6 + mac + b"\x08\x00" + ip + udp


def dhcp_seeds():
    any_, bcast, srv = bytes(4), b"\xff" * 4, bytes([10, 0, 0, 1])
    client = bytes([12, 4]) + b"box1" + bytes([60, 4]) + b"vend" + bytes([55, 4, 1, 3, 6, 15])
    server = bytes([54, 4]) + srv + bytes([51, 4, 0, 0, 2, 88, 15, 4]) + b"lan1"
    return [dhcp_frame(1, 1, any_, bcast, 68, 67, client),
            dhcp_frame(2, 2, srv, bcast, 67, 68, server),
            dhcp_frame(1, 3, any_, bcast, 68, 67, client + bytes([50, 4, 10, 0, 0, 50])),
            dhcp_frame(2, 5, srv, bcast, 67, 68, server)]


def main(argv):
    if len(argv) != 3:
        print("usage: seeds.py CORPUS_DIR OUT_DIR", file=sys.stderr)
        return 2
    src, out = argv[1], argv[2]
    os.makedirs(out, exist_ok=True)
    n = 0
    for name in sorted(os.listdir(src)):
        try:
            _, _, linktype, recs = util.read_pcap(os.path.join(src, name))
        except (ValueError, OSError):
            continue  # pcapng and others: the fuzzer reaches them anyway
        if linktype not in SELECTOR:
            continue
        for i, (_, data) in enumerate(recs[:PER_FILE]):
            with open(os.path.join(out, "%s-%d" % (name, i)), "wb") as f:
                f.write(bytes([SELECTOR[linktype]]) + data)
            n += 1
    for i, frame in enumerate(dhcp_seeds()):
        with open(os.path.join(out, "dhcp-%d" % i), "wb") as f:
            f.write(bytes([SELECTOR[1]]) + frame)
        n += 1
    print("fuzz seeds: %d packets from %s and DHCP" % (n, src))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
