"""DHCP transactions from real traffic: busybox udhcpc against dnsmasq.

gen_dhcp_traffic.py makes, between two network namespaces, two complete
leases of one client (DISCOVER, OFFER, REQUEST, ACK; the second with
broadcast replies), the RELEASE of the second (udhcpc gives it a transaction
id of its own), and a REQUEST from another MAC for an address of another
network, which dnsmasq (authoritative) answers with a NAK. The agent reads
the capture with dhcp, dhcp_header, endpoint and flow events on.

What is compared, and why:

* one ``dhcp`` event per transaction (client MAC + xid), each field equal to
  tshark's decoding of the same messages (message types in order, ciaddr,
  options 50, 54, 12, 60, 55, 51, 15 and 61, the yiaddr of the last OFFER
  or ACK, giaddr, first-to-last time), so the agent reads DHCP as an
  independent dissector does;
* the same events equal what was configured or obtained (dnsmasq's server
  id, range, lease time and domain; udhcpc's host name, vendor class and
  option 42 on top of its default request list; the address udhcpc's script
  was given and dnsmasq's lease file recorded; the NAK'd REQUEST made with
  scapy), so the oracle itself cannot drift;
* one ``dhcp_header`` record per DHCP packet, its BOOTP header and message
  type equal to tshark's;
* the endpoint inventory learns from DHCP (docs/agent.md): an ``endpoint``
  of the client MAC lists the assigned address from the first ACK on (the
  client sends from it only later) and the host name it gave from its
  first DISCOVER on; the NAK'd client is named too, and the address refused
  with the NAK is listed for no one;
* each dhcp event's digest is that of the ``flow`` of its first message.
"""

import shutil

import pytest

import gen_dhcp_traffic as gen
import util


@pytest.fixture(scope="module")
def dhcp_capture(tmp_path_factory):
    util.require_root_and_tools("DHCP in network namespaces", gen.tools_missing(), "DHCP traffic")
    return gen.generate(str(tmp_path_factory.mktemp("dhcp-traffic")))


@pytest.fixture(scope="module")
def tshark_msgs(dhcp_capture):
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    return gen.tshark_dhcp(dhcp_capture["pcap"])


@pytest.fixture(scope="module")
def dhcp_run(agent, dhcp_capture, tmp_path_factory):
    d = tmp_path_factory.mktemp("dhcp-run")
    r = util.run_agent(["-r", dhcp_capture["pcap"], "--threads", "1",
                        "--events", "dhcp,dhcp_header,endpoint,flow"], tmp_path=d)
    return r.events


def of_type(events, t):
    return [e for e in events if e["type"] == t]


def time_ms(m):
    sec, frac = m["frame.time_epoch"].split(".")
    return int(sec) * 1000 + int(frac[:3])


def time_us(m):
    sec, frac = m["frame.time_epoch"].split(".")
    return int(sec) * 1000000 + int((frac + "000000")[:6])


def nonzero_ip(v):
    return "" if v in ("", "0.0.0.0") else v


def one(vals, what):
    """The single value a transaction's messages carry for a field ("" if
    none); the capture must not disagree with itself."""
    s = {v for v in vals if v != ""}
    assert len(s) <= 1, "the capture carries several %s in one transaction: %r" % (what, s)
    return s.pop() if s else ""


def expected_transaction(ms):
    """The dhcp event tshark's decoding of one transaction's messages calls for."""
    client = [m for m in ms if m["dhcp.type"] == "1"]
    server = [m for m in ms if m["dhcp.type"] == "2"]
    offers = [m for m in ms if gen.message_type(m) in (2, 5)]
    lease = one([gen.first(m, "dhcp.option.ip_address_lease_time") for m in server], "lease times")
    return {
        "client_mac": gen.chaddr(ms[0]),
        "transaction_id": gen.xid(ms[0]),
        "message_types": gen.type_names(ms),
        "message_type": gen.type_names(ms)[-1],
        "client_ip": one([nonzero_ip(m["dhcp.ip.client"]) for m in client], "ciaddrs"),
        "requested_ip": one([gen.first(m, "dhcp.option.requested_ip_address") for m in client],
                            "requested addresses"),
        "assigned_ip": nonzero_ip(offers[-1]["dhcp.ip.your"]) if offers else "",
        "server_id": one([gen.first(m, "dhcp.option.dhcp_server_id") for m in ms], "server ids"),
        "hostname": one([gen.first(m, "dhcp.option.hostname") for m in client], "host names"),
        "vendor_class": one([gen.first(m, "dhcp.option.vendor_class_id") for m in client],
                            "vendor classes"),
        "fingerprint": one([gen.fingerprint(m) for m in client], "request lists"),
        "lease_time": int(lease) if lease else 0,
        "domain_name": one([gen.first(m, "dhcp.option.domain_name") for m in server], "domains"),
        "client_id": one([gen.option_hex(m, 61) for m in client], "client ids"),
        "relay_ip": one([nonzero_ip(m["dhcp.ip.relay"]) for m in ms], "giaddrs"),
        "duration_us": time_us(ms[-1]) - time_us(ms[0]),
        "timestamp": time_ms(ms[-1]),
    }


def squash(types):
    """Message types without repeats: udhcpc resends a DISCOVER or REQUEST
    when an answer is slow (tshark's comparison keeps them)."""
    return [t for i, t in enumerate(types) if i == 0 or types[i - 1] != t]


def dhcp_by_key(events):
    out = {}
    for e in of_type(events, "dhcp"):
        k = (e["client_mac"], e["transaction_id"])
        assert k not in out, "two dhcp events for %s xid %#x:\n%r\n%r" % (k[0], k[1], out[k], e)
        out[k] = e
    return out


def test_one_event_per_transaction(dhcp_run, tshark_msgs):
    tx = gen.transactions(tshark_msgs)
    assert len(tx) == 4, list(tx)
    got = dhcp_by_key(dhcp_run)
    assert sorted(got) == sorted(tx), "dhcp events for %s, tshark's transactions %s" % (
        sorted(got), sorted(tx))


def test_transactions_match_tshark(dhcp_run, tshark_msgs):
    got = dhcp_by_key(dhcp_run)
    problems = []
    for key, ms in gen.transactions(tshark_msgs).items():
        e = got.get(key)
        if e is None:
            problems.append("%s xid %#x: no dhcp event" % key)
            continue
        for field, want in expected_transaction(ms).items():
            if e.get(field) != want:
                problems.append("%s xid %#x (frames %s): %s = %r, tshark: %r" % (
                    key[0], key[1], ",".join(m["frame.number"] for m in ms), field, e.get(field), want))
        if not isinstance(e.get("duration_us"), int) or e["duration_us"] < 0:
            problems.append("%s xid %#x: duration_us %r" % (key[0], key[1], e.get("duration_us")))
    assert not problems, "dhcp events differ from tshark:\n" + "\n".join(problems)


def test_transactions_match_configuration(dhcp_run, dhcp_capture):
    s = dhcp_capture
    events = dhcp_by_key(dhcp_run)

    def got(key):
        assert key in events, "no dhcp event for %s xid %#x; events for %s" % (
            key[0], key[1], ["%s %#x" % k for k in sorted(events)])
        return events[key]
    x1, x2, x_release, x_nak = s["xids"]
    ip = s["assigned_ip"]
    lo, hi = (tuple(int(p) for p in a.split(".")) for a in gen.RANGE)
    assert lo <= tuple(int(p) for p in ip.split(".")) <= hi, ip
    assert ip == s["udhcpc"][0]["lease"]["ip"] == s["udhcpc"][1]["lease"]["ip"]
    assert s["leasefile"].split()[1:4] == [gen.CLIENT_MAC, ip, gen.HOSTNAME]
    # udhcpc's default request list plus the 42 we asked for, as tshark read it
    assert "42" in s["fingerprint"].split(",") and s["fingerprint"].startswith("1,3,6,")
    client_id = "01" + gen.CLIENT_MAC.replace(":", "")  # udhcpc: hardware type 1 + MAC
    for xid in (x1, x2):
        e = got((gen.CLIENT_MAC, xid))
        where = "lease xid %#x: %r" % (xid, e)
        assert squash(e["message_types"]) == ["DISCOVER", "OFFER", "REQUEST", "ACK"], where
        assert e["message_type"] == "ACK", where
        assert e["client_ip"] == "", where
        assert e["requested_ip"] == ip and e["assigned_ip"] == ip, where
        assert e["server_id"] == gen.SERVER_IP == s["udhcpc"][0]["lease"]["serverid"], where
        assert e["hostname"] == gen.HOSTNAME, where
        assert e["vendor_class"] == gen.VENDOR_CLASS, where
        assert e["fingerprint"] == s["fingerprint"], where
        assert e["lease_time"] == gen.LEASE_TIME == int(s["udhcpc"][0]["lease"]["lease"]), where
        assert e["domain_name"] == gen.DOMAIN == s["udhcpc"][0]["lease"]["domain"], where
        assert e["client_id"] == client_id, where
        assert e["relay_ip"] == "", where
    e = got((gen.CLIENT_MAC, x_release))
    where = "release: %r" % e
    assert e["message_types"] == ["RELEASE"] and e["message_type"] == "RELEASE", where
    assert e["client_ip"] == ip and e["server_id"] == gen.SERVER_IP, where
    assert e["assigned_ip"] == "" and e["lease_time"] == 0, where
    assert e["client_id"] == client_id, where
    e = got((gen.NAK_MAC, x_nak))
    where = "nak: %r" % e
    assert x_nak == s["nak"]["xid"], where
    assert e["message_types"] == ["REQUEST", "NAK"] and e["message_type"] == "NAK", where
    assert e["assigned_ip"] == "", where
    assert e["requested_ip"] == gen.NAK_REQUESTED_IP, where
    assert e["hostname"] == gen.NAK_HOSTNAME, where
    assert e["fingerprint"] == ",".join(str(c) for c in gen.NAK_PARAMS), where
    assert e["server_id"] == gen.SERVER_IP, where
    assert e["vendor_class"] == "" and e["lease_time"] == 0 and e["domain_name"] == "", where
    assert e["client_id"] == "" and e["client_ip"] == "", where


def test_header_records_match_tshark(dhcp_run, tshark_msgs):
    hdr = of_type(dhcp_run, "dhcp_header")
    assert len(hdr) == len(tshark_msgs), "%d dhcp_header records, tshark decodes %d DHCP messages" % (
        len(hdr), len(tshark_msgs))
    problems = []
    for m, h in zip(tshark_msgs, hdr):
        want = {
            "timestamp": time_ms(m),
            "op": int(m["dhcp.type"]),
            "htype": int(gen.first(m, "dhcp.hw.type"), 16),
            "hlen": int(m["dhcp.hw.len"]),
            "hops": int(m["dhcp.hops"]),
            "xid": gen.xid(m),
            "secs": int(m["dhcp.secs"]),
            "flags": int(m["dhcp.flags"], 16),
            "ciaddr": m["dhcp.ip.client"],
            "yiaddr": m["dhcp.ip.your"],
            "siaddr": m["dhcp.ip.server"],
            "giaddr": m["dhcp.ip.relay"],
            "chaddr": gen.chaddr(m),
            "message_type": gen.message_type(m),
        }
        for field, v in want.items():
            if h.get(field) != v:
                problems.append("frame %s: %s = %r, tshark: %r" % (m["frame.number"], field, h.get(field), v))
    assert not problems, "dhcp_header records differ from tshark:\n" + "\n".join(problems)
    # the capture exercises both flag values and all four message directions
    assert {h["flags"] for h in hdr} == {0, 0x8000}
    assert {h["op"] for h in hdr} == {1, 2}


def test_endpoint_learns_lease(dhcp_run, dhcp_capture, tshark_msgs):
    """docs/agent.md: a client's host name (option 12) becomes its
    endpoint.hostname and the address an ACK assigns joins its ip list, an
    endpoint event being sent when either is new. So the first endpoint of
    the client naming the address comes with the first ACK, before the
    client ever sends from it (its ARP and RELEASE come later), and the
    first giving its host name with its first message carrying option 12."""
    ip = dhcp_capture["assigned_ip"]
    acks = [m for m in tshark_msgs if gen.message_type(m) == 5]
    assert acks
    after = time_ms(acks[0])
    endpoints = of_type(dhcp_run, "endpoint")
    eps = [e for e in endpoints if e["mac"].lower() == gen.CLIENT_MAC]
    assert eps, "no endpoint event for %s" % gen.CLIENT_MAC
    listing = "\n".join(map(repr, eps))
    good = [e for e in eps if e["timestamp"] >= after and ip in e["ip"] and e["hostname"] == gen.HOSTNAME]
    assert good, "no endpoint of %s listing %s with hostname %r after the ACK (ms %d):\n%s" % (
        gen.CLIENT_MAC, ip, gen.HOSTNAME, after, listing)
    with_ip = [e for e in eps if ip in e["ip"]]
    assert with_ip[0]["timestamp"] == after, \
        "the first endpoint of %s listing %s is not at the ACK (ms %d, frame %s):\n%s" % (
            gen.CLIENT_MAC, ip, after, acks[0]["frame.number"], listing)
    for mac, name in ((gen.CLIENT_MAC, gen.HOSTNAME), (gen.NAK_MAC, gen.NAK_HOSTNAME)):
        gave = [m for m in tshark_msgs if gen.chaddr(m) == mac and gen.first(m, "dhcp.option.hostname")]
        named = [e for e in endpoints if e["mac"].lower() == mac and e["hostname"] == name]
        assert gave and named, "no endpoint of %s with hostname %r:\n%s" % (
            mac, name, "\n".join(repr(e) for e in endpoints if e["mac"].lower() == mac))
        assert named[0]["timestamp"] == time_ms(gave[0]), \
            "endpoint of %s named %r at ms %d, its first option 12 at ms %d (frame %s)" % (
                mac, name, named[0]["timestamp"], time_ms(gave[0]), gave[0]["frame.number"])
    refused = [e for e in endpoints if gen.NAK_REQUESTED_IP in e["ip"]]
    assert refused == [], "the address refused with a NAK is listed: %r" % refused


def test_event_joins_its_flow(dhcp_run, tshark_msgs):
    flows = {e["digest"]: e for e in of_type(dhcp_run, "flow")}
    first = {}
    for key, ms in gen.transactions(tshark_msgs).items():
        first[key] = ms[0]
    problems = []
    events = of_type(dhcp_run, "dhcp")
    assert events, "no dhcp events"
    for e in events:
        key = (e["client_mac"], e["transaction_id"])
        f = flows.get(e["digest"])
        if f is None:
            problems.append("%s xid %#x: digest %r is no flow's" % (key[0], key[1], e["digest"]))
            continue
        m = first.get(key)
        if m is None:
            continue  # test_one_event_per_transaction reports it
        want = {(m["ip.src"], int(m["udp.srcport"])), (m["ip.dst"], int(m["udp.dstport"]))}
        got = {(f["local_ip"], f["local_port"]), (f["other_ip"], f["other_port"])}
        if got != want or f["ip_protocol"] != 17:
            problems.append("%s xid %#x: flow %s is %s, the first message (frame %s) is %s" % (
                key[0], key[1], e["digest"], sorted(got), m["frame.number"], sorted(want)))
        if f["interface"] != e["interface"]:
            problems.append("%s xid %#x: interface %r, its flow's %r" % (
                key[0], key[1], e["interface"], f["interface"]))
    # a flow event carries the time of the packet that caused it, never an earlier one
    for f in flows.values():
        if f["timestamp"] < f["first_seen_at"]:
            problems.append("flow %s: timestamp %d before its first_seen_at %d" % (
                f["digest"], f["timestamp"], f["first_seen_at"]))
    assert not problems, "\n".join(problems)
