"""Seed inputs for fuzz_packet from the nDPI corpus captures.

Each seed is one packet: a first byte naming its link type the way
fuzz_packet.c reads it, then the frame. Up to PER_FILE packets from every
classic pcap in ../shared/corpus/ndpi-4.2, so the fuzzer starts from real
DNS, TLS, HTTP, tunnels and the rest instead of from nothing.

    /usr/bin/python3 tests/fuzz/seeds.py CORPUS_DIR OUT_DIR
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import util  # noqa: E402

PER_FILE = 12
# pcap linktype -> index in fuzz_packet.c's link_types[]
SELECTOR = {1: 0, 101: 1, 113: 2, 276: 3, 0: 4, 9: 5, 104: 6, 228: 7, 229: 8, 51: 9}


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
    print("fuzz seeds: %d packets from %s" % (n, src))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
