"""DNS transactions from real traffic: dig against a local dnsmasq.

gen_traffic.py asks dnsmasq for A and AAAA records, a two-step CNAME chain,
an NXDOMAIN, a TXT answer too big for UDP without EDNS (truncated, then
asked again over TCP) and one query over TCP from the start. The agent's
dns events must agree with what dnsmasq was configured to answer and with
tshark's decoding of the same capture: query name and type, transaction
id, rcode, every A/AAAA/CNAME answer with its TTL, and the response time.
The packet-layer dns_header records must match tshark's header fields, and
a flow to an address DNS named must carry that name (dns_host_name).
"""

import pytest

import gen_traffic
import util

FIELDS = ["frame.number", "frame.time_epoch", "ip.src", "ip.dst", "udp.srcport", "udp.dstport",
          "tcp.srcport", "tcp.dstport", "dns.id", "dns.flags", "dns.flags.response",
          "dns.qry.name", "dns.qry.type", "dns.flags.rcode", "dns.count.queries",
          "dns.count.answers", "dns.count.auth_rr", "dns.count.add_rr", "dns.a", "dns.aaaa",
          "dns.cname", "dns.resp.ttl", "dns.txt", "dns.time"]


def tshark_dns(pcap, port):
    """One dict per DNS message tshark decodes, in capture order."""
    rc, out, err = util.run_tshark(pcap, ["-d", "udp.port==%d,dns" % port, "-d", "tcp.port==%d,dns" % port,
                                 "-Y", "dns", "-T", "fields", "-E", "separator=\t",
                                 "-E", "aggregator=|", "-E", "occurrence=a"]
                          + sum([["-e", f] for f in FIELDS], []))
    assert rc == 0, err
    msgs = []
    for line in out.splitlines():
        cols = line.split("\t")
        cols += [""] * (len(FIELDS) - len(cols))
        msgs.append(dict(zip(FIELDS, cols)))
    return msgs


def split(v):
    return [x for x in v.split("|") if x != ""]


@pytest.fixture(scope="module")
def dns_run(agent, real_capture, tmp_path_factory):
    d = tmp_path_factory.mktemp("dns-run")
    # dnsmasq listens on a free port, not 53: name it to the agent
    r = util.run_agent(["-r", real_capture.pcap, "--threads", "1", "--events",
                        "dns,flow,dns_header,agent_status",
                        "--dns-port", real_capture.summary["ports"]["dns"]], tmp_path=d)
    return r.events


@pytest.fixture(scope="module")
def tshark_msgs(tshark, real_capture):
    return tshark_dns(real_capture.pcap, real_capture.summary["ports"]["dns"])


def dns_events(events):
    return [e for e in events if e["type"] == "dns"]


def by_query(events, name, qtype, transport=None):
    got = [e for e in dns_events(events) if e["query_name"] == name
           and e["query_type_name"] == qtype and (transport is None or e["transport"] == transport)]
    assert got, "no dns event for %s %s %s; names seen: %s" % (
        name, qtype, transport or "", sorted({e["query_name"] for e in dns_events(events)}))
    return got


def data_of(e, rr_type):
    return [a["data"] for a in e["answers"] if a["rr_type_name"] == rr_type]


def test_configured_answers(dns_run):
    """What dnsmasq was told to answer is what the events say."""
    e = by_query(dns_run, "example.test", "A", "udp")[0]
    assert e["answered"] and e["rcode_name"] == "NOERROR"
    assert data_of(e, "A") == ["10.1.2.3"]
    assert e["answers"][0]["ttl"] == 300
    e = by_query(dns_run, "example.test", "AAAA")[0]
    assert data_of(e, "AAAA") == ["fd00::1:2:3"]
    # the CNAME chain, in order, ending in the address
    e = by_query(dns_run, "alias.example.test", "A")[0]
    assert [(a["name"], a["rr_type_name"], a["data"]) for a in e["answers"]] == [
        ("alias.example.test", "CNAME", "mid.example.test"),
        ("mid.example.test", "CNAME", "target.example.test"),
        ("target.example.test", "A", "10.9.8.7")]
    e = by_query(dns_run, "gone.nx.test", "A")[0]
    assert e["answered"] and e["rcode"] == 3 and e["rcode_name"] == "NXDOMAIN"
    assert e["answers"] == []


def test_tcp_fallback(dns_run):
    """Truncated over UDP (TC set, no answers fit), then whole over TCP."""
    udp = by_query(dns_run, "big.example.test", "TXT", "udp")
    assert len(udp) == 1 and udp[0]["flags"] & 0x0200, "TC flag missing: %r" % udp
    tcp = by_query(dns_run, "big.example.test", "TXT", "tcp")
    assert len(tcp) == 1
    assert data_of(tcp[0], "TXT") == [" ".join(gen_traffic.DNS_BIG_TXT)]
    assert tcp[0]["response_time_us"] > 0
    e = by_query(dns_run, "example.test", "A", "tcp")[0]
    assert data_of(e, "A") == ["10.1.2.3"] and e["answered"]


def test_every_response_matches_tshark(dns_run, tshark_msgs):
    """One answered event per response tshark decodes, with its fields."""
    responses = [m for m in tshark_msgs if m["dns.flags.response"] in ("1", "True")]
    assert len(responses) >= 15
    events = [e for e in dns_events(dns_run) if e["answered"]]
    assert len(events) == len(responses), (len(events), len(responses))
    for m, e in zip(responses, events):
        where = "frame %s (%s)" % (m["frame.number"], m["dns.qry.name"])
        assert e["transaction_id"] == int(m["dns.id"], 0), where
        assert e["query_name"] == m["dns.qry.name"], where
        assert e["query_type"] == int(m["dns.qry.type"]), where
        assert e["rcode"] == int(m["dns.flags.rcode"]), where
        assert e["flags"] == int(m["dns.flags"], 16), where
        assert e["server_port"] == int(m["udp.srcport"] or m["tcp.srcport"]), where
        assert e["transport"] == ("udp" if m["udp.srcport"] else "tcp"), where
        assert data_of(e, "A") == split(m["dns.a"]), where
        assert data_of(e, "AAAA") == split(m["dns.aaaa"]), where
        assert data_of(e, "CNAME") == split(m["dns.cname"]), where
        assert [a["ttl"] for a in e["answers"]] == [int(t) for t in split(m["dns.resp.ttl"])], where
        assert len(e["answers"]) == int(m["dns.count.answers"]), where
        assert e["authority_count"] == int(m["dns.count.auth_rr"]), where
        assert e["additional_count"] == int(m["dns.count.add_rr"]), where
        # tshark's dns.time: the response's time minus its query's
        assert e["response_time_us"] == round(float(m["dns.time"]) * 1e6), where
        sec, frac = m["frame.time_epoch"].split(".")
        assert e["timestamp"] == int(sec) * 1000 + int(frac[:3]), where


def test_no_query_left_unanswered(dns_run):
    assert [e for e in dns_events(dns_run) if not e["answered"]] == []


def test_event_joins_its_flow(dns_run):
    flows = {e["digest"]: e for e in dns_run if e["type"] == "flow"}
    for e in dns_events(dns_run):
        f = flows.get(e["digest"])
        assert f is not None, "dns event without its flow: %r" % e
        assert {f["local_port"], f["other_port"]} == {e["client_port"], e["server_port"]}


def test_header_records_match_tshark(dns_run, tshark_msgs):
    hdr = [e for e in dns_run if e["type"] == "dns_header"]
    # every DNS message tshark decodes except TCP segments it reassembled
    # from several packets (none here: loopback carries each in one segment)
    assert len(hdr) == len(tshark_msgs)
    for m, h in zip(tshark_msgs, hdr):
        where = "frame %s" % m["frame.number"]
        assert h["transaction_id"] == int(m["dns.id"], 0), where
        assert h["flags"] == int(m["dns.flags"], 16), where
        assert h["qdcount"] == int(m["dns.count.queries"]), where
        assert h["ancount"] == int(m["dns.count.answers"]), where
        assert h["nscount"] == int(m["dns.count.auth_rr"]), where
        assert h["arcount"] == int(m["dns.count.add_rr"]), where
        assert h["qname"] == m["dns.qry.name"], where


def test_flow_named_by_dns(dns_run):
    """dig asked for ping.example.test (127.0.0.2, TTL 300) before the pings."""
    pings = [e for e in dns_run if e["type"] == "flow" and e["ip_protocol"] == 1
             and "127.0.0.2" in (e["local_ip"], e["other_ip"])]
    assert pings, "no ICMP flow to 127.0.0.2"
    for f in pings:
        assert f["other_ip"] == "127.0.0.2"
        assert f["dns_host_name"] == "ping.example.test"
    others = [e for e in dns_run if e["type"] == "flow" and e["ip_protocol"] == 1
              and e["other_ip"] == "127.0.0.1"]
    assert others and all(f["dns_host_name"] == "" for f in others)


def test_flow_named_without_dns_events(agent, real_capture, tmp_path):
    """The hint cache works from the responses alone when dns events are off."""
    r = util.run_agent(["-r", real_capture.pcap, "--threads", "1", "--events", "flow",
                        "--dns-port", real_capture.summary["ports"]["dns"]], tmp_path=tmp_path)
    assert not [e for e in r.events if e["type"] == "dns"]
    named = {e["other_ip"]: e["dns_host_name"] for e in r.events
             if e["type"] == "flow" and e["ip_protocol"] == 1}
    assert named.get("127.0.0.2") == "ping.example.test"


def test_no_dpi_means_no_dns(agent, real_capture, tmp_path):
    r = util.run_agent(["-r", real_capture.pcap, "--no-dpi", "--events", "dns,flow",
                        "--dns-port", real_capture.summary["ports"]["dns"]], tmp_path=tmp_path)
    assert not [e for e in r.events if e["type"] == "dns"]
    assert all(e["dns_host_name"] == "" for e in r.events if e["type"] == "flow")
