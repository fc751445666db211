"""sonde-agent capturing live, inside a pair of network namespaces.

Two namespaces joined by a veth pair (10.203.X.1/24 and .2/24, IPv6 off so
the link is quiet); all traffic stays inside them. In namespace A the agent
captures on its veth end (--immediate) while tcpdump captures the same
interface as the oracle. From namespace B: ping, a TCP exchange that ends
with FIN, a TCP connection left open, and a UDP exchange, all to servers in
A. Then SIGTERM.

What this proves:

* the agent exits 0 on SIGTERM, without a sanitizer report;
* every TCP/UDP conversation of the test equals tshark's reading of the
  tcpdump capture exactly (packets and bytes per direction), the ICMP flow
  too (3 requests, 3 replies, the pinger local);
* the open connection is purged "terminated", the finished one "closed",
  UDP and ICMP "terminated"; every flow has one flow and one flow_purge;
* local = the side that sent first (both sides are RFC 1918), local_origin;
* the interface event describes the veth (name, MAC, address, live capture,
  EN10MB) and the final interface_stats reports capture_dropped (0 here)
  and counts what tcpdump saw.

The namespaces are deleted, and every process we started is stopped, even
when the test fails. Needs root and iproute2.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import time

import pytest

import gen_traffic
import util

PY = "/usr/bin/python3"

TCP_SERVER = r"""
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(8)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind((sys.argv[1], int(sys.argv[3])))
def udp():
    while True:
        d, a = u.recvfrom(65535); u.sendto(b"pong:" + d, a)
def serve(c):
    while True:
        d = c.recv(65536)
        if not d:
            c.close(); return
        c.sendall(b"echo:" + d)
threading.Thread(target=udp, daemon=True).start()
print("ready", flush=True)
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

TCP_CLIENT = r"""
import socket, sys
host, port, keep = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "keep"
c = socket.create_connection((host, port), timeout=5)
for n in (10, 1000, 3000):
    c.sendall(b"x" * n)
    want = 5 + n; got = b""
    while len(got) < want:
        got += c.recv(65536)
print("done", flush=True)
if keep:
    sys.stdin.read()   # hold the connection open until we are killed
c.close()
"""

UDP_CLIENT = r"""
import socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)
for n in (20, 200, 1200):
    u.sendto(b"u" * n, (sys.argv[1], int(sys.argv[2]))); u.recvfrom(65535)
print("done", flush=True)
"""


def sh(cmd, timeout=20, check=True):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("%s: %s" % (" ".join(cmd), p.stderr.decode(errors="replace")))
    return p


@pytest.fixture
def netns_pair(root):
    if shutil.which("ip") is None or shutil.which("tcpdump") is None:
        pytest.skip("needs iproute2 and tcpdump")
    tag = "%d%04d" % (os.getpid() % 10000, random.randrange(10000))
    ns_a, ns_b = "sonde-test-%s-a" % tag, "sonde-test-%s-b" % tag
    veth_a, veth_b = "sv%sa" % tag[-6:], "sv%sb" % tag[-6:]
    net = random.randrange(256)
    ip_a, ip_b = "10.203.%d.1" % net, "10.203.%d.2" % net
    created = []
    try:
        for ns in (ns_a, ns_b):
            sh(["ip", "netns", "add", ns])
            created.append(ns)
        sh(["ip", "link", "add", veth_a, "netns", ns_a, "type", "veth", "peer", "name", veth_b, "netns", ns_b])
        for ns, dev, ip in ((ns_a, veth_a, ip_a), (ns_b, veth_b, ip_b)):
            sh(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"])
            sh(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1"])
            sh(["ip", "-n", ns, "addr", "add", ip + "/24", "dev", dev])
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
            sh(["ip", "-n", ns, "link", "set", dev, "up"])
        mac = json.loads(sh(["ip", "-n", ns_a, "-j", "link", "show", veth_a]).stdout)[0]["address"]
        yield {"a": ns_a, "b": ns_b, "veth_a": veth_a, "ip_a": ip_a, "ip_b": ip_b, "mac_a": mac}
    finally:
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=20)


def wait_line(proc, word, timeout=10):
    """Read proc's stdout until a line with word (the process says it is ready)."""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < deadline:
        if sel.select(timeout=0.2):
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
            if word.encode() in buf:
                return
    raise AssertionError("process %r did not print %r: %r" % (proc.args, word, buf))


def test_live_capture_in_netns(agent, tshark, netns_pair, tmp_path):
    n = netns_pair
    tcp_port, udp_port = random.randrange(20000, 60000), random.randrange(20000, 60000)
    if udp_port == tcp_port:
        udp_port += 1
    events_path = str(tmp_path / "live.jsonl")
    pcap = str(tmp_path / "oracle.pcap")
    nsx = lambda ns: ["ip", "netns", "exec", ns]  # noqa: E731
    procs = []
    tcpdump = agent_proc = None
    try:
        server = subprocess.Popen(nsx(n["a"]) + [PY, "-c", TCP_SERVER, n["ip_a"], str(tcp_port), str(udp_port)],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        procs.append(server)
        wait_line(server, "ready")
        tcpdump = gen_traffic.Tcpdump(n["veth_a"], pcap, None, netns=n["a"])
        agent_proc = util.start_agent(["-i", n["veth_a"], "--immediate", "--threads", "1",
                                       "-o", "json:" + events_path],
                                      str(tmp_path / "agent.out"), str(tmp_path / "agent.err"), netns=n["a"])

        def agent_ready():
            assert agent_proc.poll() is None, "agent exited early: %s" % open(tmp_path / "agent.err").read()
            return os.path.exists(events_path) and '"type":"interface"' in open(events_path).read()
        try:
            util.wait_for(agent_ready, 10, what="the agent's interface event")
        except AssertionError:
            if agent_proc.poll() is not None:
                raise
            time.sleep(2)  # output may be buffered: give the capture time to open
        time.sleep(0.3)

        sh(nsx(n["b"]) + ["ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", n["ip_a"]], timeout=20)
        closed = subprocess.run(nsx(n["b"]) + [PY, "-c", TCP_CLIENT, n["ip_a"], str(tcp_port), "close"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        assert b"done" in closed.stdout, closed.stderr
        held = subprocess.Popen(nsx(n["b"]) + [PY, "-c", TCP_CLIENT, n["ip_a"], str(tcp_port), "keep"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.PIPE)
        procs.append(held)
        wait_line(held, "done")
        udp = subprocess.run(nsx(n["b"]) + [PY, "-c", UDP_CLIENT, n["ip_a"], str(udp_port)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        assert b"done" in udp.stdout, udp.stderr
        time.sleep(1.0)  # last ACKs; and --immediate means no batching delay

        util.stop_agent(agent_proc, str(tmp_path / "agent.err"), sig=signal.SIGTERM)
        agent_proc = None
        tstats = tcpdump.stop()
        tcpdump = None
    finally:
        if agent_proc is not None:
            util.kill_proc(agent_proc, signal.SIGKILL)
        if tcpdump is not None:
            tcpdump.stop()
        for p in procs:
            util.kill_proc(p, signal.SIGKILL)
            for f in (p.stdin, p.stdout):
                if f:
                    try:
                        f.close()
                    except OSError:
                        pass

    with open(events_path) as f:
        events = util.parse_jsonl(f.read(), events_path)
    joined = util.join_flows(events)
    packets, conv_tables, _ = util.tshark_analyse(pcap)
    assert tstats.get("dropped by kernel", 0) == 0, tstats
    exp, _ = util.tshark_conversations(packets)
    ours = lambda k: tcp_port in (k[1][1], k[2][1]) or udp_port in (k[1][1], k[2][1])  # noqa: E731
    exp = {k: v for k, v in exp.items() if ours(k)}
    assert len([k for k in exp if k[0] == 6]) == 2 and len([k for k in exp if k[0] == 17]) == 1, exp
    got, _ = util.aggregate_agent(joined)
    got = {k: v for k, v in got.items() if ours(k)}
    diffs = util.compare_counters(exp, got)
    assert not diffs, "live flows differ from tcpdump+tshark:\n" + util.format_diffs(diffs)

    by_key = {jf.key(): jf for jf in joined.values()}
    problems = []
    for k in exp:
        jf = by_key[k]
        if jf.local[0] != n["ip_b"] or jf.flow.get("local_origin") is not True or jf.flow.get("other_type") != "local":
            problems.append("%r: expected local = %s (first sender), local_origin, other_type local" % (jf, n["ip_b"]))
        if jf.flow.get("interface") != n["veth_a"]:
            problems.append("%r: interface %r" % (jf, jf.flow.get("interface")))
        if k[0] == 17:
            want = "terminated"
        else:
            # The connection that sent FIN in both directions is closed; the held one is still open.
            fins = {src for p in packets for i, kk, src in util.tshark_conv_contributions(p)
                    if kk == k and util._int(p.layers[i].f.get("flags"), 0) & 1}
            want = "closed" if len(fins) == 2 else "terminated"
        if jf.reason != want:
            problems.append("%r: reason %r, expected %r" % (jf, jf.reason, want))
    reasons = sorted(by_key[k].reason for k in exp if k[0] == 6)
    assert reasons == ["closed", "terminated"] or problems, reasons
    assert not problems, "\n".join(problems)

    icmp = [jf for jf in joined.values() if jf.proto == 1 and {jf.local[0], jf.other[0]} == {n["ip_a"], n["ip_b"]}]
    icmp_pk = [p for p in packets if util.first_transport(p) == "icmp"]
    assert len(icmp) == 1, icmp
    f = icmp[0]
    assert f.local[0] == n["ip_b"] and f.reason == "terminated", f
    sent = sum(p.len for p in icmp_pk if util.first_ip(p).f["src"] == n["ip_b"])
    recv = sum(p.len for p in icmp_pk if util.first_ip(p).f["src"] == n["ip_a"])
    assert (f.local_packets, f.local_bytes, f.other_packets, f.other_bytes) == (3, sent, 3, recv), f

    ifs = [e for e in events if e["type"] == "interface"]
    assert len(ifs) == 1, ifs
    i = ifs[0]
    assert i["interface"] == n["veth_a"] and i.get("capture_type") == "pcap" and i.get("link_type") == "EN10MB", i
    assert i.get("mac", "").lower() == n["mac_a"].lower(), (i, n["mac_a"])
    assert n["ip_a"] in i.get("addr", []), i
    stats = [e for e in events if e["type"] == "interface_stats" and e.get("interface") == n["veth_a"]]
    assert stats, "no interface_stats for %s" % n["veth_a"]
    s = stats[-1]
    assert "capture_dropped" in s and int(s["capture_dropped"]) == 0, s
    ours_pk = sum(1 for p in packets if util.first_transport(p) in ("tcp", "udp", "icmp"))
    assert ours_pk <= int(s["raw"]) <= len(packets), (s["raw"], ours_pk, len(packets))
    assert int(s.get("discarded", 0)) == 0, s
