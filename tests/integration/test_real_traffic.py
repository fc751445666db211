"""sonde-agent on a capture of real traffic, checked against tshark.

The capture (gen_traffic.py) holds HTTP over IPv4 and IPv6 (curl against
python's http.server, with a 1 MiB download), HTTPS (curl against openssl
s_server), DNS over UDP and TCP (dig against dnsmasq), ping over ICMP and
ICMPv6, and a UDP echo exchange, all on loopback.

What this proves:

* every TCP and UDP conversation tshark sees is exactly one agent flow, with
  exactly tshark's per-direction packet and byte counts (bytes summed from
  tshark's per-packet frame lengths: its conversation table rounds them), and
  the agent has no flow tshark lacks; the same with --threads 1 and 2;
* flow fields: ip_version, ip_protocol, interface (the file), local = the side
  that sent first on loopback (local_origin true), other_type local,
  first/last_seen_at = tshark's first/last packet time, flow event counters
  never above the final ones;
* every flow has exactly one flow and one flow_purge; FIN/RST-ended TCP flows
  are purged "closed", the rest "terminated" at end of input;
* ICMP/ICMPv6 flow counters equal tshark's ICMP packet counts (tshark has no
  ICMP conversation table);
* the digest is the same whichever side is seen first and with 1 or 2
  threads;
* the final interface_stats equal tshark's counts (raw, ethernet, ip4/ip6,
  tcp/udp/icmp, bytes, largest frame), nothing discarded;
* --max-flows forces evictions without losing a packet or a flow_purge;
* -o pb: writes length-delimited protobuf, and sonde-pbcat (when built) turns
  it back into the same events as -o json:.
"""

import collections
import os
import shutil
import subprocess

import pytest

import util


def icmp_layer(pkt):
    """The ICMP/ICMPv6 layer the agent's flow is about: the first transport
    after the first IP header, if it is ICMP."""
    l4 = util.first_transport(pkt)
    return l4 if l4 in ("icmp", "icmpv6") else None


@pytest.fixture(scope="module")
def runs(agent, real_capture, tmp_path_factory):
    d = tmp_path_factory.mktemp("real-runs")
    out = {}
    for n in (1, 2):
        r = util.run_agent(["-r", real_capture.pcap, "--threads", str(n)], tmp_path=d)
        out[n] = r
    return out


def first_last(real_capture):
    """key -> (first sender endpoint, first time, last time) from tshark."""
    info = {}
    for p in real_capture.packets:
        for _, k, src in util.tshark_conv_contributions(p):
            if k not in info:
                info[k] = [src, p.time, p.time]
            info[k][2] = p.time
    return info


@pytest.mark.parametrize("threads", [1, 2])
def test_flows_match_tshark_exactly(runs, real_capture, threads):
    r = runs[threads]
    joined = r.flows()
    got, nflows = util.aggregate_agent(joined)
    exp = real_capture.conversations
    # The capture must hold what gen_traffic made, or the comparison proves little.
    ports = real_capture.summary["ports"]
    tcp_keys = [k for k in exp if k[0] == 6]
    udp_keys = [k for k in exp if k[0] == 17]
    assert len(tcp_keys) >= 4 + 2 + 2 + 1, "too few TCP conversations captured: %r" % tcp_keys
    assert len(udp_keys) >= 11 + 1, "too few UDP conversations captured: %r" % udp_keys
    assert any(k[0] == 17 and ports["udp_echo"] in (k[1][1], k[2][1]) for k in exp)
    big = max(exp.values(), key=lambda c: c[1] + c[3])
    assert big[1] + big[3] > real_capture.summary["big_size"], "the 1 MiB download is missing"

    diffs = util.compare_counters(exp, got)
    assert not diffs, "threads=%d: agent flows differ from tshark:\n%s" % (threads, util.format_diffs(diffs))
    # One flow per conversation: tshark's stream index and the agent agree.
    split = {k: (len(real_capture.streams[k]), nflows[k]) for k in exp
             if len(real_capture.streams[k]) != nflows[k]}
    assert not split, "flows per 5-tuple (tshark streams, agent flows) differ: %r" % split


@pytest.mark.parametrize("threads", [1, 2])
def test_flow_fields(runs, real_capture, threads):
    r = runs[threads]
    info = first_last(real_capture)
    problems = []
    for jf in r.flows().values():
        f, pg = jf.flow, jf.purge
        if jf.proto not in (6, 17):
            continue
        k = jf.key()
        if k not in info:
            problems.append("%r: not a tshark conversation" % jf)
            continue
        first_src, t0, t1 = info[k]
        ipv = 6 if ":" in jf.local[0] else 4
        checks = [
            ("ip_version", f.get("ip_version"), ipv),
            ("interface", f.get("interface"), real_capture.pcap),
            ("purge interface", pg.get("interface"), real_capture.pcap),
            ("local endpoint (first sender)", jf.local, first_src),
            ("local_origin", f.get("local_origin"), True),
            ("other_type", f.get("other_type"), "local"),
            ("first_seen_at", abs(int(pg.get("first_seen_at", 0)) - int(t0 * 1000)) <= 1, True),
            ("last_seen_at", abs(int(pg.get("last_seen_at", 0)) - int(t1 * 1000)) <= 1, True),
            ("total_packets", int(pg.get("total_packets", 0)), jf.local_packets + jf.other_packets),
            ("total_bytes", int(pg.get("total_bytes", 0)), jf.local_bytes + jf.other_bytes),
        ]
        for name in ("local_packets", "other_packets", "local_bytes", "other_bytes"):
            checks.append(("flow %s <= purge" % name, int(f.get(name, 0)) <= int(pg.get(name, 0)), True))
        if jf.proto == 6:
            checks.append(("tcp info present", isinstance(f.get("tcp"), dict), True))
        for name, got, want in checks:
            if got != want:
                problems.append("%r: %s = %r, expected %r" % (jf, name, got, want))
    assert not problems, "threads=%d:\n  %s" % (threads, "\n  ".join(problems[:40]))


@pytest.mark.parametrize("threads", [1, 2])
def test_event_stream_shape(runs, real_capture, threads):
    r = runs[threads]
    assert r.events, "no events"
    assert r.events[0]["type"] == "agent_hello", "first event is %r" % r.events[0]["type"]
    hello = r.events[0]
    assert int(hello.get("threads", 0)) == threads
    seqs = [int(e.get("seq", 0)) for e in r.events]
    # seq starts at the agent's start time in microseconds (unique across runs)
    assert abs(seqs[0] // 1000 - int(hello["start_time"])) < 60_000, (seqs[0], hello["start_time"])
    assert sorted(seqs) == list(range(seqs[0], seqs[0] + len(seqs))), \
        "seq is not consecutive without gaps or repeats"
    inversions = [(a["type"], a["seq"], b["type"], b["seq"]) for a, b in zip(r.events, r.events[1:])
                  if int(b["seq"]) <= int(a["seq"])]
    assert not inversions, "seq not strictly increasing in output order (type, seq, next type, next seq): %r" \
        % inversions[:10]
    assert len({e.get("agent_id") for e in r.events}) == 1
    ifs = r.of_type("interface")
    assert len(ifs) == 1, ifs
    assert ifs[0]["interface"] == real_capture.pcap
    assert ifs[0].get("capture_type") == "file"
    assert ifs[0].get("link_type") == "EN10MB"
    types = r.types()
    for t in ("flow", "flow_purge", "interface_stats"):
        assert types[t] > 0, "no %s events: %r" % (t, types)
    for t in util.PACKET_EVENT_TYPES:
        assert types[t] == 0, "packet-layer events are off by default, got %d %s" % (types[t], t)
    for pg in r.of_type("flow_purge"):
        assert pg.get("reason") in util.PURGE_REASONS, pg


@pytest.mark.parametrize("threads", [1, 2])
def test_purge_reasons(runs, real_capture, threads):
    fin = collections.defaultdict(set)
    rst = set()
    for p in real_capture.packets:
        for i, k, src in util.tshark_conv_contributions(p):
            if k[0] != 6:
                continue
            flags = util._int(p.layers[i].f.get("flags"), 0)
            if flags & 0x01:
                fin[k].add(src)
            if flags & 0x04:
                rst.add(k)
    problems = []
    nclosed = 0
    for jf in runs[threads].flows().values():
        k = jf.key()
        if jf.proto == 6 and (len(fin[k]) == 2 or k in rst):
            want = "closed"
            nclosed += 1
        else:
            want = "terminated"
        if jf.reason != want:
            problems.append("%r: reason %r, expected %r" % (jf, jf.reason, want))
    assert nclosed >= 8, "expected the curl/dig TCP connections to end with FIN"
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("threads", [1, 2])
def test_icmp_flows(runs, real_capture, threads):
    exp = collections.Counter()
    exp_bytes = collections.Counter()
    pair = collections.Counter()  # 127.0.0.1 <-> 127.0.0.2, by sender
    for p in real_capture.packets:
        l4 = icmp_layer(p)
        if not l4:
            continue
        proto = 1 if l4 == "icmp" else 58
        exp[proto] += 1
        exp_bytes[proto] += p.len
        ip = util.first_ip(p)
        if {ip.f.get("src"), ip.f.get("dst")} == {"127.0.0.1", "127.0.0.2"}:
            pair[(ip.f["src"], "pkts")] += 1
            pair[(ip.f["src"], "bytes")] += p.len
    assert exp[1] >= 12 and exp[58] >= 4, "pings missing from the capture: %r" % exp
    got = collections.Counter()
    got_bytes = collections.Counter()
    pair_flows = []
    for jf in runs[threads].flows().values():
        if jf.proto in (1, 58):
            got[jf.proto] += jf.local_packets + jf.other_packets
            got_bytes[jf.proto] += jf.local_bytes + jf.other_bytes
            if {jf.local[0], jf.other[0]} == {"127.0.0.1", "127.0.0.2"}:
                pair_flows.append(jf)
            assert jf.reason == "terminated", jf
    assert (got, got_bytes) == (exp, exp_bytes), \
        "ICMP/ICMPv6 packets,bytes: agent %r %r, tshark %r %r" % (got, got_bytes, exp, exp_bytes)
    # ping 127.0.0.2: the pinging side (127.0.0.1) sent first, so it is local.
    assert len(pair_flows) == 1, pair_flows
    jf = pair_flows[0]
    assert jf.local[0] == "127.0.0.1", jf
    assert (jf.local_packets, jf.local_bytes, jf.other_packets, jf.other_bytes) == (
        pair[("127.0.0.1", "pkts")], pair[("127.0.0.1", "bytes")],
        pair[("127.0.0.2", "pkts")], pair[("127.0.0.2", "bytes")]), jf
    assert int(jf.flow.get("icmp_type", -1)) == 8, jf.flow


def test_digest_stable_across_threads(runs):
    a = {d: (jf.key(), jf.counters(), jf.reason) for d, jf in runs[1].flows().items()}
    b = {d: (jf.key(), jf.counters(), jf.reason) for d, jf in runs[2].flows().items()}
    assert len(a) == len(b), "flow count: threads=1 %d, threads=2 %d" % (len(a), len(b))
    assert a == b, "flows by digest differ between --threads 1 and 2:\n%r\n%r" % (
        sorted(set(a.items()) - set(b.items()))[:10], sorted(set(b.items()) - set(a.items()))[:10])
    keys = [v[0] for v in a.values()]
    assert len(set(keys)) == len(keys), "two flows share a 5-tuple"


def test_digest_independent_of_direction(agent, real_capture, tmp_path):
    """The digest hashes the canonical (direction-free) flow key, the first
    packet's time and the interface. Mirror every packet (swap MACs, IPs and
    ports; times and lengths unchanged): each flow now starts from its other
    side at the same instant, so at the same input path its digest must not
    change, while local/other swap endpoints and keep their counters."""
    path = str(tmp_path / "input.pcap")
    shutil.copy(real_capture.pcap, path)
    full = util.run_agent(["-r", path, "--threads", "1"], tmp_path=tmp_path)
    header, _, linktype, recs = util.read_pcap(real_capture.pcap)
    assert linktype == 1, "loopback capture is expected to be Ethernet (DLT 1)"
    util.write_pcap(path, header, [(h, util.mirror_packet(d)) for h, d in recs])
    mir = util.run_agent(["-r", path, "--threads", "1"], tmp_path=tmp_path)
    a = {jf.key(): jf for jf in full.flows().values() if jf.proto in (6, 17)}
    b = {jf.key(): jf for jf in mir.flows().values() if jf.proto in (6, 17)}
    assert len(a) >= 10 and set(a) == set(b), (sorted(a), sorted(b))
    bad = []
    for k, jf in a.items():
        m = b[k]
        if m.digest != jf.digest:
            bad.append("%s: digest %s, mirrored %s" % (util.fmt_key(k), jf.digest, m.digest))
        if (m.local, m.other) != (jf.other, jf.local) or \
                (m.local_packets, m.local_bytes, m.other_packets, m.other_bytes) != \
                (jf.local_packets, jf.local_bytes, jf.other_packets, jf.other_bytes):
            bad.append("mirrored %r vs original %r" % (m, jf))
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("threads", [1, 2])
def test_interface_stats(runs, real_capture, threads):
    pk = real_capture.packets
    st = runs[threads].final_interface_stats()
    assert real_capture.pcap in st, "no interface_stats for %s: %r" % (real_capture.pcap, list(st))
    s = st[real_capture.pcap]
    ipk = [p for p in pk if util.first_ip(p) is not None]
    exp = {
        "raw": len(pk),
        "ethernet": sum(1 for p in pk if p.layers and p.layers[0].name == "eth"),
        "ip": len(ipk),
        "ip4": sum(1 for p in ipk if util.first_ip(p).name == "ip"),
        "ip6": sum(1 for p in ipk if util.first_ip(p).name == "ipv6"),
        "tcp": sum(1 for p in pk if util.first_transport(p) == "tcp"),
        "udp": sum(1 for p in pk if util.first_transport(p) == "udp"),
        "icmp": sum(1 for p in pk if util.first_transport(p) in ("icmp", "icmpv6")),
        "ip_bytes": sum(p.len for p in ipk),
        "largest_bytes": max(p.len for p in pk),
        "discarded": 0,
        "fragmented": 0,
        "vlan": 0,
        "tunnel": 0,
        "capture_dropped": 0,
    }
    exp["wire_bytes"] = sum(p.len for p in pk) + 24 * exp["ethernet"]
    got = {k: int(s.get(k, 0)) for k in exp}
    assert got == exp, "interface_stats differ from tshark:\n  agent  %r\n  tshark %r" % (got, exp)
    # Both fields must be present even when zero: a user must see "0 dropped".
    for k in ("raw", "capture_dropped", "discarded"):
        assert k in s, "interface_stats lacks %r: %r" % (k, s)


def test_max_flows_evicts_without_losing_packets(agent, real_capture, tmp_path):
    r = util.run_agent(["-r", real_capture.pcap, "--threads", "1", "--max-flows", "16"], tmp_path=tmp_path)
    joined = r.flows()
    reasons = collections.Counter(jf.reason for jf in joined.values())
    assert reasons["evicted"] > 0, "no evictions with --max-flows 16: %r" % reasons
    s = r.final_interface_stats()[real_capture.pcap]
    ip_packets = sum(1 for p in real_capture.packets if util.first_ip(p) is not None)
    in_flows = sum(jf.local_packets + jf.other_packets for jf in joined.values())
    assert in_flows + int(s.get("flow_dropped", 0)) == ip_packets, \
        "packets in flows %d + flow_dropped %s != IP packets %d" % (in_flows, s.get("flow_dropped"), ip_packets)
    if int(s.get("flow_dropped", 0)) == 0:
        got, _ = util.aggregate_agent(joined)
        diffs = util.compare_counters(real_capture.conversations, got)
        assert not diffs, "with evictions, per-5-tuple sums differ:\n" + util.format_diffs(diffs)
    status = r.of_type("agent_status")
    assert status, "no agent_status at exit"
    assert int(status[-1].get("flows_evicted", 0)) == reasons["evicted"], (status[-1], reasons)


def read_varint(buf, i):
    shift = v = 0
    while True:
        if i >= len(buf):
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        if not b & 0x80:
            return v, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def test_pb_output(agent, real_capture, tmp_path):
    js = str(tmp_path / "events.jsonl")
    pb = str(tmp_path / "events.pb")
    r = util.run_agent(["-r", real_capture.pcap, "--threads", "1", "-o", "json:" + js, "-o", "pb:" + pb],
                       tmp_path=tmp_path)
    with open(pb, "rb") as f:
        data = f.read()
    # Length-delimited messages that tile the file exactly.
    n = i = 0
    while i < len(data):
        ln, i = read_varint(data, i)
        assert ln > 0 and i + ln <= len(data), "bad length %d at offset %d of %d" % (ln, i, len(data))
        i += ln
        n += 1
    assert n == len(r.events), "pb holds %d messages, json %d events" % (n, len(r.events))
    pbcat = util.pbcat_path()
    if not os.access(pbcat, os.X_OK):
        pytest.skip("sonde-pbcat not built (%s): pb content not compared with json" % pbcat)
    p = subprocess.run([pbcat, pb], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                       env=util.agent_env())
    err = p.stderr.decode(errors="replace")
    util.assert_no_sanitizer(err, "sonde-pbcat")
    assert p.returncode == 0, err
    from_pb = util.parse_jsonl(p.stdout.decode(), "sonde-pbcat output")
    assert len(from_pb) == len(r.events)
    for a, b in zip(r.events, from_pb):
        assert a == b, "json and pb differ:\n json %r\n pb   %r" % (a, b)
