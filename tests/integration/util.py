"""Shared helpers for sonde's integration tests.

Everything here is plain functions over subprocesses and parsed data, so each
test file reads as "run the agent, run the oracle, compare":

* locating the build (env SONDE_BUILD, default <repo>/build) and running
  ``sonde-agent`` with a timeout, the sanitizer environment and a check that
  stderr holds no sanitizer report;
* parsing JSON lines and joining ``flow`` with ``flow_purge`` by digest;
* the tshark oracle: one tshark pass per capture gives per-packet layers
  (``-T fields``) and the conversation tables (``-z conv,tcp -z conv,udp``);
  exact per-direction byte counts are summed from the per-packet frame
  lengths because the conversation table rounds bytes ("12 kB"), and the
  per-packet sums are checked against the table's exact frame counts so the
  oracle cannot drift from what tshark itself reports;
* comparing per-5-tuple, per-direction packet and byte counters and printing a
  readable mismatch table.

Run all Python with /usr/bin/python3 (Debian's, which has pytest and scapy).
"""

import collections
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CORPUS_DIR = os.path.abspath(os.path.join(REPO_ROOT, "..", "shared", "corpus", "ndpi-4.2"))

SANITIZER_MARKERS = ("runtime error", "AddressSanitizer", "LeakSanitizer")

FLOW_EVENT_TYPES = ("agent_hello", "agent_status", "interface", "interface_stats",
                    "endpoint", "flow", "flow_stats", "flow_purge")
PACKET_EVENT_TYPES = ("eth", "arp", "ip4", "ip6", "tcp", "udp", "icmp4", "icmp6")
PURGE_REASONS = ("closed", "expired", "evicted", "terminated")

DEFAULT_TIMEOUT = 120


# ---------------------------------------------------------------- skips

def require_root_and_tools(root_for, missing, tools_for):
    """Skip the calling test unless it runs as root and no tool is missing
    (missing: the names of those that are)."""
    if os.geteuid() != 0:
        pytest.skip("%s needs root" % root_for)
    if missing:
        pytest.skip("missing tools for %s: %s (scripts/deps.sh installs them)"
                    % (tools_for, ", ".join(missing)))


# ---------------------------------------------------------------- build

def build_dir():
    b = os.environ.get("SONDE_BUILD", "build")
    if not os.path.isabs(b):
        b = os.path.join(REPO_ROOT, b)
    return b


def agent_path():
    return os.path.join(build_dir(), "sonde-agent")


def pbcat_path():
    return os.path.join(build_dir(), "sonde-pbcat")


def is_sanitizer_build():
    """True when the build under test was configured with sanitizers.

    Read from meson's introspection data; SONDE_SAN=1 forces it (a build
    made some other way)."""
    if os.environ.get("SONDE_SAN") == "1":
        return True
    path = os.path.join(build_dir(), "meson-info", "intro-buildoptions.json")
    try:
        with open(path) as f:
            for opt in json.load(f):
                if opt.get("name") == "b_sanitize":
                    return opt.get("value") not in ("none", "", None)
    except (OSError, ValueError):
        pass
    return os.path.basename(build_dir().rstrip("/")).endswith("-san")


def agent_env(extra=None):
    """Environment for the agent. The sanitizer options are always set: they
    are ignored by a normal build and make an ASan/UBSan build fail loudly."""
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = _with_opts(env.get("ASAN_OPTIONS"), "detect_leaks=1:abort_on_error=1")
    env["UBSAN_OPTIONS"] = _with_opts(env.get("UBSAN_OPTIONS"), "print_stacktrace=1:halt_on_error=1")
    if extra:
        env.update(extra)
    return env


def _with_opts(current, required):
    """Keep options already set in the environment (tests/run.sh adds some),
    forcing the ones these tests rely on."""
    opts = {}
    for part in (current or "").split(":") + required.split(":"):
        if "=" in part:
            k, v = part.split("=", 1)
            opts[k] = v
    return ":".join("%s=%s" % kv for kv in opts.items())


def sanitizer_report(stderr_text):
    """The first sanitizer marker found in stderr, or None."""
    for m in SANITIZER_MARKERS:
        if m in stderr_text:
            return m
    return None


def assert_no_sanitizer(stderr_text, what="sonde-agent"):
    m = sanitizer_report(stderr_text)
    assert m is None, "%s: sanitizer report (%r) in stderr:\n%s" % (what, m, stderr_text[-6000:])


def assert_not_killed(rc, stderr_text, what="sonde-agent"):
    """A negative return code means the process died on a signal (crash,
    abort); a shell-style 128+N too."""
    assert rc is not None and rc >= 0 and rc < 128, \
        "%s died (rc=%r):\n%s" % (what, rc, stderr_text[-6000:])


# ---------------------------------------------------------------- running the agent

class AgentRun:
    def __init__(self, args, rc, stdout, stderr, events, elapsed):
        self.args = args
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.events = events
        self.elapsed = elapsed

    def of_type(self, t):
        return [e for e in self.events if e.get("type") == t]

    def types(self):
        return collections.Counter(e.get("type") for e in self.events)

    def flows(self):
        return join_flows(self.events)

    def final_interface_stats(self):
        """Last interface_stats per interface (the totals at the end)."""
        out = {}
        for e in self.of_type("interface_stats"):
            out[e.get("interface")] = e
        return out

    def __repr__(self):
        return "AgentRun(rc=%r, args=%r)" % (self.rc, self.args)


def run_agent(args, tmp_path=None, input_bytes=None, timeout=DEFAULT_TIMEOUT,
              expect_rc=0, json_out=True, env=None):
    """Run sonde-agent to completion.

    When json_out is true and args carry no -o, '-o json:<tmp>/events.jsonl' is
    added and the file is parsed into .events; when an explicit 'json:-' is
    given, stdout is parsed instead. Always fails on a sanitizer report or a
    death by signal; checks the exit code when expect_rc is not None."""
    agent = agent_path()
    args = [str(a) for a in args]
    out_path = None
    if json_out and "-o" not in args:
        assert tmp_path is not None, "run_agent needs tmp_path for its JSON output"
        out_path = os.path.join(str(tmp_path), "events-%d.jsonl" % time.monotonic_ns())
        args = args + ["-o", "json:" + out_path]
    elif json_out:
        for i, a in enumerate(args[:-1]):
            if a == "-o" and args[i + 1].startswith("json:") and args[i + 1] != "json:-":
                out_path = args[i + 1][5:]
                break
    t0 = time.monotonic()
    try:
        p = subprocess.run([agent] + args, input=input_bytes if input_bytes is not None else b"",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                           env=agent_env(env))
    except subprocess.TimeoutExpired as e:
        raise AssertionError("sonde-agent %s: no exit within %ss; stderr:\n%s"
                             % (" ".join(args), timeout, (e.stderr or b"").decode(errors="replace")[-4000:]))
    elapsed = time.monotonic() - t0
    stdout = p.stdout.decode(errors="replace")
    stderr = p.stderr.decode(errors="replace")
    assert_no_sanitizer(stderr, "sonde-agent " + " ".join(args))
    assert_not_killed(p.returncode, stderr, "sonde-agent " + " ".join(args))
    if expect_rc is not None:
        assert p.returncode == expect_rc, "sonde-agent %s: exit %d, expected %d; stderr:\n%s" % (
            " ".join(args), p.returncode, expect_rc, stderr[-4000:])
    events = []
    if json_out:
        if out_path is not None:
            if os.path.exists(out_path):
                with open(out_path, encoding="utf-8", errors="strict") as f:
                    events = parse_jsonl(f.read(), out_path)
        elif "json:-" in args:
            events = parse_jsonl(stdout, "stdout")
    return AgentRun(args, p.returncode, stdout, stderr, events, elapsed)


def start_agent(args, stdout_path, stderr_path, netns=None):
    """Start the agent in the background (live capture). Returns the Popen;
    stop it with stop_agent()."""
    cmd = [agent_path()] + [str(a) for a in args]
    if netns:
        cmd = ["ip", "netns", "exec", netns] + cmd
    out = open(stdout_path, "wb")
    err = open(stderr_path, "wb")
    try:
        return subprocess.Popen(cmd, stdout=out, stderr=err, env=agent_env())
    finally:
        out.close()
        err.close()


def stop_agent(proc, stderr_path, sig=signal.SIGTERM, timeout=30):
    """Signal the agent, wait for it, check it exited 0 without a sanitizer
    report. Returns its stderr."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        raise AssertionError("sonde-agent did not exit within %ss of signal %d" % (timeout, sig))
    with open(stderr_path, errors="replace") as f:
        stderr = f.read()
    assert_no_sanitizer(stderr)
    assert rc == 0, "sonde-agent exited %d after signal %d; stderr:\n%s" % (rc, sig, stderr[-4000:])
    return stderr


def parse_jsonl(text, where="output"):
    """One JSON object per line; every line must parse and carry a 'type'."""
    events = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            e = json.loads(line)
        except ValueError as ex:
            raise AssertionError("%s line %d is not JSON (%s): %r" % (where, n, ex, line[:300]))
        assert isinstance(e, dict) and isinstance(e.get("type"), str), \
            "%s line %d: not an object with a 'type': %r" % (where, n, line[:300])
        events.append(e)
    return events


# ---------------------------------------------------------------- flows

def norm_ip(s):
    return ipaddress.ip_address(s).compressed


class JoinedFlow:
    """A flow event and its flow_purge, joined by digest."""

    def __init__(self, flow, purge):
        self.flow = flow
        self.purge = purge
        self.digest = flow["digest"]
        self.proto = int(flow.get("ip_protocol", 0))
        self.local = (norm_ip(flow["local_ip"]), int(flow.get("local_port", 0)))
        self.other = (norm_ip(flow["other_ip"]), int(flow.get("other_port", 0)))
        self.reason = purge.get("reason")
        self.local_packets = int(purge.get("local_packets", 0))
        self.other_packets = int(purge.get("other_packets", 0))
        self.local_bytes = int(purge.get("local_bytes", 0))
        self.other_bytes = int(purge.get("other_bytes", 0))

    def key(self):
        return conv_key(self.proto, self.local, self.other)

    def counters(self):
        """[pkts lo->hi, bytes lo->hi, pkts hi->lo, bytes hi->lo] in key order."""
        return oriented(self.local, self.other, self.local_packets, self.local_bytes,
                        self.other_packets, self.other_bytes)

    def __repr__(self):
        return "%s %s:%d <-> %s:%d reason=%s L=%d/%d O=%d/%d" % (
            proto_name(self.proto), self.local[0], self.local[1], self.other[0], self.other[1],
            self.reason, self.local_packets, self.local_bytes, self.other_packets, self.other_bytes)


def join_flows(events):
    """digest -> JoinedFlow. Asserts the contract: every flow has exactly one
    'flow' and exactly one 'flow_purge' event."""
    flows = collections.defaultdict(list)
    purges = collections.defaultdict(list)
    for e in events:
        if e["type"] == "flow":
            flows[e["digest"]].append(e)
        elif e["type"] == "flow_purge":
            purges[e["digest"]].append(e)
    problems = []
    for d in sorted(set(flows) | set(purges)):
        nf, np_ = len(flows.get(d, ())), len(purges.get(d, ()))
        if nf != 1 or np_ != 1:
            desc = flows[d][0] if flows.get(d) else purges[d][0]
            problems.append("digest %s: %d flow, %d flow_purge events (%s)" % (
                d, nf, np_, {k: desc.get(k) for k in ("local_ip", "local_port", "other_ip",
                                                       "other_port", "ip_protocol", "reason")}))
    assert not problems, "flow/flow_purge pairing broken:\n  " + "\n  ".join(problems[:40])
    return {d: JoinedFlow(flows[d][0], purges[d][0]) for d in flows}


def conv_key(proto, a, b):
    """Direction-free key of a conversation: (proto, lower endpoint, higher)."""
    a = (norm_ip(a[0]), int(a[1]))
    b = (norm_ip(b[0]), int(b[1]))
    lo, hi = sorted([a, b], key=ep_sort_key)
    return (int(proto), lo, hi)


def ep_sort_key(ep):
    ip = ipaddress.ip_address(ep[0])
    return (ip.version, int(ip), ep[1])


def oriented(src, dst, src_pkts, src_bytes, dst_pkts, dst_bytes):
    """Counters in key order given counts per sender."""
    if ep_sort_key((norm_ip(src[0]), int(src[1]))) <= ep_sort_key((norm_ip(dst[0]), int(dst[1]))):
        return [src_pkts, src_bytes, dst_pkts, dst_bytes]
    return [dst_pkts, dst_bytes, src_pkts, src_bytes]


def proto_name(p):
    return {1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6"}.get(p, "IP/%d" % p)


def fmt_key(k):
    p, lo, hi = k
    def ep(e):
        return ("[%s]:%d" if ":" in e[0] else "%s:%d") % e
    return "%-6s %s <-> %s" % (proto_name(p), ep(lo), ep(hi))


def aggregate_agent(joined, protos=(6, 17)):
    """key -> counters summed over the agent's flows with that 5-tuple (a
    5-tuple can legitimately be several flows: port reuse, idle timeouts)."""
    out = {}
    n = collections.Counter()
    for jf in joined.values():
        if jf.proto not in protos:
            continue
        k = jf.key()
        c = jf.counters()
        if k in out:
            out[k] = [x + y for x, y in zip(out[k], c)]
        else:
            out[k] = c
        n[k] += 1
    return out, n


def compare_counters(expected, got, exp_name="tshark", got_name="agent"):
    """List of (key, expected counters or None, got counters or None) that differ."""
    diffs = []
    for k in sorted(set(expected) | set(got), key=lambda k: (k[0], ep_sort_key(k[1]), ep_sort_key(k[2]))):
        e, g = expected.get(k), got.get(k)
        if e != g:
            diffs.append((k, e, g))
    return diffs


def format_diffs(diffs, exp_name="tshark", got_name="agent", limit=60):
    if not diffs:
        return "(no differences)"
    lines = ["%-70s %-28s %-28s" % ("conversation (lo <-> hi)", exp_name + " lo>hi | hi>lo",
                                    got_name + " lo>hi | hi>lo")]
    def c(v):
        if v is None:
            return "-"
        return "%d/%d | %d/%d" % tuple(v)
    for k, e, g in diffs[:limit]:
        lines.append("%-70s %-28s %-28s" % (fmt_key(k), c(e), c(g)))
    if len(diffs) > limit:
        lines.append("... and %d more" % (len(diffs) - limit))
    return "\n".join(lines)


# ---------------------------------------------------------------- tshark oracle

TSHARK_PREFS = ["-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE"]

# Per-layer fields, aligned with the layer's tokens in frame.protocols.
LAYER_FIELDS = collections.OrderedDict([
    ("ip", ["ip.src", "ip.dst", "ip.proto", "ip.id", "ip.flags.mf", "ip.frag_offset", "ip.len"]),
    ("ipv6", ["ipv6.src", "ipv6.dst", "ipv6.nxt", "ipv6.plen"]),
    ("ipv6.fraghdr", ["ipv6.fraghdr.nxt", "ipv6.fraghdr.offset", "ipv6.fraghdr.more",
                      "ipv6.fraghdr.ident"]),
    ("tcp", ["tcp.srcport", "tcp.dstport", "tcp.flags", "tcp.stream"]),
    ("udp", ["udp.srcport", "udp.dstport", "udp.stream"]),
    ("icmp", ["icmp.type"]),
    ("icmpv6", ["icmpv6.type"]),
])
FRAME_FIELDS = ["frame.number", "frame.len", "frame.time_epoch", "frame.protocols",
                "_ws.expert.message"]


class Layer:
    __slots__ = ("name", "f")

    def __init__(self, name):
        self.name = name
        self.f = {}

    def __repr__(self):
        return "%s%r" % (self.name, self.f) if self.f else self.name


class Packet:
    __slots__ = ("num", "len", "time", "layers", "misaligned", "expert")

    def names(self):
        return [l.name for l in self.layers]


def tshark_available():
    return shutil.which("tshark") is not None


def run_tshark(pcap, extra_args=(), timeout=300):
    cmd = ["tshark", "-n", "-r", str(pcap)] + TSHARK_PREFS + list(extra_args)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def tshark_analyse(pcap, timeout=300):
    """One tshark pass: per-packet layers plus the tcp/udp conversation tables.

    Returns (packets, conv_tables, stderr). A capture tshark reads only in part
    (cut short) still returns what it read; tshark's complaint is in stderr."""
    fields = list(FRAME_FIELDS)
    for fl in LAYER_FIELDS.values():
        fields += fl
    args = ["-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,", "-E", "separator=\t"]
    for f in fields:
        args += ["-e", f]
    args += ["-z", "conv,tcp", "-z", "conv,udp"]
    rc, out, err = run_tshark(pcap, args, timeout=timeout)
    lines = out.split("\n")
    packets = []
    i = 0
    while i < len(lines) and not lines[i].startswith("====="):
        line = lines[i]
        i += 1
        if not line:
            continue
        packets.append(_parse_packet_line(line.split("\t"), fields))
    convs = parse_conv_tables("\n".join(lines[i:]))
    if rc != 0 and not packets:
        raise AssertionError("tshark failed on %s (rc %d): %s" % (pcap, rc, err[-2000:]))
    return packets, convs, err


def _parse_packet_line(cols, fields):
    vals = dict(zip(fields, cols + [""] * (len(fields) - len(cols))))
    p = Packet()
    p.num = int(vals["frame.number"])
    p.len = int(vals["frame.len"])
    p.time = float(vals["frame.time_epoch"] or 0)
    p.layers = [Layer(t) for t in vals["frame.protocols"].split(":") if t]
    p.misaligned = False
    p.expert = vals.get("_ws.expert.message", "")
    for lname, flist in LAYER_FIELDS.items():
        toks = [l for l in p.layers if l.name == lname]
        for fname in flist:
            raw = vals.get(fname, "")
            occ = raw.split(",") if raw != "" else []
            if len(occ) != len(toks):
                # A layer whose header was cut short lacks some fields: align
                # from the outside in (the missing ones are the innermost).
                p.misaligned = True
            short = fname.rsplit(".", 1)[1]
            for layer, v in zip(toks, occ):
                layer.f[short] = v
    return p


def _int(v, default=None):
    if v is None or v == "":
        return default
    try:
        return int(v, 0)
    except ValueError:
        return default


def _bool(v):
    return v in ("1", "True", "true")


BYTES_RE = re.compile(r"^\s*(-?[\d,]+)\s*(bytes|kB|MB|GB|TB)\s*$")
UNITS = {"bytes": 1, "kB": 10 ** 3, "MB": 10 ** 6, "GB": 10 ** 9, "TB": 10 ** 12}


def parse_size(s):
    """'1,234 bytes' -> (1234, True); '12 kB' -> (12000, False) (rounded).
    tshark sums bytes in a signed 32-bit int: a negative figure has
    overflowed and is reported as (None, False)."""
    m = BYTES_RE.match(s)
    if not m:
        return None, False
    v = int(m.group(1).replace(",", ""))
    if v < 0:
        return None, False
    return v * UNITS[m.group(2)], m.group(2) == "bytes"


CONV_ROW_RE = re.compile(
    r"^(?P<a>\S+)\s+<->\s+(?P<b>\S+)\s+"
    r"(?P<f1>[\d,]+)\s+(?P<b1>-?[\d,]+\s*(?:bytes|kB|MB|GB|TB))\s+"
    r"(?P<f2>[\d,]+)\s+(?P<b2>-?[\d,]+\s*(?:bytes|kB|MB|GB|TB))\s+"
    r"(?P<ft>[\d,]+)\s+(?P<bt>-?[\d,]+\s*(?:bytes|kB|MB|GB|TB))\s+"
    r"(?P<start>[\d.]+)\s+(?P<dur>[\d.]+)\s*$")


def parse_conv_tables(text):
    """Parse 'tshark -q -z conv,tcp -z conv,udp' output.

    Returns {6: rows, 17: rows}; each row is a dict with a, b (endpoints as
    (ip, port)), ab_frames, ab_bytes, ab_exact, ba_frames, ba_bytes, ba_exact.
    The column order ("<-" before "->" in tshark 4.0) is read from the header
    line, not assumed."""
    tables = {}
    proto = None
    order = None
    for line in text.splitlines():
        s = line.strip()
        if s.endswith("Conversations") and s.split()[0] in ("TCP", "UDP"):
            proto = 6 if s.startswith("TCP") else 17
            tables.setdefault(proto, [])
            order = None
            continue
        if proto is None:
            continue
        if "<-" in line and "->" in line and "<->" not in line:
            left = line.index("<-")
            right = line.index("->")
            # "<-" occurs inside "<->"-free header only; "->" also matches inside "<-"? no.
            order = ("ba", "ab") if left < right else ("ab", "ba")
            continue
        m = CONV_ROW_RE.match(s)
        if not m:
            continue
        assert order is not None, "conversation row before its header: %r" % line
        a = _split_ep(m.group("a"))
        b = _split_ep(m.group("b"))
        row = {"a": a, "b": b}
        for idx, d in ((1, order[0]), (2, order[1])):
            row[d + "_frames"] = int(m.group("f%d" % idx).replace(",", ""))
            v, exact = parse_size(m.group("b%d" % idx))
            row[d + "_bytes"] = v
            row[d + "_exact"] = exact
        tables[proto].append(row)
    return tables


def _split_ep(s):
    ip, port = s.rsplit(":", 1)
    return (norm_ip(ip), int(port))


def conv_table_counters(tables, protos=(6, 17)):
    """key -> (counters with frames exact and bytes possibly rounded, exactness)
    summed over rows (tshark splits a 5-tuple into rows by stream)."""
    out = {}
    for proto in protos:
        for r in tables.get(proto, []):
            k = conv_key(proto, r["a"], r["b"])
            c = oriented(r["a"], r["b"], r["ab_frames"], r["ab_bytes"], r["ba_frames"], r["ba_bytes"])
            ex = oriented(r["a"], r["b"], True, r["ab_exact"], True, r["ba_exact"])
            if k in out:
                old, oex = out[k]
                out[k] = ([None if x is None or y is None else x + y for x, y in zip(old, c)],
                          [x and y for x, y in zip(oex, ex)])
            else:
                out[k] = (c, ex)
    return out


# ---------------------------------------------------------------- packet views

IP_TOKENS = ("ip", "ipv6")


# A TCP/UDP header tshark could not dissect: it stops before its
# conversation tap, so the packet is in no conversation. Seen as an expert
# message about the header, or as an exception (malformed, or a header cut by
# an unreassembled fragment) while the transport was the last layer decoded.
def transport_header_broken(pkt):
    exp = pkt.expert
    if "Bogus TCP header length" in exp:
        return True
    last = pkt.layers[-1].name if pkt.layers else None
    return last in ("tcp", "udp") and ("Malformed Packet" in exp or "Unreassembled fragment" in exp)


def last_transport_index(pkt):
    idx = None
    for i, l in enumerate(pkt.layers):
        if l.name in ("tcp", "udp"):
            idx = i
    return idx


def tshark_conv_contributions(pkt):
    """What tshark's conv,tcp/conv,udp count for this packet: every TCP or UDP
    header it dissected outside ICMP errors, keyed by the addresses of the IP
    header before it (so a tunnel yields both the outer and the inner one).
    Yields (layer index, key, src endpoint)."""
    last_ip = None
    for i, l in enumerate(pkt.layers):
        if l.name in ("icmp", "icmpv6"):
            # tshark dissects the header quoted in an ICMP error but keeps it
            # out of its conversation tables (pinfo->flags.in_error_pkt).
            return
        if l.name in IP_TOKENS:
            last_ip = l
        elif l.name in ("tcp", "udp") and last_ip is not None:
            if i == last_transport_index(pkt) and transport_header_broken(pkt):
                return
            src, dst = last_ip.f.get("src"), last_ip.f.get("dst")
            sp, dp = _int(l.f.get("srcport")), _int(l.f.get("dstport"))
            if not src or not dst or sp is None or dp is None:
                continue
            proto = 6 if l.name == "tcp" else 17
            yield i, conv_key(proto, (src, sp), (dst, dp)), (norm_ip(src), sp)


def tshark_conversations(packets, protos=(6, 17)):
    """key -> exact counters, from per-packet frame lengths (tshark's view)."""
    out = {}
    streams = collections.defaultdict(set)
    for p in packets:
        for i, k, src in tshark_conv_contributions(p):
            if k[0] not in protos:
                continue
            c = out.setdefault(k, [0, 0, 0, 0])
            if src == k[1]:
                c[0] += 1
                c[1] += p.len
            else:
                c[2] += 1
                c[3] += p.len
            s = p.layers[i].f.get("stream")
            if s not in (None, ""):
                streams[k].add(s)
    return out, streams


def check_oracle(conv_from_packets, conv_tables):
    """The per-packet sums must reproduce tshark's own conversation table:
    frames exactly, bytes exactly where the table prints them exactly and
    within its rounding otherwise. Returns a list of problems."""
    table = conv_table_counters(conv_tables)
    problems = []
    for k in set(table) | set(conv_from_packets):
        t = table.get(k)
        p = conv_from_packets.get(k)
        if t is None or p is None:
            problems.append("%s: table %r, per-packet %r" % (fmt_key(k), t and t[0], p))
            continue
        (tc, ex) = t
        for idx in (0, 2):
            if tc[idx] != p[idx]:
                problems.append("%s: frames table %r per-packet %r" % (fmt_key(k), tc, p))
        for idx in (1, 3):
            if tc[idx] is None:
                continue  # tshark's own sum overflowed
            if ex[idx]:
                if tc[idx] != p[idx]:
                    problems.append("%s: bytes table %r per-packet %r" % (fmt_key(k), tc, p))
            elif abs(tc[idx] - p[idx]) > max(0.06 * p[idx], 1000):
                problems.append("%s: bytes table ~%r per-packet %r" % (fmt_key(k), tc, p))
    return problems


def count_packets(packets, pred):
    return sum(1 for p in packets if pred(p))


def has_layer(name):
    return lambda p: any(l.name == name for l in p.layers)


# ---------------------------------------------------------------- processes

def wait_for(pred, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


def kill_proc(proc, sig=signal.SIGTERM, timeout=5):
    """Stop one process we started (by its handle), escalating to SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(sig)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------- the agent's view of a packet

TRANSPORT_TOKENS = ("tcp", "udp", "icmp", "icmpv6")
# Tokens tshark may put between a tunnel header and the inner IP header.
TUNNEL_INNER_LINK = ("eth", "ethertype", "vlan", "mpls", "ppp", "pppoes", "transum")


def first_ip(pkt):
    for l in pkt.layers:
        if l.name in IP_TOKENS:
            return l
    return None


def first_transport(pkt):
    """Name of the first TCP/UDP/ICMP/ICMPv6 layer after the first IP
    header (what a packet counts as in interface_stats), or None."""
    seen_ip = False
    for l in pkt.layers:
        if l.name in IP_TOKENS:
            seen_ip = True
        elif seen_ip and l.name in TRANSPORT_TOKENS:
            return l.name
    return None


def _next_ip(names, start):
    """Index of the IP header a tunnel carries, from names[start] on, when
    only link-layer tokens come before it."""
    for k in range(start, len(names)):
        if names[k] in IP_TOKENS:
            return k
        if names[k] not in TUNNEL_INNER_LINK:
            return None
    return None


class View:
    """Where the agent should account a packet: its innermost IP header after
    the tunnels the agent decapsulates (IP-in-IP, GRE, VXLAN on UDP 4789,
    GTP-U on UDP 2152), and the transport right after it."""
    __slots__ = ("ip", "ip_index", "l4", "l4_index", "tunnels", "later_fragment", "first_fragment")


def agent_view(pkt, supported=("ipip", "gre", "vxlan", "gtp")):
    names = pkt.names()
    i = None
    for k, n in enumerate(names):
        if n in IP_TOKENS:
            i = k
            break
    if i is None:
        return None
    tunnels = []
    while True:
        j = i + 1
        while j < len(names) and names[j].startswith("ipv6.") and names[j] != "ipv6.fraghdr":
            j += 1
        if j < len(names) and names[j] == "ipv6.fraghdr":
            j += 1
        nxt = names[j] if j < len(names) else None
        k = None
        kind = None
        if nxt in IP_TOKENS and "ipip" in supported:
            k, kind = j, "ipip"
        elif nxt == "gre" and "gre" in supported:
            k, kind = _next_ip(names, j + 1), "gre"
        elif nxt == "udp" and j + 1 < len(names) and names[j + 1] in ("vxlan", "gtp") \
                and names[j + 1] in supported:
            k, kind = _next_ip(names, j + 2), names[j + 1]
        if k is None or _is_later_fragment(pkt.layers[i], pkt, i):
            break
        tunnels.append(kind)
        i = k
    v = View()
    v.ip_index = i
    v.ip = pkt.layers[i]
    v.tunnels = tunnels
    v.later_fragment = _is_later_fragment(v.ip, pkt, i)
    v.first_fragment = _is_first_fragment(v.ip, pkt, i)
    v.l4 = None
    v.l4_index = None
    if j < len(names) and names[j] in TRANSPORT_TOKENS and not v.later_fragment:
        v.l4, v.l4_index = names[j], j
    return v


def _fraghdr_after(pkt, i):
    if i + 1 < len(pkt.layers):
        for l in pkt.layers[i + 1:]:
            if l.name == "ipv6.fraghdr":
                return l
            if not l.name.startswith("ipv6."):
                return None
    return None


def _is_later_fragment(ip, pkt, i):
    if ip.name == "ip":
        return (_int(ip.f.get("frag_offset"), 0) or 0) > 0
    fh = _fraghdr_after(pkt, i)
    return fh is not None and (_int(fh.f.get("offset"), 0) or 0) > 0


def _is_first_fragment(ip, pkt, i):
    if ip.name == "ip":
        return _bool(ip.f.get("mf")) and (_int(ip.f.get("frag_offset"), 0) or 0) == 0
    fh = _fraghdr_after(pkt, i)
    return fh is not None and _bool(fh.f.get("more")) and (_int(fh.f.get("offset"), 0) or 0) == 0


def _frag_id(v, pkt):
    ip = v.ip
    if ip.name == "ip":
        return (ip.f.get("src"), ip.f.get("dst"), ip.f.get("id"), ip.f.get("proto"))
    fh = _fraghdr_after(pkt, v.ip_index)
    return (ip.f.get("src"), ip.f.get("dst"), fh.f.get("ident") if fh else None, fh.f.get("nxt") if fh else None)


FRAGMENT_MEMORY_S = 30  # docs/agent.md: first fragments are remembered 30 s


class ExpectedFlows:
    """What the agent should report for a capture, derived per packet from
    tshark's decode (see agent_view), with a note of each packet whose
    accounting differs from tshark's conversation tables and why."""

    def __init__(self, packets, protos=(6, 17), no_fragment_owner=None):
        self.counters = {}
        self.packets = collections.defaultdict(list)  # key -> [(direction 0/1, pkt)]
        self.rules = collections.Counter()             # rule name -> packets
        self.rule_keys = collections.defaultdict(set)  # rule name -> keys touched
        self.rule_packets = collections.defaultdict(list)  # rule name -> frame numbers
        frag_owner = {}
        for p in packets:
            v = agent_view(p)
            key = src = None
            later_fragment = orphan_fragment = False
            if v is not None and v.l4 in ("tcp", "udp"):
                l4 = p.layers[v.l4_index]
                s, d = v.ip.f.get("src"), v.ip.f.get("dst")
                sp, dp = _int(l4.f.get("srcport")), _int(l4.f.get("dstport"))
                if s and d and sp is not None and dp is not None:
                    proto = 6 if v.l4 == "tcp" else 17
                    key = conv_key(proto, (s, sp), (d, dp))
                    src = (norm_ip(s), sp)
                    if v.first_fragment and not (no_fragment_owner and no_fragment_owner(p)):
                        frag_owner[_frag_id(v, p)] = (key, src, p.time)
            elif v is not None and v.later_fragment:
                owner = frag_owner.get(_frag_id(v, p))
                if owner and p.time - owner[2] <= FRAGMENT_MEMORY_S:
                    key, src, _ = owner
                    later_fragment = True
                else:
                    # docs/agent.md: a later fragment whose first fragment was
                    # not seen goes to the port-less flow of the two hosts.
                    proto = _int(v.ip.f.get("proto") if v.ip.name == "ip" else
                                 (_fraghdr_after(p, v.ip_index) or Layer("x")).f.get("nxt"))
                    s, d = v.ip.f.get("src"), v.ip.f.get("dst")
                    if proto in (6, 17) and s and d:
                        key = conv_key(proto, (s, 0), (d, 0))
                        src = (norm_ip(s), 0)
                        orphan_fragment = True
            if key is not None and key[0] not in protos:
                key = None
            if key is not None:
                c = self.counters.setdefault(key, [0, 0, 0, 0])
                d = 0 if src == key[1] else 2
                c[d] += 1
                c[d + 1] += p.len
                self.packets[key].append((d // 2, p))
            # Name every way this packet's accounting differs from tshark's.
            raw = {k for _, k, _ in tshark_conv_contributions(p) if k[0] in protos}
            for k in raw - {key}:
                if v is not None and v.tunnels and self._is_outer(p, k, v):
                    rule = "tunnel_outer_not_a_flow"
                elif v is not None and self._is_beyond(p, k, v):
                    rule = "tunnel_not_decapsulated_by_agent"
                else:
                    rule = "unexplained_tshark_only"
                self.note(rule, k, p)
            if key is not None and key not in raw:
                if later_fragment:
                    rule = "ip_fragment_later"
                elif orphan_fragment:
                    rule = "ip_fragment_orphan"
                elif transport_header_broken(p):
                    rule = "tshark_skips_broken_transport_header"
                else:
                    rule = "unexplained_agent_only"
                self.note(rule, key, p)

    def note(self, rule, key, p):
        self.rules[rule] += 1
        self.rule_keys[rule].add(key)
        self.rule_packets[rule].append(p.num)

    @staticmethod
    def _contrib_index(p, k):
        for i, kk, _ in tshark_conv_contributions(p):
            if kk == k:
                return i
        return None

    def _is_outer(self, p, k, v):
        i = self._contrib_index(p, k)
        return i is not None and i < v.ip_index

    def _is_beyond(self, p, k, v):
        i = self._contrib_index(p, k)
        return i is not None and v.l4_index is not None and i > v.l4_index or \
            (i is not None and v.l4_index is None and i > v.ip_index)


# ---------------------------------------------------------------- pcap rewriting

def read_pcap(path):
    """Classic pcap only: (header bytes, endian, linktype, [(rec header, data)])."""
    import struct
    with open(path, "rb") as f:
        buf = f.read()
    magic = buf[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        raise ValueError("%s: not a classic pcap file" % path)
    linktype = struct.unpack(e + "I", buf[20:24])[0]
    recs = []
    i = 24
    while i + 16 <= len(buf):
        incl = struct.unpack(e + "I", buf[i + 8:i + 12])[0]
        recs.append((buf[i:i + 16], buf[i + 16:i + 16 + incl]))
        i += 16 + incl
    return buf[:24], e, linktype, recs


def write_pcap(path, header, recs):
    with open(path, "wb") as f:
        f.write(header)
        for h, d in recs:
            f.write(h)
            f.write(d)


def mirror_packet(d):
    """Swap source and destination (MAC, IP, TCP/UDP port) of an Ethernet
    frame in place, leaving lengths, times and checksums valid (the sums
    are over the same words)."""
    d = bytearray(d)
    if len(d) < 14:
        return bytes(d)
    d[0:6], d[6:12] = d[6:12], d[0:6]
    et = int.from_bytes(d[12:14], "big")
    off = 14
    if et == 0x0800 and len(d) >= off + 20:
        ihl = (d[off] & 0x0F) * 4
        d[off + 12:off + 16], d[off + 16:off + 20] = d[off + 16:off + 20], d[off + 12:off + 16]
        proto = d[off + 9]
        l4 = off + ihl
    elif et == 0x86DD and len(d) >= off + 40:
        d[off + 8:off + 24], d[off + 24:off + 40] = d[off + 24:off + 40], d[off + 8:off + 24]
        proto = d[off + 6]
        l4 = off + 40
    else:
        return bytes(d)
    if proto in (6, 17) and len(d) >= l4 + 4:
        d[l4:l4 + 2], d[l4 + 2:l4 + 4] = d[l4 + 2:l4 + 4], d[l4:l4 + 2]
    return bytes(d)
