"""sonde-agent's gRPC side against the reference gRPC (python3-grpcio).

The agent also writes every event to its own ``-o json:`` file in the same
run; that file is the oracle for what the gRPC peers must receive.

Push (--push): the agent replays real captures from ../shared/corpus/ndpi-4.2
to a grpcio server that implements every Publish<Type>Stream, records each
event and acknowledges each message (cleartext, and TLS with client
certificates required):

* the receiver gets exactly the events of the agent's JSON output, by
  (type, seq), each field equal to the JSON line of the same event, each
  type on its own Publish<Name>Stream call (one call per type), in seq
  order per type;
* the acks let the agent finish: exit 0 well before its --push-drain;
* over TLS the receiver sees the agent's certificate (CN = --agent-id);
* a --push-queue far smaller than the output, with a receiver that holds
  its acks until the end of the replay and then acks everything: no event
  disappears without being counted as lost.

Pull (--listen): the agent reads a capture from stdin (-r -), so it keeps
running while the test subscribes. Subscriptions are synchronised with the
agent by its own agent_status events: after the subscribe calls, the test
feeds frames that make no events (an unknown EtherType) until an
agent_status reports that many subscribers; every event from that status on
must reach each subscriber that matches it, and no other:

* every event (cleartext and TLS); filters types, port, address (CIDR),
  protocol, application (protocol name, "proto.app", case-insensitive) and
  sample=N (exactly the matching events with seq % N == 0);
* an unknown type -> INVALID_ARGUMENT; GetInfo = the agent_hello of the JSON
  output; grpc.health.v1 Check SERVING (NOT_FOUND for another service);
* TLS: a client without a certificate, or with one from another CA, is
  refused;
* a subscriber that stops reading (--subscriber-queue 16) does not hold the
  agent up: it finishes, agent_status counts subscriber_dropped, and a
  second subscriber that reads gets every event (a synthetic capture, ~4 MB
  of events);
* --status-interval 1 on a slow pipe gives an agent_status a second;
* sonde-collector --pull over mutual TLS stores every event made once it
  is subscribed, and refuses events whose agent_id is not the name in the
  agent's certificate.

A test marked xfail(strict=True) shows a bug in the agent, named in its
reason; it turns into a failure when the bug is fixed, so the mark goes then.

Run: SONDE_BUILD=build /usr/bin/python3 -m pytest -q -p no:cacheprovider \\
         tests/integration/test_agent_grpc.py
"""

import collections
import ipaddress
import os
import re
import time

import grpc
import pytest

import agent_grpc_util as G
import util

SCALE = G.timeout_scale()
RUN_TIMEOUT = 60 * SCALE

# Classic pcap files of the corpus with many flows and several event types
# (all under 2 MB; classic pcap so that they can also be fed through stdin).
PUSH_CAPTURES = ("synscan.pcap", "skype.pcap", "dnscrypt-v1-and-resolver-pings.pcap")
SUB_CAPTURE = "skype.pcap"


@pytest.fixture(scope="module")
def pb(tmp_path_factory):
    return G.compile_protos(tmp_path_factory.mktemp("protos"))


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    p = G.make_pki(d, agents=["agent-grpc"], collectors=["receiver"], clients=["subscriber-1"])
    other = G.make_pki(d / "other-ca", clients=["intruder"])
    p.other = other
    return p


# ---------------------------------------------------------------- push

def check_received(receiver, agent_events, pb):
    """The receiver holds exactly the agent's events, field by field, one
    call per type, each type in seq order."""
    G.assert_same_keys(G.keys_of(agent_events), receiver.keys(),
                       "events received on the Publish streams vs the agent's -o json")
    by_key = {(e["type"], e["seq"]): e for e in agent_events}
    diffs = []
    for t, msgs in receiver.events.items():
        for m in msgs:
            d = G.compare_message_with_json(m, by_key[(t, m.seq)])
            if d:
                diffs.append((t, m.seq, d[:5]))
    assert not diffs, "%d received events differ from the JSON lines, e.g.:\n%s" % (
        len(diffs), "\n".join(map(repr, diffs[:10])))
    types = {e["type"] for e in agent_events}
    want_calls = {pb.method_of_type(t): 1 for t in types}
    assert dict(receiver.calls) == want_calls, \
        "Publish calls per method %s, expected one per event type %s" % (dict(receiver.calls), want_calls)
    for t, msgs in receiver.events.items():
        seqs = [m.seq for m in msgs]
        assert seqs == sorted(seqs), "%s events not in seq order on their stream" % t


@pytest.mark.parametrize("capture", PUSH_CAPTURES)
@pytest.mark.parametrize("mode", ["cleartext", "tls"])
def test_push_to_grpcio_receiver(agent, tmp_path, pb, pki, capture, mode):
    path, = G.corpus_files([capture])
    agent_id = "agent-grpc"
    if mode == "tls":
        receiver = G.PublishReceiver(pb, pki=pki, cert_name="receiver")
        url = "grpcs://" + receiver.url_host
        extra = pki.agent_args(agent_id)
    else:
        receiver = G.PublishReceiver(pb)
        url = "grpc://" + receiver.url_host
        extra = []
    ag = None
    try:
        # A drain far longer than the test's patience: only acknowledgements
        # let the agent exit 0 in time.
        ag = G.Agent(["-r", path, "--push", url, "--agent-id", agent_id, "--push-drain", "600",
                      "-o", "json:%s/agent.jsonl" % tmp_path] + extra, tmp_path)
        ag.wait(RUN_TIMEOUT)
        events = ag.events()
        assert len(events) > 600, "%s: only %d events" % (capture, len(events))
        check_received(receiver, events, pb)
        if mode == "tls":
            assert receiver.peers == {agent_id}, "client certificate CNs seen: %s" % receiver.peers
        assert "lost" not in ag.stderr(), ag.stderr()[-2000:]
    finally:
        G.stop_all([ag])
        receiver.stop()


def test_small_push_queue_loses_nothing_silently(agent, tmp_path, pb):
    """--push-queue 1 (1 MiB) and ~6 MB of events; the receiver holds its
    acknowledgements until the agent, at the end of the file, half-closes a
    stream (so the end of the replay finds the memory queue full), then
    acknowledges everything. Each event must be delivered, or the agent
    must exit 1 counting it among the lost ones (docs/agent.md: events are
    lost only when memory and spool are full, and then counted)."""
    cap = G.write_udp_pcap(str(tmp_path / "udp.pcap"), 16000, 2, payload=200, net="10.79")
    receiver = G.PublishReceiver(pb)
    receiver.ack_gate.clear()
    ag = None
    try:
        ag = G.Agent(["-r", cap, "--push", "grpc://" + receiver.url_host, "--agent-id", "small-queue",
                      "--push-queue", "1", "--push-drain", "15", "-o", "json:%s/agent.jsonl" % tmp_path],
                     tmp_path)
        receiver.wait(lambda: receiver.half_closed, 30 * SCALE, "the agent half-closing a stream")
        held = receiver.count()
        receiver.ack_gate.set()
        ag.wait(RUN_TIMEOUT, expect_rc=None)
        events = ag.events()
        assert held < len(events), "everything was sent before any acknowledgement: not a test"
        missing = set(G.keys_of(events)) - set(receiver.keys())
        m = re.search(r"gRPC: (\d+) events lost", ag.stderr())
        lost = int(m.group(1)) if m else 0
        assert set(receiver.keys()) <= set(G.keys_of(events)), "received events the agent never wrote"
        assert len(missing) <= lost, (
            "exit %d: %d of %d events never reached the receiver, %d reported lost: %d lost silently"
            "\nstderr:\n%s" % (ag.rc, len(missing), len(events), lost, len(missing) - lost,
                                ag.stderr()[-2000:]))
        assert (ag.rc == 0) == (lost == 0), "exit %d with %d events reported lost" % (ag.rc, lost)
    finally:
        G.stop_all([ag])
        receiver.stop()


# ---------------------------------------------------------------- pull: helpers

class Pull:
    """An agent reading stdin with --listen, and a channel to it."""

    def __init__(self, tmp_path, pb, capture, extra=(), creds=None, name="agent"):
        self.pb = pb
        self.port = G.free_port()
        self.hdr, self.recs = G.pcap_stream_parts(capture)
        self.agent = G.Agent(["-r", "-", "--listen", "127.0.0.1:%d" % self.port, "--agent-id", "agent-grpc",
                              "--status-interval", "1", "-o", "json:%s/%s.jsonl" % (tmp_path, name)]
                             + ([] if creds else ["--insecure-cleartext"]) + list(extra),
                             tmp_path, name=name, stdin=True)
        self.channel = None
        self.probe = None
        try:
            self.agent.feed(self.hdr)
            target = "127.0.0.1:%d" % self.port
            util.wait_for(lambda: G.port_open("127.0.0.1", self.port) or not self.agent.running(),
                          20 * SCALE, what="the agent listening on port %d" % self.port)
            assert self.agent.running(), "the agent exited %r:\n%s" % (self.agent.proc.poll(),
                                                                       self.agent.stderr()[-3000:])
            self.channel = grpc.secure_channel(target, creds) if creds else grpc.insecure_channel(target)
            G.wait_channel_ready(self.channel, 20 * SCALE)
        except BaseException:
            self.close()
            raise

    def subscribe(self, stop_after=None, channel=None, **filters):
        return G.Subscription(channel or self.channel, self.pb, G.subscribe_request(self.pb, **filters),
                              stop_after=stop_after)

    def sync(self, n_subscribers, timeout=30 * SCALE, field="subscribers", at_least=None):
        """Feed event-less frames until an agent_status (seen by the probe, a
        subscription to agent_status made here) reports field >= at_least
        (default: n_subscribers + the probe). Returns that agent_status."""
        if self.probe is None:
            self.probe = self.subscribe(types=["agent_status"])
        want = at_least if at_least is not None else n_subscribers + 1
        ts_rec = self.recs[0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = len(self.probe.events)
            # agent_status is due each second of wall clock; reading a file,
            # the agent looks at the clock every 4096 packets.
            assert self.agent.feed(G.junk_frames(4096, ts_rec)), "the agent closed its stdin:\n" + \
                self.agent.stderr()[-2000:]
            try:
                util.wait_for(lambda: len(self.probe.events) > seen, 1.5, what="an agent_status")
            except AssertionError:
                continue
            for _t, st in self.probe.events[seen:]:
                if getattr(st, field) >= want:
                    return st
        raise AssertionError("no agent_status with %s >= %d within %ss; statuses %s" % (
            field, want, timeout, [(m.seq, m.subscribers, m.subscriber_dropped) for _, m in self.probe.events]))

    def feed_capture(self):
        for i in range(0, len(self.recs), 500):
            assert self.agent.feed(b"".join(self.recs[i:i + 500])), "the agent closed its stdin"

    def finish(self, timeout=RUN_TIMEOUT, expect_rc=0):
        self.agent.close_stdin()
        self.agent.wait(timeout, expect_rc)
        return self.agent.events()

    def close(self):
        self.agent.kill()
        if self.probe is not None:
            self.probe.cancel()
        if self.channel is not None:
            self.channel.close()


def walk_json(obj, depth=0):
    """(name, value) of the scalar fields of a JSON event and of its
    sub-objects up to three levels down (lists are not looked into)."""
    for k, v in obj.items():
        if isinstance(v, dict):
            if depth < 3:
                yield from walk_json(v, depth + 1)
        elif not isinstance(v, list):
            yield k, v


def matches(e, types=(), address="", port=0, protocol=0, application="", sample=0):
    """proto/sonde/v1/d3events.proto SubscribeRequest, applied to a JSON event."""
    if types and e["type"] not in types:
        return False
    if sample > 1 and e["seq"] % sample:
        return False
    fields = list(walk_json(e))
    if address:
        net = ipaddress.ip_network(address, strict=False)
        if not any(isinstance(v, str) and (k.endswith("_ip") or k in ("src", "dst")) and G.ip_in(net, v)
                   for k, v in fields):
            return False
    if port and not any(k.endswith("_port") and v == port for k, v in fields):
        return False
    if protocol and not any(k in ("ip_protocol", "protocol") and v == protocol for k, v in fields):
        return False
    if application:
        d = dict(fields)
        pn, an = d.get("detected_protocol_name", ""), d.get("detected_application_name", "")
        a = application.lower()
        if not ((pn and a == pn.lower()) or (an and a == an.lower()) or a == ("%s.%s" % (pn, an)).lower()):
            return False
    return True


def expected_after(events, start_seq, **filters):
    return [(e["type"], e["seq"]) for e in events if e["seq"] >= start_seq and matches(e, **filters)]


def assert_subscription(sub, events, start_seq, what, **filters):
    exp = expected_after(events, start_seq, **filters)
    got = [k for k in sub.keys() if k[1] >= start_seq]
    G.assert_same_keys(exp, got, "%s: events received vs the agent's -o json from seq %d on" % (what, start_seq))
    assert [s for _, s in got] == sorted(s for _, s in got), "%s: not in seq order" % what
    return exp


# ---------------------------------------------------------------- pull: tests

def test_subscribe_filters_cleartext(agent, tmp_path, pb):
    path, = G.corpus_files([SUB_CAPTURE])
    port, net, (proto_name, app_name) = pick_filters_cached(path, tmp_path)
    cases = {
        "all": {},
        "types": {"types": ["flow", "dns"]},
        "port": {"port": port},
        "address": {"address": net},
        "protocol+types": {"protocol": 17, "types": ["flow"]},
        "application proto.app": {"application": ("%s.%s" % (proto_name, app_name)).lower()},
        "application protocol": {"application": proto_name.upper()},
        "sample": {"sample": 7},
    }
    pull = Pull(tmp_path, pb, path)
    try:
        subs = {name: pull.subscribe(**f) for name, f in cases.items()}
        bad = pull.subscribe(types=["flow", "no_such_type"])
        code, details = bad.wait_done(10 * SCALE)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)
        assert "no_such_type" in (details or ""), details
        start = pull.sync(len(subs))
        pull.feed_capture()
        events = pull.finish()
        for s in list(subs.values()) + [pull.probe]:
            code, details = s.wait_done(20 * SCALE)
            assert code == grpc.StatusCode.OK, (code, details)
        everything = [e for e in events if e["seq"] >= start.seq]
        assert len(everything) > 500, "only %d events after the subscriptions" % len(everything)
        for name, f in cases.items():
            exp = assert_subscription(subs[name], events, start.seq, name, **f)
            if f:
                assert 0 < len(exp) < len(everything), \
                    "%s: the filter %s selects %d of %d events: not a real test" % (
                        name, f, len(exp), len(everything))
        n = len(subs["sample"].keys())
        assert len(everything) / 7 * 0.5 < n < len(everything) / 7 * 2, \
            "sample=7: %d of %d events" % (n, len(everything))
        assert all(s % 7 == 0 for _, s in subs["sample"].keys())
        assert start.subscribers == len(subs) + 1
    finally:
        pull.close()


_filters = {}


def pick_filters_cached(path, tmp_path):
    if path not in _filters:
        run = util.run_agent(["-r", path], tmp_path=tmp_path, timeout=120)
        flows = run.of_type("flow")
        ports, nets, apps = collections.Counter(), collections.Counter(), collections.Counter()
        for f in flows:
            for p in (f.get("local_port"), f.get("other_port")):
                if p:
                    ports[p] += 1
            ip = f.get("other_ip", "")
            if "." in ip:
                nets[".".join(ip.split(".")[:2]) + ".0.0/16"] += 1
            d = f.get("detection") or {}
            if d.get("detected_application_name") and d.get("detected_protocol_name"):
                apps[(d["detected_protocol_name"], d["detected_application_name"])] += 1
        assert ports and nets and apps, "%s: no ports, networks or applications to filter on" % path
        _filters[path] = (ports.most_common(1)[0][0], nets.most_common(1)[0][0], apps.most_common(1)[0][0])
    return _filters[path]


def get_info_when_started(channel, pb, timeout=10 * SCALE):
    """GetInfo, asked again while the agent answers UNAVAILABLE "the agent is
    starting" (its listener opens before the agent_hello is made)."""
    box = {}

    def ready():
        try:
            box["hello"] = G.get_info(channel, pb)
            return True
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            box["last"] = (e.code(), e.details())
            return False
    util.wait_for(ready, timeout, interval=0.05, what="GetInfo to answer (last: %r)" % (box.get("last"),))
    return box["hello"]


def test_getinfo_and_health(agent, tmp_path, pb):
    path, = G.corpus_files([SUB_CAPTURE])
    pull = Pull(tmp_path, pb, path)
    try:
        assert G.health_check(pull.channel, pb, "") == ("SERVING", grpc.StatusCode.OK)
        assert G.health_check(pull.channel, pb, "sonde.v1.D3Events") == ("SERVING", grpc.StatusCode.OK)
        assert G.health_check(pull.channel, pb, "no.such.Service")[1] == grpc.StatusCode.NOT_FOUND
        hello = get_info_when_started(pull.channel, pb)
        pull.feed_capture()
        events = pull.finish()
        js = [e for e in events if e["type"] == "agent_hello"]
        assert len(js) == 1, "agent_hello events: %d" % len(js)
        assert hello.hostname and hello.agent_version, hello
        diffs = G.compare_message_with_json(hello, js[0])
        assert not diffs, "GetInfo differs from the agent_hello of the JSON output: %s" % diffs
    finally:
        pull.close()


def test_subscribe_tls(agent, tmp_path, pb, pki):
    """Mutual TLS on --listen: a subscriber with a certificate from the CA
    gets every event; one without a certificate, or with a certificate from
    another CA, is refused."""
    path, = G.corpus_files([SUB_CAPTURE])
    pull = Pull(tmp_path, pb, path, extra=pki.agent_args("agent-grpc"),
                creds=pki.channel_credentials("subscriber-1"))
    refused = []
    try:
        for name, creds in (("no client certificate", pki.channel_credentials(None)),
                            ("a certificate from another CA", grpc.ssl_channel_credentials(
                                root_certificates=pki.read(pki.ca),
                                private_key=pki.other.read(pki.other.key("intruder")),
                                certificate_chain=pki.other.read(pki.other.cert("intruder"))))):
            ch = grpc.secure_channel("127.0.0.1:%d" % pull.port, creds)
            refused.append(ch)
            s = pull.subscribe(channel=ch)
            code, details = s.wait_done(20 * SCALE)
            assert code == grpc.StatusCode.UNAVAILABLE, "%s: Subscribe ended %s %r" % (name, code, details)
            assert G.health_check(ch, pb, "", timeout=10)[1] == grpc.StatusCode.UNAVAILABLE, name
        sub = pull.subscribe()
        flows = pull.subscribe(types=["flow"], port=pick_filters_cached(path, tmp_path)[0])
        start = pull.sync(2)
        pull.feed_capture()
        events = pull.finish()
        for s in (sub, flows):
            code, details = s.wait_done(20 * SCALE)
            assert code == grpc.StatusCode.OK, (code, details)
        exp = assert_subscription(sub, events, start.seq, "TLS, all events")
        assert len(exp) > 500
        assert_subscription(flows, events, start.seq, "TLS, flows of a port", types=["flow"],
                            port=pick_filters_cached(path, tmp_path)[0])
        assert start.subscribers == 3
    finally:
        for ch in refused:
            ch.close()
        pull.close()


@pytest.mark.parametrize("agent_id", ["agent-grpc", "impostor"])
def test_collector_pulls_over_tls(agent, tmp_path, pb, pki, agent_id):
    """sonde-collector --pull dials the agent's --listen over mutual TLS and
    stores exactly the events the agent makes once it is subscribed
    (against the agent's own -o json). The agent is the name in its server
    certificate: when its --agent-id is another name, every pulled event is
    refused, and the collector says why."""
    path, = G.corpus_files([SUB_CAPTURE])
    pull = Pull(tmp_path, pb, path, extra=pki.agent_args("agent-grpc") + ["--agent-id", agent_id],
                creds=pki.channel_credentials("subscriber-1"))
    coll = G.Collector(tmp_path, args=["--tls-cert", pki.cert("receiver"), "--tls-key", pki.key("receiver"),
                                       "--tls-ca", pki.ca, "--pull", "grpcs://127.0.0.1:%d" % pull.port])
    try:
        coll.start()
        start = pull.sync(1)  # the collector and the probe
        pull.feed_capture()
        events = pull.finish()
        assert {e["agent_id"] for e in events} == {agent_id}
        want = [(e["type"], e["seq"]) for e in events if e["seq"] >= start.seq]
        assert len(want) > 500
        if agent_id == "agent-grpc":
            util.wait_for(lambda: len([e for e in coll.events() if e["seq"] >= start.seq]) >= len(want),
                          30 * SCALE, what="the pulled events in the collector's output")
        coll.stop()
        got = [(e["type"], e["seq"]) for e in coll.events() if e["seq"] >= start.seq]
        if agent_id == "agent-grpc":
            G.assert_same_keys(want, got, "events the collector pulled vs the agent's -o json")
        else:
            assert got == [], "events of an agent_id that is not the certificate's name were stored"
            assert "agent_id impostor is not the name in the agent's certificate" in coll.stderr(), \
                coll.stderr()[-3000:]
    finally:
        coll.cleanup()
        pull.close()


def last_json_seq(path):
    """seq of the last whole line of a JSON output being written, or 0."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 65536))
            tail = f.read()
    except OSError:
        return 0
    lines = tail.split(b"\n")[:-1]  # the last piece is cut short or empty
    for line in reversed(lines):
        m = re.search(rb'"seq":(\d+)', line)
        if m:
            return int(m.group(1))
    return 0


def test_slow_subscriber_does_not_hold_the_agent(agent, tmp_path, pb):
    """--subscriber-queue 16; one subscriber reads one event and stops: the
    agent goes on, counts what that subscriber missed, and exits; another
    subscriber, reading, gets every event.

    ~4 MB of events, far more than the slow subscriber's connection can hold
    (the agent keeps up to 1 MiB queued per call, then 16 events). The
    capture is fed in slices, each once the reading subscriber has caught up
    with the agent's output, so that it stays within its own bounds."""
    cap = G.write_udp_pcap(str(tmp_path / "udp.pcap"), 10000, 2, payload=200, net="10.81")
    pull = Pull(tmp_path, pb, cap, extra=["--subscriber-queue", "16"])
    # The slow one must not have its socket drained into grpc's buffers.
    slow_ch = grpc.insecure_channel("127.0.0.1:%d" % pull.port,
                                    options=[("grpc.http2.bdp_probe", 0),
                                             ("grpc.http2.lookahead_bytes", 1024)])
    slow = fast = None
    try:
        slow = pull.subscribe(stop_after=1, channel=slow_ch)
        fast = pull.subscribe()
        start = pull.sync(2)
        util.wait_for(lambda: slow.first.is_set(), 10 * SCALE, what="the slow subscriber's first event")
        for i in range(0, len(pull.recs), 1000):
            assert pull.agent.feed(b"".join(pull.recs[i:i + 1000])), "the agent closed its stdin"
            util.wait_for(lambda: max([k[1] for k in fast.keys()[-1:]] or [0]) >= last_json_seq(
                pull.agent.json_path), 30 * SCALE, what="the reading subscriber catching up")
        # Until an agent_status counts what the slow one missed (more
        # event-less frames make the agent look at the clock).
        dropped = pull.sync(2, field="subscriber_dropped", at_least=1)
        events = pull.finish(timeout=RUN_TIMEOUT)
        code, details = fast.wait_done(20 * SCALE)
        assert code == grpc.StatusCode.OK, (code, details)
        exp = assert_subscription(fast, events, start.seq, "the subscriber that reads")
        assert len(exp) > 15000
        assert dropped.subscriber_dropped > 0 and dropped.subscribers == 3, dropped
        final = G.statuses(events)[-1]
        assert final["subscriber_dropped"] >= dropped.subscriber_dropped, final
        slow.release()
        slow.wait_done(20 * SCALE)
        got = slow.keys()
        assert 1 <= len(got) < len(exp), "the slow subscriber got %d of %d events" % (len(got), len(exp))
        assert set(got) <= set(G.keys_of(events)) and [s for _, s in got] == sorted(s for _, s in got)
    finally:
        if slow:
            slow.cancel()
        slow_ch.close()
        pull.close()


def test_status_interval_on_a_slow_pipe(agent, tmp_path, pb):
    path, = G.corpus_files([SUB_CAPTURE])
    hdr, recs = G.pcap_stream_parts(path)
    ag = G.Agent(["-r", "-", "--status-interval", "1", "-o", "json:%s/agent.jsonl" % tmp_path],
                 tmp_path, stdin=True)
    try:
        ag.feed(hdr)
        found = False
        deadline = time.monotonic() + 6
        i = 0
        # A packet every 0.2 s for up to 6 s (the slow pipe is the scenario).
        while time.monotonic() < deadline and not found:
            assert ag.feed(recs[i % len(recs)])
            i += 1
            time.sleep(0.2)
            found = bool(G.statuses(ag.partial_events()))
        ag.wait(RUN_TIMEOUT)
        assert found, "no agent_status within 6 s of wall clock with --status-interval 1 (%d packets fed)" % i
    finally:
        G.stop_all([ag])
