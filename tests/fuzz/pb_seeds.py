#!/usr/bin/python3
"""pb_seeds.py FILE.pb DIR - starting inputs for fuzz_pbcheck: every event
of an agent's -o pb: file (length-delimited sonde.v1.Event frames), each
written as one byte naming its type (the Event member number) followed by
the member's bytes, the form fuzz_pbcheck reads."""
import os
import sys


def varint(buf, i):
    v = shift = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7f) << shift
        shift += 7
        if b < 0x80:
            return v, i


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    with open(src, "rb") as f:
        buf = f.read()
    i = n = 0
    while i < len(buf):
        length, i = varint(buf, i)
        frame, i = buf[i:i + length], i + length
        key, j = varint(frame, 0)      # the Event's one member: a length-delimited field
        inner_len, j = varint(frame, j)
        with open(os.path.join(out, "event-%05d" % n), "wb") as f:
            f.write(bytes([key >> 3]) + frame[j:j + inner_len])
        n += 1
    print("pb_seeds: %d events from %s" % (n, src))


if __name__ == "__main__":
    main()
