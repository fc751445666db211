"""TLS handshakes and HTTP/1.x transactions from real traffic on loopback.

gen_tls_traffic.py makes the capture: curl and openssl s_client against
openssl s_server and nghttpd with versions, cipher suites, SNI and ALPN it
chooses and a certificate (signed by a CA of its own, with SANs) it makes;
curl against python's http.server (HTTP/1.0) and against a keep-alive
HTTP/1.1 server that answers twelve requests on one connection (GET, a 404,
a POST with a body, a HEAD, a body over several segments, more GETs: more
packets than the agent's DPI window of 32).

The agent's ``tls`` events (one per TLS connection) and ``http`` events (one
per request, in order on each connection) must agree with two references:

* what was configured: SNI, version, cipher suite (its IANA name from
  ``openssl ciphers -stdname``), ALPN offered and chosen, the certificate's
  subject and issuer components, SANs, validity and SHA-1 fingerprint; the
  request's method, Host, URI, version, User-Agent, Referer and body length,
  the response's status, Content-Type, Content-Length and Server as curl saw
  them;
* tshark's decoding of the same capture: server_name, JA3, JA3S, the
  ServerHello's cipher suite and version, the ALPN lists, the client's
  supported_versions, the certificate (x509 fields of its first
  Certificate, SHA-1 of its bytes); the http.request/http.response fields,
  http.time for the response time and the response frame's time. nghttpd
  answers curl's TLS 1.3 ClientHello with a HelloRetryRequest: the
  ServerHello compared is the real one, the ClientHello the first.

Two things the wire cannot show are checked to be empty: the certificate of
a TLS 1.3 handshake (encrypted) and the server's ALPN choice in TLS 1.3 (in
the encrypted EncryptedExtensions). Every tls and http event carries the
digest of its flow. The agent runs with --threads 1 (deterministic order).
"""

import calendar
import collections
import hashlib
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

import gen_tls_traffic
import util

TOOLS = ("tcpdump", "tshark", "curl", "openssl", "nghttpd")
HTTP_PORTS = ("http10", "http11")
HRR_RANDOM = "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c"
# X.500 attribute OIDs -> the short names nDPI writes in its DNs
RDN_NAMES = {"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O",
             "2.5.4.11": "OU", "1.2.840.113549.1.9.1": "E"}
TLS_VERSION_NAMES = {"TLSv1": 0x0301, "TLSv1.0": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303,
                     "TLSv1.3": 0x0304}


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    util.require_root_and_tools("capturing real traffic on lo",
                                [t for t in TOOLS if shutil.which(t) is None], "TLS/HTTP traffic")
    features = subprocess.run(["curl", "--version"], stdout=subprocess.PIPE).stdout.decode()
    if "HTTP2" not in features:
        pytest.skip("this curl has no HTTP/2")
    d = tmp_path_factory.mktemp("tls-http-traffic")
    return gen_tls_traffic.generate(str(d))


@pytest.fixture(scope="module")
def events(agent, capture, tmp_path_factory):
    d = tmp_path_factory.mktemp("tls-http-run")
    r = util.run_agent(["-r", capture["pcap"], "--threads", "1", "--events", "tls,http,flow"], tmp_path=d)
    return r.events


def decode_as(capture, proto):
    """-d options so tshark decodes our high ports as TLS or HTTP."""
    names = [n for n in capture["ports"] if (n in HTTP_PORTS) == (proto == "http")]
    return sum([["-d", "tcp.port==%d,%s" % (capture["ports"][n], proto)] for n in names], [])


def tshark_fields(pcap, args, fields):
    rc, out, err = util.run_tshark(pcap, list(args) + ["-T", "fields", "-E", "separator=\t",
                                                        "-E", "occurrence=a", "-E", "aggregator=|"]
                                   + sum([["-e", f] for f in fields], []))
    assert rc == 0, "tshark failed: %s" % err[-3000:]
    rows = []
    for line in out.splitlines():
        cols = line.split("\t")
        cols += [""] * (len(fields) - len(cols))
        rows.append(dict(zip(fields, cols)))
    return rows


def split(v):
    return [x for x in v.split("|") if x != ""]


HELLO_FIELDS = ["frame.number", "ip.src", "ip.dst", "tcp.srcport", "tcp.dstport", "tls.handshake.type",
                "tls.handshake.random", "tls.handshake.version", "tls.handshake.ciphersuite",
                "tls.handshake.extensions_server_name", "tls.handshake.extensions_alpn_str",
                "tls.handshake.extensions.supported_version", "tls.handshake.ja3", "tls.handshake.ja3s"]


def tshark_certificates(pcap, args):
    """The first certificate of each Certificate message, by client port:
    subject and issuer as [(short name, value)], SANs, validity, SHA-1."""
    rc, out, err = util.run_tshark(pcap, list(args) + ["-Y", "tls.handshake.type == 11", "-T", "pdml"])
    assert rc == 0, "tshark failed: %s" % err[-3000:]
    certs = {}
    for pkt in ET.fromstring(out).iter("packet"):
        client_port = int(pkt.find(".//field[@name='tcp.dstport']").get("show"))
        cert = pkt.find(".//field[@name='tls.handshake.certificate']")
        assert cert is not None, "Certificate message without a certificate (port %d)" % client_port

        def rdns(name):
            out = []
            for item in cert.find(".//field[@name='%s']" % name).iter("field"):
                if item.get("name") != "x509if.RelativeDistinguishedName_item_element":
                    continue
                oid = item.find("field[@name='x509if.oid']").get("show")
                leaves = [f for f in item.iter("field") if len(f) == 0 and f.get("name") != "x509if.oid"]
                out.append((RDN_NAMES.get(oid, oid), leaves[0].get("show")))
            return out

        def utc(name):
            t = cert.find(".//field[@name='%s']/field[@name='x509af.utcTime']" % name).get("show")
            return calendar.timegm(time.strptime(t.replace(" (UTC)", ""), "%Y-%m-%d %H:%M:%S"))

        certs.setdefault(client_port, {
            "subject": rdns("x509af.subject"), "issuer": rdns("x509af.issuer"),
            "server_names": [f.get("show") for f in cert.iter("field") if f.get("name") == "x509ce.dNSName"],
            "not_before": utc("x509af.notBefore"), "not_after": utc("x509af.notAfter"),
            "sha1": hashlib.sha1(bytes.fromhex(cert.get("value"))).hexdigest(),
        })
    return certs


@pytest.fixture(scope="module")
def tshark_tls(tshark, capture):
    """tshark's view of each TLS connection, by client port: its first
    ClientHello, its ServerHello (not a HelloRetryRequest) and its
    certificate when visible."""
    args = decode_as(capture, "tls")
    rows = tshark_fields(capture["pcap"], args + ["-Y", "tls.handshake.type == 1 || tls.handshake.type == 2"],
                         HELLO_FIELDS)
    conns = collections.OrderedDict()
    for r in rows:
        types = split(r["tls.handshake.type"])
        if "1" in types:
            c = conns.setdefault(int(r["tcp.srcport"]), {"client_hellos": [], "server_hellos": [], "hrr": 0})
            c["client_hellos"].append(r)
        if "2" in types:
            c = conns.setdefault(int(r["tcp.dstport"]), {"client_hellos": [], "server_hellos": [], "hrr": 0})
            if r["tls.handshake.random"] == HRR_RANDOM:
                c["hrr"] += 1
            else:
                c["server_hellos"].append(r)
    certs = tshark_certificates(capture["pcap"], args)
    out = collections.OrderedDict()
    for port, c in conns.items():
        assert len(c["client_hellos"]) >= 1 and len(c["server_hellos"]) == 1, \
            "tshark: client port %d: %d ClientHello, %d ServerHello" % (
                port, len(c["client_hellos"]), len(c["server_hellos"]))
        ch, sh = c["client_hellos"][0], c["server_hellos"][0]
        sv = split(sh["tls.handshake.extensions.supported_version"])
        out[port] = {
            "client_ip": ch["ip.src"], "server_ip": ch["ip.dst"], "client_port": port,
            "server_port": int(ch["tcp.dstport"]), "hrr": c["hrr"],
            "sni": ch["tls.handshake.extensions_server_name"],
            "alpn": ",".join(split(ch["tls.handshake.extensions_alpn_str"])),
            "alpn_server": ",".join(split(sh["tls.handshake.extensions_alpn_str"])),
            "supported_versions": [int(v, 16) for v in split(ch["tls.handshake.extensions.supported_version"])],
            "ja3": ch["tls.handshake.ja3"], "ja3s": sh["tls.handshake.ja3s"],
            "cipher_suite": int(sh["tls.handshake.ciphersuite"], 16),
            "version": int(sv[0] if sv else sh["tls.handshake.version"], 16),
            "cert": certs.get(port),
        }
    return out


HTTP_FIELDS = ["frame.number", "frame.time_epoch", "ip.src", "ip.dst", "tcp.srcport", "tcp.dstport",
               "http.request", "http.response", "http.request.method", "http.host", "http.request.uri",
               "http.request.version", "http.user_agent", "http.referer", "http.content_length_header",
               "http.response.code", "http.response.phrase", "http.content_type", "http.server",
               "http.time", "http.request_in"]


@pytest.fixture(scope="module")
def tshark_http(tshark, capture):
    """tshark's HTTP transactions, in capture order: each request with its
    response. Bodies are not reassembled, so a response is the frame of its
    header (as for the agent, whose response time ends there)."""
    rows = tshark_fields(capture["pcap"], decode_as(capture, "http")
                         + ["-o", "http.desegment_body:FALSE", "-Y", "http.request || http.response"],
                         HTTP_FIELDS)
    txs = collections.OrderedDict()
    for r in rows:
        if r["http.request"]:
            txs[r["frame.number"]] = {"request": r, "response": None}
        elif r["http.response"]:
            req = r["http.request_in"]
            assert req in txs and txs[req]["response"] is None, "tshark: response frame %s to %r" % (
                r["frame.number"], req)
            txs[req]["response"] = r
    return list(txs.values())


# ---------------------------------------------------------------- helpers

def of_type(events, t):
    return [e for e in events if e["type"] == t]


def dn_parts(dn):
    """'C=XX, O=Sonde Test, CN=x' -> [('C', 'XX'), ('O', 'Sonde Test'), ('CN', 'x')]."""
    if not dn:
        return []
    return [tuple(p.split("=", 1)) for p in re.split(r",\s*(?=[A-Za-z][A-Za-z0-9.]*=)", dn)]


def norm_hex(s):
    return s.replace(":", "").lower()


def versions_of(s):
    """nDPI's supported_versions list ('TLSv1.3,TLSv1.2') as numbers."""
    out = []
    for v in [x.strip() for x in s.split(",") if x.strip()]:
        out.append(TLS_VERSION_NAMES.get(v, v))
    return out


class Mismatches:
    """Collects field mismatches so that one failure shows them all."""

    def __init__(self):
        self.lines = []

    def eq(self, where, field, got, want, ref):
        if got != want:
            self.lines.append("%s: %s: agent %r != %s %r" % (where, field, got, ref, want))

    def check(self, where, ok, text):
        if not ok:
            self.lines.append("%s: %s" % (where, text))

    def assert_none(self, what):
        assert not self.lines, "%s: %d mismatches:\n  %s" % (what, len(self.lines), "\n  ".join(self.lines))


def tls_events_by_client_port(events):
    out = {}
    for e in of_type(events, "tls"):
        assert e["client_port"] not in out, "two tls events for client port %d:\n%r\n%r" % (
            e["client_port"], out[e["client_port"]], e)
        out[e["client_port"]] = e
    return out


def tls_case_ports(capture, tshark_tls):
    """Configured TLS case -> client port, found by its own server port."""
    by_server = {c["server_port"]: port for port, c in tshark_tls.items()}
    out = []
    for case in capture["tls"]:
        assert case["server_port"] in by_server, "tshark saw no handshake of %s (server port %d)" % (
            case["name"], case["server_port"])
        port = by_server[case["server_port"]]
        if case["client_port"] is not None:
            assert port == case["client_port"], "%s: curl's local port %d, tshark's ClientHello from %d" % (
                case["name"], case["client_port"], port)
        out.append((case, port))
    return out


def http_events_by_conn(events):
    conns = collections.OrderedDict()
    for e in of_type(events, "http"):
        conns.setdefault((e["client_port"], e["server_port"]), []).append(e)
    return conns


# ---------------------------------------------------------------- TLS

def test_capture_has_what_was_made(capture, tshark_tls, tshark_http):
    """The references agree among themselves before the agent is judged."""
    assert len(tshark_tls) == len(capture["tls"]), (sorted(tshark_tls), capture["tls"])
    assert len(tshark_http) == len(capture["http"]), (len(tshark_http), len(capture["http"]))
    assert all(t["response"] is not None for t in tshark_http)
    # the keep-alive connection outlasts the DPI window (--dpi-packets 32)
    rc, out, err = util.run_tshark(capture["pcap"], ["-Y", "tcp.port == %d" % capture["ports"]["http11"],
                                                     "-T", "fields", "-e", "frame.number"])
    assert rc == 0, err
    assert len(out.split()) > 40, "keep-alive connection of %d packets only" % len(out.split())


def test_tls_one_event_per_connection(events, capture, tshark_tls):
    got = tls_events_by_client_port(events)
    assert sorted(got) == sorted(tshark_tls), \
        "tls events for client ports %s; TLS connections (tshark ClientHellos) from %s" % (
            sorted(got), sorted(tshark_tls))
    http_ports = {capture["ports"][n] for n in HTTP_PORTS}
    assert not [e for e in got.values() if e["server_port"] in http_ports]


def test_tls_configured_values(events, capture, tshark_tls):
    got = tls_events_by_client_port(events)
    m = Mismatches()
    for case, port in tls_case_ports(capture, tshark_tls):
        e = got.get(port)
        where = "tls %s (client port %d)" % (case["name"], port)
        if e is None:
            m.check(where, False, "no tls event")
            continue
        for f in ("sni", "version", "version_name", "cipher_suite", "cipher_name", "alpn", "alpn_server"):
            m.eq(where, f, e[f], case[f], "configured")
        m.eq(where, "server_port", e["server_port"], case["server_port"], "configured")
        m.eq(where, "client_ip", e["client_ip"], "127.0.0.1", "configured")
        m.eq(where, "server_ip", e["server_ip"], "127.0.0.1", "configured")
        m.eq(where, "transport", e["transport"], "tcp", "configured")
        m.eq(where, "handshake_complete", e["handshake_complete"], True, "configured")
    m.assert_none("tls events vs configuration")


def test_tls_matches_tshark(events, tshark_tls):
    got = tls_events_by_client_port(events)
    m = Mismatches()
    for port, t in tshark_tls.items():
        e = got.get(port)
        where = "tls client port %d -> %d" % (port, t["server_port"])
        if e is None:
            m.check(where, False, "no tls event")
            continue
        for f in ("client_ip", "server_ip", "server_port", "sni", "alpn", "alpn_server", "ja3", "ja3s",
                  "cipher_suite", "version"):
            m.eq(where, f, e[f], t[f], "tshark")
        m.eq(where, "supported_versions", versions_of(e["supported_versions"]), t["supported_versions"],
             "tshark")
    m.assert_none("tls events vs tshark")


def test_tls_certificate(events, capture, tshark_tls):
    """TLS 1.2: the server certificate as made and as tshark decodes it;
    TLS 1.3: encrypted, so every certificate field stays empty."""
    cert = capture["cert"]
    got = tls_events_by_client_port(events)
    m = Mismatches()
    n12 = 0
    for case, port in tls_case_ports(capture, tshark_tls):
        e, t = got.get(port), tshark_tls[port]
        where = "tls %s (client port %d, %s)" % (case["name"], port, case["version_name"])
        if e is None:
            m.check(where, False, "no tls event")
            continue
        if case["version_name"] == "TLSv1.3":
            m.check(where, t["cert"] is None, "tshark decoded a certificate in TLS 1.3")
            for f, empty in (("subject_dn", ""), ("issuer_dn", ""), ("server_names", ""), ("not_before", 0),
                             ("not_after", 0), ("cert_fingerprint", "")):
                m.eq(where, f, e[f], empty, "encrypted, expected")
            continue
        n12 += 1
        tc = t["cert"]
        if tc is None:
            m.check(where, False, "tshark saw no certificate")
            continue
        subject, issuer = dn_parts(e["subject_dn"]), dn_parts(e["issuer_dn"])
        m.eq(where, "subject_dn components", sorted(subject),
             sorted(tuple(p) for p in cert["subject_parts"]), "configured")
        m.eq(where, "subject_dn components", sorted(subject), sorted(tc["subject"]), "tshark")
        m.eq(where, "issuer_dn components", sorted(issuer),
             sorted(tuple(p) for p in cert["issuer_parts"]), "configured")
        m.eq(where, "issuer_dn components", sorted(issuer), sorted(tc["issuer"]), "tshark")
        sans = [s for s in e["server_names"].split(",") if s]
        m.eq(where, "server_names", sans, cert["server_names"], "configured")
        m.eq(where, "server_names", sans, tc["server_names"], "tshark")
        for f in ("not_before", "not_after"):
            m.eq(where, f, e[f], cert[f], "configured (openssl x509 -dates)")
            m.eq(where, f, e[f], tc[f], "tshark")
        m.eq(where, "cert_fingerprint", norm_hex(e["cert_fingerprint"]), cert["sha1"],
             "configured (openssl x509 -fingerprint -sha1)")
        m.eq(where, "cert_fingerprint", norm_hex(e["cert_fingerprint"]), tc["sha1"],
             "tshark (SHA-1 of the certificate bytes)")
    assert n12 >= 4
    m.assert_none("tls certificate fields")


# ---------------------------------------------------------------- HTTP

def test_http_one_event_per_request(events, capture):
    conns = http_events_by_conn(events)
    want = collections.OrderedDict()
    for r in capture["http"]:
        want.setdefault((r["client_port"], r["server_port"]), []).append("%s %s" % (r["method"], r["uri"]))
    got = {k: ["%s %s" % (e["method"], e["uri"]) for e in v] for k, v in conns.items()}
    assert got == dict(want), "http events per connection (client port, server port):\n agent: %r\n made:  %r" % (
        got, dict(want))
    keepalive = [k for k in want if k[1] == capture["ports"]["http11"]]
    assert len(keepalive) == 1 and len(want[keepalive[0]]) == 6 + gen_tls_traffic.KA_EXTRA_GETS


def test_http_configured_values(events, capture):
    conns = http_events_by_conn(events)
    m = Mismatches()
    seen = collections.Counter()
    for r in capture["http"]:
        key = (r["client_port"], r["server_port"])
        i = seen[key]
        seen[key] += 1
        where = "http %s %s (client port %d, request %d)" % (r["method"], r["uri"], r["client_port"], i + 1)
        evs = conns.get(key, [])
        if i >= len(evs):
            m.check(where, False, "no http event")
            continue
        e = evs[i]
        for f in ("method", "host", "uri", "version", "user_agent", "referer", "request_content_length",
                  "content_type", "content_length", "server", "client_port", "server_port"):
            m.eq(where, f, e[f], r[f], "configured")
        m.eq(where, "status_code", e["status_code"], r["status"], "configured")
        m.eq(where, "answered", e["answered"], True, "configured")
        m.eq(where, "client_ip", e["client_ip"], "127.0.0.1", "configured")
        m.eq(where, "server_ip", e["server_ip"], "127.0.0.1", "configured")
        m.check(where, e["response_time_us"] > 0, "response_time_us %r, not > 0" % e["response_time_us"])
    m.assert_none("http events vs configuration")


def test_http_matches_tshark(events, tshark_http):
    conns = http_events_by_conn(events)
    m = Mismatches()
    seen = collections.Counter()
    for tx in tshark_http:
        q, a = tx["request"], tx["response"]
        key = (int(q["tcp.srcport"]), int(q["tcp.dstport"]))
        i = seen[key]
        seen[key] += 1
        where = "http frame %s %s %s (client port %d)" % (q["frame.number"], q["http.request.method"],
                                                          q["http.request.uri"], key[0])
        evs = conns.get(key, [])
        if i >= len(evs):
            m.check(where, False, "no http event")
            continue
        e = evs[i]
        m.eq(where, "method", e["method"], q["http.request.method"], "tshark")
        m.eq(where, "host", e["host"], q["http.host"], "tshark")
        m.eq(where, "uri", e["uri"], q["http.request.uri"], "tshark")
        m.eq(where, "version", e["version"], q["http.request.version"], "tshark")
        m.eq(where, "user_agent", e["user_agent"], q["http.user_agent"], "tshark")
        m.eq(where, "referer", e["referer"], q["http.referer"], "tshark")
        m.eq(where, "request_content_length", e["request_content_length"],
             int(q["http.content_length_header"] or 0), "tshark")
        m.eq(where, "status_code", e["status_code"], int(a["http.response.code"]), "tshark")
        m.eq(where, "reason", e["reason"], a["http.response.phrase"], "tshark")
        m.eq(where, "content_type", e["content_type"], a["http.content_type"], "tshark")
        m.eq(where, "content_length", e["content_length"], int(a["http.content_length_header"] or 0), "tshark")
        m.eq(where, "server", e["server"], a["http.server"], "tshark")
        # http.time: the response header's frame minus the request's
        want_us = round(float(a["http.time"]) * 1e6)
        m.check(where, abs(e["response_time_us"] - want_us) <= 1,
                "response_time_us: agent %r != tshark http.time %r us" % (e["response_time_us"], want_us))
        sec, frac = a["frame.time_epoch"].split(".")
        m.eq(where, "timestamp", e["timestamp"], int(sec) * 1000 + int(frac[:3]), "tshark (response frame, ms)")
    extra = {k: len(v) - seen[k] for k, v in conns.items() if len(v) > seen[k]}
    m.check("http", not extra, "events beyond tshark's requests, per connection: %r" % extra)
    m.assert_none("http events vs tshark")


def test_no_http_events_on_tls(events, capture):
    """HTTP inside TLS (s_server -www, h2) is encrypted: no http event."""
    http_ports = {capture["ports"][n] for n in HTTP_PORTS}
    wrong = [e for e in of_type(events, "http") if e["server_port"] not in http_ports]
    assert not wrong, "http events on TLS connections: %r" % wrong


# ---------------------------------------------------------------- flows

def test_events_join_their_flow(events):
    flows = collections.defaultdict(list)
    for f in of_type(events, "flow"):
        flows[frozenset([(f["local_ip"], f["local_port"]), (f["other_ip"], f["other_port"])])].append(f)
    m = Mismatches()
    n = 0
    for e in of_type(events, "tls") + of_type(events, "http"):
        n += 1
        where = "%s %d -> %d" % (e["type"], e["client_port"], e["server_port"])
        fs = flows.get(frozenset([(e["client_ip"], e["client_port"]), (e["server_ip"], e["server_port"])]), [])
        if len(fs) != 1:
            m.check(where, False, "%d flow events with these ports" % len(fs))
            continue
        m.eq(where, "digest", e["digest"], fs[0]["digest"], "its flow's")
    assert n > 0, "no tls or http events at all"
    m.assert_none("tls/http events joined to flows")
