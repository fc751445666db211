#!/usr/bin/python3
"""grpc_bench.py - the transport part of `make bench` (see bench/README.md).

1. Events/s from one agent to one collector over mutual TLS on loopback,
   sustained --seconds: bench/grpc_load (the agent's push code, flow events
   at full speed, waiting on acknowledgements) into sonde-collector writing
   a protobuf file with its default commit (flush + fdatasync every 50 ms).
   CPU seconds per million events on each side, from the kernel.
2. The same stream into a python3-grpcio receiver (bench/py_receiver.py),
   for reference.
3. Encode, decode and check time and size per event type over the events
   of a real capture (bench/pbbench), and wire bytes against the packets
   they describe.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PPS_TARGET = 1_000_000     # flow events/s over TLS, one agent, one collector
ENCODE_TARGET_NS = 150     # encoding a flow event
GRPC_PREFIX = 5            # gRPC message prefix on the wire


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def cpu_times():
    """The machine's CPU time so far: (steal, total), in ticks. A virtual
    machine whose host runs other guests loses time to them (steal); a run
    that lost much measured the neighbours as much as sonde."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return v[7], sum(v)


def make_pki(out):
    pki = os.path.join(out, "pki")
    shutil.rmtree(pki, ignore_errors=True)
    certs = os.path.join(ROOT, "scripts", "sonde-certs")
    for args in (["ca", pki], ["issue", pki, "collector", "collector", "--san", "IP:127.0.0.1"],
                 ["issue", pki, "agent", "bench-agent"]):
        subprocess.run(["sh", certs] + args, check=True, stdout=subprocess.DEVNULL)
    return pki


def wait_line(proc, pattern, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        line = proc.stderr.readline() if proc.stderr else ""
        m = re.search(pattern, line)
        if m:
            return m
        if proc.poll() is not None:
            break
    raise SystemExit("bench: %s did not start" % proc.args[0])


def run_load(build, url, seconds, pki):
    cmd = [os.path.join(build, "grpc_load"), url, str(seconds),
           os.path.join(pki, "bench-agent.crt"), os.path.join(pki, "bench-agent.key"),
           os.path.join(pki, "ca.crt")]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    if r.returncode != 0:
        raise SystemExit("bench: grpc_load failed: " + r.stderr[-2000:])
    return json.loads(r.stdout)


def collector_run(build, out, seconds, pki):
    pb = os.path.join(out, "collector.pb")
    if os.path.exists(pb):
        os.unlink(pb)
    c = subprocess.Popen([os.path.join(build, "sonde-collector"), "-l", "127.0.0.1:0",
                          "--tls-cert", os.path.join(pki, "collector.crt"),
                          "--tls-key", os.path.join(pki, "collector.key"),
                          "--tls-ca", os.path.join(pki, "ca.crt"), "-o", "pb:" + pb],
                         stderr=subprocess.PIPE, text=True)
    try:
        port = wait_line(c, r"port (\d+)").group(1)
        t0 = cpu_ticks(c.pid)
        s0 = cpu_times()
        load = run_load(build, "grpcs://127.0.0.1:" + port, seconds, pki)
        ticks = cpu_ticks(c.pid) - t0
        s1 = cpu_times()
    finally:
        c.send_signal(signal.SIGTERM)
        c.wait(timeout=30)
    size = os.path.getsize(pb)
    os.unlink(pb)
    hz = os.sysconf("SC_CLK_TCK")
    load["collector_cpu_s"] = ticks / hz
    load["file_bytes"] = size
    load["steal_pct"] = 100.0 * (s1[0] - s0[0]) / max(1, s1[1] - s0[1])
    return load


def python_run(build, out, seconds, pki):
    pyproto = tempfile.mkdtemp(prefix="sonde-pyproto-")
    try:
        subprocess.run(["protoc", "--python_out=" + pyproto, "-I", os.path.join(ROOT, "proto"),
                        os.path.join(ROOT, "proto/sonde/v1/events.proto"),
                        os.path.join(ROOT, "proto/sonde/v1/d3events.proto")], check=True)
        port = "50599"
        p = subprocess.Popen(["/usr/bin/python3", os.path.join(ROOT, "bench", "py_receiver.py"),
                              pyproto, port, os.path.join(pki, "collector.crt"),
                              os.path.join(pki, "collector.key"), os.path.join(pki, "ca.crt")],
                             stdout=subprocess.PIPE, text=True)
        try:
            if p.stdout.readline().strip() != "ready":
                raise SystemExit("bench: the Python receiver did not start")
            t0 = cpu_ticks(p.pid)
            load = run_load(build, "grpcs://127.0.0.1:" + port, seconds, pki)
            load["collector_cpu_s"] = (cpu_ticks(p.pid) - t0) / os.sysconf("SC_CLK_TCK")
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)
        return load
    finally:
        shutil.rmtree(pyproto, ignore_errors=True)


def sizes(build, out, capture):
    """pbbench over every event of one real capture; wire bytes per event
    against the packet bytes of the capture."""
    sample = os.path.join(out, "sample.pb")
    subprocess.run([os.path.join(build, "sonde-agent"), "-r", capture, "--threads", "1",
                    "--events", "all", "-o", "pb:" + sample], check=True,
                   stderr=subprocess.DEVNULL)
    r = subprocess.run([os.path.join(build, "pbbench"), sample], capture_output=True, text=True,
                       check=True)
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    os.unlink(sample)
    cap = subprocess.run(["capinfos", "-T", "-r", "-c", "-d", capture], capture_output=True,
                         text=True, check=True).stdout.split()
    return rows, int(cap[1]), int(cap[2])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--py-seconds", type=float, default=10)
    ap.add_argument("--capture", required=True, help="a real capture for the size table")
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    pki = make_pki(a.out)

    c = collector_run(a.build, a.out, a.seconds, pki)
    py = python_run(a.build, a.out, a.py_seconds, pki)
    rows, packets, packet_bytes = sizes(a.build, a.out, a.capture)

    print()
    print("gRPC push, one agent to one receiver, mutual TLS on loopback, flow events of %d bytes:"
          % c["event_bytes"])
    fmt = "%-38s %12s %14s %14s   %s"
    print(fmt % ("receiver", "events/s", "agent CPU/M", "recv CPU/M", "notes"))
    per_m = lambda s, n: "%.2f s" % (s * 1e6 / n)  # noqa: E731
    ok = c["events_per_s"] >= PPS_TARGET
    print(fmt % ("sonde-collector (pb file, fdatasync)", "{:,.0f}".format(c["events_per_s"]),
                 per_m(c["cpu_s"], c["events"]), per_m(c["collector_cpu_s"], c["events"]),
                 "%.0f s, CPU steal %.0f%%; target >= %s/s: %s" % (
                     c["seconds"], c["steal_pct"], "{:,}".format(PPS_TARGET),
                     "PASS" if ok else "FAIL")))
    print(fmt % ("python3-grpcio receiver", "{:,.0f}".format(py["events_per_s"]),
                 per_m(py["cpu_s"], py["events"]), per_m(py["collector_cpu_s"], py["events"]),
                 "%.0f s, acks every 1000" % py["seconds"]))
    print("sonde-collector vs python3-grpcio: %.1fx events/s" % (c["events_per_s"] /
                                                                 py["events_per_s"]))

    print()
    print("Protobuf per event type (%s: %d packets, %d bytes):" % (
        os.path.basename(a.capture), packets, packet_bytes))
    fmt = "%-16s %7s %9s %10s %9s %10s %9s   %s"
    print(fmt % ("type", "events", "bytes", "encode ns", "pack ns", "decode ns", "check ns",
                 "wire bytes / packet bytes"))
    flow_ok = True
    for r in rows:
        wire = r["count"] * (r["bytes"] + GRPC_PREFIX)
        note = "%.3f" % (wire / packet_bytes)
        if r["type"] == "flow":
            flow_ok = r["encode_ns"] <= ENCODE_TARGET_NS
            note += "; encode target <= %d ns: %s" % (ENCODE_TARGET_NS,
                                                      "PASS" if flow_ok else "FAIL")
        print(fmt % (r["type"], r["count"], "%.0f" % r["bytes"], "%.0f" % r["encode_ns"],
                     "%.0f" % r["pack_ns"], "%.0f" % r["decode_ns"], "%.0f" % r["check_ns"],
                     note))
    with open(a.json, "w") as f:
        json.dump({"collector": c, "python": py, "types": rows, "packets": packets,
                   "packet_bytes": packet_bytes, "pass": ok and flow_ok}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
