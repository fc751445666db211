"""The D3Events packet-layer records (eth, arp, ip4, ip6, tcp, udp, icmp4,
icmp6) agree with tshark, field by field, packet by packet.

ether_id is the packet's number in the capture (8 bytes, big-endian), so it
joins each record to tshark's frame.number. Two inputs: the real loopback
traffic of the session, and a capture crafted with scapy for the layers
loopback never carries (ARP, VLAN tags, ICMPv6, IPv6 extension headers,
a GRE tunnel). Also checked: records are off by default, --events selects
them per type, and --packet-sample thins them 1-in-N.
"""

import collections
import subprocess

import pytest

import util

PACKET_TYPES = ("eth", "arp", "ip4", "ip6", "tcp", "udp", "icmp4", "icmp6")

FIELDS = [
    "frame.number", "frame.len", "frame.cap_len", "eth.src", "eth.dst", "eth.type", "vlan.id",
    "arp.opcode", "arp.src.hw_mac", "arp.src.proto_ipv4", "arp.dst.hw_mac", "arp.dst.proto_ipv4",
    "ip.ttl", "ip.id", "ip.len", "ip.proto", "ip.src", "ip.dst", "ip.hdr_len",
    "ipv6.hlim", "ipv6.plen", "ipv6.nxt", "ipv6.src", "ipv6.dst", "ipv6.flow",
    "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.ack_raw", "tcp.flags", "tcp.window_size_value",
    "tcp.len", "tcp.options.mss_val", "udp.srcport", "udp.dstport", "udp.length",
    "icmp.type", "icmp.code", "icmpv6.type", "icmpv6.code",
]


def tshark_fields(pcap):
    cmd = ["tshark", "-r", pcap, "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
           "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True).stdout
    rows = {}
    for line in out.splitlines():
        vals = line.split("\t")
        row = {f: (v.split(",") if v else []) for f, v in zip(FIELDS, vals)}
        rows[int(row["frame.number"][0])] = row
    return rows


def records(agent, pcap, tmp_path, extra=()):
    run = util.run_agent(["--threads", "1", "-r", pcap, "-o", "json:-",
                          "--events", ",".join(PACKET_TYPES)] + list(extra), tmp_path=tmp_path)
    assert run.rc == 0, run.stderr
    by_frame = collections.defaultdict(lambda: collections.defaultdict(list))
    for e in util.parse_jsonl(run.stdout):
        assert e["type"] in PACKET_TYPES, e["type"]
        frame = int(e["ether_id"], 16)
        by_frame[frame][e["type"]].append(e)
    return by_frame


def num(v, base=10):
    return int(v, 16) if v.startswith("0x") else int(v, base)


def check_frame(n, row, recs):
    """Compare every record of frame n with tshark's fields (all occurrences)."""
    if row["eth.src"]:
        eths = recs["eth"]
        assert len(eths) == len(row["eth.src"]), n
        for e, src, dst in zip(eths, row["eth.src"], row["eth.dst"]):
            assert (e["src"], e["dst"]) == (src, dst), n
        assert eths[0]["frame_len"] == int(row["frame.len"][0])
        assert eths[0]["cap_len"] == int(row["frame.cap_len"][0])
        assert eths[0]["vlan"] == [int(v) for v in row["vlan.id"]][:2], n
    if row["arp.opcode"]:
        (a,) = recs["arp"]
        assert a["op"] == int(row["arp.opcode"][0])
        assert a["sha"] == row["arp.src.hw_mac"][0] and a["spa"] == row["arp.src.proto_ipv4"][0]
        assert a["tha"] == row["arp.dst.hw_mac"][0] and a["tpa"] == row["arp.dst.proto_ipv4"][0]
    ip4 = recs["ip4"]
    assert len(ip4) == len(row["ip.src"]), (n, ip4, row["ip.src"])
    for i, r in enumerate(ip4):
        assert r["src"] == row["ip.src"][i] and r["dst"] == row["ip.dst"][i], n
        assert r["ttl"] == int(row["ip.ttl"][i]) and r["id"] == num(row["ip.id"][i]), n
        assert r["total_length"] == int(row["ip.len"][i]), n
        assert r["protocol"] == int(row["ip.proto"][i]), n
        assert r["ihl"] == int(row["ip.hdr_len"][i]), n
        assert r["depth"] == i, n
    ip6 = recs["ip6"]
    assert len(ip6) == len(row["ipv6.src"]), n
    for i, r in enumerate(ip6):
        assert r["src"] == row["ipv6.src"][i] and r["dst"] == row["ipv6.dst"][i], n
        assert r["hop_limit"] == int(row["ipv6.hlim"][i]), n
        assert r["payload_length"] == int(row["ipv6.plen"][i]), n
        assert r["next_header"] == int(row["ipv6.nxt"][i]), n
        assert r["flow_label"] == num(row["ipv6.flow"][i]), n
    tcp = recs["tcp"]
    assert len(tcp) == len(row["tcp.srcport"]), n
    for i, r in enumerate(tcp):
        assert (r["src_port"], r["dst_port"]) == (int(row["tcp.srcport"][i]),
                                                 int(row["tcp.dstport"][i])), n
        assert r["seq_num"] == int(row["tcp.seq_raw"][i]), n
        assert r["ack_num"] == int(row["tcp.ack_raw"][i]), n
        assert r["flags"] == num(row["tcp.flags"][i]) & 0xff, n
        assert r["window"] == int(row["tcp.window_size_value"][i]), n
        assert r["payload_length"] == int(row["tcp.len"][i]), n
        if row["tcp.options.mss_val"]:
            assert r["mss"] == int(row["tcp.options.mss_val"][0]), n
    udp = recs["udp"]
    assert len(udp) == len(row["udp.srcport"]), n
    for i, r in enumerate(udp):
        assert (r["src_port"], r["dst_port"], r["length"]) == (
            int(row["udp.srcport"][i]), int(row["udp.dstport"][i]), int(row["udp.length"][i])), n
    for kind, t, c in (("icmp4", "icmp.type", "icmp.code"), ("icmp6", "icmpv6.type", "icmpv6.code")):
        got = recs[kind]
        if row[t]:
            assert got, n
            assert (got[0]["icmp_type"], got[0]["icmp_code"]) == (int(row[t][0]), int(row[c][0])), n


def compare_all(agent, pcap, tmp_path):
    rows = tshark_fields(pcap)
    recs = records(agent, pcap, tmp_path)
    assert set(recs) <= set(rows)
    for n, row in rows.items():
        check_frame(n, row, recs.get(n, collections.defaultdict(list)))
    return rows, recs


def test_real_traffic_records_match_tshark(agent, tshark, real_capture, tmp_path):
    rows, recs = compare_all(agent, real_capture.pcap, tmp_path)
    assert len(recs) == len(rows)  # every frame of loopback traffic has records
    kinds = collections.Counter(k for r in recs.values() for k in r)
    for k in ("eth", "ip4", "ip6", "tcp", "udp", "icmp4"):
        assert kinds[k] > 0, kinds


def crafted_pcap(path):
    from scapy.all import (ARP, GRE, ICMPv6EchoRequest, IP, IPv6, IPv6ExtHdrDestOpt,
                           IPv6ExtHdrHopByHop, TCP, UDP, Dot1Q, Ether, ICMP, wrpcap)
    m1, m2 = "02:00:00:00:00:01", "02:00:00:00:00:02"
    pkts = [
        Ether(src=m1, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=m1, psrc="10.9.0.1", pdst="10.9.0.2"),
        Ether(src=m2, dst=m1) / ARP(op=2, hwsrc=m2, psrc="10.9.0.2", hwdst=m1, pdst="10.9.0.1"),
        Ether(src=m1, dst=m2) / Dot1Q(vlan=42) / Dot1Q(vlan=7) / IP(src="10.9.0.1", dst="10.9.0.2", ttl=9, id=77)
        / UDP(sport=1000, dport=2000) / b"hello",
        Ether(src=m1, dst=m2) / IPv6(src="fd00::1", dst="fd00::2", fl=12345, hlim=3)
        / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / ICMPv6EchoRequest(id=5, seq=6),
        Ether(src=m1, dst=m2) / IP(src="192.0.2.1", dst="192.0.2.2") / GRE()
        / IP(src="10.9.0.1", dst="10.9.0.2", ttl=33) / TCP(sport=4000, dport=80, flags="S", seq=123456,
                                                          options=[("MSS", 1400)]),
        Ether(src=m2, dst=m1) / IP(src="10.9.0.2", dst="10.9.0.1") / ICMP(type=8, id=1, seq=2),
    ]
    wrpcap(path, pkts)


def test_crafted_layers_match_tshark(agent, tshark, tmp_path):
    pytest.importorskip("scapy.all")
    pcap = str(tmp_path / "crafted.pcap")
    crafted_pcap(pcap)
    rows, recs = compare_all(agent, pcap, tmp_path)
    assert len(recs) == 6
    assert recs[1]["arp"] and recs[2]["arp"]
    assert recs[3]["eth"][0]["vlan"] == [42, 7]
    assert recs[4]["ip6"][0]["ext_headers"] == [0, 60] and recs[4]["ip6"][0]["protocol"] == 58
    assert [r["depth"] for r in recs[5]["ip4"]] == [0, 1]  # outer and tunnelled IPv4
    assert recs[5]["tcp"][0]["mss"] == 1400
    ids = {r["ether_id"] for f in recs.values() for rs in f.values() for r in rs}
    assert len(ids) == 6  # one id per packet, shared by its layers


def test_records_off_by_default_and_sampled(agent, tmp_path):
    pytest.importorskip("scapy.all")
    pcap = str(tmp_path / "crafted.pcap")
    crafted_pcap(pcap)
    run = util.run_agent(["--threads", "1", "-r", pcap, "-o", "json:-"], tmp_path=tmp_path)
    assert run.rc == 0
    types = {e["type"] for e in util.parse_jsonl(run.stdout)}
    assert not types & set(PACKET_TYPES), types
    recs = records(agent, pcap, tmp_path, extra=["--packet-sample", "3"])
    assert sorted(recs) == [1, 4]  # packets 1 and 4 of 6
    run = util.run_agent(["--threads", "1", "-r", pcap, "-o", "json:-", "--events", "arp"],
                         tmp_path=tmp_path)
    assert [e["type"] for e in util.parse_jsonl(run.stdout)] == ["arp", "arp"]
