"""Helpers for the tests of sonde-agent's gRPC side (--push and --listen).

The peer is the reference gRPC (Debian's python3-grpcio) through its generic
API, with the protobuf classes protoc generates from proto/ at test time, so
the agent is checked against the .proto files themselves.

* ``compile_protos(dir)``, ``make_pki``, ``Pki``, ``collector_path``: from
  grpc_common.py, shared with grpc_util.py.
* ``PublishReceiver``: a grpcio server for every Publish<Type>Stream of
  sonde.v1.D3Events that records each event per type (and per call) and
  acknowledges each message (PublishResponse OK, acked_seq = its seq), or
  holds the acknowledgements back while ``ack_gate`` is cleared; cleartext
  or TLS with client certificates required.
* ``Subscription``: a Subscribe call read on a thread (optionally stopping
  after N events, a slow subscriber); ``get_info``, ``health_check``.
* ``Agent``: sonde-agent in the background (stderr to a file, optionally
  fed a pcap through stdin with ``-r -``, optionally inside a netns);
  ``wait()`` checks the exit code, a death by signal and the sanitizer
  report; ``feed_until_status()`` feeds event-less frames (``junk_frames``)
  until an agent_status of its JSON output says what the test waits for.
* ``Collector``: sonde-collector on a given or free port, restartable on
  the same port and output file (SIGTERM or SIGKILL).
* pcap helpers: ``pcap_stream_parts`` (header + records of a classic pcap,
  to feed stdin), ``write_udp_pcap`` (a synthetic capture of N UDP flows,
  for tests that must not depend on the corpus).
* event helpers: (type, seq) keys, per-(agent, type) counts, comparison
  with a readable diff, agent_status push counters.

Run all Python with /usr/bin/python3.
"""

import collections
import ipaddress
import json
import os
import queue
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from concurrent import futures

import grpc
import pytest

import util
from grpc_common import (LISTEN_RE, SERVICE, collector_path, compile_protos,  # noqa: F401
                         health_check, make_pki, wait_channel_ready)

SUBSCRIBE = "/sonde.v1.D3Events/Subscribe"
GET_INFO = "/sonde.v1.D3Events/GetInfo"

START_TIMEOUT = 20
STOP_TIMEOUT = 30


def timeout_scale():
    """Sanitizer builds run a few times slower: scale generous timeouts."""
    return 3 if util.is_sanitizer_build() else 1


# ---------------------------------------------------------------- ports

def free_port(host="127.0.0.1"):
    """A TCP port nothing listens on now (bound and released)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def port_open(host, port, timeout=0.2):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------- the publish receiver

class PublishReceiver:
    """A Python gRPC server for every Publish<Type>Stream.

    Every message is recorded (``events[type]``, in arrival order, with the
    method it came on in ``arrivals``) and acknowledged at once with
    PublishResponse{OK, acked_seq = highest seq of the type so far}, unless
    ``ack_gate`` is cleared (then acknowledgements wait, reading goes on).
    ``peers`` holds the TLS common names of the callers; ``half_closed``
    counts the calls the agent ended its side of."""

    def __init__(self, pb, pki=None, cert_name=None, host="127.0.0.1", max_workers=64):
        self.pb = pb
        self.cond = threading.Condition()
        self.events = collections.defaultdict(list)     # type -> [message]
        self.arrivals = []                               # (method, type, seq)
        self.calls = collections.Counter()               # method -> calls opened
        self.active = collections.Counter()              # method -> calls open now
        self.peers = set()
        self.errors = []
        self.max_acked = collections.defaultdict(int)
        self.half_closed = collections.Counter()        # method -> calls the agent half-closed
        self.ack_gate = threading.Event()                # cleared: acknowledgements held back
        self.ack_gate.set()
        handlers = {}
        for method, t in pb.publish_methods.items():
            cls = pb.class_of_type[t]
            handlers[method] = grpc.stream_stream_rpc_method_handler(
                self._handler(method, t), request_deserializer=cls.FromString,
                response_serializer=pb.d3.PublishResponse.SerializeToString)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers),
                                  options=[("grpc.max_receive_message_length", 16 << 20)])
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        if pki is None:
            self.port = self.server.add_insecure_port("%s:0" % host)
        else:
            self.port = self.server.add_secure_port("%s:0" % host, pki.server_credentials(cert_name))
        assert self.port, "cannot bind the publish receiver"
        self.server.start()

    @property
    def url_host(self):
        return "127.0.0.1:%d" % self.port

    def _handler(self, method, t):
        ok = self.pb.d3.PUBLISH_STATUS_OK

        def handle(request_iterator, context):
            cn = context.auth_context().get("x509_common_name")
            with self.cond:
                self.calls[method] += 1
                self.active[method] += 1
                if cn:
                    self.peers.update(x.decode() for x in cn)
            acks = queue.Queue()

            def consume():
                # Requests are read on their own thread, so that holding the
                # acknowledgements back (ack_gate) does not stop the reading.
                n = 0
                try:
                    for msg in request_iterator:
                        n += 1
                        with self.cond:
                            self.events[t].append(msg)
                            self.arrivals.append((method, t, msg.seq))
                            if msg.seq > self.max_acked[t]:
                                self.max_acked[t] = msg.seq
                            acked = self.max_acked[t]
                            self.cond.notify_all()
                        acks.put(self.pb.d3.PublishResponse(status=ok, acked_seq=acked, accepted=n))
                    with self.cond:
                        self.half_closed[method] += 1
                        self.cond.notify_all()
                except Exception as e:  # noqa: BLE001 - a cancelled call ends here
                    with self.cond:
                        self.errors.append((method, repr(e)))
                finally:
                    acks.put(None)
            reader = threading.Thread(target=consume, daemon=True)
            reader.start()
            try:
                while True:
                    r = acks.get()
                    if r is None:
                        break
                    self.ack_gate.wait()
                    yield r
            finally:
                with self.cond:
                    self.active[method] -= 1
                    self.cond.notify_all()
        return handle

    def half_closes(self):
        with self.cond:
            return sum(self.half_closed.values())

    def keys(self):
        with self.cond:
            return [(t, m.seq) for t, msgs in self.events.items() for m in msgs]

    def count(self):
        with self.cond:
            return sum(len(v) for v in self.events.values())

    def wait(self, pred, timeout, what="condition"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("publish receiver: timed out after %ss waiting for %s "
                                         "(%d events so far)" % (timeout, what, self.count()))
                self.cond.wait(min(left, 0.2))

    def stop(self):
        self.ack_gate.set()
        self.server.stop(grace=None).wait(10)


# ---------------------------------------------------------------- subscribers

def subscribe_request(pb, types=(), address="", port=0, protocol=0, application="", sample=0):
    return pb.d3.SubscribeRequest(types=list(types), address=address, port=port,
                                  protocol=protocol, application=application, sample=sample)


class Subscription:
    """One Subscribe call, read on a thread into ``events`` [(type, msg)].

    With stop_after=N the reader takes N events and then stops reading (a
    slow subscriber) until ``release()``. ``wait_done()`` waits for the end
    of the call (``code``, ``details``). The agent answers with its response
    headers before it has read the request, so they do not say that the
    subscription is in place: tests synchronise on agent_status.subscribers."""

    def __init__(self, channel, pb, request, timeout=None, stop_after=None):
        self.pb = pb
        self.events = []
        self.code = None
        self.details = None
        self.done = threading.Event()
        self.first = threading.Event()
        self._released = threading.Event()
        self._stop_after = stop_after
        self._lock = threading.Lock()
        call = channel.unary_stream(SUBSCRIBE, request_serializer=pb.d3.SubscribeRequest.SerializeToString,
                                    response_deserializer=pb.events.Event.FromString)
        self.call = call(request, timeout=timeout)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        try:
            for ev in self.call:
                t = ev.WhichOneof("event")
                with self._lock:
                    self.events.append((t, getattr(ev, t)))
                    n = len(self.events)
                self.first.set()
                if self._stop_after is not None and n >= self._stop_after:
                    self._released.wait()
        except grpc.RpcError:
            pass
        except Exception as e:  # noqa: BLE001 - shown by wait_done's callers
            self.details = "reader failed: %r" % e
        try:
            self.code = self.call.code()
            if self.details is None:
                self.details = self.call.details()
        finally:
            self.done.set()

    def release(self):
        self._released.set()

    def wait_done(self, timeout):
        ok = self.done.wait(timeout)
        assert ok, "Subscribe call not ended within %ss (%d events)" % (timeout, len(self.events))
        self._thread.join(5)
        return self.code, self.details

    def cancel(self):
        self.release()
        self.call.cancel()
        self.done.wait(10)

    def keys(self):
        with self._lock:
            return [(t, m.seq) for t, m in self.events]

    def of_type(self, t):
        with self._lock:
            return [m for tt, m in self.events if tt == t]


def get_info(channel, pb, timeout=10):
    call = channel.unary_unary(GET_INFO, request_serializer=pb.d3.GetInfoRequest.SerializeToString,
                               response_deserializer=pb.events.AgentHello.FromString)
    return call(pb.d3.GetInfoRequest(), timeout=timeout)


# ---------------------------------------------------------------- the agent

class Agent:
    """sonde-agent in the background. stdin is a pipe when stdin=True (for
    ``-r -``); stdout and stderr go to files under workdir."""

    def __init__(self, args, workdir, name="agent", stdin=False, netns=None, env=None):
        self.args = [str(a) for a in args]
        self.workdir = str(workdir)
        self.name = name
        self.err_path = os.path.join(self.workdir, name + ".err")
        self.out_path = os.path.join(self.workdir, name + ".out")
        self.json_path = None
        for i, a in enumerate(self.args[:-1]):
            if a == "-o" and self.args[i + 1].startswith("json:") and self.args[i + 1] != "json:-":
                self.json_path = self.args[i + 1][5:]
        cmd = [util.agent_path()] + self.args
        if netns:
            cmd = ["ip", "netns", "exec", netns] + cmd
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                         stdout=out, stderr=err, env=util.agent_env(env))
        self.rc = None
        self.started = time.monotonic()
        self.started_wall_ms = int(time.time() * 1000)
        self.elapsed = None

    def feed(self, data):
        """Write to the agent's stdin; False when it is gone (broken pipe)."""
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, ValueError):
            return False

    def close_stdin(self):
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass

    def stderr(self):
        try:
            with open(self.err_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def running(self):
        return self.proc.poll() is None

    def wait(self, timeout, expect_rc=0):
        """Wait for the exit; fails on a timeout (the agent is killed), a
        death by signal, a sanitizer report or an unexpected exit code."""
        self.close_stdin()
        try:
            self.rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("%s %s: no exit within %ss; stderr:\n%s" % (
                self.name, " ".join(self.args), timeout, self.stderr()[-4000:]))
        self.elapsed = time.monotonic() - self.started
        err = self.stderr()
        util.assert_no_sanitizer(err, self.name)
        util.assert_not_killed(self.rc, err, self.name)
        if expect_rc is not None:
            assert self.rc == expect_rc, "%s %s: exit %d, expected %d; stderr:\n%s" % (
                self.name, " ".join(self.args), self.rc, expect_rc, err[-4000:])
        return self.rc

    def terminate(self, timeout=STOP_TIMEOUT, expect_rc=0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout, expect_rc)

    def kill(self):
        self.close_stdin()
        util.kill_proc(self.proc, signal.SIGKILL)

    def events(self):
        if self.json_path is None or not os.path.exists(self.json_path):
            return []
        with open(self.json_path, encoding="utf-8") as f:
            return util.parse_jsonl(f.read(), self.json_path)

    def partial_events(self):
        """The JSON output so far (a running agent: the last line may be cut)."""
        if self.json_path is None or not os.path.exists(self.json_path):
            return []
        out = []
        with open(self.json_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.endswith("\n"):
                    break
                try:
                    out.append(json.loads(line))
                except ValueError:
                    break
        return out


    def partial_statuses(self):
        """The agent_status lines of the JSON output so far."""
        out = []
        if self.json_path is None or not os.path.exists(self.json_path):
            return out
        with open(self.json_path, "rb") as f:
            for line in f:
                if line.endswith(b"\n") and b'"type":"agent_status"' in line:
                    out.append(json.loads(line))
        return out

    def feed_until_status(self, pred, ts_record, timeout, what="an agent_status"):
        """Feed event-less frames until an agent_status of the JSON output
        satisfies pred; returns it. agent_status is due a second of wall
        clock after the previous one, and reading a file the agent looks at
        the clock every 4096 packets: 4096 frames go in once that second
        has passed, again until the status comes."""
        deadline = time.monotonic() + timeout
        while True:
            sts = self.partial_statuses()
            for e in sts:
                if pred(e):
                    return e
            if time.monotonic() > deadline:
                raise AssertionError("no %s within %ss (statuses: %s)" % (what, timeout, sts[-3:]))
            last_ms = max([e.get("timestamp", 0) for e in sts] + [self.started_wall_ms])
            util.wait_for(lambda: time.time() * 1000 - last_ms > 1100, 5, what="the status interval")
            assert self.feed(junk_frames(4096, ts_record)), "the agent closed its stdin:\n" + \
                self.stderr()[-2000:]
            try:
                util.wait_for(lambda: len(self.partial_statuses()) > len(sts), 2, what="a status")
            except AssertionError:
                pass


def junk_frames(n, rec):
    """n Ethernet frames of an unknown EtherType (no flow, no event), with
    the timestamp of the pcap record rec so that packet time stays put."""
    sec, usec = struct.unpack_from("<II", rec, 0)
    frame = b"\x02\x00\x00\x00\x00\x09" + b"\x02\x00\x00\x00\x00\x0a" + b"\x88\xb5" + b"\x00" * 46
    return (struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame) * n


def stop_all(procs):
    """Kill whatever is still running (cleanup in finally blocks)."""
    for p in procs:
        if p is None:
            continue
        try:
            p.kill()
        except Exception:  # noqa: BLE001 - cleanup goes on
            pass


# ---------------------------------------------------------------- the collector

class Collector:
    """sonde-collector on 127.0.0.1:port (0: any free port), restartable on
    the same port and output file."""

    def __init__(self, workdir, out=None, port=0, args=(), host="127.0.0.1", netns=None,
                 name="collector"):
        self.workdir = str(workdir)
        self.out = out or os.path.join(self.workdir, name + ".jsonl")
        self.port = port
        self.host = host
        self.netns = netns
        self.name = name
        self.extra = [str(a) for a in args]
        self.proc = None
        self.runs = 0
        self.lines = []
        self.all_stderr = []
        self._lock = threading.Lock()
        self._reader = None

    @property
    def address(self):
        return "%s:%d" % (self.host, self.port)

    def start(self, timeout=START_TIMEOUT):
        assert self.proc is None or self.proc.poll() is not None, "collector already running"
        self.runs += 1
        args = ["--listen", "%s:%d" % (self.host, self.port), "-o", "json:" + self.out] + self.extra
        if "--tls-cert" not in self.extra:
            args.append("--insecure-cleartext")
        cmd = [collector_path()] + args
        if self.netns:
            cmd = ["ip", "netns", "exec", self.netns] + cmd
        self.lines = []
        listening = threading.Event()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=util.agent_env())
        proc = self.proc

        def read():
            for raw in iter(proc.stderr.readline, b""):
                line = raw.decode(errors="replace")
                with self._lock:
                    self.lines.append(line)
                    self.all_stderr.append(line)
                m = LISTEN_RE.search(line)
                if m:
                    self.port = int(m.group(1))
                    listening.set()
            proc.stderr.close()
        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout * timeout_scale()
        while not listening.wait(0.05):
            if proc.poll() is not None:
                self._reader.join(5)
                raise AssertionError("%s %s exited %d before listening:\n%s" % (
                    self.name, " ".join(args), proc.returncode, self.stderr()))
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError("%s: no 'listening on' line within %ss:\n%s" % (
                    self.name, timeout, self.stderr()))
        return self

    def stderr(self):
        with self._lock:
            return "".join(self.lines)

    def stop(self, check=True, timeout=STOP_TIMEOUT):
        """SIGTERM; with check, exit 0 and no sanitizer report."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("%s: no exit within %ss of SIGTERM:\n%s" % (
                self.name, timeout, self.stderr()[-4000:]))
        self._reader.join(10)
        if check:
            util.assert_no_sanitizer(self.stderr(), self.name)
            assert rc == 0, "%s exited %d after SIGTERM:\n%s" % (self.name, rc, self.stderr()[-4000:])
        return rc

    def kill(self):
        """SIGKILL (a crash, as far as the agent can tell)."""
        if self.proc is not None:
            util.kill_proc(self.proc, signal.SIGKILL)
            if self._reader:
                self._reader.join(5)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def events(self):
        if not os.path.exists(self.out):
            return []
        with open(self.out, encoding="utf-8") as f:
            return util.parse_jsonl(f.read(), self.out)

    def cleanup(self):
        if self.running():
            try:
                self.stop(check=False, timeout=10)
            except AssertionError:
                pass
        self.kill()


# ---------------------------------------------------------------- pcaps

def pcap_stream_parts(path):
    """(24-byte header, [record bytes]) of a classic pcap, to feed stdin."""
    header, _e, _lt, recs = util.read_pcap(path)
    return header, [h + d for h, d in recs]


def _csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def udp_frame(src, dst, sport, dport, payload):
    ip_len = 20 + 8 + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, ip_len, 0, 0x4000, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    eth = b"\x02\x00\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x02" + b"\x08\x00"
    return eth + ip + udp


def write_udp_pcap(path, flows, packets_per_flow=2, payload=64, flow_gap_ms=50, t0=1700000000,
                   net="10.77"):
    """A classic Ethernet pcap of `flows` UDP conversations (request and
    reply alternating, 1 ms apart), a new one every flow_gap_ms of capture
    time, so that idle flows keep expiring (and their events keep coming)
    while the capture is read. Returns the path."""
    recs = []
    for i in range(flows):
        t = t0 * 1000000 + i * flow_gap_ms * 1000
        a = "%s.%d.%d" % (net, 1 + (i >> 8) % 250, 1 + i % 250)
        b = "%s.250.%d" % (net, 1 + (i // 250) % 250)
        sport, dport = 20000 + i % 40000, 7000 + (i % 7)
        for k in range(packets_per_flow):
            body = (b"sonde-%06d-%03d-" % (i, k)).ljust(payload, b"x")
            if k % 2 == 0:
                fr = udp_frame(a, b, sport, dport, body)
            else:
                fr = udp_frame(b, a, dport, sport, body)
            recs.append((t, struct.pack("<IIII", t // 1000000, t % 1000000, len(fr), len(fr)) + fr))
            t += 1000
    recs.sort(key=lambda r: r[0])
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for _, r in recs:
            f.write(r)
    return path


# ---------------------------------------------------------------- events

def keys_of(events):
    """(type, seq) of JSON events."""
    return [(e["type"], e["seq"]) for e in events]


def counts_by_agent_type(events):
    return collections.Counter((e.get("agent_id"), e["type"]) for e in events)


def diff_keys(expected, got, limit=20):
    """A readable description of how two lists of (type, seq) differ as
    multisets ('' when they are equal)."""
    ce, cg = collections.Counter(expected), collections.Counter(got)
    missing = sorted((ce - cg).elements(), key=lambda k: k[1])
    extra = sorted((cg - ce).elements(), key=lambda k: k[1])
    if not missing and not extra:
        return ""
    out = ["expected %d, got %d" % (len(expected), len(got))]
    if missing:
        out.append("missing %d (by type %s): %s" % (len(missing), dict(collections.Counter(t for t, _ in missing)),
                                                    missing[:limit]))
    if extra:
        dups = sum(1 for k in extra if k in ce)
        out.append("extra %d (of which %d duplicates of expected events; by type %s): %s" % (
            len(extra), dups, dict(collections.Counter(t for t, _ in extra)), extra[:limit]))
    return "\n".join(out)


def assert_same_keys(expected, got, what):
    d = diff_keys(expected, got)
    assert not d, "%s:\n%s" % (what, d)


def statuses(events):
    return [e for e in events if e["type"] == "agent_status"]


def push_status(status_event, i=0):
    p = status_event.get("push") or []
    return p[i] if len(p) > i else {}


def enum_json(enum_desc, value):
    """A proto enum value as the agent's JSON writes it: lower-case name
    without the enum's prefix (events.proto's header comment)."""
    v = enum_desc.values_by_number.get(value)
    if v is None:
        return value
    prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", enum_desc.name).upper() + "_"
    name = v.name[len(prefix):] if v.name.startswith(prefix) else v.name
    return name.lower()


def json_of_message(msg):
    """A protobuf event as the agent's JSON encodes it (events.proto's header
    comment): every scalar field, zero values too; sub-messages only when
    present; oneof members only when set; enums as their lower-case name
    without the enum's prefix; bytes as lower-case hex."""
    from google.protobuf.descriptor import FieldDescriptor as F

    def scalar(fd, v):
        if fd.type == F.TYPE_MESSAGE:
            return json_of_message(v)
        if fd.type == F.TYPE_ENUM:
            return enum_json(fd.enum_type, v)
        if fd.type == F.TYPE_BYTES:
            return v.hex()
        return v
    out = {}
    for fd in msg.DESCRIPTOR.fields:
        v = getattr(msg, fd.name)
        if fd.label == F.LABEL_REPEATED:
            out[fd.name] = [scalar(fd, x) for x in v]
            continue
        if fd.containing_oneof is not None and msg.WhichOneof(fd.containing_oneof.name) != fd.name:
            continue
        if fd.type == F.TYPE_MESSAGE and not msg.HasField(fd.name):
            continue
        out[fd.name] = scalar(fd, v)
    return out


def _diff_values(path, v, j, out):
    if isinstance(v, dict) and isinstance(j, dict):
        for k in sorted(set(v) | set(j)):
            if k == "type" and not path:
                continue
            if k not in j:
                if v[k] in (0, "", False, 0.0, [], {}):
                    continue  # a writer may leave out empty values
                out.append((path + k, v[k], "<absent>"))
            elif k not in v:
                if j[k] in (0, "", False, 0.0, [], {}):
                    continue
                out.append((path + k, "<absent>", j[k]))
            else:
                _diff_values(path + k + ".", v[k], j[k], out)
    elif isinstance(v, list) and isinstance(j, list) and len(v) == len(j):
        for i, (a, b) in enumerate(zip(v, j)):
            _diff_values("%s[%d]." % (path.rstrip("."), i), a, b, out)
    elif isinstance(v, float) or isinstance(j, float):
        try:
            if abs(float(v) - float(j)) > 1e-6 * max(1.0, abs(float(v))):
                out.append((path.rstrip("."), v, j))
        except (TypeError, ValueError):
            out.append((path.rstrip("."), v, j))
    elif v != j:
        out.append((path.rstrip("."), v, j))


def compare_message_with_json(msg, js):
    """Differences between a received protobuf event and the JSON line of
    the same event: [(field path, message value, JSON value)]."""
    out = []
    _diff_values("", json_of_message(msg), js, out)
    return out


def ip_in(net, s):
    try:
        return ipaddress.ip_address(s) in net
    except ValueError:
        return False


def spool_segments(spool_dir):
    """Every spool segment file under spool_dir (any collector)."""
    out = []
    for root, _dirs, files in os.walk(spool_dir):
        out += [os.path.join(root, f) for f in files if f.startswith("seg-") and f.endswith(".spool")]
    return sorted(out)


def spool_bytes(spool_dir):
    return sum(os.path.getsize(p) for p in spool_segments(spool_dir) if os.path.exists(p))


def corpus_files(names):
    """Paths of corpus captures by name; skips the test when the corpus or a
    file is absent."""
    if not os.path.isdir(util.CORPUS_DIR):
        pytest.skip("corpus %s absent (a user's clone): these tests replay its captures"
                    % util.CORPUS_DIR)
    paths = [os.path.join(util.CORPUS_DIR, n) for n in names]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        pytest.skip("corpus files absent: %s" % ", ".join(missing))
    return paths


def tool_missing(*names):
    return [n for n in names if shutil.which(n) is None]
