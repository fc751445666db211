#!/usr/bin/python3
"""Make a capture of real traffic on loopback.

Real clients talk to real local servers while tcpdump captures on 'lo'; the
capture filter names our own random high ports (and ICMP), so nothing else
running on the machine ends up in the file:

* HTTP: curl against ``/usr/bin/python3 -m http.server`` on 127.0.0.1 (index,
  small file, a 1 MiB download, a 404) and on ::1 (index, 1 MiB download);
* HTTPS: ``curl -k`` against ``openssl s_server -www`` with a certificate made
  here by ``openssl req``;
* DNS: ``dig`` against a local ``dnsmasq`` (UDP queries, each its own flow:
  A, AAAA, a two-step CNAME chain, an NXDOMAIN, a TXT answer too big for
  512 bytes that dig retries over TCP, ping.example.test before the pings to
  127.0.0.2; and one ``+tcp``);
* ICMP: ``ping`` to 127.0.0.1 and 127.0.0.2, ICMPv6 ``ping -6 ::1``;
* UDP: a small echo exchange between two Python sockets.

Every server is stopped in a ``finally``, also when a client fails.

Use from Python: ``generate(outdir)`` returns a summary dict (pcap path,
ports, what was sent). From the shell (scripts/demo.sh):
``/usr/bin/python3 gen_traffic.py OUTDIR`` writes OUTDIR/traffic.pcap and
OUTDIR/traffic.json. Needs root (tcpdump on lo).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

PY = "/usr/bin/python3"
BIG_SIZE = 1 << 20
# three 200-byte strings: over the 512 bytes of a UDP answer without EDNS
DNS_BIG_TXT = [c * 200 for c in "abc"]


class TrafficError(Exception):
    pass


def free_port(family=socket.AF_INET, kind=socket.SOCK_STREAM):
    """A free high port, also free for the other transport and on ::1, so one
    number can serve TCP and UDP."""
    for _ in range(200):
        with socket.socket(family, kind) as s:
            s.bind(("127.0.0.1" if family == socket.AF_INET else "::1", 0))
            port = s.getsockname()[1]
        if port < 20000:
            continue
        ok = True
        for fam, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            for k in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                try:
                    with socket.socket(fam, k) as t:
                        t.bind((addr, port))
                except OSError:
                    ok = False
        if ok:
            return port
    raise TrafficError("no free port found")


def run(cmd, timeout=60, check=True, **kw):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, **kw)
    except subprocess.TimeoutExpired:
        raise TrafficError("timed out after %ss: %s" % (timeout, " ".join(cmd)))
    if check and p.returncode != 0:
        raise TrafficError("%s: exit %d: %s" % (" ".join(cmd), p.returncode,
                                                 p.stderr.decode(errors="replace")[-2000:]))
    return p


def wait_tcp(host, port, timeout=15):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.socket(fam, socket.SOCK_STREAM) as s:
                s.settimeout(1)
                s.connect((host, port))
                return
        except OSError:
            time.sleep(0.05)
    raise TrafficError("server on %s:%d did not come up" % (host, port))


class Procs:
    """The servers we started; stop() ends each by its own handle."""

    def __init__(self):
        self.procs = []

    def start(self, name, cmd, **kw):
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(cmd, **kw)
        self.procs.append((name, p))
        return p

    def check_alive(self):
        for name, p in self.procs:
            if p.poll() is not None:
                err = p.stderr.read().decode(errors="replace") if p.stderr else ""
                raise TrafficError("%s exited early (rc %s): %s" % (name, p.returncode, err[-2000:]))

    def stop(self):
        for name, p in reversed(self.procs):
            if p.poll() is None:
                try:
                    p.terminate()
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=5)
            for f in (p.stdin, p.stdout, p.stderr):
                if f:
                    try:
                        f.close()
                    except OSError:
                        pass
        self.procs = []


class UdpEcho(threading.Thread):
    def __init__(self, port):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.2)
        self.stopping = False

    def run(self):
        while not self.stopping:
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            self.sock.sendto(b"echo:" + data, addr)

    def stop(self):
        self.stopping = True
        self.join(timeout=5)
        self.sock.close()


def udp_exchange(port, sizes):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(3)
        c.bind(("127.0.0.1", 0))
        cport = c.getsockname()[1]
        for n in sizes:
            c.sendto(b"u" * n, ("127.0.0.1", port))
            data, _ = c.recvfrom(65535)
            if data != b"echo:" + b"u" * n:
                raise TrafficError("udp echo mismatch")
    return cport


class Tcpdump:
    def __init__(self, iface, pcap, bpf=None, netns=None):
        cmd = ["tcpdump", "-i", iface, "-n", "-s", "0", "-U", "--immediate-mode", "-B", "32768",
               "-w", pcap]
        if bpf:
            cmd.append(bpf)
        if netns:
            cmd = ["ip", "netns", "exec", netns] + cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        self.lines = []
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if not self.ready.wait(15):
            self.stop()
            raise TrafficError("tcpdump did not start: %s" % "".join(self.lines))
        if self.proc.poll() is not None:
            raise TrafficError("tcpdump failed: %s" % "".join(self.lines))

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace")
            self.lines.append(line)
            if "listening on" in line:
                self.ready.set()
        self.ready.set()

    def stop(self):
        """SIGINT makes tcpdump flush the file and print its counters."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.reader.join(timeout=5)
        return self.stats()

    def stats(self):
        out = {}
        for line in self.lines:
            parts = line.split()
            if len(parts) >= 3 and parts[1] == "packets":
                key = " ".join(parts[2:]).strip()
                try:
                    out[key] = int(parts[0])
                except ValueError:
                    pass
        return out


def generate(outdir, ipv6=True, big_size=BIG_SIZE):
    """Make the traffic and return a summary. Raises TrafficError when a
    client or server fails (the capture would not show what we claim)."""
    outdir = os.path.abspath(outdir)
    os.makedirs(outdir, exist_ok=True)
    www = os.path.join(outdir, "www")
    os.makedirs(www, exist_ok=True)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("<html><body>sonde test page</body></html>\n")
    with open(os.path.join(www, "small.txt"), "w") as f:
        f.write("hello sonde\n" * 100)
    with open(os.path.join(www, "big.bin"), "wb") as f:
        f.write(os.urandom(big_size))
    cert, key = os.path.join(outdir, "cert.pem"), os.path.join(outdir, "key.pem")
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
         "-days", "2", "-subj", "/CN=localhost"], timeout=60)

    ports = {}
    ports["http4"] = free_port()
    ports["http6"] = free_port(socket.AF_INET6) if ipv6 else None
    ports["https"] = free_port()
    ports["dns"] = free_port(kind=socket.SOCK_DGRAM)
    ports["udp_echo"] = free_port(kind=socket.SOCK_DGRAM)
    if len(set(ports.values())) != len(ports):
        raise TrafficError("port collision %r" % ports)

    pcap = os.path.join(outdir, "traffic.pcap")
    procs = Procs()
    echo = None
    tcpdump = None
    summary = {"pcap": pcap, "ports": ports, "ipv6": ipv6, "big_size": big_size}
    try:
        procs.start("http.server v4", [PY, "-m", "http.server", str(ports["http4"]),
                                       "--bind", "127.0.0.1", "--directory", www])
        if ipv6:
            procs.start("http.server v6", [PY, "-m", "http.server", str(ports["http6"]),
                                           "--bind", "::1", "--directory", www])
        procs.start("openssl s_server", ["openssl", "s_server", "-accept", "127.0.0.1:%d" % ports["https"],
                                         "-cert", cert, "-key", key, "-www", "-quiet"],
                    stdin=subprocess.PIPE)
        procs.start("dnsmasq", ["dnsmasq", "--no-daemon", "--port=%d" % ports["dns"],
                                "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
                                "--no-hosts", "--address=/example.test/10.1.2.3",
                                "--address=/example.test/fd00::1:2:3", "--address=/nx.test/",
                                "--host-record=target.example.test,10.9.8.7",
                                "--host-record=ping.example.test,127.0.0.2",
                                "--cname=mid.example.test,target.example.test",
                                "--cname=alias.example.test,mid.example.test",
                                "--txt-record=big.example.test,%s" % ",".join(DNS_BIG_TXT),
                                "--local-ttl=300", "--conf-file=/dev/null",
                                "--pid-file=" + os.path.join(outdir, "dnsmasq.pid")])
        echo = UdpEcho(ports["udp_echo"])
        echo.start()
        wait_tcp("127.0.0.1", ports["http4"])
        if ipv6:
            wait_tcp("::1", ports["http6"])
        wait_tcp("127.0.0.1", ports["https"])
        dig_base = ["dig", "@127.0.0.1", "-p", str(ports["dns"]), "+tries=1", "+time=3"]
        deadline = time.monotonic() + 15
        while True:
            p = run(dig_base + ["example.test", "A", "+short"], check=False, timeout=10)
            if p.returncode == 0 and b"10.1.2.3" in p.stdout:
                break
            if time.monotonic() > deadline:
                raise TrafficError("dnsmasq does not answer: %r" % p.stdout)
            time.sleep(0.1)
        procs.check_alive()

        portlist = [ports[k] for k in ("http4", "http6", "https", "dns", "udp_echo") if ports.get(k)]
        bpf = "((tcp or udp) and (%s)) or icmp or (icmp6 and (ip6[40] == 128 or ip6[40] == 129))" % (
            " or ".join("port %d" % p for p in portlist))
        tcpdump = Tcpdump("lo", pcap, bpf)
        t_start = time.time()

        curl = ["curl", "-sS", "--max-time", "30", "-o", "/dev/null", "-w", "%{http_code}\n"]
        base4 = "http://127.0.0.1:%d" % ports["http4"]
        http = []
        for path, code in (("/", "200"), ("/small.txt", "200"), ("/big.bin", "200"), ("/nothing-here", "404")):
            p = run(curl + [base4 + path], timeout=40)
            if p.stdout.decode().strip() != code:
                raise TrafficError("curl %s: %r" % (path, p.stdout))
            http.append(("127.0.0.1", ports["http4"], path))
        if ipv6:
            base6 = "http://[::1]:%d" % ports["http6"]
            for path in ("/", "/big.bin"):
                p = run(curl + ["-g", base6 + path], timeout=40)
                if p.stdout.decode().strip() != "200":
                    raise TrafficError("curl v6 %s: %r" % (path, p.stdout))
                http.append(("::1", ports["http6"], path))
        for _ in range(2):
            p = run(curl + ["-k", "https://127.0.0.1:%d/" % ports["https"]], timeout=40)
            if p.stdout.decode().strip() != "200":
                raise TrafficError("curl https: %r" % p.stdout)
        dns = []
        queries = [("example.test", "A"), ("www.example.test", "A"), ("example.test", "AAAA"),
                   ("alias.example.test", "A"), ("gone.nx.test", "A"), ("ping.example.test", "A")]
        queries += [("host%d.example.test" % n, "A") for n in range(8)]
        for name, qtype in queries:
            p = run(dig_base + [name, qtype], timeout=10)
            dns.append((name, qtype, "udp"))
        # no EDNS: the answer is cut to 512 bytes with TC set, and dig asks again over TCP
        p = run(dig_base + ["+noedns", "big.example.test", "TXT"], timeout=10)
        if DNS_BIG_TXT[2].encode() not in p.stdout:
            raise TrafficError("dig TXT over TCP fallback: %r" % p.stdout)
        dns.append(("big.example.test", "TXT", "udp+tcp"))
        p = run(dig_base + ["+tcp", "example.test", "A"], timeout=10)
        if b"10.1.2.3" not in p.stdout:
            raise TrafficError("dig +tcp: %r" % p.stdout)
        dns.append(("example.test", "A", "tcp"))
        run(["ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", "127.0.0.1"], timeout=20)
        run(["ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", "127.0.0.2"], timeout=20)
        if ipv6:
            run(["ping", "-6", "-n", "-c", "2", "-i", "0.2", "-W", "2", "::1"], timeout=20)
        udp_sizes = [10, 100, 500, 1000, 1400]
        udp_client_port = udp_exchange(ports["udp_echo"], udp_sizes)
        procs.check_alive()
        time.sleep(0.5)  # let the last FINs and ACKs pass before stopping the capture
        stats = tcpdump.stop()
        tcpdump = None
        summary.update({
            "http": http, "https_requests": 2, "dns": dns, "udp_sizes": udp_sizes,
            "udp_client_port": udp_client_port, "tcpdump": stats,
            "duration": time.time() - t_start,
        })
    finally:
        if tcpdump is not None:
            tcpdump.stop()
        if echo is not None:
            echo.stop()
        procs.stop()
    if not os.path.exists(pcap) or os.path.getsize(pcap) <= 24:
        raise TrafficError("capture is empty: %s" % pcap)
    return summary


def main(argv):
    if len(argv) != 2:
        print("usage: gen_traffic.py OUTDIR", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("gen_traffic: needs root (tcpdump on lo)", file=sys.stderr)
        return 1
    s = generate(argv[1])
    with open(os.path.join(argv[1], "traffic.json"), "w") as f:
        json.dump(s, f, indent=1)
    print(s["pcap"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
