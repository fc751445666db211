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
