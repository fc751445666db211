#!/bin/sh
# run.sh [BUILD_DIR] - `make bench`: build the capture and the floor, then
# measure the floor, sonde-agent, softflowd and tshark on it and print one
# table (bench/report.py). See bench/README.md. Outputs go to bench/out/.
set -eu

BUILD=${1:-build}
cd "$(dirname "$0")/.."
OUT=bench/out
AGENT=$BUILD/sonde-agent
[ -x "$AGENT" ] || AGENT=$BUILD/src/agent/sonde-agent    # older trees
[ -x "$AGENT" ] || { echo "bench: no sonde-agent in $BUILD; run make first" >&2; exit 1; }
mkdir -p "$OUT"

sh bench/mkcapture.sh "$OUT/bench.pcap"

if [ ! -x "$OUT/pcapread" ] || [ bench/pcapread.c -nt "$OUT/pcapread" ]; then
    cc -O2 bench/pcapread.c -lpcap -o "$OUT/pcapread"
fi
# the RSS baseline for bytes/flow: the capture's first 1000 packets
if [ ! -s "$OUT/small.pcap" ] || [ "$OUT/bench.pcap" -nt "$OUT/small.pcap" ]; then
    editcap -F pcap -r "$OUT/bench.pcap" "$OUT/small.pcap" 1-1000
fi

/usr/bin/python3 bench/report.py --agent "$AGENT" --pcapread "$OUT/pcapread" \
    --capture "$OUT/bench.pcap" --small "$OUT/small.pcap" --json "$OUT/results.json" \
    --runs "${BENCH_RUNS:-5}" --dpi-runs "${BENCH_DPI_RUNS:-11}"

# the transport: push throughput, Python reference, protobuf per type
exec /usr/bin/python3 bench/grpc_bench.py --build "$BUILD" --out "$OUT" \
    --seconds "${BENCH_GRPC_SECONDS:-30}" --py-seconds "${BENCH_PY_SECONDS:-10}" \
    --capture "$OUT/small.pcap" --json "$OUT/grpc.json"
