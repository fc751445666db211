"""Application detection against Debian's ndpiReader (the same nDPI 4.2).

For every capture in ../shared/corpus/ndpi-4.2, every flow ndpiReader
reports must be found among the agent's flow events (same protocol, VLAN
and endpoints), with the same nDPI protocol/application ids, host name or
SNI, JA3C, JA3S, URL, user agent and risk score. Both give up at the 32nd
packet (ndpiReader -T 31 -U 31, the agent's default --dpi-packets 32).

The two differ in a few ways that are not detection. Each is a named rule
that matches specific flows for a written reason; anything no rule explains
fails the test, and the whole mismatch table is printed.

* gtp_decapsulated: ndpiReader (without -t) reports a GTP-U tunnel as one
  UDP flow on port 2152; the agent removes the tunnel and reports the inner
  flows (the tunnel is in flow.tunnel). So the outer flow has no match.
* qinq_inner_vlan: on a QinQ frame ndpiReader keeps the last (inner) VLAN
  tag as the flow's VLAN; the agent keys flows by the outermost tag
  (vlan_id) and reports the inner one as vlan_inner. The agent's flow is
  matched on its inner tag as well.
* user_agent_not_printed: nDPI's RTSP dissector fills the flow's user agent
  (it parses RTSP as HTTP-like text), but ndpiReader prints User-Agent only
  for HTTP and QUIC flows; the agent reports what nDPI holds.
* ssh_banner_as_host: ndpiReader prints an SSH flow's client banner in its
  Hostname/SNI column; nDPI itself leaves host_server_name empty for SSH,
  and the agent reports the banner as detection.ssh.client_banner. That is
  what is compared for SSH flows.
"""
import collections
import os

import pytest

import ndpi_oracle
from util import norm_ip, run_agent

CORPUS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "corpus", "ndpi-4.2")
FIELDS = ("proto_id", "host", "ja3c", "ja3s", "url", "user_agent", "risk_score")
GTP_U_PORT = 2152

pytestmark = pytest.mark.skipif(not os.path.isdir(CORPUS), reason="no corpus at %s" % CORPUS)


def corpus_files():
    if not os.path.isdir(CORPUS):
        return []
    return sorted(f for f in os.listdir(CORPUS) if f.endswith((".pcap", ".pcapng", ".cap")))


def agent_flows(events):
    """The agent's flow events in the oracle's shape."""
    out = []
    for e in events:
        if e["type"] != "flow":
            continue
        d = e.get("detection") or {}
        pid = str(d.get("detected_protocol", 0))
        if d.get("detected_application"):
            pid += ".%d" % d["detected_application"]
        ssl, http, ssh = d.get("ssl") or {}, d.get("http") or {}, d.get("ssh") or {}
        out.append({
            "proto": int(e["ip_protocol"]), "vlan": int(e.get("vlan_id", 0)),
            "vlan_inner": int(e.get("vlan_inner", 0)),
            "a": (norm_ip(e["local_ip"]), int(e.get("local_port", 0))),
            "b": (norm_ip(e["other_ip"]), int(e.get("other_port", 0))),
            "proto_id": pid, "name": d.get("name", ""),
            "host": d.get("host_server_name", ""),
            "ssh_client": ssh.get("client_banner", ""),
            "ja3c": ssl.get("client_ja3", ""), "ja3s": ssl.get("server_ja3", ""),
            "url": http.get("url", ""), "user_agent": http.get("user_agent", ""),
            "risk_score": int((d.get("risks") or {}).get("ndpi_risk_score", 0)),
        })
    return out


def key(f):
    ports = (f["proto"], f["vlan"]) if f["proto"] in (6, 17) else (f["proto"],)
    if f["proto"] in (6, 17):
        return ports + tuple(sorted([f["a"], f["b"]]))
    return ports + tuple(sorted([f["a"][0], f["b"][0]]))


def explain_missing(nf):
    if nf["proto"] == 17 and GTP_U_PORT in (nf["a"][1], nf["b"][1]) and "GTP" in nf["proto_name"]:
        return "gtp_decapsulated"
    return None


def compare_file(path, tmp_path):
    """(rows of unexplained mismatches, Counter of rules used, flows compared)."""
    oracle = ndpi_oracle.run(path)
    run = run_agent(["-r", path, "--threads", "1", "--events", "flow"], tmp_path, expect_rc=None)
    ours = collections.defaultdict(list)
    for f in agent_flows(run.events):
        ours[key(f)].append(f)
        if f["vlan_inner"]:
            inner = dict(f, vlan=f["vlan_inner"], qinq=True)
            ours[key(inner)].append(inner)
    rows, rules = [], collections.Counter()
    for nf in oracle:
        cands = ours.get(key(nf))
        if not cands:
            rule = explain_missing(nf)
            if rule:
                rules[rule] += 1
            else:
                rows.append((os.path.basename(path), "flow", nf["line"][:100], "(no flow)"))
            continue
        # several agent flows for one tuple (idle timeout splits): the best match
        def score(g):
            return sum(str(g[k]) == str(nf[k]) for k in FIELDS)
        g = max(cands, key=score)
        if g.get("qinq"):
            rules["qinq_inner_vlan"] += 1
        for k in FIELDS:
            want, got = nf[k], g[k]
            if k == "host" and nf["proto_name"].startswith("SSH") and g["ssh_client"] == want:
                rules["ssh_banner_as_host"] += 1
                continue
            if k == "user_agent" and want == "" and nf["proto_name"] == "RTSP":
                rules["user_agent_not_printed"] += 1
                continue
            if str(want) != str(got):
                rows.append((os.path.basename(path), k, "%s %s" % (nf["proto_name"], want), got))
    return rows, rules, len(oracle)


def test_dpi_agrees_with_ndpireader(tmp_path):
    files = corpus_files()
    assert files, "empty corpus"
    all_rows, rules, flows = [], collections.Counter(), 0
    for name in files:
        rows, r, n = compare_file(os.path.join(CORPUS, name), tmp_path)
        all_rows += rows
        rules.update(r)
        flows += n
    table = "\n".join("  %-40s %-10s ndpiReader=%-60.60s agent=%.60s" % (f, k, w, g)
                      for f, k, w, g in all_rows)
    print("\n%d ndpiReader flows in %d files; rules applied: %s; unexplained: %d\n%s"
          % (flows, len(files), dict(rules), len(all_rows), table))
    assert flows > 1000
    assert not all_rows, "detection differs from ndpiReader:\n" + table
