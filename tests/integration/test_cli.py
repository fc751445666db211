"""The sonde-agent command line: options, errors, inputs and outputs.

What this proves (exit codes per docs/agent.md: 0 success, 1 runtime error,
2 usage error):

* --help exits 0 and lists every option of the option table
  (src/agent/options.c), including the ones the contract names; -V prints the
  version;
* usage errors (unknown option, bad value, unknown output type or event type,
  no source at all) exit 2 with a message naming the culprit;
* a missing file, a file that is not a capture, and empty standard input exit
  1 with a message naming the input, and no crash;
* a capture cut in the middle of a packet is read up to the cut: every flow is
  still purged, the counters equal tshark's on the same cut file, the damage
  is reported and the exit code is 1;
* '-r -' reads standard input and gives the same flows as the file;
  several -r read one after the other, each its own interface;
* --events keeps exactly the listed types; packet-layer types produce one
  record per header (tcp/udp counts equal tshark's), with ether_id shared by
  the layers of one packet; 'all' adds them to the default set;
* -o json:- writes the events to stdout, -o null writes nothing;
* --local-net makes an address local; --sample N accounts 1 in N packets and
  says so in sampling_rate;
* SIGTERM while reading an unfinished stream (a pipe) purges the live flows
  as "terminated" and exits 0.
"""

import collections
import os
import re
import signal
import subprocess
import time

import pytest

import util


def run_raw(args, input_bytes=b"", timeout=60):
    p = subprocess.run([util.agent_path()] + [str(a) for a in args], input=input_bytes,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                       env=util.agent_env())
    out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    util.assert_no_sanitizer(err)
    util.assert_not_killed(p.returncode, err)
    return p.returncode, out, err


def option_table():
    """(long name, short letter or None) of every entry in options.c."""
    src = os.path.join(util.REPO_ROOT, "src", "agent", "options.c")
    with open(src) as f:
        text = f.read()
    opts = re.findall(r'OPT\(\s*"([a-z0-9-]+)"\s*,\s*(\'.\'|0)', text)
    assert len(opts) >= 10, "could not read the option table from %s" % src
    return [(name, None if short == "0" else short.strip("'")) for name, short in opts]


def test_help_lists_every_option(agent):
    rc, out, err = run_raw(["--help"])
    assert rc == 0, err
    text = out + err
    missing = []
    for name, short in option_table():
        if "--" + name not in text:
            missing.append("--" + name)
        if short and not re.search(r"(^|[\s,])-%s\b" % re.escape(short), text):
            missing.append("-" + short)
    # The contract's own list, whatever the table says.
    for o in ("-r", "-i", "-s", "-f", "--immediate", "-o", "--events", "--threads", "--no-dpi",
              "--local-net", "--max-flows", "--sample", "json:", "pb:", "null"):
        if o not in text:
            missing.append(o)
    assert not missing, "--help does not mention %s:\n%s" % (missing, text)


def test_version(agent):
    rc, out, err = run_raw(["-V"])
    assert rc == 0 and re.search(r"\d+\.\d+\.\d+", out + err), (rc, out, err)


@pytest.mark.parametrize("args,culprit", [
    (["--bogus"], "--bogus"),
    (["-r", "x.pcap", "--threads", "0"], "--threads"),
    (["-r", "x.pcap", "--threads", "abc"], "--threads"),
    (["-r", "x.pcap", "--max-flows", "-5"], "--max-flows"),
    (["-r", "x.pcap", "-o", "foo:bar"], "foo:bar"),
    (["-r", "x.pcap", "--events", "bogus"], "bogus"),
    (["-r", "x.pcap", "--local-net", "not-a-cidr"], "not-a-cidr"),
    (["-r"], "-r"),
    ([], "-r"),
])
def test_usage_errors_exit_2(agent, args, culprit):
    rc, out, err = run_raw(args)
    assert rc == 2, "sonde-agent %s: exit %d, expected 2 (usage error); stderr: %s" % (" ".join(args), rc, err)
    assert culprit in err, "message does not name %r: %r" % (culprit, err)
    assert not out.strip(), "usage error wrote to stdout: %r" % out[:500]


def test_nonexistent_file(agent, tmp_path):
    path = str(tmp_path / "no-such-file.pcap")
    rc, out, err = run_raw(["-r", path, "-o", "null"])
    assert rc == 1, (rc, err)
    assert path in err and "No such file" in err, err


def test_not_a_pcap(agent, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("these are notes, not packets\n" * 20)
    rc, out, err = run_raw(["-r", str(path), "-o", "json:-"])
    assert rc == 1, (rc, err)
    assert str(path) in err, err
    events = util.parse_jsonl(out)
    assert not [e for e in events if e["type"] in ("flow", "flow_purge")], events


def test_empty_stdin(agent):
    rc, out, err = run_raw(["-r", "-", "-o", "json:-"], input_bytes=b"")
    assert rc == 1, (rc, err)
    assert "-" in err and err.strip(), err
    events = util.parse_jsonl(out)
    assert not [e for e in events if e["type"] in ("flow", "flow_purge")]


def test_truncated_capture(agent, real_capture, tmp_path):
    """Cut the file in the middle of a packet record; tshark reads the same
    complete packets and is the oracle for what the agent reads."""
    header, e, _, recs = util.read_pcap(real_capture.pcap)
    assert len(recs) > 20
    total = 24 + sum(16 + len(d) for _, d in recs[:len(recs) // 2])
    cut = total + 16 + len(recs[len(recs) // 2][1]) // 2  # halfway through a packet's data
    with open(real_capture.pcap, "rb") as f:
        data = f.read()[:cut]
    path = str(tmp_path / "cut.pcap")
    with open(path, "wb") as f:
        f.write(data)
    r = util.run_agent(["-r", path, "--threads", "1"], tmp_path=tmp_path, expect_rc=1)
    assert path in r.stderr and re.search(r"truncat|cut short|read error", r.stderr, re.I), r.stderr
    packets, conv_tables, _ = util.tshark_analyse(path)
    assert len(packets) == len(recs) // 2
    exp, _ = util.tshark_conversations(packets)
    got, _ = util.aggregate_agent(r.flows())  # also: every flow purged exactly once
    diffs = util.compare_counters(exp, got)
    assert not diffs, util.format_diffs(diffs)
    st = r.final_interface_stats()
    assert int(st[path]["raw"]) == len(packets), st


def test_stdin_same_as_file(agent, real_capture, tmp_path):
    with open(real_capture.pcap, "rb") as f:
        data = f.read()
    from_file = util.run_agent(["-r", real_capture.pcap, "--threads", "1"], tmp_path=tmp_path)
    from_stdin = util.run_agent(["-r", "-", "--threads", "1", "-o", "json:-"], input_bytes=data)
    a, _ = util.aggregate_agent(from_file.flows(), protos=(1, 6, 17, 58))
    b, _ = util.aggregate_agent(from_stdin.flows(), protos=(1, 6, 17, 58))
    assert a == b, util.format_diffs(util.compare_counters(a, b, "file", "stdin"))
    ifs = from_stdin.of_type("interface")
    assert [i["interface"] for i in ifs] == ["-"], ifs
    assert {jf.flow["interface"] for jf in from_stdin.flows().values()} == {"-"}


def test_several_files_are_several_interfaces(agent, real_capture, tmp_path):
    second = str(tmp_path / "second.pcap")
    header, _, _, recs = util.read_pcap(real_capture.pcap)
    util.write_pcap(second, header, recs[:40])
    r = util.run_agent(["-r", real_capture.pcap, "-r", second, "--threads", "1"], tmp_path=tmp_path)
    assert [i["interface"] for i in r.of_type("interface")] == [real_capture.pcap, second]
    st = r.final_interface_stats()
    assert int(st[real_capture.pcap]["raw"]) == len(recs) and int(st[second]["raw"]) == 40, st
    per_if = collections.Counter(jf.flow["interface"] for jf in r.flows().values())
    only_second = util.run_agent(["-r", second, "--threads", "1"], tmp_path=tmp_path)
    assert per_if[second] == len(only_second.flows()) > 0, per_if


def test_events_filter_exact(agent, real_capture):
    for sel in (["flow"], ["flow_purge", "interface_stats"], ["interface", "agent_hello"]):
        r = util.run_agent(["-r", real_capture.pcap, "--threads", "1", "--events", ",".join(sel),
                            "-o", "json:-"])
        types = set(r.types())
        assert types == set(sel), "--events %s gave %r" % (",".join(sel), dict(r.types()))


def test_packet_layer_events(agent, real_capture):
    r = util.run_agent(["-r", real_capture.pcap, "--threads", "1", "--events", "eth,ip4,ip6,tcp,udp,icmp4,icmp6",
                        "-o", "json:-"])
    pk = real_capture.packets
    count = lambda name: sum(sum(1 for l in p.layers if l.name == name) for p in pk)  # noqa: E731
    got = r.types()
    exp = {"eth": len(pk), "ip4": count("ip"), "ip6": count("ipv6"), "tcp": count("tcp"),
           "udp": count("udp"), "icmp4": count("icmp"), "icmp6": count("icmpv6")}
    assert {k: got[k] for k in exp} == exp, "packet-layer records: agent %r, tshark %r" % (dict(got), exp)
    assert set(got) == set(exp), "unexpected types %r" % (set(got) - set(exp))
    eth_ids = [e["ether_id"] for e in r.of_type("eth")]
    assert len(set(eth_ids)) == len(eth_ids), "ether_id not unique per packet"
    ids = set(eth_ids)
    for t in ("ip4", "ip6", "tcp", "udp", "icmp4", "icmp6"):
        for e in r.of_type(t):
            assert e["ether_id"] in ids, "%s record with an ether_id no eth record has" % t
    # Field values against tshark, packet by packet (order is packet order with one thread).
    frame_lens = [p.len for p in pk]
    assert [int(e["frame_len"]) for e in r.of_type("eth")] == frame_lens
    tcp_ports = [(util._int(l.f["srcport"]), util._int(l.f["dstport"])) for p in pk for l in p.layers if l.name == "tcp"]
    assert [(int(e["src_port"]), int(e["dst_port"])) for e in r.of_type("tcp")] == tcp_ports


def test_events_all(agent, real_capture):
    r = util.run_agent(["-r", real_capture.pcap, "--threads", "1", "--events", "all", "-o", "json:-"])
    types = r.types()
    for t in ("agent_hello", "interface", "interface_stats", "flow", "flow_purge", "eth", "tcp", "udp",
              "ip4", "ip6", "icmp4", "icmp6"):
        assert types[t] > 0, "--events all lacks %s: %r" % (t, dict(types))
    assert types["eth"] == len(real_capture.packets)


def test_json_stdout_and_null(agent, real_capture, tmp_path):
    to_file = util.run_agent(["-r", real_capture.pcap, "--threads", "1"], tmp_path=tmp_path)
    to_stdout = util.run_agent(["-r", real_capture.pcap, "--threads", "1", "-o", "json:-"])
    strip = lambda evs: [{k: v for k, v in e.items() if k not in ("timestamp", "seq")}  # noqa: E731
                         for e in evs if e["type"] not in ("agent_hello", "agent_status")]
    assert strip(to_file.events) == strip(to_stdout.events)
    assert to_stdout.of_type("flow_purge")
    rc, out, err = run_raw(["-r", real_capture.pcap, "-o", "null"])
    assert rc == 0 and out == "", (rc, out[:300], err)


def scapy_pcap(path, packets):
    from scapy.all import wrpcap  # noqa: E402 (slow import, only here)
    wrpcap(path, packets)


def test_local_net(agent, tmp_path):
    from scapy.all import Ether, IP, UDP, Raw
    pk = []
    t = 1700000000.0
    for i in range(3):
        a = Ether() / IP(src="198.51.100.7", dst="203.0.113.9") / UDP(sport=40000, dport=53) / Raw(b"q" * 20)
        b = Ether() / IP(src="203.0.113.9", dst="198.51.100.7") / UDP(sport=53, dport=40000) / Raw(b"r" * 60)
        a.time, b.time = t + i, t + i + 0.1
        pk += [a, b]
    path = str(tmp_path / "public.pcap")
    scapy_pcap(path, pk)
    plain = list(util.run_agent(["-r", path, "--threads", "1"], tmp_path=tmp_path).flows().values())
    assert len(plain) == 1
    f = plain[0]
    # Neither side local: the first sender is local, the other remote.
    assert f.local == ("198.51.100.7", 40000) and f.flow["local_origin"] is True, f
    assert f.flow["other_type"] == "remote", f.flow
    ln = list(util.run_agent(["-r", path, "--threads", "1", "--local-net", "203.0.113.0/24"],
                             tmp_path=tmp_path).flows().values())
    assert len(ln) == 1
    g = ln[0]
    assert g.local == ("203.0.113.9", 53) and g.other == ("198.51.100.7", 40000), g
    assert g.flow["local_origin"] is False and g.flow["other_type"] == "remote", g.flow
    assert (g.local_packets, g.local_bytes, g.other_packets, g.other_bytes) == (
        3, 3 * len(pk[1]), 3, 3 * len(pk[0])), g


def test_sample(agent, real_capture, tmp_path):
    n = 4
    r = util.run_agent(["-r", real_capture.pcap, "--threads", "1", "--sample", str(n)], tmp_path=tmp_path)
    ip_packets = sum(1 for p in real_capture.packets if util.first_ip(p) is not None)
    joined = r.flows()
    sampled = sum(jf.local_packets + jf.other_packets for jf in joined.values())
    assert abs(sampled * n - ip_packets) <= n, "sampled %d of %d IP packets at 1 in %d" % (sampled, ip_packets, n)
    assert int(r.of_type("agent_hello")[0]["sampling_rate"]) == n
    for jf in joined.values():
        assert int(jf.flow["sampling_rate"]) == n and int(jf.purge["sampling_rate"]) == n, jf
    st = r.final_interface_stats()[real_capture.pcap]
    assert int(st["sampling_rate"]) == n and int(st["raw"]) == len(real_capture.packets), st


def test_sigterm_on_unfinished_stream(agent, real_capture, tmp_path):
    """Feed the first packets through a pipe and keep it open: the agent
    has live flows and waits for more. SIGTERM must purge them
    ("terminated", or "closed" for TCP flows that already ended) and exit 0."""
    header, _, _, recs = util.read_pcap(real_capture.pcap)
    # Up to the middle of the first HTTP connection: that flow stays open.
    first_tcp = next(i for i, p in enumerate(real_capture.packets) if util.first_transport(p) == "tcp")
    part = recs[:first_tcp + 4]
    out = str(tmp_path / "ev.jsonl")
    err_path = str(tmp_path / "err.txt")
    with open(err_path, "wb") as err:
        proc = subprocess.Popen([util.agent_path(), "-r", "-", "--threads", "1", "-o", "json:" + out],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err,
                                env=util.agent_env())
    try:
        proc.stdin.write(header + b"".join(h + d for h, d in part))
        proc.stdin.flush()
        time.sleep(1.0)
        assert proc.poll() is None, "agent exited before the end of its input"
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=20)
    finally:
        util.kill_proc(proc, signal.SIGKILL)
        if proc.stdin:
            try:
                proc.stdin.close()
            except OSError:
                pass
    with open(err_path) as f:
        stderr = f.read()
    util.assert_no_sanitizer(stderr)
    assert rc == 0, "exit %d after SIGTERM: %s" % (rc, stderr)
    with open(out) as f:
        events = util.parse_jsonl(f.read())
    joined = util.join_flows(events)
    assert joined, "no flows purged after SIGTERM"
    tcp = [jf for jf in joined.values() if jf.proto == 6]
    assert tcp and all(jf.reason == "terminated" for jf in tcp), tcp
    assert [e for e in events if e["type"] == "interface_stats"], "no final interface_stats"
