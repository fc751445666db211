"""sonde-agent against tshark on every capture of the nDPI 4.2 corpus.

For each file in ../shared/corpus/ndpi-4.2 (the module skips, saying so, when
the corpus is absent): one agent run (--threads 1) and one tshark pass
(per-packet layers plus its tcp/udp conversation tables, see util.py). The
per-5-tuple, per-direction packet and byte counts of the agent's TCP and UDP
flows must equal tshark's.

Counters are compared per 5-tuple, summed over flows: the agent splits a
5-tuple into several flows on idle timeouts (and per VLAN), tshark into
several streams on TCP port reuse; neither changes the sums.

tshark and the agent legitimately differ in a few ways. Each is a named rule
that matches specific packets for a written reason; anything no rule explains
fails the test and is printed as a mismatch table.

Rules applied while deriving the expected flows from tshark's decode
(util.ExpectedFlows):

* tunnel_outer_not_a_flow: tshark lists the outer UDP conversation of a
  VXLAN/GTP-U packet as well as the inner one; the agent removes the tunnel
  and reports only the inner flow (the outer one is in flow.tunnel).
* tunnel_not_decapsulated_by_agent: tshark decodes an inner TCP/UDP header
  inside an encapsulation the agent does not remove; the agent counts the
  outer flow.
* ip_fragment_later: tshark (with reassembly off, so that it reports each
  frame) cannot give a later fragment ports; the agent counts it to the
  flow of its first fragment (docs/agent.md).
* ip_fragment_orphan: a later fragment whose first fragment was not seen (or
  was itself discarded): the agent counts it to the port-less flow of the two
  hosts.
* tshark_skips_broken_transport_header: tshark stops before its conversation
  tap when it cannot dissect the TCP/UDP header itself; the agent may still
  account the packet (or discard it, see below).
  (tshark leaves the TCP/UDP header quoted inside ICMP errors out of its
  tables, as the agent does: that is in the oracle, not a rule.)

Rules applied when comparing with the agent:

* agent_discarded_malformed: a packet tshark decodes despite an error it
  flags itself (IPv4 total length beyond the frame, bogus header length,
  impossible UDP length, broken GTP-U header, ...) is discarded by the agent
  with the matching reason in interface_stats.discarded_reasons. The missing
  packets of a flow must be exactly a subset of its flagged packets, and no
  more packets may be explained this way than the agent says it discarded.
* unsupported_link_type: a link type the agent does not decode must be
  refused at open with a message and exit 1 (none in the corpus today:
  every link type there is one the agent supports).
* truncated_file: a file cut in the middle of a packet (tshark says so) is
  read up to the damage and the agent exits 1 (docs/agent.md); otherwise it
  must exit 0.

Also, on every file: exit status as above, no sanitizer report (run_agent),
every flow has exactly one flow and one flow_purge, interface_stats.raw equals
tshark's packet count, and discarded equals the sum of its reasons.
"""

import collections
import os
import struct

import pytest

import util

if not os.path.isdir(util.CORPUS_DIR):
    pytest.skip("corpus not found at %s (it lives beside the repository, not in it)" % util.CORPUS_DIR,
                allow_module_level=True)

CORPUS_FILES = sorted(f for f in os.listdir(util.CORPUS_DIR)
                      if os.path.isfile(os.path.join(util.CORPUS_DIR, f)))

# Link types the agent decodes (docs/agent.md, decode.h). Others must be
# refused with a message when the source is opened.
SUPPORTED_DLT = {0, 1, 9, 12, 14, 50, 51, 101, 104, 108, 113, 228, 229, 276}


def link_type(path):
    """DLT of a pcap file, or of the first interface of a pcapng file."""
    with open(path, "rb") as f:
        head = f.read(4096)
    # The upper bits of a pcap link type field carry FCS information
    # (libpcap's LT_LINKTYPE masks them off).
    if head[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        return struct.unpack("<I", head[20:24])[0] & 0x03FFFFFF
    if head[:4] in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        return struct.unpack(">I", head[20:24])[0] & 0x03FFFFFF
    if head[:4] == b"\x0a\x0d\x0d\x0a":
        e = "<" if head[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        off = 0
        while off + 12 <= len(head):
            btype, blen = struct.unpack(e + "II", head[off:off + 8])
            if btype == 1:
                return struct.unpack(e + "H", head[off + 8:off + 10])[0]
            if blen < 12:
                break
            off += blen
    return None


# What tshark itself flags on a packet the agent discards, by the agent's
# discard reason (decode.h). Matched against tshark's expert messages and the
# decoded layers.
def _gtp_without_payload(p):
    names = p.names()
    return any(names[i] == "udp" and names[i + 1] == "gtp" and "ip" not in names[i + 2:]
               and "ipv6" not in names[i + 2:] for i in range(len(names) - 1))


DISCARD_PREDICATES = {
    # Not here on purpose: a total length of 0 that tshark takes for TCP
    # segmentation offload ("reported as 0, presumed to be because of TSO").
    # Such frames are real traffic captured on the sending host, not damage.
    "ip4_len": lambda p: "IPv4 total length exceeds packet length" in p.expert
    or "Bogus IP length" in p.expert,
    "ip4": lambda p: "Bogus IP header length" in p.expert or "Bogus IP version" in p.expert
    or "option goes past end of options" in p.expert or "too-short option length" in p.expert
    or "Bogus IPv4 option length" in p.expert,
    "ip6_len": lambda p: "IPv6 payload length exceeds framing" in p.expert,
    "ip6_ext": lambda p: "Malformed Packet" in p.expert,
    "tcp": lambda p: "Bogus TCP header length" in p.expert or util.transport_header_broken(p)
    or "option goes past end of options" in p.expert or "too-short option length" in p.expert,
    "udp": lambda p: "Bad length value" in p.expert or "Bogus UDP length" in p.expert,
    "gtpu": _gtp_without_payload,
}


def discard_reasons_of(p):
    return [r for r, pred in DISCARD_PREDICATES.items() if pred(p)]


def subset_with(cands, count, nbytes):
    """A sub-list of cands (each (len, reasons)) with exactly count items
    summing to nbytes, or None. Small inputs only (a flow's flagged packets)."""
    if count == 0:
        return [] if nbytes == 0 else None
    if count > len(cands):
        return None
    if count == len(cands):
        return list(cands) if sum(c[0] for c in cands) == nbytes else None
    if len(cands) > 200:
        return None
    # DP over (items used, bytes) -> chosen indices.
    reach = {(0, 0): []}
    for i, (ln, _) in enumerate(cands):
        new = {}
        for (c, b), chosen in reach.items():
            if c < count and b + ln <= nbytes and (c + 1, b + ln) not in reach:
                new[(c + 1, b + ln)] = chosen + [i]
        for k, v in new.items():
            reach.setdefault(k, v)
    chosen = reach.get((count, nbytes))
    return None if chosen is None else [cands[i] for i in chosen]


def explain_discards(exp, diffs, agent_reasons):
    """Apply agent_discarded_malformed. Returns (unexplained diffs, packets
    explained by reason)."""
    used = collections.Counter()
    left = []
    for k, e, g in diffs:
        g = g or [0, 0, 0, 0]
        e = e or [0, 0, 0, 0]
        ok = True
        chosen_all = []
        for d in (0, 1):
            dp, db = e[2 * d] - g[2 * d], e[2 * d + 1] - g[2 * d + 1]
            if dp == 0 and db == 0:
                continue
            if dp < 0 or db < 0:
                ok = False
                break
            cands = []
            for direction, p in exp.packets.get(k, ()):
                if direction != d:
                    continue
                rs = [r for r in discard_reasons_of(p) if agent_reasons.get(r)]
                if rs:
                    cands.append((p.len, rs))
            chosen = subset_with(cands, dp, db)
            if chosen is None:
                ok = False
                break
            chosen_all += chosen
        if ok:
            for _, rs in chosen_all:
                used[rs[0]] += 1
        else:
            left.append((k, e, g))
    return left, used


@pytest.fixture(scope="module")
def outdir(tmp_path_factory):
    return tmp_path_factory.mktemp("corpus")


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_file(agent, tshark, outdir, name):
    path = os.path.join(util.CORPUS_DIR, name)
    dlt = link_type(path)
    packets, conv_tables, tshark_err = util.tshark_analyse(path)
    truncated = "cut short in the middle of a packet" in tshark_err or "appears to be damaged" in tshark_err

    if dlt not in SUPPORTED_DLT:
        # Rule unsupported_link_type: refused at open with a message, no flows.
        r = util.run_agent(["-r", path, "--threads", "1"], tmp_path=outdir, expect_rc=1)
        assert path in r.stderr and "link" in r.stderr.lower(), r.stderr
        assert not r.of_type("flow_purge")
        return

    r = util.run_agent(["-r", path, "--threads", "1"], tmp_path=outdir, expect_rc=1 if truncated else 0)
    if truncated:
        assert path in r.stderr, "truncated file not reported: %r" % r.stderr

    # The oracle must reproduce tshark's own conversation tables.
    raw_conv, _ = util.tshark_conversations(packets)
    problems = util.check_oracle(raw_conv, conv_tables)
    assert not problems, "oracle disagrees with tshark's conversation table:\n" + "\n".join(problems[:20])

    joined = r.flows()  # exactly one flow and one flow_purge per digest
    st = r.final_interface_stats()
    assert path in st, "no interface_stats for %s" % path
    s = st[path]
    assert int(s["raw"]) == len(packets), "raw %s, tshark read %d packets" % (s["raw"], len(packets))
    reasons = {c["name"]: int(c["value"]) for c in s.get("discarded_reasons", [])}
    assert int(s.get("discarded", 0)) == sum(reasons.values()), s

    # A first fragment the agent discards does not own its later fragments:
    # they become orphans (rule ip_fragment_orphan).
    exp = util.ExpectedFlows(packets, no_fragment_owner=lambda p: any(
        reasons.get(r) for r in discard_reasons_of(p)))
    got, _ = aggregate_with_portless(joined)
    diffs = util.compare_counters(exp.counters, got)
    left, used = explain_discards(exp, diffs, reasons)
    explained_by_discard = sum(used.values())
    assert explained_by_discard <= int(s.get("discarded", 0)), \
        "%d packets explained as discarded, agent discarded %s" % (explained_by_discard, s.get("discarded"))

    summary = dict(exp.rules)
    if used:
        summary["agent_discarded_malformed"] = dict(used)
    print("%s: %d packets, %d tshark conversations, %d agent flows; rules %r" % (
        name, len(packets), len(raw_conv), len(joined), summary))
    unexplained = {k: v for k, v in exp.rules.items() if k.startswith("unexplained")}
    assert not unexplained, "packets where tshark's tables and the expected flows differ for no " \
        "known reason: %r (frames %r)" % (unexplained, {k: exp.rule_packets[k][:10] for k in unexplained})
    assert not left, "%s: %d conversations differ (agent discarded %r):\n%s" % (
        name, len(left), reasons, util.format_diffs(left))


def aggregate_with_portless(joined):
    """Agent TCP/UDP flows by 5-tuple; a port-less flow (orphan fragments)
    keys with ports 0, as ExpectedFlows does."""
    return util.aggregate_agent(joined, protos=(6, 17))
