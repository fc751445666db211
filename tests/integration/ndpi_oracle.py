"""Run Debian's ndpiReader on a capture and read its per-flow results.

ndpiReader -v 2 prints one line per flow:

    1  TCP 192.168.1.13:55523 <-> 178.62.197.130:443 [proto: 91.26/TLS.ntop]...
       [Hostname/SNI: www.ntop.org]...[JA3C: ...][JA3S: ...][URL: ...]
       [User-Agent: ...][Risk: ** ... **][Risk Score: 50]...

Its detection loop is the one sonde-agent follows (dpi.c): every packet to
nDPI until an application is named and no extra dissection remains, or until
the packet limit; then a guess. -T/-U set the limits ("more than N packets"),
so -T 31 -U 31 gives up at the 32nd packet, like --dpi-packets 32.
"""
import re
import subprocess

from util import norm_ip

FLOW_RE = re.compile(r"^\s+\d+\s+(\S+)\s+(\S+)\s+<->\s+(\S+)\s+(.*)$")
PROTO_NUM = {"TCP": 6, "UDP": 17, "ICMP": 1, "ICMPV6": 58, "IGMP": 2}
FIELDS = {
    "host": "Hostname/SNI",
    "ja3c": "JA3C",
    "ja3s": "JA3S",
    "url": "URL",
    "user_agent": "User-Agent",
    "risk_score": "Risk Score",
}


def split_ep(s):
    """'1.2.3.4:80' or '[fe80::1]:80' or a bare address -> (addr, port)."""
    m = re.match(r"^\[(.*)\]:(\d+)$", s)
    if m:
        return norm_ip(m.group(1)), int(m.group(2))
    if s.count(":") == 1:
        a, p = s.split(":")
        return norm_ip(a), int(p)
    if s.count(":") > 1:  # IPv6 address:port without brackets
        a, _, p = s.rpartition(":")
        try:
            return norm_ip(a), int(p)
        except ValueError:
            return norm_ip(s), 0
    return norm_ip(s), 0


def bracket_fields(rest):
    """The [name: value] groups of a flow line, in order (values may hold ']'
    only where nDPI prints them; URLs and agents do not)."""
    out = {}
    for m in re.finditer(r"\[([A-Za-z0-9/ _.-]+?): ([^\]]*)\]", rest):
        out.setdefault(m.group(1), m.group(2))
    return out


def run(pcap, max_packets=32, timeout=300):
    """Flows of pcap as ndpiReader sees them: a list of dicts with proto, a, b
    (endpoints), proto_id ("91.26"), proto_name, and the FIELDS it printed."""
    limit = str(max_packets - 1)
    p = subprocess.run(["ndpiReader", "-q", "-i", pcap, "-T", limit, "-U", limit, "-v", "2"],
                       capture_output=True, text=True, errors="replace", timeout=timeout)
    flows = []
    for line in p.stdout.splitlines():
        m = FLOW_RE.match(line)
        if not m or m.group(1).upper() not in PROTO_NUM and not m.group(1).isdigit():
            continue
        proto = PROTO_NUM.get(m.group(1).upper())
        if proto is None:
            proto = int(m.group(1))
        f = bracket_fields(m.group(4))
        pm = re.match(r"^([\d.]+)/(.*)$", f.get("proto", ""))
        if not pm:
            continue
        flow = {"proto": proto, "a": split_ep(m.group(2)), "b": split_ep(m.group(3)),
                "vlan": int(f.get("VLAN", "0") or 0), "proto_id": pm.group(1),
                "proto_name": pm.group(2), "line": line.strip()}
        for k, label in FIELDS.items():
            flow[k] = f.get(label, "")
        flow["risk_score"] = int(flow["risk_score"] or 0)
        # ndpiReader appends its own cipher verdict to the JA3S: "<md5> (WEAK)"
        flow["ja3s"] = flow["ja3s"].split(" ")[0]
        flows.append(flow)
    return flows
