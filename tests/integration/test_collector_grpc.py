"""sonde-collector against the reference gRPC (python3-grpcio) and hostile peers.

What this proves, each with the collector started on 127.0.0.1 port 0 and
stopped with SIGTERM (exit 0, no sanitizer report):

* publishing: Flow and Dns events on two concurrent Publish<Type>Stream calls
  are acknowledged (acked_seq reaches the last seq before the client
  half-closes: acks follow commits, not the end of the call), the call ends
  OK, and the JSON output holds exactly those events, field by field, as the
  rules of proto/sonde/v1/events.proto say (computed here from the
  descriptors, independently of src/schema/json.c); every acknowledged event
  is already in the file when its ack arrives;
* grpc.health.v1.Health: Check is SERVING for "" and sonde.v1.D3Events,
  NOT_FOUND for another name; Watch says SERVING, then NOT_SERVING on SIGTERM;
  a Check half-closed without its request still ends;
* deduplication by (agent_id, type, seq): seq 1..10 then 5..15 store 1..15
  once (6 duplicates counted); after a restart on the same json: or pb: file
  the stored events are recognised and only new ones are added; a partial
  last record left by a crash is cut off at start and the file continues
  cleanly after it; a file that is damaged rather than cut short is not
  truncated; a uint64 above 2^63 in the file does not stop a restart; an
  agent_id that is not UTF-8 does not defeat deduplication; an output that
  is a pipe (-o json:/dev/stdout) does not block the start; an output on a
  disk that fills up ends on a whole record, and nothing unstored is acked;
* mutual TLS: the client certificate's CN must equal agent_id
  (PERMISSION_DENIED otherwise, unless --trust-agent-id); a certificate from
  another CA, no certificate, and a cleartext client all fail (UNAVAILABLE);
* bad data: unparsable bytes, seq 0, no agent_id, a string over
  --max-string, a message over --max-message, an unknown method, a type
  outside --accept-types: each gets its status, and a well-behaved client on
  another connection is not disturbed;
* hostile peers: garbage instead of the HTTP/2 preface (cleartext and TLS),
  TLS offering only ALPN http/1.1, HTTP/1.1 on the cleartext port, HTTP 405
  and 415, a gRPC stream ending inside a message or with the compressed flag
  (curl), a PING flood, 50 concurrent calls on one channel, 30 agents at
  once; a cleartext call quiet for longer than the preface timeout stays open;
* SIGTERM during an open publish stream: a final ack, then STOP, then the call
  ends UNAVAILABLE.

Not tested: a client that never reads its responses. The collector sends
only small acks (one per commit), so a publisher that never reads cannot make
it buffer anything worth bounding within a test's time.

A test marked xfail(strict=True) shows a bug in the collector, named in its
reason; it turns into a failure when the bug is fixed, so the mark goes then.

Run: SONDE_BUILD=build /usr/bin/python3 -m pytest -q -p no:cacheprovider \
         tests/integration/test_collector_grpc.py
"""

import hashlib
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import grpc
import pytest

import grpc_util
import util
from grpc_util import Publisher, collector, publish, read_json, sonde_json

pytestmark = pytest.mark.skipif(shutil.which("protoc") is None,
                                reason="protoc is not installed (scripts/deps.sh installs it)")

OK = grpc.StatusCode.OK


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def collector_bin():
    path = grpc_util.collector_path()
    if not os.access(path, os.X_OK):
        pytest.fail("sonde-collector not found at %s: build it first (ninja -C %s) or set SONDE_BUILD"
                    % (path, util.build_dir()))
    return path


@pytest.fixture(scope="session")
def pb(tmp_path_factory):
    return grpc_util.compile_protos(tmp_path_factory.mktemp("protos"))


# Limits of the shared cleartext collector: small enough that the bad-data
# tests cross them cheaply, large enough for every well-behaved event here.
MAX_STRING = 200
MAX_MESSAGE = 4096


@pytest.fixture(scope="module")
def clear(collector_bin, tmp_path_factory):
    """One cleartext collector shared by the tests that also check that it
    keeps serving after what they did to it."""
    d = tmp_path_factory.mktemp("clear")
    with collector(["--insecure-cleartext", "--max-string", MAX_STRING, "--max-message", MAX_MESSAGE],
                   tmp_path=d) as c:
        yield c


@pytest.fixture(scope="module", params=["json", "pb"])
def strict(request, collector_bin, tmp_path_factory):
    """A cleartext collector with the same limits as clear, once with a JSON
    output and once with only a pb: output (which needs no JSON encoding of
    the events, so its checks must not depend on it)."""
    kind = request.param
    d = tmp_path_factory.mktemp("strict-" + kind)
    with collector(["--insecure-cleartext", "--max-string", MAX_STRING, "--max-message", MAX_MESSAGE,
                    "-o", "%s:%s" % (kind, d / ("events." + kind))]) as c:
        yield c


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA with the collector's certificate and two agents', and a second
    CA that issued another certificate named agent-1."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    p = grpc_util.make_pki(tmp_path_factory.mktemp("pki"), agents=("agent-1", "agent-2"))
    p.other = grpc_util.make_pki(tmp_path_factory.mktemp("pki-other"), agents=("agent-1",))
    return p


@pytest.fixture(scope="module")
def tls(collector_bin, pki, tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    with collector(pki.collector_args(), tmp_path=d) as c:
        yield c


# ---------------------------------------------------------------- events

BASE_TIME = 1_700_000_000_000


def make_flow(pb, agent, seq, **kw):
    """A Flow with every kind of field set: strings with characters JSON must
    escape, non-ASCII text, 64-bit counters above 2^53, enums, bools, nested
    and repeated sub-messages."""
    E = pb.events
    f = E.Flow(
        agent_id=agent, seq=seq, timestamp=BASE_TIME + seq, interface="eth0",
        digest=hashlib.sha1(("%s/%d" % (agent, seq)).encode()).hexdigest(),
        community_id="1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0=", ip_version=4, ip_protocol=6,
        local_mac="02:00:00:00:00:01", other_mac="02:00:00:00:00:02",
        local_ip="192.0.2.%d" % (seq % 250 + 1), other_ip="198.51.100.7",
        local_port=40000 + seq % 20000, other_port=443, other_type=E.OTHER_TYPE_REMOTE,
        local_origin=seq % 2 == 0, first_seen_at=BASE_TIME + seq - 50, last_seen_at=BASE_TIME + seq,
        local_bytes=2 ** 60 + seq, other_bytes=2 ** 53 + 1, local_packets=seq, other_packets=0,
        total_bytes=2 ** 60 + seq + 2 ** 53 + 1, total_packets=seq, established=True,
        tcp=E.TcpInfo(state=E.TCP_STATE_ESTABLISHED, flags_local=0x1B, rtt_us=1234, mss_local=1460),
        dns_host_name="h\u00f6st-\u6f22\u5b57-%d.example" % seq,
        detection=E.Detection(detected_protocol=91, detected_protocol_name="TLS", name="TLS.Google",
                              detection_complete=True,
                              risks=E.Risks(risks=['q"uote \\ back\nnew\tl\x01ine', "Self-signed Cert"],
                                            risk_ids=[1, 2 ** 32 - 1])))
    return set_fields(f, kw)


def make_dns(pb, agent, seq, **kw):
    E = pb.events
    d = E.Dns(
        agent_id=agent, seq=seq, timestamp=BASE_TIME + seq, interface="eth0",
        digest=hashlib.sha1(("dns %s/%d" % (agent, seq)).encode()).hexdigest(),
        client_ip="192.0.2.10", client_port=50000 + seq % 10000, server_ip="2001:db8::53",
        server_port=53, transport="udp", transaction_id=seq % 65536,
        query_name="www-%d.example.com" % seq, query_type=1, query_type_name="A", query_class=1,
        flags=0x8180, answered=True, rcode=0, rcode_name="NOERROR",
        answers=[E.DnsAnswer(name="www-%d.example.com" % seq, rr_type=5, rr_type_name="CNAME", ttl=300,
                             data="edge.example.net"),
                 E.DnsAnswer(name="edge.example.net", rr_type=1, rr_type_name="A", ttl=60,
                             data="203.0.113.%d" % (seq % 250 + 1))],
        response_time_us=1500 + seq)
    return set_fields(d, kw)


def set_fields(m, kw):
    """Replace fields of m: scalars, sub-messages and repeated fields alike."""
    for k, v in kw.items():
        fd = m.DESCRIPTOR.fields_by_name[k]
        if fd.label == fd.LABEL_REPEATED:
            del getattr(m, k)[:]
            getattr(m, k).extend(v)
        elif fd.message_type is not None:
            getattr(m, k).CopyFrom(v)
        else:
            setattr(m, k, v)
    return m


def key(e):
    """(agent_id, type, seq) of a JSON event or a message."""
    if isinstance(e, dict):
        return (e.get("agent_id"), e.get("type"), e.get("seq"))
    return (e.agent_id, grpc_util.snake_case(e.DESCRIPTOR.name), e.seq)


def events_of(path, agents):
    """The JSON events of the output whose agent_id is in agents."""
    agents = set(agents)
    return [e for e in read_json(path) if e.get("agent_id") in agents]


def assert_output_is(path, sent, agents=None, exact=True):
    """The JSON output (only agents' events when given) holds exactly the
    messages in sent (with exact false: at least them), once each, every
    field as sonde_json says."""
    got = read_json(path) if agents is None else events_of(path, agents)
    if not exact:
        wanted = {key(m) for m in sent}
        got = [e for e in got if key(e) in wanted]
    by_key = {}
    dups = []
    for e in got:
        k = key(e)
        if k in by_key:
            dups.append(k)
        by_key[k] = e
    assert not dups, "stored more than once: %s" % sorted(dups)[:20]
    want = {key(m): sonde_json(m) for m in sent}
    missing = sorted(set(want) - set(by_key))
    extra = sorted(set(by_key) - set(want))
    assert not missing and not extra, "output differs: missing %s, unexpected %s" % (missing[:20], extra[:20])
    diffs = []
    for k, w in want.items():
        g = by_key[k]
        for f in sorted(set(w) | set(g)):
            if w.get(f, "<absent>") != g.get(f, "<absent>"):
                diffs.append("%s %s: expected %r, got %r" % (k, f, w.get(f, "<absent>"), g.get(f, "<absent>")))
    assert not diffs, "fields differ:\n  " + "\n  ".join(diffs[:40])


def flows(pb, agent, seqs):
    return [make_flow(pb, agent, s) for s in seqs]


_fresh_seq = itertools.count(1_000_000, 1000)


def stored_messages(c, pb):
    """The events in the collector's first output: JSON objects for json:,
    messages for pb:."""
    if c.kind == "pb":
        return [grpc_util.event_member(e)[1] for e in grpc_util.read_pb_frames(c.out, pb)]
    return read_json(c.out)


def assert_stored_once(c, pb, sent):
    """Each message of sent is in the output exactly once, equal to what was
    sent (pb:) or to its JSON (json:)."""
    if c.kind != "pb":
        assert_output_is(c.out, sent, agents={m.agent_id for m in sent}, exact=False)
        return
    wanted = {key(m): m for m in sent}
    got = [m for m in stored_messages(c, pb) if key(m) in wanted]
    assert sorted(key(m) for m in got) == sorted(wanted), "stored %s, sent %s" % (
        sorted(key(m) for m in got), sorted(wanted))
    assert all(m == wanted[key(m)] for m in got), "a stored event differs from the one sent"


def assert_publishes(c, pb, agent, n=3, creds=None):
    """A well-behaved client on a new connection publishes n flows with
    seqs not used before (so that none is a duplicate): acked, OK, each
    stored once."""
    ch = grpc_util.tls_channel(c, creds) if creds else grpc_util.cleartext_channel(c)
    first = next(_fresh_seq)
    with ch:
        msgs = flows(pb, agent, range(first, first + n))
        p = publish(ch, pb, "Flow", msgs)
    assert p.code == OK, "well-behaved publisher %s: %s %r" % (agent, p.code, p.details)
    assert p.max_acked() == first + n - 1 and p.last().accepted == n, p.summary()
    assert c.proc.poll() is None, "the collector exited:\n" + c.stderr()[-4000:]
    assert_stored_once(c, pb, msgs)


# ---------------------------------------------------------------- publishing

def test_publish_flow_and_dns_cleartext(collector_bin, pb, tmp_path):
    """Two concurrent calls on one channel (Flow with odd seqs, Dns with even
    ones, as one agent numbers its output across types). Each call is acked
    up to its last seq while still open; the file holds every acked event at
    the moment of the ack; after the half-close the last response is an OK
    ack counting every event as accepted, and the call ends OK; the file is
    exactly the events sent, field by field."""
    n = 40
    fl = flows(pb, "agent-a", range(1, 2 * n, 2))
    dn = [make_dns(pb, "agent-a", s) for s in range(2, 2 * n + 1, 2)]
    with collector(["--insecure-cleartext"], tmp_path=tmp_path) as c:
        with grpc_util.cleartext_channel(c) as ch:
            pf = Publisher(ch, pb, "Flow")
            pd = Publisher(ch, pb, "Dns")
            try:
                for a, b in zip(fl, dn):
                    pf.send(a)
                    pd.send(b)
                pf.wait_ack(fl[-1].seq)
                pd.wait_ack(dn[-1].seq)
                assert not pf.done and not pd.done, "a call ended before the client half-closed"
                on_disk = {key(e) for e in read_json(c.out)}
                assert {key(m) for m in fl + dn} <= on_disk, \
                    "acknowledged events missing from the file at the time of the ack: %s" % sorted(
                        {key(m) for m in fl + dn} - on_disk)[:10]
                for p, sent in ((pf, fl), (pd, dn)):
                    code, details = p.finish()
                    assert code == OK, (p.type_name, code, details)
                    last = p.last()
                    assert last.status == pb.d3.PUBLISH_STATUS_OK, p.summary()
                    assert (last.acked_seq, last.accepted, last.duplicates) == (sent[-1].seq, n, 0), \
                        p.summary()
                    acked = [r.acked_seq for r in p.responses]
                    assert acked == sorted(acked), "acked_seq went back: %s" % acked
            finally:
                pf.cancel()
                pd.cancel()
        assert_output_is(c.out, fl + dn)


def test_health(clear, pb):
    """Check: SERVING for "" (the server) and "sonde.v1.D3Events", NOT_FOUND
    for a service it does not serve. Watch: SERVING first; SERVICE_UNKNOWN
    for an unknown name (the call stays open, as the protocol says)."""
    with grpc_util.cleartext_channel(clear) as ch:
        assert grpc_util.health_check(ch, pb, "") == ("SERVING", OK)
        assert grpc_util.health_check(ch, pb, "sonde.v1.D3Events") == ("SERVING", OK)
        assert grpc_util.health_check(ch, pb, "sonde.v1.Nothing") == (None, grpc.StatusCode.NOT_FOUND)
        watch = ch.unary_stream(grpc_util.HEALTH_WATCH,
                                request_serializer=pb.health.HealthCheckRequest.SerializeToString,
                                response_deserializer=pb.health.HealthCheckResponse.FromString)
        for service, want in (("sonde.v1.D3Events", "SERVING"), ("", "SERVING"),
                              ("sonde.v1.Nothing", "SERVICE_UNKNOWN")):
            call = watch(pb.health.HealthCheckRequest(service=service), timeout=10)
            try:
                first = next(call)
                assert pb.health.HealthCheckResponse.ServingStatus.Name(first.status) == want, service
            finally:
                call.cancel()


def test_health_check_without_request_is_answered(clear):
    """A unary call (Health/Check) whose client half-closes without sending
    its one request message must still end, with an error status; a server
    that waits for the message forever keeps the stream open as long as the
    peer likes."""
    url = "http://127.0.0.1:%d/grpc.health.v1.Health/Check" % clear.port
    p = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-m", "4", "-D", "-", "-o", "/dev/null",
                        "-X", "POST", "-H", "content-type: application/grpc", "-H", "te: trailers", url],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, "curl exit %d (28 = no answer within 4 s): %s" % (p.returncode, p.stderr)
    m = re.search(r"^grpc-status: (\d+)", p.stdout, re.M)
    assert m and m.group(1) != "0", "no error status for a unary call without its request:\n" + p.stdout


# ---------------------------------------------------------------- dedup and restarts

def read_output(kind, path, pb, agents):
    """[(agent, type, seq)] in file order, and the messages (pb only)."""
    if kind == "json":
        evs = events_of(path, agents)
        return [key(e) for e in evs], None
    msgs = [grpc_util.event_member(e)[1] for e in grpc_util.read_pb_frames(path, pb)]
    msgs = [m for m in msgs if m.agent_id in agents]
    return [key(m) for m in msgs], msgs


@pytest.mark.parametrize("kind", ["json", "pb"])
def test_dedup_and_restart(collector_bin, pb, tmp_path, kind):
    """seq 1..10, then 5..15 on a new call: 1..15 stored once each, and the
    second call's last response counts 6 duplicates (5..10) and 5 accepted.
    Restarted on the same file (the file is scanned at start), 1..20 adds
    only 16..20 and what was there stays byte for byte."""
    out = str(tmp_path / ("events." + kind))
    args = ["--insecure-cleartext", "-o", "%s:%s" % (kind, out)]
    sent = {s: make_flow(pb, "dedup", s) for s in range(1, 21)}
    with collector(args) as c:
        with grpc_util.cleartext_channel(c) as ch:
            p1 = publish(ch, pb, "Flow", [sent[s] for s in range(1, 11)])
            p2 = publish(ch, pb, "Flow", [sent[s] for s in range(5, 16)])
    for p, acc, dup, last in ((p1, 10, 0, 10), (p2, 5, 6, 15)):
        assert p.code == OK, (p.code, p.details)
        r = p.last()
        assert (r.status, r.acked_seq, r.accepted, r.duplicates) == (pb.d3.PUBLISH_STATUS_OK, last, acc, dup), \
            p.summary()
    keys, msgs = read_output(kind, out, pb, ["dedup"])
    assert keys == [("dedup", "flow", s) for s in range(1, 16)], keys
    if msgs is not None:
        assert msgs == [sent[s] for s in range(1, 16)], "pb frames differ from what was sent"
    with open(out, "rb") as f:
        before = f.read()

    with collector(args + ["-v"]) as c:
        with grpc_util.cleartext_channel(c) as ch:
            p3 = publish(ch, pb, "Flow", [sent[s] for s in range(1, 21)])
    assert "15 events already there" in c.stderr(), c.stderr()
    r = p3.last()
    assert p3.code == OK and (r.acked_seq, r.accepted, r.duplicates) == (20, 5, 15), p3.summary()
    keys, msgs = read_output(kind, out, pb, ["dedup"])
    assert keys == [("dedup", "flow", s) for s in range(1, 21)], keys
    if msgs is not None:
        assert msgs == [sent[s] for s in range(1, 21)]
    else:
        assert_output_is(out, list(sent.values()))
    with open(out, "rb") as f:
        assert f.read().startswith(before), "the restart changed what was already stored"


def pb_frame(pb, flow):
    body = pb.events.Event(flow=flow).SerializeToString()
    n, head = len(body), bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        head.append(b | (0x80 if n else 0))
        if not n:
            return bytes(head) + body


@pytest.mark.parametrize("kind", ["json", "pb"])
def test_partial_last_record_is_cut(collector_bin, pb, tmp_path, kind):
    """A crash can leave half a record at the end of the file. At start the
    collector cuts exactly that half off (and says where), keeps the whole
    records before it (and their seqs as stored), and appends after them
    cleanly: every record of the file then parses."""
    out = str(tmp_path / ("events." + kind))
    args = ["--insecure-cleartext", "-o", "%s:%s" % (kind, out)]
    sent = flows(pb, "partial", range(1, 7))
    with collector(args) as c:
        with grpc_util.cleartext_channel(c) as ch:
            assert publish(ch, pb, "Flow", sent[:3]).code == OK
    with open(out, "rb") as f:
        good = f.read()
    if kind == "json":
        half = good.splitlines(keepends=True)[1]
        half = half[:len(half) // 2]
    else:
        frame = pb_frame(pb, sent[3])
        half = frame[:len(frame) // 2]
    with open(out, "ab") as f:
        f.write(half)

    with collector(args) as c:
        assert re.search(r"removed a partial last record at byte %d\b" % len(good), c.stderr()), c.stderr()
        with grpc_util.cleartext_channel(c) as ch:
            p = publish(ch, pb, "Flow", sent)
    r = p.last()
    assert p.code == OK and (r.acked_seq, r.accepted, r.duplicates) == (6, 3, 3), p.summary()
    with open(out, "rb") as f:
        data = f.read()
    assert data.startswith(good), "the whole records before the cut changed"
    keys, msgs = read_output(kind, out, pb, ["partial"])  # every record parses: the half is gone
    assert keys == [("partial", "flow", s) for s in range(1, 7)], keys
    if msgs is not None:
        assert msgs == sent


def run_to_listen_or_exit(args, timeout=10):
    """Start the collector: ("exited", rc, stderr) if it exits first, or
    ("listening", Collector)."""
    proc = subprocess.Popen([grpc_util.collector_path(), "--listen", "127.0.0.1:0"] + [str(a) for a in args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=util.agent_env())
    c = grpc_util.Collector(proc, args, None)
    deadline = time.monotonic() + timeout
    while not c.listening.wait(0.05):
        if proc.poll() is not None:
            c._reader.join(5)
            return "exited", proc.returncode, c.stderr()
        if time.monotonic() > deadline:
            c.kill()
            raise AssertionError("sonde-collector neither listened nor exited within %ss" % timeout)
    return "listening", c


def test_damaged_pb_file_is_not_truncated(collector_bin, pb, tmp_path):
    """A pb: file whose bytes after some good frames are not frames at all
    (here: a length varint of 256 MiB followed by 64 KiB more, which no crash
    of the writer can leave) is not a partial last record. The collector must
    refuse to append to it, as it does for a JSON file with a line that is
    not JSON, and leave it as it is: truncating it loses every event after
    the damage."""
    out = tmp_path / "events.pb"
    data = b"".join(pb_frame(pb, f) for f in flows(pb, "damaged", range(1, 4)))
    data += b"\x80\x80\x80\x80\x01" + bytes(range(256)) * 256
    out.write_bytes(data)
    r = run_to_listen_or_exit(["--insecure-cleartext", "-o", "pb:%s" % out])
    if r[0] == "listening":
        r[1].stop()
    after = out.read_bytes()
    assert after == data, "the collector cut %s from %d to %d bytes" % (out, len(data), len(after))
    assert r[0] == "exited" and r[1] == 1 and str(out) in r[2], r


def test_restart_on_uint64_above_int64_max(collector_bin, pb, tmp_path):
    """uint64 fields are written as JSON numbers (events.proto). An event
    with a counter at 2^64-1, accepted and stored, must not stop the
    collector from restarting on its own file, and its seq must be
    recognised as stored."""
    out = str(tmp_path / "events.jsonl")
    args = ["--insecure-cleartext", "-o", "json:" + out]
    big = make_flow(pb, "big", 1, local_bytes=2 ** 64 - 1, total_bytes=2 ** 63)
    with collector(args) as c:
        with grpc_util.cleartext_channel(c) as ch:
            assert publish(ch, pb, "Flow", [big]).code == OK
    assert_output_is(out, [big])
    r = run_to_listen_or_exit(args)
    assert r[0] == "listening", "restart on its own output failed: exit %r\n%s" % (r[1], r[2])
    c = r[1]
    try:
        with grpc_util.cleartext_channel(c) as ch:
            p = publish(ch, pb, "Flow", [big, make_flow(pb, "big", 2)])
    finally:
        c.stop()
    assert p.code == OK and (p.last().accepted, p.last().duplicates) == (1, 1), p.summary()


def test_non_utf8_agent_id(collector_bin, pb, tmp_path):
    """proto3 strings are UTF-8; the reference protobuf refuses to parse a
    message whose string is not. An event whose agent_id is b"ag\\xff" must
    be refused (INVALID_ARGUMENT); if it is accepted, deduplication must at
    least still hold: sent again after a restart, it is a duplicate."""
    out = str(tmp_path / "events.jsonl")
    args = ["--insecure-cleartext", "-o", "json:" + out]
    raw = b"\x0a\x03ag\xff\x10\x01"  # Flow{agent_id: b"ag\xff", seq: 1}
    codes = []
    for _ in range(2):
        with collector(args) as c:
            with grpc_util.cleartext_channel(c) as ch:
                p = publish(ch, pb, "Flow", [raw], wait_last_ack=False)
        codes.append((p.code, p.details))
        if p.code == grpc.StatusCode.INVALID_ARGUMENT:
            break
    stored = read_json(out)
    if codes[0][0] == grpc.StatusCode.INVALID_ARGUMENT:
        assert stored == [], stored
    else:
        assert len(stored) == 1, "accepted (%s) and stored %d times across a restart" % (codes, len(stored))


def test_output_to_a_pipe(collector_bin, pb, tmp_path):
    """-o json:/dev/stdout with stdout a pipe (sonde-collector ... | jq) must
    start and write the events to the pipe: there is nothing to scan in a
    pipe."""
    c = grpc_util.start_collector(["--insecure-cleartext", "-o", "json:/dev/stdout"], stdout=subprocess.PIPE,
                                  start_timeout=5)
    try:
        with grpc_util.cleartext_channel(c) as ch:
            assert publish(ch, pb, "Flow", flows(pb, "pipe", [1])).code == OK
        line = c.proc.stdout.readline()
        assert b'"agent_id":"pipe"' in line, line
    finally:
        c.stop()
        c.proc.stdout.close()


@pytest.mark.parametrize("kind", ["json", "pb"])
def test_full_disk_leaves_whole_records(collector_bin, pb, tmp_path, kind):
    """The output on a 256 KiB tmpfs that fills up: the publisher is refused
    with UNAVAILABLE, the log names the file and the error, nothing beyond
    the commit before is acknowledged, the collector exits 1, and the file
    ends on a whole record (the failed write is cut back), so a restart
    reads it back without cutting anything."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: " + r.stderr.strip())
    try:
        out = str(mnt / ("events." + kind))
        args = ["--insecure-cleartext", "-o", "%s:%s" % (kind, out)]
        sent = flows(pb, "full", range(1, 4001))
        c = grpc_util.start_collector(args)
        try:
            with grpc_util.cleartext_channel(c) as ch:
                first = publish(ch, pb, "Flow", sent[:50])
                p = publish(ch, pb, "Flow", sent[50:], wait_last_ack=False)
        finally:
            rc, err = c.stop(check=False)
        util.assert_no_sanitizer(err, "sonde-collector")
        assert first.code == OK and first.max_acked() == 50, first.summary()
        assert p.code == grpc.StatusCode.UNAVAILABLE, p.summary()
        assert "cannot" in p.details, p.details
        assert rc == 1 and out + ": No space left on device" in err, (rc, err)
        keys, _ = read_output(kind, out, pb, ["full"])  # fails on a partial record
        assert 50 <= len(keys) < len(sent)
        assert keys == [("full", "flow", s) for s in range(1, len(keys) + 1)], keys[-3:]
        assert p.max_acked() <= len(keys), "acknowledged %d, stored %d" % (p.max_acked(), len(keys))
        with open(out, "rb") as f:
            before = f.read()
        with collector(args + ["-v"]) as c:
            pass
        assert "removed a partial" not in c.stderr(), c.stderr()
        with open(out, "rb") as f:
            assert f.read() == before
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


# ---------------------------------------------------------------- TLS

def test_tls_publish_with_cn_as_agent_id(tls, pki, pb):
    """Mutual TLS with agent-1's certificate: events whose agent_id is
    agent-1 (the CN) are acked and stored; health works over TLS too."""
    with grpc_util.tls_channel(tls, pki.channel_credentials("agent-1")) as ch:
        assert grpc_util.health_check(ch, pb, "sonde.v1.D3Events") == ("SERVING", OK)
        msgs = flows(pb, "agent-1", range(1, 11))
        p = publish(ch, pb, "Flow", msgs)
    assert p.code == OK and p.last().acked_seq == 10 and p.last().accepted == 10, p.summary()
    assert_output_is(tls.out, msgs, agents=["agent-1"])


def test_tls_agent_id_must_be_cn(tls, pki, pb):
    """agent-2's certificate with events claiming another agent_id (with
    non-ASCII and '%', which grpc-message must percent-encode):
    PERMISSION_DENIED naming that agent_id exactly, nothing stored; agent-2
    publishing as itself right after is accepted."""
    other = "ag\u00ebnt-9%41"
    with grpc_util.tls_channel(tls, pki.channel_credentials("agent-2")) as ch:
        p = publish(ch, pb, "Flow", flows(pb, other, [1, 2]), wait_last_ack=False)
        assert p.code == grpc.StatusCode.PERMISSION_DENIED, (p.code, p.details)
        assert other in p.details, p.details
        assert not any(r.acked_seq for r in p.responses), p.summary()
    assert events_of(tls.out, [other]) == []
    assert_publishes(tls, pb, "agent-2", creds=pki.channel_credentials("agent-2"))


def test_tls_trust_agent_id(collector_bin, pki, pb, tmp_path):
    """With --trust-agent-id the agent_id is taken as sent."""
    with collector(pki.collector_args() + ["--trust-agent-id"], tmp_path=tmp_path) as c:
        with grpc_util.tls_channel(c, pki.channel_credentials("agent-1")) as ch:
            msgs = flows(pb, "relay-7", range(1, 4))
            p = publish(ch, pb, "Flow", msgs)
        assert p.code == OK and p.last().acked_seq == 3, p.summary()
        assert_output_is(c.out, msgs)


@pytest.mark.parametrize("client", ["other-ca", "no-cert", "cleartext"])
def test_tls_refuses_unauthenticated(tls, pki, pb, client):
    """A client certificate from another CA, no client certificate, and a
    cleartext (h2c) client: the call fails UNAVAILABLE (the handshake fails,
    no HTTP/2 at all), nothing is stored, and a good agent still publishes."""
    if client == "other-ca":
        with open(pki.ca, "rb") as f:
            root = f.read()
        with open(pki.other.key("agent-1"), "rb") as f:
            k = f.read()
        with open(pki.other.cert("agent-1"), "rb") as f:
            crt = f.read()
        ch = grpc.secure_channel(tls.address, grpc.ssl_channel_credentials(root, k, crt))
    elif client == "no-cert":
        ch = grpc.secure_channel(tls.address, pki.channel_credentials(None))
    else:
        ch = grpc.insecure_channel(tls.address)
    with ch:
        p = publish(ch, pb, "Flow", flows(pb, "agent-1", [10 ** 6]), wait_last_ack=False, timeout=10)
    assert p.code == grpc.StatusCode.UNAVAILABLE, (p.code, p.details)
    assert p.responses == []
    assert ("agent-1", "flow", 10 ** 6) not in {key(e) for e in read_json(tls.out)}
    assert_publishes(tls, pb, "agent-1", creds=pki.channel_credentials("agent-1"))


# ---------------------------------------------------------------- bad data

# A refusal for size says it is one.
TOO_LONG_RE = r"over|limit|too long"


def bad_cases(pb):
    E = pb.events
    long = "x" * (MAX_STRING + 1)
    return {
        "not-a-flow": (["Flow", [b"\x0a\x05ab"]], grpc.StatusCode.INVALID_ARGUMENT, r"sonde\.v1\.Flow"),
        "seq-0": (["Flow", [E.Flow(agent_id="bad-seq0", seq=0)]], grpc.StatusCode.INVALID_ARGUMENT,
                  r"seq"),
        "no-agent-id": (["Flow", [E.Flow(seq=5)]], grpc.StatusCode.INVALID_ARGUMENT, r"agent_id"),
        "long-string": (["Flow", [make_flow(pb, "bad-long", 1, interface=long)]],
                        grpc.StatusCode.INVALID_ARGUMENT, TOO_LONG_RE),
        "long-nested-string": (["Flow", [make_flow(pb, "bad-nested", 1,
                                                   detection=E.Detection(host_server_name=long))]],
                               grpc.StatusCode.INVALID_ARGUMENT, TOO_LONG_RE),
        "long-repeated-string": (["Dns", [make_dns(pb, "bad-rep", 1,
                                                   answers=[E.DnsAnswer(name="a"), E.DnsAnswer(data=long)])]],
                                 grpc.StatusCode.INVALID_ARGUMENT, TOO_LONG_RE),
        "agent-changes": (["Flow", [make_flow(pb, "bad-chg", 1), make_flow(pb, "bad-chg2", 2)]],
                          grpc.StatusCode.INVALID_ARGUMENT, r"bad-chg2"),
        "long-agent-id": (["Flow", [make_flow(pb, "a" * 128, 1)]], grpc.StatusCode.INVALID_ARGUMENT,
                          r"agent_id"),
    }


@pytest.mark.parametrize("case", ["not-a-flow", "seq-0", "no-agent-id", "long-string", "long-nested-string",
                                  "long-repeated-string", "agent-changes", "long-agent-id"])
def test_bad_event_refused(strict, pb, case):
    """Each refused call ends with INVALID_ARGUMENT and a message that says
    what was wrong; the refused event is not stored; another client on
    another connection publishes as before. With a JSON output and with a
    pb: output only."""
    (type_name, msgs), code, why = bad_cases(pb)[case]
    with grpc_util.cleartext_channel(strict) as ch:
        p = publish(ch, pb, type_name, msgs, wait_last_ack=False)
    assert p.code == code, (p.code, p.details, p.summary())
    assert re.search(why, p.details or ""), "status message %r does not say %r" % (p.details, why)
    stored = {key(e) for e in stored_messages(strict, pb)}
    bad = msgs[-1]
    if not isinstance(bad, bytes):
        assert key(bad) not in stored, "the refused event was stored"
    assert_publishes(strict, pb, "after-" + case)


@pytest.mark.parametrize("case,field_re", [
    ("long-string", r"\binterface\b|\bfield 4\b"),
    ("long-nested-string", r"host_server_name|\b40\.10\b"),
    ("long-repeated-string", r"answers|\b22\.5\b"),
])
def test_size_refusal_names_field_and_limit(clear, pb, case, field_re):
    """A string over --max-string is refused with a message an operator can
    act on: the offending field (by name, or its number path for a nested
    one - a bare inner number names a different field of the event) and the
    limit (its value or --max-string)."""
    (type_name, msgs), code, _ = bad_cases(pb)[case]
    with grpc_util.cleartext_channel(clear) as ch:
        p = publish(ch, pb, type_name, msgs, wait_last_ack=False)
    assert p.code == code, (p.code, p.details)
    assert re.search(r"\b%d\b|max-string" % MAX_STRING, p.details), "no limit in %r" % p.details
    assert re.search(field_re, p.details), "%r does not name the field (%s)" % (p.details, field_re)


def test_message_over_max_message(clear, pb):
    """A message over --max-message ends the call RESOURCE_EXHAUSTED (the
    contract in d3events.proto), so the agent knows not to resend it as
    is; the collector keeps serving."""
    big = make_flow(pb, "bad-big", 1, detection=pb.events.Detection(
        risks=pb.events.Risks(risks=["r" * 100] * (MAX_MESSAGE // 100 + 5))))
    assert big.ByteSize() > MAX_MESSAGE
    try:
        with grpc_util.cleartext_channel(clear) as ch:
            p = publish(ch, pb, "Flow", [big], wait_last_ack=False)
        assert p.code == grpc.StatusCode.RESOURCE_EXHAUSTED, (p.code, p.details)
        assert str(MAX_MESSAGE) in p.details, "the status message does not give the limit: %r" % p.details
    finally:
        assert_publishes(clear, pb, "after-big")


@pytest.mark.parametrize("path", ["/sonde.v1.D3Events/PublishBogusStream", "/sonde.v1.Nothing/Publish",
                                  "/grpc.health.v1.Health/List"])
def test_unknown_method(clear, pb, path):
    """An unknown method is UNIMPLEMENTED, naming it."""
    with grpc_util.cleartext_channel(clear) as ch:
        call = ch.stream_stream(path, request_serializer=grpc_util.identity,
                                response_deserializer=grpc_util.identity)
        with pytest.raises(grpc.RpcError) as e:
            list(call(iter([b""]), timeout=10))
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED, (e.value.code(), e.value.details())
    assert path in e.value.details()
    assert_publishes(clear, pb, "after-unknown")


def test_accept_types_unsubscribe(collector_bin, pb, tmp_path):
    """--accept-types flow: a Dns call is answered UNSUBSCRIBE with a reason,
    at once; Flow calls work as usual."""
    with collector(["--insecure-cleartext", "--accept-types", "flow"], tmp_path=tmp_path) as c:
        with grpc_util.cleartext_channel(c) as ch:
            p = Publisher(ch, pb, "Dns")
            try:
                p.wait_response()
                first = p.responses[0] if p.responses else None
                assert first is not None and first.status == pb.d3.PUBLISH_STATUS_UNSUBSCRIBE, \
                    (p.summary(), p.code, p.details)
                assert first.reason, "UNSUBSCRIBE without a reason"
            finally:
                p.cancel()
        assert_publishes(c, pb, "accepted")


def test_accept_types_call_ends_and_stores_nothing(collector_bin, pb, tmp_path):
    """After UNSUBSCRIBE the call ends OK without waiting for the client to
    half-close, and a Dns event the client sends anyway is not stored."""
    with collector(["--insecure-cleartext", "--accept-types", "flow"], tmp_path=tmp_path) as c:
        with grpc_util.cleartext_channel(c) as ch:
            p = Publisher(ch, pb, "Dns")
            try:
                p.wait_response()
                p.send(make_dns(pb, "unwanted", 1))
                try:
                    p.wait(lambda s: s.done, 5, "the end of the call")
                    ended = True
                except AssertionError:
                    ended = False
                p.finish()
            finally:
                p.cancel()
        stored = events_of(c.out, ["unwanted"])
        assert stored == [], "an event of a type outside --accept-types was stored: %s" % stored
        assert ended and p.code == OK, "the call did not end after UNSUBSCRIBE: %s" % p.summary()


# ---------------------------------------------------------------- hostile peers

def read_until_closed(sock, timeout=5):
    """Read until the peer closes (EOF or reset); returns (closed, bytes)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            d = sock.recv(65536)
            if not d:
                return True, data
            data += d
    except ConnectionResetError:
        return True, data
    except socket.timeout:
        pass
    return False, data


GARBAGE = b"\x16\x03\x01\x02\x00" + bytes((i * 37 + 11) % 256 for i in range(600))


@pytest.mark.parametrize("what,payload", [
    ("garbage", GARBAGE),
    ("http1", b"POST /sonde.v1.D3Events/PublishFlowStream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Content-Type: application/grpc\r\nContent-Length: 5\r\n\r\n\x00\x00\x00\x00\x00"),
], ids=["garbage", "http1"])
def test_cleartext_not_http2(clear, pb, what, payload):
    """Garbage or an HTTP/1.1 request instead of the HTTP/2 preface: the
    collector closes that connection at once (well before its 10 s
    handshake timeout), answers nothing an HTTP/1.1 client could take for
    success, and keeps serving others."""
    with socket.create_connection(("127.0.0.1", clear.port), timeout=5) as s:
        s.sendall(payload)
        t0 = time.monotonic()
        closed, data = read_until_closed(s)
    assert closed, "the connection is still open %.1f s after %s" % (time.monotonic() - t0, what)
    assert not data.startswith(b"HTTP/1.1 2"), data[:200]
    assert_publishes(clear, pb, "after-" + what)


def test_tls_garbage(tls, pki, pb):
    """Garbage instead of a ClientHello: the connection is closed at once and
    the collector keeps serving."""
    with socket.create_connection(("127.0.0.1", tls.port), timeout=5) as s:
        s.sendall(GARBAGE)
        closed, _ = read_until_closed(s)
    assert closed, "the TLS port kept a connection that sent garbage"
    assert_publishes(tls, pb, "agent-1", creds=pki.channel_credentials("agent-1"))


def s_client(port, pki, *extra):
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", pki.ca,
           "-cert", pki.cert("agent-1"), "-key", pki.key("agent-1"), "-verify_return_error",
           "-servername", "127.0.0.1"] + list(extra)
    p = subprocess.run(cmd, input=b"", capture_output=True, timeout=20)
    # what the server sends after the handshake (HTTP/2 frames) is binary
    return subprocess.CompletedProcess(p.args, p.returncode, p.stdout.decode(errors="replace"),
                                       p.stderr.decode(errors="replace"))


def test_tls_alpn_http11_only(tls, pki, pb):
    """A client offering only ALPN http/1.1 (with a valid certificate) fails
    the handshake with a no_application_protocol alert: gRPC is h2 only."""
    p = s_client(tls.port, pki, "-alpn", "http/1.1")
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    assert re.search(r"no application protocol", out, re.I), out
    assert "ALPN protocol: http/1.1" not in out, out
    ok = s_client(tls.port, pki, "-alpn", "h2")  # the same client offering h2: the oracle's control
    assert "ALPN protocol: h2" in ok.stdout, ok.stdout + ok.stderr
    assert_publishes(tls, pb, "agent-1", creds=pki.channel_credentials("agent-1"))


def curl(url, *args, timeout=20):
    return subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-m", "10", "-D", "-", "-o", "/dev/null",
                           "-w", "\ncode=%{http_code} version=%{http_version}\n"] + list(args) + [url],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("args,status", [
    (["-X", "GET"], "405"),
    (["-X", "POST", "-H", "content-type: text/plain"], "415"),
    (["-X", "POST", "-H", "content-type: application/json"], "415"),
    (["-X", "POST", "-H", "content-type: application/grpcx"], "415"),
], ids=["GET", "text-plain", "json", "grpcx"])
def test_http_method_and_content_type(clear, pb, args, status):
    """Over HTTP/2 (curl, prior knowledge): a method other than POST is HTTP
    405 and a content-type other than application/grpc[+...] is HTTP 415,
    before any gRPC handling."""
    url = "http://127.0.0.1:%d/sonde.v1.D3Events/PublishFlowStream" % clear.port
    p = curl(url, *args)
    assert p.returncode == 0, p.stderr
    assert "code=%s version=2" % status in p.stdout, p.stdout
    assert "grpc-status" not in p.stdout, p.stdout


def test_grpc_framing_via_curl(clear, pb):
    """The control for the tests above and the framing a grpc client would
    never send: application/grpc to an unknown path is a gRPC UNIMPLEMENTED
    (200 + grpc-status 12); a stream that ends inside a message is INTERNAL."""
    base = "http://127.0.0.1:%d" % clear.port
    p = curl(base + "/no.Such/Method", "-X", "POST", "-H", "content-type: application/grpc")
    assert p.returncode == 0 and "code=200" in p.stdout, p.stdout + p.stderr
    assert re.search(r"^grpc-status: 12\b", p.stdout, re.M), p.stdout
    # the body from stdin: a prefix announcing 32 bytes, then only 3
    p = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-m", "10", "-D", "-", "-o", "/dev/null",
                        "-X", "POST", "-H", "content-type: application/grpc", "-H", "te: trailers",
                        "--data-binary", "@-", base + "/sonde.v1.D3Events/PublishFlowStream"],
                       input=b"\x00\x00\x00\x00\x20abc", capture_output=True, timeout=20)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, p.stderr
    assert re.search(r"^grpc-status: 13\b", out, re.M), out
    assert_publishes(clear, pb, "after-curl")


def test_compressed_flag_without_encoding(clear, pb):
    """A message with the compressed flag and no grpc-encoding is a gRPC
    protocol error: the call ends with status INTERNAL (in trailers), not a
    bare stream reset."""
    p = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-m", "10", "-D", "-", "-o", "/dev/null",
                        "-X", "POST", "-H", "content-type: application/grpc", "-H", "te: trailers",
                        "--data-binary", "@-",
                        "http://127.0.0.1:%d/sonde.v1.D3Events/PublishFlowStream" % clear.port],
                       input=b"\x01\x00\x00\x00\x03abc", capture_output=True, timeout=20)
    out = p.stdout.decode(errors="replace")
    try:
        assert p.returncode == 0, p.stderr
        assert re.search(r"^grpc-status: 13\b", out, re.M), out
    finally:
        assert_publishes(clear, pb, "after-compressed")


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_PING, H2_GOAWAY = 6, 7
H2_ENHANCE_YOUR_CALM = 0xB


def h2_frame(ftype, flags, stream, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + stream.to_bytes(4, "big") + payload


def h2_frames(buf):
    """[(type, flags, stream, payload)] of the whole frames in buf."""
    out, i = [], 0
    while i + 9 <= len(buf):
        n = int.from_bytes(buf[i:i + 3], "big")
        if i + 9 + n > len(buf):
            break
        out.append((buf[i + 3], buf[i + 4], int.from_bytes(buf[i + 5:i + 9], "big") & 0x7FFFFFFF,
                    buf[i + 9:i + 9 + n]))
        i += 9 + n
    return out


def test_ping_flood(clear, pb):
    """A client sending PINGs back to back (20, far closer than the 5 s
    minimum) gets one GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings") and the
    connection is closed, as gRPC servers do; one warning is logged, not one
    per PING; others are not disturbed."""
    before = clear.stderr().count("too many pings")
    with socket.create_connection(("127.0.0.1", clear.port), timeout=5) as s:
        s.sendall(H2_PREFACE + h2_frame(4, 0, 0) + b"".join(h2_frame(H2_PING, 0, 0, b"%08d" % i)
                                                            for i in range(20)))
        closed, data = read_until_closed(s, timeout=3)
    goaways = [f for f in h2_frames(data) if f[0] == H2_GOAWAY]
    assert goaways, "no GOAWAY for a PING flood: %s" % [f[:3] for f in h2_frames(data)]
    assert int.from_bytes(goaways[0][3][4:8], "big") == H2_ENHANCE_YOUR_CALM, goaways[0]
    assert b"too_many_pings" in goaways[0][3][8:], goaways[0]
    assert_publishes(clear, pb, "after-pings")
    logged = clear.stderr().count("too many pings") - before
    assert len(goaways) == 1 and logged == 1, "%d GOAWAY frames and %d log lines for one connection" % (
        len(goaways), logged)
    assert closed, "the connection is still open 3 s after the GOAWAY"


def test_many_streams_one_channel(clear, pb):
    """50 calls at once on one channel (one HTTP/2 connection), each its own
    agent: every call is acked up to its last seq and ends OK; each event is
    stored once."""
    n_calls, n_events = 50, 20
    sent = {i: flows(pb, "many-%d" % i, range(1, n_events + 1)) for i in range(n_calls)}
    results = {}
    with grpc_util.cleartext_channel(clear) as ch:
        barrier = threading.Barrier(n_calls)

        def one(i):
            barrier.wait(10)
            try:
                results[i] = publish(ch, pb, "Flow", sent[i])
            except AssertionError as e:
                results[i] = e

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n_calls)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    bad = {i: r if isinstance(r, AssertionError) else (r.code, r.summary()[-1:])
           for i, r in results.items()
           if isinstance(r, AssertionError) or r.code != OK or r.last().acked_seq != n_events}
    assert len(results) == n_calls and not bad, bad
    assert_output_is(clear.out, [m for v in sent.values() for m in v], agents=["many-%d" % i for i in range(n_calls)])


def test_many_agents_at_once(clear, pb):
    """30 agents, each on its own channel (connection), publish Flow and Dns
    at the same moment: all acked, all OK, the output has each agent's
    events exactly once."""
    n_agents = 30
    sent = {}
    for i in range(n_agents):
        a = "fleet-%02d" % i
        sent[a] = (flows(pb, a, range(1, 30, 2)), [make_dns(pb, a, s) for s in range(2, 31, 2)])
    results = {}
    barrier = threading.Barrier(n_agents)

    def agent(a):
        try:
            with grpc_util.cleartext_channel(clear) as ch:
                grpc_util.wait_channel_ready(ch)
                barrier.wait(20)
                pf = Publisher(ch, pb, "Flow").send(*sent[a][0])
                pd = Publisher(ch, pb, "Dns").send(*sent[a][1])
                try:
                    pf.wait_ack(29)
                    pd.wait_ack(30)
                    results[a] = (pf.finish(), pd.finish())
                finally:
                    pf.cancel()
                    pd.cancel()
        except (AssertionError, grpc.FutureTimeoutError, threading.BrokenBarrierError) as e:
            results[a] = repr(e)

    threads = [threading.Thread(target=agent, args=(a,)) for a in sent]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    bad = {a: r for a, r in results.items() if r != ((OK, ""), (OK, ""))}
    assert len(results) == n_agents and not bad, bad
    assert_output_is(clear.out, [m for f, d in sent.values() for m in f + d], agents=list(sent))


def test_cleartext_idle_stream_survives(clear, pb):
    """A cleartext publisher with nothing to send for a while (a quiet
    network) keeps its call: after 11 s of silence (longer than the 10 s
    allowed for the preface) it publishes again on the same call and is
    acked. Slow by nature: the silence is the test."""
    with grpc_util.cleartext_channel(clear) as ch:
        p = Publisher(ch, pb, "Flow")
        try:
            p.send(make_flow(pb, "quiet", 1))
            p.wait_ack(1)
            t0 = time.monotonic()
            try:  # 11 s of silence: this wait must run out
                p.wait(lambda s: s.done, 11, "the end of the call")
            except AssertionError:
                pass
            assert not p.done, "the call ended after %.1f s of silence: %s %r" % (
                time.monotonic() - t0, p.code, p.details)
            p.send(make_flow(pb, "quiet", 2))
            p.wait_ack(2)
            assert p.finish() == (OK, ""), p.summary()
        finally:
            p.cancel()


# ---------------------------------------------------------------- SIGTERM

def test_sigterm_during_publish(collector_bin, pb, tmp_path):
    """SIGTERM while a publish call is open, with events 1..5 acked and 6..40
    sent just before the signal (some may still be in flight), and a health
    Watch open: the Watch gets NOT_SERVING; the publisher gets a STOP with a
    reason as its last response, then the call ends UNAVAILABLE. Whatever
    was acknowledged (acked_seq of the STOP, at least 5) is in the file,
    nothing is stored twice, and the collector exits 0."""
    c = grpc_util.start_collector(["--insecure-cleartext"], tmp_path=tmp_path)
    signalled = False
    try:
        with grpc_util.cleartext_channel(c) as ch:
            watch = ch.unary_stream(grpc_util.HEALTH_WATCH,
                                    request_serializer=pb.health.HealthCheckRequest.SerializeToString,
                                    response_deserializer=pb.health.HealthCheckResponse.FromString)
            wcall = watch(pb.health.HealthCheckRequest(service=""), timeout=20)
            statuses = []
            got_first = threading.Event()

            def read_watch():
                try:
                    for r in wcall:
                        statuses.append(pb.health.HealthCheckResponse.ServingStatus.Name(r.status))
                        got_first.set()
                except grpc.RpcError:
                    pass
                got_first.set()

            wt = threading.Thread(target=read_watch, daemon=True)
            wt.start()
            msgs = flows(pb, "term", range(1, 41))
            p = Publisher(ch, pb, "Flow").send(*msgs[:5])
            try:
                p.wait_ack(5)
                assert got_first.wait(10) and statuses[:1] == ["SERVING"], statuses
                p.send(*msgs[5:])
                c.proc.send_signal(signal.SIGTERM)
                signalled = True
                p.wait(lambda s: s.done, 10, "the end of the call after SIGTERM")
            finally:
                p.cancel()
            wt.join(10)
            wcall.cancel()
    finally:
        # one SIGTERM only (a second one means "now"): it must exit by itself
        rc, err = c.terminate(signal_it=not signalled)
    util.assert_no_sanitizer(err, "sonde-collector")
    assert rc == 0, "exit %d after SIGTERM:\n%s" % (rc, err[-4000:])
    last = p.last()
    assert last is not None and last.status == pb.d3.PUBLISH_STATUS_STOP, p.summary()
    assert last.reason and 5 <= last.acked_seq <= 40, p.summary()
    assert p.code == grpc.StatusCode.UNAVAILABLE, (p.code, p.details)
    assert "NOT_SERVING" in statuses, statuses
    stored = events_of(c.out, ["term"])
    assert_output_is(c.out, [m for m in msgs if key(m) in {key(e) for e in stored}], agents=["term"])
    missing = [m.seq for m in msgs if m.seq <= last.acked_seq and key(m) not in {key(e) for e in stored}]
    assert not missing, "acknowledged but not stored: %s" % missing
