#!/bin/sh
# Show sonde-agent at work on real traffic: make some (curl against local
# HTTP and HTTPS servers, dig against a local dnsmasq, ping, a UDP exchange,
# all on loopback and captured by tcpdump), run the agent on the capture, and
# print its flows and interface counters as tables.
#
#   sh scripts/demo.sh [BUILD_DIR]      (default: build; run as root)
#
# Needs what scripts/deps.sh installs (tcpdump, curl, dnsutils, dnsmasq-base,
# openssl, iputils-ping, Debian's python3). `make demo` runs deps.sh, builds,
# then this.
set -eu

BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
AGENT="$BUILD/sonde-agent"
PY=/usr/bin/python3

if [ ! -x "$AGENT" ]; then
    echo "demo: $AGENT not found; build first (make)" >&2
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "demo: capturing on the loopback interface needs root (sudo sh scripts/demo.sh)" >&2
    exit 1
fi
for t in tcpdump curl dig dnsmasq openssl ping $PY; do
    command -v "$t" >/dev/null 2>&1 || { echo "demo: $t is missing; run scripts/deps.sh" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/sonde-demo.XXXXXX)
trap 'rm -rf "$WORK"' EXIT INT TERM

echo "== making real traffic on lo (HTTP, HTTPS, DNS, ICMP, UDP) ..."
$PY "$ROOT/tests/integration/gen_traffic.py" "$WORK" >/dev/null
PCAP="$WORK/traffic.pcap"

# dnsmasq listened on a free port: name it to the agent as a DNS port
DNS_PORT=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["ports"]["dns"])' "$WORK/traffic.json")
echo "== sonde-agent -r traffic.pcap --threads 1 --dns-port $DNS_PORT -o json:events.jsonl"
"$AGENT" -r "$PCAP" --threads 1 --dns-port "$DNS_PORT" -o "json:$WORK/events.jsonl"

$PY - "$WORK/events.jsonl" "$WORK/traffic.json" <<'EOF'
import collections, json, sys

events = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
summary = json.load(open(sys.argv[2]))
names = {v: k for k, v in summary["ports"].items() if v}
flows, purges = {}, {}
for e in events:
    if e["type"] == "flow":
        flows[e["digest"]] = e
    elif e["type"] == "flow_purge":
        purges[e["digest"]] = e

def ep(ip, port, proto):
    host = "[%s]" % ip if ":" in ip else ip
    return host if proto in (1, 58) else "%s:%d" % (host, port)

print()
print("event types:", ", ".join("%s %d" % kv for kv in sorted(collections.Counter(e["type"] for e in events).items())))
print()
proto_names = {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6"}
rows = []
for d, f in flows.items():
    p = purges.get(d, {})
    proto = f.get("ip_protocol", 0)
    svc = names.get(f.get("other_port")) or names.get(f.get("local_port")) or ""
    det = f.get("detection") or {}
    app = det.get("name", "")
    if det.get("host_server_name"):
        app += " " + det["host_server_name"]
    rows.append((f.get("first_seen_at", 0), proto_names.get(proto, str(proto)), svc, app,
                 ep(f["local_ip"], f.get("local_port", 0), proto), ep(f["other_ip"], f.get("other_port", 0), proto),
                 "%d/%d" % (p.get("local_packets", 0), p.get("local_bytes", 0)),
                 "%d/%d" % (p.get("other_packets", 0), p.get("other_bytes", 0)),
                 p.get("reason", "-")))
rows.sort()
hdr = ("proto", "service", "detected (nDPI)", "local (sent first)", "other", "local pkts/bytes", "other pkts/bytes", "purge reason")
widths = [max(len(str(r[i + 1])) for r in rows + [(0,) + hdr]) for i in range(len(hdr))]
line = lambda r: "  ".join(str(v).ljust(w) for v, w in zip(r, widths))
print("flows (%d): one row per flow, final counters from flow_purge" % len(rows))
print(line(hdr))
print(line(["-" * w for w in widths]))
for r in rows:
    print(line(r[1:]))

dns = [e for e in events if e["type"] == "dns"]
print()
print("dns transactions (%d):" % len(dns))
for e in dns:
    ans = ", ".join("%s %s" % (a["rr_type_name"], a["data"]) for a in e.get("answers", []))
    print("  %-4s %-20s %-5s %-8s %6d us  %s" % (e["transport"], e["query_name"], e["query_type_name"],
          e.get("rcode_name", "-"), e.get("response_time_us", 0), ans[:70]))
print()
stats = [e for e in events if e["type"] == "interface_stats"]
if stats:
    s = stats[-1]
    print()
    print("interface_stats for %s:" % s["interface"])
    keys = ("raw", "ethernet", "ip4", "ip6", "tcp", "udp", "icmp", "ip_bytes", "largest_bytes",
            "discarded", "capture_dropped", "flow_dropped")
    for k in keys:
        print("  %-16s %s" % (k, s.get(k, 0)))
status = [e for e in events if e["type"] == "agent_status"]
if status:
    s = status[-1]
    print()
    print("agent_status: packets %s, events %s, flows purged %s (closed %s), events dropped %s" % (
        s.get("packets"), s.get("events"), s.get("flows_purged"), s.get("flows_closed"), s.get("events_dropped")))
EOF
