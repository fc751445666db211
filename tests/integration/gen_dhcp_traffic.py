#!/usr/bin/python3
"""Make a capture of real DHCP traffic between two network namespaces.

Two namespaces made here (their names carry our pid) are joined by a veth
pair, with IPv6 off so the link is quiet. In the server namespace ``dnsmasq``
is the DHCP server (DNS off, 10.77.0.1/24 on its veth, range
10.77.0.100-10.77.0.150, lease 600 s, domain lan.test, authoritative, no ping
check) and tcpdump captures its veth; the client namespace's veth has a
fixed MAC. Then, from the client namespace:

1. ``busybox udhcpc`` gets a lease (DISCOVER, OFFER, REQUEST, ACK), sending a
   host name, a vendor class and option 42 on top of its default parameter
   request list; its script puts the address on the veth and notes what
   udhcpc was told;
2. ``udhcpc -B -R`` does it again (broadcast replies) and releases the lease
   on exit (a RELEASE, from the leased address to the server);
3. a REQUEST made with scapy, from another MAC, for an address outside the
   range (INIT-REBOOT: no server identifier): dnsmasq answers NAK.

The summary records what was configured and what the capture holds as
tshark reads it back (every DHCP message, the parameter request list udhcpc
actually sent, the transaction ids), so a test compares the agent with both.
dnsmasq and tcpdump are stopped and the namespaces deleted in a ``finally``.

Use from Python: ``generate(outdir)`` returns the summary dict. From the
shell: ``/usr/bin/python3 gen_dhcp_traffic.py OUTDIR`` writes OUTDIR/dhcp.pcap
and OUTDIR/dhcp.json. Needs root, iproute2, dnsmasq, busybox, tcpdump,
tshark and scapy.
"""

import collections
import json
import os
import random
import signal
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gen_traffic import Procs, Tcpdump, TrafficError, run  # noqa: E402

PY = "/usr/bin/python3"

SERVER_IP = "10.77.0.1"
PREFIX = 24
RANGE = ("10.77.0.100", "10.77.0.150")
LEASE_TIME = 600
DOMAIN = "lan.test"
CLIENT_MAC = "02:00:00:77:00:10"
HOSTNAME = "sonde-client"
VENDOR_CLASS = "sonde-vendor-1.0"
EXTRA_OPTION = 42  # -O 42: NTP servers, asked for on top of udhcpc's defaults
NAK_MAC = "02:00:00:77:00:20"
NAK_HOSTNAME = "nak-client"
NAK_REQUESTED_IP = "10.77.9.9"
NAK_PARAMS = [1, 3, 6, 15]

TOOLS = ("ip", "tcpdump", "tshark", "dnsmasq", "busybox")

MESSAGE_TYPES = {1: "DISCOVER", 2: "OFFER", 3: "REQUEST", 4: "DECLINE", 5: "ACK", 6: "NAK",
                 7: "RELEASE", 8: "INFORM"}

# The fields tshark gives per DHCP message, the oracle of the tests.
TSHARK_FIELDS = [
    "frame.number", "frame.time_epoch", "eth.src", "ip.src", "ip.dst", "udp.srcport", "udp.dstport",
    "dhcp.type", "dhcp.hw.type", "dhcp.hw.len", "dhcp.hops", "dhcp.id", "dhcp.secs", "dhcp.flags",
    "dhcp.ip.client", "dhcp.ip.your", "dhcp.ip.server", "dhcp.ip.relay", "dhcp.hw.mac_addr",
    "dhcp.option.dhcp", "dhcp.option.hostname", "dhcp.option.vendor_class_id",
    "dhcp.option.request_list_item", "dhcp.option.requested_ip_address",
    "dhcp.option.dhcp_server_id", "dhcp.option.ip_address_lease_time",
    "dhcp.option.domain_name", "dhcp.option.type", "dhcp.option.value",
]

# udhcpc runs this at each state change ($1: deconfig, bound, renew, nak,
# leasefail) with the lease in its environment: note it, and put the
# address on the interface (RELEASE is sent from it, over a UDP socket).
UDHCPC_SCRIPT = r"""#!/bin/sh
{ printf '%s' "$1"
  for v in interface ip mask subnet serverid lease domain router dns hostname; do
      eval "printf '\t%s=%s' $v \"\$$v\""
  done
  printf '\n'; } >> "__LOG__"
case "$1" in
    deconfig) __IP__ addr flush dev "$interface" ;;
    bound|renew) __IP__ addr replace "$ip/${mask:-24}" dev "$interface" ;;
esac
exit 0
"""

# Run in the client namespace: an INIT-REBOOT REQUEST (requested address,
# no server identifier) for an address of another network; an authoritative
# server must answer NAK. Prints the reply's message type (0: none).
NAK_SCRIPT = r"""
import sys
from scapy.all import BOOTP, DHCP, IP, UDP, Ether, conf, srp1
conf.checkIPaddr = False
iface, mac, xid, ip, host = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
params = [int(x) for x in sys.argv[6].split(",")]
chaddr = bytes.fromhex(mac.replace(":", "")) + bytes(10)
p = (Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
     / UDP(sport=68, dport=67)
     / BOOTP(op=1, xid=xid, flags=0x8000, chaddr=chaddr)
     / DHCP(options=[("message-type", "request"), ("requested_addr", ip), ("hostname", host),
                     ("param_req_list", params), "end"]))
r = srp1(p, iface=iface, timeout=5, verbose=0)
mt = 0
if r is not None and DHCP in r:
    for o in r[DHCP].options:
        if isinstance(o, tuple) and o[0] == "message-type":
            mt = o[1]
print("reply", mt, flush=True)
"""


def tools_missing():
    """The commands and modules this needs that are not there."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if "busybox" not in missing:
        p = subprocess.run(["busybox", "--list"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if b"udhcpc" not in p.stdout.split():
            missing.append("busybox udhcpc")
    p = subprocess.run([PY, "-c", "import scapy.all"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if p.returncode != 0:
        missing.append("python3-scapy")
    return missing


def tshark_dhcp(pcap):
    """One dict per DHCP message tshark decodes, in capture order, of the
    TSHARK_FIELDS; a field that occurs more than once is joined with '|'
    (read it with values() or first())."""
    cmd = ["tshark", "-n", "-r", pcap, "-Y", "dhcp", "-T", "fields", "-E", "separator=\t",
           "-E", "aggregator=|", "-E", "occurrence=a"]
    for f in TSHARK_FIELDS:
        cmd += ["-e", f]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    if p.returncode != 0:
        raise TrafficError("tshark: %s" % p.stderr.decode(errors="replace"))
    msgs = []
    for line in p.stdout.decode(errors="replace").splitlines():
        cols = line.split("\t")
        cols += [""] * (len(TSHARK_FIELDS) - len(cols))
        msgs.append(dict(zip(TSHARK_FIELDS, cols)))
    return msgs


def values(m, field):
    return [v for v in m[field].split("|") if v != ""]


def first(m, field):
    """The first occurrence: dhcp.hw.type and dhcp.hw.mac_addr occur again
    inside a client identifier (option 61), after the header's."""
    v = values(m, field)
    return v[0] if v else ""


def chaddr(m):
    return first(m, "dhcp.hw.mac_addr").lower()


def xid(m):
    return int(m["dhcp.id"], 16)


def message_type(m):
    return int(first(m, "dhcp.option.dhcp") or 0)


def option_hex(m, code):
    """The value of option `code` as lower-case hex, "" if absent. tshark
    lists each option's type and its value in order; only End and Pad,
    which come last, have no value."""
    for t, v in zip(values(m, "dhcp.option.type"), values(m, "dhcp.option.value")):
        if int(t) == code:
            return v.replace(":", "").lower()
    return ""


def fingerprint(m):
    """Option 55 as the agent writes it: decimal codes, comma separated."""
    return ",".join(values(m, "dhcp.option.request_list_item"))


def transactions(msgs):
    """tshark's messages grouped by (client MAC, xid), in order of first
    message: {(mac, xid): [msg, ...]}."""
    out = collections.OrderedDict()
    for m in msgs:
        out.setdefault((chaddr(m), xid(m)), []).append(m)
    return out


def type_names(ms):
    return [MESSAGE_TYPES.get(message_type(m), "?") for m in ms]


def read_script_log(path):
    """udhcpc's script calls: [(event, {var: value})]."""
    out = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                out.append((parts[0], dict(p.split("=", 1) for p in parts[1:] if "=" in p)))
    return out


def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def stop_tcpdump(t):
    stats = t.stop()
    if t.proc.stderr:
        t.proc.stderr.close()
    return stats


def sh(cmd, timeout=20):
    return run(cmd, timeout=timeout)


def generate(outdir):
    """Make the traffic and return a summary. Raises TrafficError when a
    client or the server fails (the capture would not show what we claim)."""
    outdir = os.path.abspath(outdir)
    os.makedirs(outdir, exist_ok=True)
    ip_cmd = shutil.which("ip")
    tag = "%d%02d" % (os.getpid() % 100000, random.randrange(100))
    ns_s, ns_c = "sonde-dhcp-%s-s" % tag, "sonde-dhcp-%s-c" % tag
    veth_s, veth_c = "sd%ss" % tag, "sd%sc" % tag
    pcap = os.path.join(outdir, "dhcp.pcap")
    script_log = os.path.join(outdir, "udhcpc-script.log")
    script = os.path.join(outdir, "udhcpc-script.sh")
    with open(script, "w") as f:
        f.write(UDHCPC_SCRIPT.replace("__LOG__", script_log).replace("__IP__", ip_cmd))
    os.chmod(script, 0o755)
    leases = os.path.join(outdir, "dnsmasq.leases")
    dnsmasq_log = os.path.join(outdir, "dnsmasq.log")
    for p in (script_log, leases, dnsmasq_log, pcap):
        if os.path.exists(p):
            os.unlink(p)
    nsx = lambda ns: ["ip", "netns", "exec", ns]  # noqa: E731

    summary = {
        "pcap": pcap, "netns": [ns_s, ns_c], "server_veth": veth_s, "client_veth": veth_c,
        "server_ip": SERVER_IP, "server_id": SERVER_IP, "range": list(RANGE), "lease_time": LEASE_TIME,
        "domain_name": DOMAIN, "client_mac": CLIENT_MAC, "hostname": HOSTNAME,
        "vendor_class": VENDOR_CLASS, "extra_option": EXTRA_OPTION,
        "nak": {"mac": NAK_MAC, "hostname": NAK_HOSTNAME, "requested_ip": NAK_REQUESTED_IP,
                "params": NAK_PARAMS},
    }
    created = []
    procs = Procs()
    tcpdump = None
    try:
        for ns in (ns_s, ns_c):
            sh(["ip", "netns", "add", ns])
            created.append(ns)
        sh(["ip", "link", "add", veth_s, "netns", ns_s, "type", "veth", "peer", "name", veth_c,
            "netns", ns_c])
        for ns, dev in ((ns_s, veth_s), (ns_c, veth_c)):
            sh(nsx(ns) + ["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"])
            sh(nsx(ns) + ["sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1"])
            sh(nsx(ns) + ["sysctl", "-q", "-w", "net.ipv6.conf.%s.disable_ipv6=1" % dev])
        sh(["ip", "-n", ns_c, "link", "set", "dev", veth_c, "address", CLIENT_MAC])
        sh(["ip", "-n", ns_s, "addr", "add", "%s/%d" % (SERVER_IP, PREFIX), "dev", veth_s])
        for ns, dev in ((ns_s, veth_s), (ns_c, veth_c)):
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
            sh(["ip", "-n", ns, "link", "set", dev, "up"])
        summary["server_mac"] = json.loads(sh(["ip", "-n", ns_s, "-j", "link", "show", veth_s])
                                           .stdout)[0]["address"]

        tcpdump = Tcpdump(veth_s, pcap, None, netns=ns_s)
        procs.start("dnsmasq", nsx(ns_s) + [
            "dnsmasq", "--no-daemon", "--port=0", "--interface=" + veth_s, "--bind-interfaces",
            "--dhcp-range=%s,%s,255.255.255.0,%d" % (RANGE[0], RANGE[1], LEASE_TIME),
            "--dhcp-option=option:domain-name," + DOMAIN, "--dhcp-authoritative", "--no-ping",
            "--dhcp-leasefile=" + leases, "--conf-file=/dev/null", "--log-dhcp",
            "--log-facility=" + dnsmasq_log, "--pid-file=" + os.path.join(outdir, "dnsmasq.pid")])
        deadline = time.monotonic() + 15
        while True:
            procs.check_alive()
            if "DHCP, IP range" in read_text(dnsmasq_log):
                break
            if time.monotonic() > deadline:
                raise TrafficError("dnsmasq did not start its DHCP server")
            time.sleep(0.05)
        time.sleep(0.2)

        udhcpc = nsx(ns_c) + ["busybox", "udhcpc", "-i", veth_c, "-f", "-n", "-t", "5", "-T", "1",
                              "-x", "hostname:" + HOSTNAME, "-V", VENDOR_CLASS,
                              "-O", str(EXTRA_OPTION), "-s", script]
        runs = []
        # 1: -q, exit once bound (no release); the address stays on the veth
        p = run(udhcpc + ["-q"], timeout=30)
        runs.append({"args": ["-q"], "output": (p.stdout + p.stderr).decode(errors="replace")})
        summary["leasefile"] = read_text(leases)  # before the release empties it
        # 2: broadcast replies (-B); stopped by SIGTERM once bound, -R
        # makes it release the lease on its way out (with -q it would not:
        # udhcpc only releases from the bound state)
        out_path = os.path.join(outdir, "udhcpc-2.out")
        with open(out_path, "wb") as out:
            client = subprocess.Popen(udhcpc + ["-B", "-R"], stdin=subprocess.DEVNULL, stdout=out,
                                      stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while len([e for e, _ in read_script_log(script_log) if e == "bound"]) < 2:
                if client.poll() is not None or time.monotonic() > deadline:
                    raise TrafficError("udhcpc -B -R got no lease: %s" % read_text(out_path))
                time.sleep(0.05)
            time.sleep(0.2)
            client.send_signal(signal.SIGTERM)
            client.wait(timeout=10)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait(timeout=5)
        runs.append({"args": ["-B", "-R"], "output": read_text(out_path)})
        if "unicasting a release" not in runs[1]["output"]:
            raise TrafficError("udhcpc -R did not release: %s" % runs[1]["output"])
        calls = read_script_log(script_log)
        bound = [v for e, v in calls if e == "bound"]
        if len(bound) != 2:
            raise TrafficError("udhcpc: expected two leases, script saw %r" % calls)
        for r, b in zip(runs, bound):
            r["lease"] = b
        summary["udhcpc"] = runs
        summary["assigned_ip"] = bound[0]["ip"]
        if bound[1]["ip"] != bound[0]["ip"]:
            raise TrafficError("dnsmasq gave a second address: %r" % bound)
        # dnsmasq's lease file: "expiry mac ip hostname client-id"
        lease_lines = [ln.split() for ln in summary["leasefile"].splitlines()]
        if [ln[1:4] for ln in lease_lines] != [[CLIENT_MAC, bound[0]["ip"], HOSTNAME]]:
            raise TrafficError("dnsmasq's lease file: %r" % summary["leasefile"])
        time.sleep(0.3)

        nak_xid = random.randrange(1, 1 << 32)
        p = run(nsx(ns_c) + [PY, "-c", NAK_SCRIPT, veth_c, NAK_MAC, str(nak_xid), NAK_REQUESTED_IP,
                             NAK_HOSTNAME, ",".join(str(x) for x in NAK_PARAMS)], timeout=30)
        reply = p.stdout.decode().split()
        if reply != ["reply", "6"]:
            raise TrafficError("scapy REQUEST for %s: expected a NAK, got %r %s" % (
                NAK_REQUESTED_IP, reply, p.stderr.decode(errors="replace")[-2000:]))
        summary["nak"]["xid"] = nak_xid
        time.sleep(0.3)
        procs.check_alive()
        summary["tcpdump"] = stop_tcpdump(tcpdump)
        tcpdump = None
    finally:
        if tcpdump is not None:
            stop_tcpdump(tcpdump)
        procs.stop()
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=20)
    summary["dnsmasq_log"] = read_text(dnsmasq_log)[-20000:]
    if not os.path.exists(pcap) or os.path.getsize(pcap) <= 24:
        raise TrafficError("capture is empty: %s" % pcap)

    # What the capture holds, as tshark reads it.
    msgs = tshark_dhcp(pcap)
    tx = transactions(msgs)
    summary["messages"] = [{"frame": int(m["frame.number"]), "mac": chaddr(m), "xid": xid(m),
                            "type": type_names([m])[0]} for m in msgs]
    summary["transactions"] = [{"mac": mac, "xid": x, "types": type_names(ms)}
                               for (mac, x), ms in tx.items()]
    sent = [m for m in msgs if chaddr(m) == CLIENT_MAC and fingerprint(m)]
    if not sent:
        raise TrafficError("no parameter request list from udhcpc in the capture")
    summary["fingerprint"] = fingerprint(sent[0])
    summary["client_id"] = option_hex(sent[0], 61)
    # udhcpc resends a DISCOVER or REQUEST when the answer is slow: compare
    # without repeats
    want = [(CLIENT_MAC, ["DISCOVER", "OFFER", "REQUEST", "ACK"]),
            (CLIENT_MAC, ["DISCOVER", "OFFER", "REQUEST", "ACK"]),
            (CLIENT_MAC, ["RELEASE"]),
            (NAK_MAC, ["REQUEST", "NAK"])]
    got = [(t["mac"], [n for i, n in enumerate(t["types"]) if i == 0 or t["types"][i - 1] != n])
           for t in summary["transactions"]]
    if got != want:
        raise TrafficError("the capture does not hold the exchanges made: %r" % got)
    summary["xids"] = [t["xid"] for t in summary["transactions"]]
    if summary["xids"][3] != summary["nak"]["xid"]:
        raise TrafficError("NAK transaction id %r, sent %r" % (summary["xids"][3], summary["nak"]["xid"]))
    return summary


def main(argv):
    if len(argv) != 2:
        print("usage: gen_dhcp_traffic.py OUTDIR", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("gen_dhcp_traffic: needs root (network namespaces)", file=sys.stderr)
        return 1
    missing = tools_missing()
    if missing:
        print("gen_dhcp_traffic: missing %s" % ", ".join(missing), file=sys.stderr)
        return 1
    s = generate(argv[1])
    with open(os.path.join(argv[1], "dhcp.json"), "w") as f:
        json.dump(s, f, indent=1)
    print(s["pcap"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
