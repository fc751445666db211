"""Helpers for the tests that talk gRPC to sonde-collector.

The peer is the reference gRPC (Debian's python3-grpcio) through its generic
API: messages are the protobuf classes protoc generates from proto/ at test
time, so the tests check the collector against the .proto files themselves,
never against a copy.

* ``compile_protos(dir)``, ``Pki``, ``collector_path``: from grpc_common.py,
  shared with agent_grpc_util.py.
* ``collector(...)``: a context manager that starts sonde-collector on
  127.0.0.1 port 0, waits for its "listening on" line, yields a Collector
  (also unpackable as ``proc, port, out``), and on the way out stops it with
  SIGTERM and asserts exit code 0 and no sanitizer report.
* ``make_pki(dir)``: a CA, a collector certificate for IP:127.0.0.1 and agent
  certificates (grpc_common.make_pki); ``Pki.channel_credentials(name)`` gives
  grpc.ssl_channel_credentials for one agent.
* ``Publisher``: one Publish<Type>Stream call driven step by step: send
  events, wait for an acknowledgement, half-close, collect every
  PublishResponse and the final status.
* ``sonde_json(msg)``: the JSON object the collector must write for a
  message, computed from the descriptor by the rules of the header comment of
  proto/sonde/v1/events.proto (an oracle independent of src/schema/json.c);
  ``read_pb_frames(path)``: the -o pb: file as sonde.v1.Event messages.

Run all Python with /usr/bin/python3.
"""

import contextlib
import os
import queue
import re
import signal
import subprocess
import threading
import time

import grpc

import util
from grpc_common import (LISTEN_RE, SERVICE, collector_path, compile_protos,  # noqa: F401
                         health_check, wait_channel_ready)
from grpc_common import make_pki as make_pki_common

HEALTH_WATCH = "/grpc.health.v1.Health/Watch"
START_TIMEOUT = 15
STOP_TIMEOUT = 15


# ---------------------------------------------------------------- the collector

class Collector:
    """A running sonde-collector. Unpacks as (proc, port, out); .kind is
    "json" or "pb", the format of its first -o."""

    def __init__(self, proc, args, out):
        self.proc = proc
        self.args = args
        self.out = out
        self.kind = None
        if "-o" in args and args.index("-o") + 1 < len(args):
            self.kind = args[args.index("-o") + 1].split(":", 1)[0]
        self.port = None
        self.mode = None
        self.lines = []
        self.listening = threading.Event()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    def __iter__(self):
        return iter((self.proc, self.port, self.out))

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def _read_stderr(self):
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode(errors="replace")
            with self._lock:
                self.lines.append(line)
            m = LISTEN_RE.search(line)
            if m and self.port is None:
                self.port = int(m.group(1))
                self.mode = m.group(2)
                self.listening.set()
        self.proc.stderr.close()

    def stderr(self):
        with self._lock:
            return "".join(self.lines)

    def wait_listening(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while not self.listening.wait(0.05):
            if self.proc.poll() is not None:
                self._reader.join(5)
                raise AssertionError("sonde-collector %s exited %d before listening:\n%s"
                                     % (" ".join(self.args), self.proc.returncode, self.stderr()[-4000:]))
            if time.monotonic() > deadline:
                raise AssertionError("sonde-collector %s: no 'listening on' line within %ss:\n%s"
                                     % (" ".join(self.args), timeout, self.stderr()[-4000:]))

    def terminate(self, timeout=STOP_TIMEOUT, signal_it=True):
        """SIGTERM (unless signal_it is false: the test sent its own), wait;
        returns (rc, stderr). Kills on timeout and fails."""
        if signal_it and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            self._reader.join(5)
            raise AssertionError("sonde-collector did not exit within %ss of SIGTERM:\n%s"
                                 % (timeout, self.stderr()[-4000:]))
        self._reader.join(10)
        return rc, self.stderr()

    def stop(self, check=True):
        """SIGTERM and, with check, assert exit 0 and no sanitizer report."""
        rc, err = self.terminate()
        if check:
            util.assert_no_sanitizer(err, "sonde-collector")
            assert rc == 0, "sonde-collector %s exited %d after SIGTERM:\n%s" % (
                " ".join(self.args), rc, err[-4000:])
        return rc, err

    def kill(self):
        util.kill_proc(self.proc, signal.SIGKILL)
        self._reader.join(5)


def start_collector(args, out=None, tmp_path=None, stdout=subprocess.DEVNULL, start_timeout=START_TIMEOUT):
    """Start sonde-collector on 127.0.0.1:0 with args and wait for its port.

    When args carry no -o, '-o json:<tmp_path>/events.jsonl' is added; out is
    the path of the first file output (None for json:-)."""
    args = [str(a) for a in args]
    if "--listen" not in args and "-l" not in args:
        args = ["--listen", "127.0.0.1:0"] + args
    if "-o" not in args:
        assert tmp_path is not None, "start_collector needs tmp_path or an -o"
        out = out or os.path.join(str(tmp_path), "events.jsonl")
        args += ["-o", "json:" + out]
    elif out is None:
        spec = args[args.index("-o") + 1]
        out = spec.split(":", 1)[1] if ":" in spec and spec.split(":", 1)[1] != "-" else None
    proc = subprocess.Popen([collector_path()] + args, stdin=subprocess.DEVNULL, stdout=stdout,
                            stderr=subprocess.PIPE, env=util.agent_env())
    c = Collector(proc, args, out)
    try:
        c.wait_listening(start_timeout)
    except BaseException:
        c.kill()
        raise
    return c


@contextlib.contextmanager
def collector(args, out=None, tmp_path=None, stdout=subprocess.DEVNULL):
    """A running collector for the with-block; stopped with SIGTERM after it.

    When the block ends normally the stop is checked (exit 0, no sanitizer
    report). When it raises, the collector is stopped all the same and its
    stderr printed (pytest shows it with the failure)."""
    c = start_collector(args, out=out, tmp_path=tmp_path, stdout=stdout)
    ok = False
    try:
        yield c
        ok = True
    finally:
        if ok:
            c.stop(check=True)
        else:
            try:
                rc, err = c.terminate()
                print("sonde-collector exited %r; stderr:\n%s" % (rc, err[-6000:]))
            except AssertionError as e:
                print(e)


# ---------------------------------------------------------------- certificates

def make_pki(d, agents=("agent-1",)):
    """A CA in d, a collector certificate named "collector" with SAN
    IP:127.0.0.1, and one agent certificate per name in agents."""
    return make_pki_common(d, agents=agents, collectors=("collector",))


def tls_channel(c, creds):
    """A channel to the collector's TLS port; the name checked is 127.0.0.1
    (the certificate's IP SAN)."""
    return grpc.secure_channel(c.address, creds)


def cleartext_channel(c):
    return grpc.insecure_channel(c.address)


# ---------------------------------------------------------------- calls

def identity(b):
    return b


def method_path(type_name):
    return "/%s/Publish%sStream" % (SERVICE, type_name)


class Publisher:
    """One Publish<type_name>Stream call, driven from the test.

    send() queues a message (a protobuf message, or raw bytes sent as they
    are); close() half-closes; responses are read by a thread into
    .responses as they come; wait_ack(seq) waits for an OK response with
    acked_seq >= seq; finish() waits for the end of the call and returns
    (code, details)."""

    _END = object()

    def __init__(self, channel, pb, type_name, timeout=30, metadata=None):
        self.pb = pb
        self.type_name = type_name
        self._q = queue.Queue()
        self._cv = threading.Condition()
        self.responses = []
        self.code = None
        self.details = None
        self.done = False
        self.closed = False
        call = channel.stream_stream(method_path(type_name), request_serializer=self._serialize,
                                     response_deserializer=pb.d3.PublishResponse.FromString)
        self.call = call(self._requests(), timeout=timeout, metadata=metadata)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @staticmethod
    def _serialize(m):
        return m if isinstance(m, bytes) else m.SerializeToString()

    def _requests(self):
        while True:
            m = self._q.get()
            if m is self._END:
                return
            yield m

    def _read(self):
        try:
            for r in self.call:
                with self._cv:
                    self.responses.append(r)
                    self._cv.notify_all()
        except grpc.RpcError:
            pass
        code, details = self.call.code(), self.call.details()
        with self._cv:
            self.code, self.details = code, details
            self.done = True
            self._cv.notify_all()

    def send(self, *msgs):
        for m in msgs:
            self._q.put(m)
        return self

    def close(self):
        if not self.closed:
            self.closed = True
            self._q.put(self._END)
        return self

    def wait(self, pred, timeout=10, what="condition"):
        """Wait until pred(self) holds (checked under the lock at each response
        and at the end of the call)."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while not pred(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("%s call: timed out after %ss waiting for %s; responses %s, "
                                         "status %s %r" % (self.type_name, timeout, what,
                                                           self.summary(), self.code, self.details))
                self._cv.wait(left)

    def wait_ack(self, seq, timeout=10):
        ok = self.pb.d3.PUBLISH_STATUS_OK
        self.wait(lambda s: s.done or any(r.status == ok and r.acked_seq >= seq
                                          for r in s.responses),
                  timeout, "acked_seq >= %d" % seq)
        assert any(r.status == ok and r.acked_seq >= seq for r in self.responses), \
            "%s call ended (%s %r) before acked_seq reached %d; responses %s" % (
                self.type_name, self.code, self.details, seq, self.summary())

    def wait_response(self, timeout=10):
        """Wait for a first response or the end of the call."""
        self.wait(lambda s: s.done or s.responses, timeout, "a response")

    def finish(self, timeout=15):
        """Half-close (if not done yet) and wait for the status."""
        self.close()
        self.wait(lambda s: s.done, timeout, "the end of the call")
        self._reader.join(5)
        return self.code, self.details

    def cancel(self):
        self.call.cancel()
        self.close()
        self._reader.join(5)

    def last(self):
        return self.responses[-1] if self.responses else None

    def max_acked(self):
        return max([r.acked_seq for r in self.responses] or [0])

    def summary(self):
        return ["%s acked=%d acc=%d dup=%d%s" % (self.pb.status_name(r.status), r.acked_seq,
                                                 r.accepted, r.duplicates,
                                                 " reason=%r" % r.reason if r.reason else "")
                for r in self.responses]


def publish(channel, pb, type_name, msgs, timeout=30, wait_last_ack=True):
    """Send msgs on one call, wait for the ack of the highest seq (when
    wait_last_ack and msgs carry seq), half-close, wait for the end.
    Returns the Publisher (responses, code, details)."""
    p = Publisher(channel, pb, type_name, timeout=timeout)
    try:
        p.send(*msgs)
        seqs = [m.seq for m in msgs if not isinstance(m, bytes)]
        if wait_last_ack and seqs:
            p.wait_ack(max(seqs))
        p.finish()
    finally:
        if not p.done:
            p.cancel()
    return p


# ---------------------------------------------------------------- outputs

def snake_case(name):
    """FlowPurge -> flow_purge, DnsHeader -> dns_header (events.proto's rule)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _enum_json(enum_desc, value):
    v = enum_desc.values_by_number.get(value)
    if v is None:
        return value
    prefix = snake_case(enum_desc.name).upper() + "_"
    name = v.name[len(prefix):] if v.name.startswith(prefix) and len(v.name) > len(prefix) else v.name
    return name.lower()


def _scalar_json(fd, v):
    from google.protobuf.descriptor import FieldDescriptor as F
    if fd.type == F.TYPE_MESSAGE:
        return sonde_json(v, with_type=False)
    if fd.type == F.TYPE_ENUM:
        return _enum_json(fd.enum_type, v)
    if fd.type == F.TYPE_BYTES:
        return v.hex()
    return v


def sonde_json(msg, with_type=True):
    """The object the collector's JSON output must hold for msg: "type" (the
    message name in snake_case) on the top level, every scalar field (zero
    values too), sub-messages only when present, oneof members only when
    set, enums as their lower-case name without the enum's prefix, bytes as
    lower-case hex, 64-bit integers as numbers."""
    from google.protobuf.descriptor import FieldDescriptor as F
    out = {}
    if with_type:
        out["type"] = snake_case(msg.DESCRIPTOR.name)
    for fd in msg.DESCRIPTOR.fields:
        v = getattr(msg, fd.name)
        if fd.label == F.LABEL_REPEATED:
            out[fd.name] = [_scalar_json(fd, x) for x in v]
            continue
        if fd.containing_oneof is not None and msg.WhichOneof(fd.containing_oneof.name) != fd.name:
            continue
        if fd.type == F.TYPE_MESSAGE and not msg.HasField(fd.name):
            continue
        out[fd.name] = _scalar_json(fd, v)
    return out


def read_json(path):
    """The JSON lines of the output file (every line must parse)."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return util.parse_jsonl(f.read(), path)


def read_varint(buf, i):
    v, shift = 0, 0
    while True:
        assert i < len(buf), "truncated varint at byte %d" % i
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def read_pb_frames(path, pb):
    """The -o pb: file: (varint length, sonde.v1.Event) frames to the end;
    a partial frame is a failure."""
    with open(path, "rb") as f:
        buf = f.read()
    events, i = [], 0
    while i < len(buf):
        n, j = read_varint(buf, i)
        assert j + n <= len(buf), "%s: frame at byte %d of %d bytes runs past the end (%d)" % (
            path, i, n, len(buf))
        events.append(pb.events.Event.FromString(buf[j:j + n]))
        i = j + n
    return events


def event_member(ev):
    """(member name, message) of a sonde.v1.Event."""
    name = ev.WhichOneof("event")
    return name, getattr(ev, name)
