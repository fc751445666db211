#!/usr/bin/python3
"""Run the `make bench` measurements and print the table (see bench/README.md).

Called by bench/run.sh, which builds the capture and the floor program first.
Every tool reads the same file, after a warm-up read, best of --runs runs.
Wall time and peak RSS come from the kernel for each child (os.wait4), so no
/usr/bin/time is needed and the clock is not rounded to 10 ms.
"""
import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

EVENTS = "flow,flow_purge,flow_stats,interface_stats,agent_status"
TARGET = 0.60          # sonde --threads 1 vs the floor, from the issue
DPI_PPS_TARGET = 3.0   # sonde with DPI vs ndpiReader, packets/s (DPI issue)
DPI_RSS_TARGET = 0.5   # ... and peak RSS
DPI_PACKETS = 32       # both give up at the 32nd packet (ndpiReader -T/-U 31)
DPI_RUNS = 11          # pairs: a ratio of two noisy times needs more runs than a row
DAY = "86400"          # the agent's largest timeout


TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def run(cmd, capture_stdout=False):
    """Run cmd; return (elapsed s, peak RSS KiB, stdout, stderr).

    Elapsed is wall time around the child, from a monotonic clock. Peak RSS
    comes from GNU time (-f %M): the kernel's ru_maxrss of a child forked by
    this Python process would include the parent's own RSS (the pre-exec
    image is accounted to the child), ~13 MiB here. Without /usr/bin/time
    the child's wait4 rusage is used and RSS is a floor, not a measure.
    """
    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f, \
            tempfile.NamedTemporaryFile(mode="r") as rss_f:
        argv = [TIME, "-f", "%M", "-o", rss_f.name] + cmd if TIME else cmd
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=err_f,
                             stdout=out_f if capture_stdout else subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        elapsed = time.perf_counter() - t0
        code = os.waitstatus_to_exitcode(status)
        out_f.seek(0)
        err_f.seek(0)
        out = out_f.read().decode(errors="replace")
        err = err_f.read().decode(errors="replace")
        rss = ru.ru_maxrss
        if TIME:
            lines = rss_f.read().split()
            rss = int(lines[-1]) if lines and lines[-1].isdigit() else rss
    if code != 0:
        sys.stderr.write(err[-2000:])
        raise SystemExit("bench: %s exited with %d" % (" ".join(cmd), code))
    return elapsed, rss, out, err


def best_of(cmd, n, capture_stdout=False):
    return summarize(cmd, [run(cmd, capture_stdout) for _ in range(n)])


def best_of_interleaved(cmds, n):
    """best_of for several commands run in turn (A B C A B C ...): on a
    shared or throttled machine the speed drifts over minutes, and taking
    each one's runs at the same moments keeps their ratio honest."""
    runs = [[] for _ in cmds]
    for _ in range(n):
        for i, cmd in enumerate(cmds):
            runs[i].append(run(cmd, capture_stdout=True))
    return [summarize(cmd, r) for cmd, r in zip(cmds, runs)]


def summarize(cmd, runs):
    n = len(runs)
    times = [r[0] for r in runs]
    best = min(range(n), key=lambda i: times[i])
    return {
        "cmd": cmd,
        "times_s": [round(t, 4) for t in times],
        "best_s": times[best],
        "spread": (max(times) - min(times)) / min(times),
        "rss_kib": max(r[1] for r in runs),
        "stdout": runs[best][2],
        "stderr": runs[best][3],
    }


def sonde_flows(stderr):
    m = re.search(r"(\d+) packets, (\d+) discarded, (\d+) flows", stderr)
    if not m:
        raise SystemExit("bench: no summary line in sonde-agent -v output:\n" + stderr)
    return int(m.group(1)), int(m.group(3))


def softflowd_flows(text):
    pk = re.search(r"Packets processed: (\d+)", text)
    ig = re.search(r"Ignored packets: (\d+)", text)
    fl = re.search(r"Flows expired: (\d+)", text)
    if not (pk and fl):
        raise SystemExit("bench: unexpected softflowd output:\n" + text[-2000:])
    return int(pk.group(1)) + (int(ig.group(1)) if ig else 0), int(fl.group(1))


def version(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        for line in (r.stdout + r.stderr).splitlines():
            if re.search(r"\d+\.\d+", line) and "dangerous" not in line:
                return line.strip()
    except OSError:
        pass
    return "?"


def dpi_rows(a, packets, n, notes):
    """sonde-agent with nDPI beside Debian's ndpiReader (same nDPI, same
    32-packet limit), and bytes per active flow once detection is over."""
    if not shutil.which("ndpiReader"):
        notes.append("ndpiReader not installed (Debian libndpi-bin): DPI rows skipped")
        return None
    lim = str(DPI_PACKETS - 1)
    s, r = best_of_interleaved([[a.agent, "--threads", "1", "-r", a.capture, "-o", "null",
                                 "--events", EVENTS, "--dpi-packets", str(DPI_PACKETS)],
                                ["ndpiReader", "-q", "-i", a.capture, "-T", lim, "-U", lim]], n)
    # after detection: --dpi-packets 1 ends every flow's inspection at its
    # first packet, so each live flow holds only its record (a flow still
    # under inspection also holds nDPI's ~1 KiB state, as in ndpiReader)
    mem = [a.agent, "--threads", "1", "-o", "null", "--events", "agent_status", "--dpi-packets",
           "1", "--tcp-timeout", DAY, "--udp-timeout", DAY, "--closed-timeout", DAY, "-v", "-r"]
    _, rss_big, _, err_big = run(mem + [a.capture])
    _, rss_small, _, err_small = run(mem + [a.small])
    fl_big, fl_small = sonde_flows(err_big)[1], sonde_flows(err_small)[1]
    bpf = (rss_big - rss_small) * 1024 / (fl_big - fl_small)
    pps, rpps = packets / s["best_s"], packets / r["best_s"]
    x_pps, x_rss = pps / rpps, s["rss_kib"] / r["rss_kib"]
    # each pair ran back to back, so its ratio is immune to slow drift
    pairs = sorted(tr / ts for ts, tr in zip(s["times_s"], r["times_s"]))
    x_med = pairs[len(pairs) // 2]
    ok = x_pps >= DPI_PPS_TARGET and x_rss <= DPI_RSS_TARGET
    print()
    print("DPI (%s, inspection ends at packet %d):" % (
        version(["ndpiReader", "-h"]).replace("Welcome to ", ""), DPI_PACKETS))
    fmt = "%-34s %11s %7s %10s %7s   %s"
    print(fmt % ("tool", "packets/s", "spread", "peak RSS", "B/flow", "notes"))
    print(fmt % ("sonde-agent -t 1 (DPI)", "{:,.0f}".format(pps),
                 "%.0f%%" % (100 * s["spread"]), "%.1f MiB" % (s["rss_kib"] / 1024),
                 "%.0f" % bpf, "target >= %.1fx ndpiReader, <= %.1fx RSS: %s" % (
                     DPI_PPS_TARGET, DPI_RSS_TARGET, "PASS" if ok else "FAIL")))
    print(fmt % ("ndpiReader -q -T %s -U %s" % (lim, lim), "{:,.0f}".format(rpps),
                 "%.0f%%" % (100 * r["spread"]), "%.1f MiB" % (r["rss_kib"] / 1024), "-",
                 "keeps every flow and its stats"))
    print("sonde (DPI) vs ndpiReader: %.2fx packets/s (fastest runs), %.2fx peak RSS" % (
        x_pps, x_rss))
    print("  run by run: median %.2fx, range %.2f-%.2fx over %d pairs" % (
        x_med, pairs[0], pairs[-1], len(pairs)))
    return {"sonde_pps": pps, "ndpireader_pps": rpps, "x_pps": x_pps,
            "x_pps_pairs": [round(x, 3) for x in pairs], "x_pps_median": x_med,
            "sonde_rss_kib": s["rss_kib"], "ndpireader_rss_kib": r["rss_kib"], "x_rss": x_rss,
            "bytes_per_flow_after_detection": bpf, "pass": ok}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--pcapread", required=True)
    ap.add_argument("--capture", required=True)
    ap.add_argument("--small", required=True, help="tiny prefix of the capture (RSS baseline)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dpi-runs", type=int, default=DPI_RUNS)
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    n = a.runs

    # warm-up: the file into the page cache, the floor's code into memory
    with open(a.capture, "rb") as f:
        while f.read(1 << 20):
            pass
    run([a.pcapread, a.capture])

    rows = []
    notes = []

    # the floor and sonde, flow-only, events encoded to protobuf and dropped
    sonde_cmds = [[a.agent, "--no-dpi", "--threads", str(t), "-r", a.capture, "-o", "null",
                   "--events", EVENTS, "-v"] for t in (1, 2)]
    measured = best_of_interleaved([[a.pcapread, a.capture]] + sonde_cmds, n)
    r = measured[0]
    packets = int(r["stdout"].split()[0])
    floor = r
    r["name"] = "libpcap read loop (floor)"
    r["note"] = "pcap_dispatch, sums caplen"
    rows.append(r)
    for threads, r in zip((1, 2), measured[1:]):
        pk, fl = sonde_flows(r["stderr"])
        if pk != packets:
            notes.append("sonde-agent -t %d read %d packets, floor %d" % (threads, pk, packets))
        r["name"] = "sonde-agent --no-dpi -t %d" % threads
        r["flows"] = fl
        r["note"] = "%d flows" % fl
        rows.append(r)
    sonde1 = rows[1]

    # bytes per active flow: all flows kept to the end (timeouts of a day; the
    # capture spans 80 minutes), no flow events queued; RSS minus a tiny run
    mem = [a.agent, "--no-dpi", "--threads", "1", "-o", "null", "--events", "agent_status",
           "--tcp-timeout", DAY, "--udp-timeout", DAY, "--closed-timeout", DAY, "-v", "-r"]
    _, rss_big, _, err_big = run(mem + [a.capture])
    _, rss_small, _, err_small = run(mem + [a.small])
    fl_big, fl_small = sonde_flows(err_big)[1], sonde_flows(err_small)[1]
    sonde1["bytes_per_flow"] = (rss_big - rss_small) * 1024 / (fl_big - fl_small)
    sonde1["bpf_detail"] = {"rss_all_flows_kib": rss_big, "rss_baseline_kib": rss_small,
                            "flows": fl_big, "flows_baseline": fl_small}

    # softflowd: NetFlow v9 to the discard port on loopback; no control
    # socket (with one it blocks in accept() after EOF); its own pid file
    # (it unlinks the file at exit: never point -p at /dev/null); a table as big as
    # sonde's so nothing is force-expired. Reading a file it expires flows
    # only when the table is full, so its peak RSS holds every flow.
    if shutil.which("softflowd"):
        sf = ["softflowd", "-d", "-6", "-v", "9", "-m", "1048576", "-c", "none",
              "-p", os.path.join(os.path.dirname(a.json), "softflowd.pid"), "-n", "127.0.0.1:9", "-r"]
        r = best_of(sf + [a.capture], n, capture_stdout=True)
        pk, fl = softflowd_flows(r["stdout"] + r["stderr"])
        if pk != packets:
            notes.append("softflowd read %d packets, floor %d" % (pk, packets))
        _, rss_small, out, err = run(sf + [a.small], capture_stdout=True)
        fl_small = softflowd_flows(out + err)[1]
        r["bytes_per_flow"] = (r["rss_kib"] - rss_small) * 1024 / (fl - fl_small)
        r["bpf_detail"] = {"rss_all_flows_kib": r["rss_kib"], "rss_baseline_kib": rss_small,
                           "flows": fl, "flows_baseline": fl_small}
        r["name"] = "softflowd -r (NetFlow v9)"
        r["flows"] = fl
        r["note"] = "%d flows" % fl
        rows.append(r)
    else:
        notes.append("softflowd not installed: row skipped")

    # tshark conversation tables
    if shutil.which("tshark"):
        r = best_of(["tshark", "-r", a.capture, "-q", "-z", "conv,tcp", "-z", "conv,udp"], n)
        r["name"] = "tshark -q -z conv,tcp -z conv,udp"
        r["note"] = "keeps per-packet state"
        rows.append(r)
    else:
        notes.append("tshark not installed: row skipped")

    for r in rows:
        r["pps"] = packets / r["best_s"]
        r["x_floor"] = r["pps"] / (packets / floor["best_s"])
    ok = sonde1["x_floor"] >= TARGET
    sonde1["note"] = "target >= %.2f: %s; %s" % (TARGET, "PASS" if ok else "FAIL", sonde1["note"])

    # the table
    size = os.path.getsize(a.capture)
    print()
    print("sonde bench: %s, %d packets, %.0f MB, %d CPUs (%s), best of %d after a warm-up read"
          % (os.path.basename(a.capture), packets, size / 1e6, os.cpu_count(),
             platform.machine(), n))
    hdr = ("tool", "packets/s", "x floor", "spread", "peak RSS", "B/flow", "notes")
    fmt = "%-34s %11s %8s %7s %10s %7s   %s"
    print(fmt % hdr)
    for r in rows:
        bpf = "%.0f" % r["bytes_per_flow"] if "bytes_per_flow" in r else "-"
        print(fmt % (r["name"], "{:,.0f}".format(r["pps"]), "%.2f" % r["x_floor"],
                     "%.0f%%" % (100 * r["spread"]), "%.1f MiB" % (r["rss_kib"] / 1024),
                     bpf, r["note"]))
    # sonde -t 1 beside each tool a user would otherwise run
    for r in rows[3:]:
        line = "sonde -t 1 vs %s: %.2fx packets/s, %.2fx peak RSS" % (
            r["name"].split()[0], sonde1["pps"] / r["pps"], sonde1["rss_kib"] / r["rss_kib"])
        if "bytes_per_flow" in r:
            line += ", %.2fx bytes/flow" % (sonde1["bytes_per_flow"] / r["bytes_per_flow"])
        print(line)
    if not TIME:
        notes.append("/usr/bin/time missing (Debian package `time`): peak RSS below "
                     "~15 MiB is the Python parent's, B/flow is unreliable")
    dpi = dpi_rows(a, packets, a.dpi_runs, notes)
    for s in notes:
        print("note: " + s)

    result = {
        "capture": {"path": a.capture, "packets": packets, "bytes": size},
        "host": {"cpus": os.cpu_count(), "machine": platform.machine(),
                 "kernel": platform.release()},
        "versions": {
            "sonde-agent": version([a.agent, "-V"]),
            "tshark": version(["tshark", "-v"]) if shutil.which("tshark") else None,
            "softflowd": version(["softflowd", "-h"]) if shutil.which("softflowd") else None,
        },
        "target": {"sonde_t1_x_floor_min": TARGET, "pass": ok},
        "dpi": dpi,
        "rows": [{k: v for k, v in r.items() if k not in ("stdout", "stderr")} for r in rows],
        "notes": notes,
    }
    with open(a.json, "w") as f:
        json.dump(result, f, indent=2)
    print("(details: %s)" % a.json)


if __name__ == "__main__":
    main()
