#!/bin/sh
# mkcapture.sh OUT [TARGET] - build the benchmark capture from the corpus.
#
# Takes every classic-pcap, Ethernet capture in ../shared/corpus/ndpi-4.2
# (capinfos decides; pcapng and other link types are skipped), clips each to
# its first hour and shifts it to start at the same instant, and merges them
# in time order into one "round" (~50k packets of concurrent traffic). Copies
# of the round are then rewritten with `tcprewrite --seed=N` (distinct random
# addresses, so distinct flows), shifted STEP seconds apart, and merged in
# time order until there are at least TARGET packets (default 1,000,000).
#
# Timestamps are kept monotonic on purpose: the agent (like softflowd) runs
# its flow clock on packet time, and a plain concatenation of captures years
# apart would make every later copy's flows expire at once, or never.
#
# OUT is reused if it exists and is newer than this script.
set -eu

OUT=${1:?usage: mkcapture.sh OUT [TARGET]}
TARGET=${2:-1000000}
HERE=$(cd "$(dirname "$0")" && pwd)
CORPUS=${SONDE_CORPUS:-$HERE/../../shared/corpus/ndpi-4.2}
T0=1704067200      # 2024-01-01T00:00:00Z, start of round 1
STEP=60            # seconds between the starts of two rounds
CLIP=3600          # keep each corpus file's first hour only

if [ -s "$OUT" ] && [ "$OUT" -nt "$0" ]; then
    echo "mkcapture: reusing $OUT ($(capinfos -T -r -c "$OUT" | cut -f2) packets)" >&2
    exit 0
fi
[ -d "$CORPUS" ] || { echo "mkcapture: corpus $CORPUS not found" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sonde-mkcap.XXXXXX")
trap 'rm -rf "$TMP"' EXIT INT TERM
mkdir -p "$TMP/norm" "$(dirname "$OUT")"

# 1. select and normalise: file<TAB>type<TAB>encap<TAB>first packet (epoch)
capinfos -T -r -t -E -a -S "$CORPUS"/* >"$TMP/list" 2>/dev/null || true
n=0
skipped=0
while IFS="$(printf '\t')" read -r f type encap start; do
    if [ "$type" != pcap ] || [ "$encap" != ether ]; then
        skipped=$((skipped + 1))     # pcapng, nsec pcap, or not Ethernet
        continue
    fi
    # tcprewrite refuses a few deliberately malformed (fuzz) captures
    if ! tcprewrite --seed=1 -i "$f" -o "$TMP/probe.pcap" >/dev/null 2>&1; then
        echo "mkcapture: skip $(basename "$f") (tcprewrite cannot rewrite it)" >&2
        skipped=$((skipped + 1))
        continue
    fi
    stop=$(awk -v s="$start" -v c="$CLIP" 'BEGIN { printf "%.6f", s + c }')
    adj=$(awk -v s="$start" -v t="$T0" 'BEGIN { printf "%.6f", t - s }')
    n=$((n + 1))
    editcap -F pcap -B "$stop" -t "$adj" "$f" "$TMP/norm/$(printf %03d $n).pcap"
done <"$TMP/list"
rm -f "$TMP/probe.pcap"
nfiles=$(ls "$TMP"/norm | wc -l)
[ "$nfiles" -gt 0 ] || { echo "mkcapture: no usable pcap in $CORPUS" >&2; exit 1; }
mergecap -F pcap -w "$TMP/round.pcap" "$TMP"/norm/*.pcap
per=$(capinfos -T -r -c "$TMP/round.pcap" | cut -f2)
rounds=$(( (TARGET + per - 1) / per ))
echo "mkcapture: $nfiles files ($skipped skipped: not pcap+Ethernet or not rewritable), $per packets per round, $rounds rounds" >&2

# 2. rounds: shift, then randomise addresses with a per-round seed
r=1
while [ "$r" -le "$rounds" ]; do
    editcap -F pcap -t $(( (r - 1) * STEP )) "$TMP/round.pcap" "$TMP/shift.pcap"
    # (it warns about checksums of odd packets; keep that out of the way)
    tcprewrite --seed="$r" -i "$TMP/shift.pcap" -o "$TMP/r$(printf %03d $r).pcap" \
        2>"$TMP/tcprewrite.log" || { cat "$TMP/tcprewrite.log" >&2; exit 1; }
    r=$((r + 1))
done
rm -f "$TMP/shift.pcap" "$TMP/round.pcap"
mergecap -F pcap -w "$OUT.tmp" "$TMP"/r*.pcap
mv "$OUT.tmp" "$OUT"
echo "mkcapture: wrote $OUT ($(capinfos -T -r -c "$OUT" | cut -f2) packets)" >&2
