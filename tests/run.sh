#!/bin/sh
# The whole test suite, as `make test` runs it: unit tests (cmocka, via
# meson) and integration tests (pytest with Debian's /usr/bin/python3), first
# on the normal build, then again on an AddressSanitizer +
# UndefinedBehaviorSanitizer build. Any sanitizer report fails the run.
set -eu

BUILD=${1:-build}
SAN=${2:-build-san}
PY=/usr/bin/python3

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

[ -f "$SAN/build.ninja" ] ||
    meson setup "$SAN" --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false
ninja -C "$SAN"

echo "== unit tests ($BUILD)"
meson test -C "$BUILD" --print-errorlogs
echo "== unit tests under ASan+UBSan ($SAN)"
meson test -C "$SAN" --print-errorlogs

echo "== integration tests ($BUILD)"
SONDE_BUILD="$BUILD" $PY -m pytest -q -p no:cacheprovider tests/integration
echo "== integration tests under ASan+UBSan ($SAN)"
SONDE_BUILD="$SAN" $PY -m pytest -q -p no:cacheprovider tests/integration

# libFuzzer: decode + flows + nDPI + DNS on one packet per input, under
# ASan+UBSan, for a bounded time (FUZZ_SECONDS, default 120), seeded with
# packets of the corpus captures when they are there. A crash, a leak or a
# sanitizer report fails the run; the input that caused it is left in
# build-fuzz/ (crash-*, leak-*) to reproduce with
#   build-fuzz/tests/fuzz/fuzz_packet build-fuzz/crash-...
FUZZ=${FUZZ:-build-fuzz}
CORPUS=${SONDE_CORPUS:-../shared/corpus/ndpi-4.2}
echo "== fuzzing decode + DPI for ${FUZZ_SECONDS:-120} s ($FUZZ)"
[ -f "$FUZZ/build.ninja" ] ||
    CC=clang meson setup "$FUZZ" --buildtype=debugoptimized -Dfuzz=true -Db_lto=false \
        -Db_sanitize=address,undefined -Db_lundef=false
ninja -C "$FUZZ" tests/fuzz/fuzz_packet tests/fuzz/fuzz_rpc tests/fuzz/fuzz_pbcheck
mkdir -p "$FUZZ/fuzz-corpus" "$FUZZ/fuzz-seeds"
if [ -d "$CORPUS" ]; then
    $PY tests/fuzz/seeds.py "$CORPUS" "$FUZZ/fuzz-seeds"
else
    echo "fuzz: no corpus at $CORPUS; starting from nothing"
fi
"$FUZZ/tests/fuzz/fuzz_packet" -max_total_time="${FUZZ_SECONDS:-120}" -rss_limit_mb=4096 \
    -artifact_prefix="$FUZZ/" -print_final_stats=1 "$FUZZ/fuzz-corpus" "$FUZZ/fuzz-seeds" \
    2>"$FUZZ/fuzz.log" || { tail -60 "$FUZZ/fuzz.log"; exit 1; }
tail -12 "$FUZZ/fuzz.log"

# libFuzzer: the gRPC server (HTTP/2 frames, request checks, message
# framing) on one client connection per input, FUZZ_RPC_SECONDS (default 60),
# seeded with hand-written gRPC requests (tests/fuzz/rpc_seeds.py).
echo "== fuzzing the gRPC server for ${FUZZ_RPC_SECONDS:-60} s ($FUZZ)"
mkdir -p "$FUZZ/fuzz-rpc-corpus" "$FUZZ/fuzz-rpc-seeds"
$PY tests/fuzz/rpc_seeds.py "$FUZZ/fuzz-rpc-seeds"
"$FUZZ/tests/fuzz/fuzz_rpc" -max_total_time="${FUZZ_RPC_SECONDS:-60}" -rss_limit_mb=4096 \
    -artifact_prefix="$FUZZ/rpc-" -print_final_stats=1 "$FUZZ/fuzz-rpc-corpus" \
    "$FUZZ/fuzz-rpc-seeds" 2>"$FUZZ/fuzz-rpc.log" || { tail -60 "$FUZZ/fuzz-rpc.log"; exit 1; }
tail -12 "$FUZZ/fuzz-rpc.log"

# libFuzzer: the generated event checker against the reflective one and
# protobuf-c, and the generated encoder against protobuf-c's pack, for
# FUZZ_PB_SECONDS (default 60), seeded with every event type the agent
# writes for a capture (tests/fuzz/pb_seeds.py).
echo "== fuzzing the event codec for ${FUZZ_PB_SECONDS:-60} s ($FUZZ)"
mkdir -p "$FUZZ/fuzz-pb-corpus"
SEEDCAP="$CORPUS/skype.pcap"; [ -f "$SEEDCAP" ] || SEEDCAP=$(ls "$CORPUS"/*.pcap 2>/dev/null | head -1)
if [ -n "$SEEDCAP" ] && "$BUILD/sonde-agent" -r "$SEEDCAP" -t 1 --events all \
        -o pb:"$FUZZ/pb-seeds.pb" 2>/dev/null; then
    $PY tests/fuzz/pb_seeds.py "$FUZZ/pb-seeds.pb" "$FUZZ/fuzz-pb-seeds"
else
    mkdir -p "$FUZZ/fuzz-pb-seeds"
fi
"$FUZZ/tests/fuzz/fuzz_pbcheck" -max_total_time="${FUZZ_PB_SECONDS:-60}" -rss_limit_mb=4096 \
    -artifact_prefix="$FUZZ/pb-" -print_final_stats=1 "$FUZZ/fuzz-pb-corpus" \
    "$FUZZ/fuzz-pb-seeds" 2>"$FUZZ/fuzz-pb.log" || { tail -60 "$FUZZ/fuzz-pb.log"; exit 1; }
tail -12 "$FUZZ/fuzz-pb.log"
