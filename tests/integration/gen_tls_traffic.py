#!/usr/bin/python3
"""Make a capture of real TLS and HTTP/1.x traffic on loopback.

Real clients talk to real local servers while tcpdump captures on 'lo'; the
capture filter names our own random high ports, so nothing else running on
the machine ends up in the file. Every connection is made with values chosen
here, and the summary records them, so a test can hold the agent's tls and
http events against what was configured (and against tshark):

* certificates: a CA and a server certificate it signs (subject and issuer
  differ; subjectAltName DNS names), made by ``openssl req``/``openssl x509``;
  the summary has their subject and issuer components, the SAN list, the
  server certificate's SHA-1 fingerprint and its validity in epoch seconds;
* HTTP/1.x in clear:
  - curl against ``/usr/bin/python3 -m http.server`` (an HTTP/1.0 server):
    one GET with an HTTP/1.1 request line, one 404 with ``--http1.0``, each
    on its own connection;
  - ONE curl command against a small HTTP/1.1 keep-alive server
    (``http.server`` with protocol_version "HTTP/1.1"), its URLs separated
    by ``--next`` so that they share one connection (checked with curl's
    ``%{num_connects}`` and ``%{local_port}``): GET /a.txt (200), GET
    /missing (404), POST /submit with a form body (201), HEAD /a.txt (a
    Content-Length and no body), GET /big.txt (a 200 kB body over several
    segments), GET /b.json and six more GET /b.json?n=N, so that the
    connection lasts beyond the agent's DPI window of 32 packets; all with
    ``-A sonde-test-agent/1.0``, ``-e http://referer.example/page`` and
    ``-H "Host: www.example.test"``;
* TLS over TCP, each case on its own server port (one flow each):
  - ``curl --http1.1 --tls-max 1.2 -k --resolve
    tls11.example.test:PORT:127.0.0.1`` against ``openssl s_server -www
    -alpn http/1.1`` (SNI tls11.example.test, ALPN offered and chosen
    http/1.1);
  - ``curl --http2 -k --resolve h2.example.test:...`` against ``nghttpd``
    (TLS 1.3, ALPN offered "h2,http/1.1", chosen h2; curl's
    ``%{http_version}`` must say 2), and the same with ``--tls-max 1.2``.
    In TLS 1.3 the server's ALPN choice is encrypted (EncryptedExtensions),
    so the summary's ``alpn_server`` (what the wire shows) is "" there and
    ``alpn_negotiated`` has what curl reports; this nghttpd also answers
    curl's first ClientHello with a HelloRetryRequest;
  - ``openssl s_client`` with a chosen version, cipher (suite), SNI (or
    none) and sometimes ALPN against ``openssl s_server``; the negotiated
    protocol, cipher and ALPN are read back from s_client's output.

Every server is stopped in a ``finally``, also when a client fails.

Use from Python: ``generate(outdir)`` returns the summary dict (see the end
of generate()). From the shell: ``/usr/bin/python3 gen_tls_traffic.py
OUTDIR`` writes OUTDIR/tls_traffic.pcap and OUTDIR/tls_traffic.json. Needs
root (tcpdump on lo).
"""

import calendar
import json
import os
import re
import subprocess
import sys
import time

from gen_traffic import PY, Procs, Tcpdump, TrafficError, free_port, run, wait_tcp

# the HTTP/1.1 keep-alive server: fixed answers, a Server header of our own
KA_SERVER = "sonde-test-server/2.0"
KA_A_TXT = b"sonde keep-alive body\n" * 60
KA_B_JSON = b'{"sonde": "b", "items": [1, 2, 3]}\n'
KA_404 = b"<html><body>not here</body></html>\n"
KA_CREATED = b'{"created": true}\n'
KA_BIG = b"sonde big body line\n" * 10000  # 200 kB: several segments even on lo
KA_EXTRA_GETS = 6  # more requests, so that the connection outlasts the DPI window (32 packets)

KEEPALIVE_SERVER = r"""
import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self):
        return %r

    def log_message(self, *args):
        pass

    def reply(self, code, ctype, body, head=False):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def do_GET(self):
        if self.path == "/a.txt":
            self.reply(200, "text/plain; charset=utf-8", %r)
        elif self.path == "/big.txt":
            self.reply(200, "text/plain", %r)
        elif self.path.split("?")[0] == "/b.json":
            self.reply(200, "application/json", %r)
        else:
            # send_error() would close the connection: answer by hand
            self.reply(404, "text/html", %r)

    def do_HEAD(self):
        self.reply(200, "text/plain; charset=utf-8", %r, head=True)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(n)
        self.reply(201, "application/json", %r)


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
""" % (KA_SERVER, KA_A_TXT, KA_BIG, KA_B_JSON, KA_404, KA_A_TXT, KA_CREATED)

USER_AGENT = "sonde-test-agent/1.0"
REFERER = "http://referer.example/page"
VHOST = "www.example.test"
POST_BODY = "name=sonde&kind=integration-test"

CA_SUBJ = [("C", "XX"), ("O", "Sonde Test CA"), ("CN", "Sonde Test Root")]
SRV_SUBJ = [("C", "XX"), ("O", "Sonde Test"), ("OU", "Integration"), ("CN", "tls.example.test")]
SANS = ["tls.example.test", "tls11.example.test", "h2.example.test", "v12.example.test",
        "v13.example.test", "chacha.example.test"]

VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}

# curl cases: (name, SNI, curl options, version, ALPN the server chooses,
# %{http_version}); tls11 is served by openssl s_server -www -alpn http/1.1,
# h2 and h2tls12 by nghttpd
CURL_TLS_CASES = [
    ("tls11", "tls11.example.test", ["--http1.1", "--tls-max", "1.2"], "TLSv1.2", "http/1.1", "1"),
    ("h2", "h2.example.test", ["--http2"], "TLSv1.3", "h2", "2"),
    ("h2tls12", "h2.example.test", ["--http2", "--tls-max", "1.2"], "TLSv1.2", "h2", "2"),
]

# openssl s_client cases: (name, s_client arguments, SNI or None, ALPN offered,
# s_server -alpn, version and cipher that must be negotiated)
S_CLIENT_CASES = [
    ("v12", ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"], "v12.example.test", "", None,
     "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"),
    ("v13", ["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"], "v13.example.test", "", None,
     "TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256"),
    ("v12chacha", ["-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305"], "chacha.example.test",
     "h2,http/1.1", "http/1.1", "TLSv1.2", "ECDHE-RSA-CHACHA20-POLY1305"),
    ("v12nosni", ["-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384", "-noservername"], None, "", None,
     "TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384"),
]


def subj_arg(parts):
    return "".join("/%s=%s" % kv for kv in parts)


def cipher_table():
    """OpenSSL cipher name -> (IANA name, code), from openssl itself."""
    p = run(["openssl", "ciphers", "-V", "-stdname", "ALL"])
    table = {}
    for line in p.stdout.decode().splitlines():
        m = re.match(r"\s*0x([0-9A-F]{2}),0x([0-9A-F]{2}) - (\S+)\s+- (\S+)\s", line)
        if m:
            code = int(m.group(1) + m.group(2), 16)
            table[m.group(4)] = (m.group(3), code)
            table[m.group(3)] = (m.group(3), code)
    return table


def openssl_date(s):
    """'Nov 22 05:45:02 2026 GMT' -> epoch seconds."""
    return calendar.timegm(time.strptime(s.replace("GMT", "").strip(), "%b %d %H:%M:%S %Y"))


def make_certs(outdir):
    ca_key, ca_pem = os.path.join(outdir, "ca.key"), os.path.join(outdir, "ca.pem")
    key, csr, pem = (os.path.join(outdir, n) for n in ("server.key", "server.csr", "server.pem"))
    ext = os.path.join(outdir, "server.ext")
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_pem,
         "-days", "3", "-subj", subj_arg(CA_SUBJ)])
    run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
         "-subj", subj_arg(SRV_SUBJ)])
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n" % ",".join("DNS:" + n for n in SANS))
    run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey", ca_key, "-CAcreateserial",
         "-days", "2", "-extfile", ext, "-out", pem])
    out = run(["openssl", "x509", "-in", pem, "-noout", "-subject", "-issuer", "-dates",
               "-nameopt", "RFC2253", "-fingerprint", "-sha1", "-ext", "subjectAltName"]).stdout.decode()
    info = {}
    for line in out.splitlines():
        if "=" in line and not line.startswith(" "):
            k, v = line.split("=", 1)
            info[k.strip()] = v.strip()
    sans = re.findall(r"DNS:([^,\s]+)", out)
    if sans != SANS:
        raise TrafficError("certificate SANs %r, wanted %r" % (sans, SANS))
    cert = {
        "pem": pem, "key": key, "ca_pem": ca_pem,
        "subject": info["subject"],  # RFC 2253, as openssl prints it
        "issuer": info["issuer"],
        "subject_parts": [list(kv) for kv in SRV_SUBJ],
        "issuer_parts": [list(kv) for kv in CA_SUBJ],
        "server_names": sans,
        "sha1": info["sha1 Fingerprint"].replace(":", "").lower(),
        "not_before": openssl_date(info["notBefore"]),
        "not_after": openssl_date(info["notAfter"]),
    }
    # openssl's RFC 2253 form lists the components last first
    want = ",".join("%s=%s" % kv for kv in reversed(SRV_SUBJ))
    if cert["subject"] != want:
        raise TrafficError("certificate subject %r, wanted %r" % (cert["subject"], want))
    return cert


def curl_tls_info(verbose):
    """Protocol, cipher and ALPN as curl -v reports them."""
    m = re.search(r"SSL connection using (TLSv[0-9.]+) / (\S+)", verbose)
    offered = re.search(r"ALPN: offers (\S+)", verbose)
    chosen = re.search(r"ALPN: server accepted (\S+)", verbose)
    if not m or not offered or not chosen:
        raise TrafficError("curl -v did not show the TLS handshake:\n%s" % verbose[-3000:])
    return m.group(1), m.group(2), offered.group(1), chosen.group(1)


def generate(outdir):
    """Make the traffic and return a summary. Raises TrafficError when a
    client or server fails or negotiates something else than asked."""
    outdir = os.path.abspath(outdir)
    os.makedirs(outdir, exist_ok=True)
    www = os.path.join(outdir, "www")
    os.makedirs(www, exist_ok=True)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("<html><body>sonde tls/http test page</body></html>\n")
    ka_script = os.path.join(outdir, "keepalive_server.py")
    with open(ka_script, "w") as f:
        f.write(KEEPALIVE_SERVER)
    cert = make_certs(outdir)
    ciphers = cipher_table()

    names = ["http10", "http11"] + [c[0] for c in CURL_TLS_CASES] + [c[0] for c in S_CLIENT_CASES]
    ports = {}
    for n in names:
        ports[n] = free_port()
    if len(set(ports.values())) != len(ports):
        raise TrafficError("port collision %r" % ports)

    pcap = os.path.join(outdir, "tls_traffic.pcap")
    procs = Procs()
    tcpdump = None
    summary = {"pcap": pcap, "ports": ports, "cert": cert}
    try:
        procs.start("http.server", [PY, "-m", "http.server", str(ports["http10"]), "--bind", "127.0.0.1",
                                    "--directory", www])
        procs.start("keep-alive server", [PY, ka_script, str(ports["http11"])])
        procs.start("openssl s_server tls11", [
            "openssl", "s_server", "-accept", "127.0.0.1:%d" % ports["tls11"], "-cert", cert["pem"],
            "-key", cert["key"], "-www", "-quiet", "-alpn", "http/1.1"], stdin=subprocess.PIPE)
        for name in ("h2", "h2tls12"):
            procs.start("nghttpd " + name, ["nghttpd", "--address=127.0.0.1", "--htdocs=" + www,
                                            str(ports[name]), cert["key"], cert["pem"]])
        for name, _, _, _, server_alpn, _, _ in S_CLIENT_CASES:
            cmd = ["openssl", "s_server", "-accept", "127.0.0.1:%d" % ports[name], "-cert", cert["pem"],
                   "-key", cert["key"], "-www", "-quiet"]
            if server_alpn:
                cmd += ["-alpn", server_alpn]
            procs.start("openssl s_server " + name, cmd, stdin=subprocess.PIPE)
        for n in names:
            wait_tcp("127.0.0.1", ports[n])
        procs.check_alive()

        bpf = "tcp and (%s)" % " or ".join("port %d" % ports[n] for n in names)
        tcpdump = Tcpdump("lo", pcap, bpf)
        t_start = time.time()

        http = []
        wfmt = "%{local_port}\t%{num_connects}\t%{http_code}\t%{content_type}\t%header{server}\t" \
               "%header{content-length}\t%{http_version}\n"

        def parse_w(out):
            rows = []
            for line in out.decode().splitlines():
                c = line.split("\t")
                rows.append({"client_port": int(c[0]), "connects": int(c[1]), "status": int(c[2]),
                             "content_type": c[3], "server": c[4],
                             "content_length": int(c[5]) if c[5] else 0, "http_version": c[6]})
            return rows

        # http.server (HTTP/1.0 server): an HTTP/1.1 request, then an HTTP/1.0 one
        base10 = "http://127.0.0.1:%d" % ports["http10"]
        for uri, version, extra, status in (("/index.html", "HTTP/1.1", [], 200),
                                            ("/nothing-here", "HTTP/1.0", ["--http1.0"], 404)):
            p = run(["curl", "-sS", "--max-time", "20", "-o", "/dev/null", "-w", wfmt] + extra
                    + [base10 + uri], timeout=30)
            (row,) = parse_w(p.stdout)
            if row["status"] != status:
                raise TrafficError("curl %s: status %r" % (uri, row))
            row.update({"server_port": ports["http10"], "method": "GET", "uri": uri, "version": version,
                        "host": "127.0.0.1:%d" % ports["http10"], "user_agent": "curl/" + curl_version(),
                        "referer": "", "request_content_length": 0})
            http.append(row)

        # the keep-alive server: one curl, one connection, every request
        base11 = "http://127.0.0.1:%d" % ports["http11"]
        common = ["-A", USER_AGENT, "-e", REFERER, "-H", "Host: " + VHOST, "-o", "/dev/null", "-w", wfmt]
        # method, uri, curl options, status, request body length, response type and length
        reqs = [("GET", "/a.txt", [], 200, 0, "text/plain; charset=utf-8", len(KA_A_TXT)),
                ("GET", "/missing", [], 404, 0, "text/html", len(KA_404)),
                ("POST", "/submit", ["-d", POST_BODY], 201, len(POST_BODY), "application/json",
                 len(KA_CREATED)),
                ("HEAD", "/a.txt", ["-I"], 200, 0, "text/plain; charset=utf-8", len(KA_A_TXT)),
                ("GET", "/big.txt", [], 200, 0, "text/plain", len(KA_BIG)),
                ("GET", "/b.json", [], 200, 0, "application/json", len(KA_B_JSON))]
        reqs += [("GET", "/b.json?n=%d" % n, [], 200, 0, "application/json", len(KA_B_JSON))
                 for n in range(1, KA_EXTRA_GETS + 1)]
        cmd = ["curl", "-sS", "--max-time", "20"]
        for i, (method, uri, extra, _, _, _, _) in enumerate(reqs):
            if i:
                cmd.append("--next")
            cmd += common + extra + [base11 + uri]
        p = run(cmd, timeout=30)
        rows = parse_w(p.stdout)
        if len(rows) != len(reqs):
            raise TrafficError("keep-alive curl: %r" % p.stdout)
        if [r["connects"] for r in rows] != [1] + [0] * (len(reqs) - 1) or \
                len({r["client_port"] for r in rows}) != 1:
            raise TrafficError("keep-alive curl did not reuse its connection: %r" % rows)
        for (method, uri, _, status, req_len, ctype, length), row in zip(reqs, rows):
            if (row["status"], row["server"], row["content_type"], row["content_length"]) != \
                    (status, KA_SERVER, ctype, length):
                raise TrafficError("keep-alive %s %s: %r" % (method, uri, row))
            row.update({"server_port": ports["http11"], "method": method, "uri": uri, "version": "HTTP/1.1",
                        "host": VHOST, "user_agent": USER_AGENT, "referer": REFERER,
                        "request_content_length": req_len})
            http.append(row)

        tls = []
        # curl over TLS with ALPN. In TLS 1.3 the server's choice travels in
        # the encrypted EncryptedExtensions: on the wire (and so for the
        # agent and tshark) it is visible in TLS 1.2 only, hence the
        # --tls-max 1.2 cases
        for name, sni, curl_args, want_version, want_alpn, want_http in CURL_TLS_CASES:
            port = ports[name]
            p = run(["curl", "-v", "-sS", "--max-time", "20", "-k", "--resolve",
                     "%s:%d:127.0.0.1" % (sni, port), "-o", "/dev/null",
                     "-w", "%{http_code}\t%{http_version}\t%{local_port}\n"] + curl_args
                    + ["https://%s:%d/" % (sni, port)], timeout=30)
            code, http_version, cport = p.stdout.decode().strip().split("\t")
            if code != "200" or http_version != want_http:
                raise TrafficError("curl %s: http_code %s, http_version %s (wanted %s)"
                                   % (name, code, http_version, want_http))
            version_name, cipher, offered, chosen = curl_tls_info(p.stderr.decode(errors="replace"))
            if chosen != want_alpn or version_name != want_version:
                raise TrafficError("curl %s: %s with ALPN %s, wanted %s with %s"
                                   % (name, version_name, chosen, want_version, want_alpn))
            tls.append({"name": name, "client": "curl", "client_port": int(cport), "server_port": port,
                        "sni": sni, "version_name": version_name, "version": VERSIONS[version_name],
                        "cipher_name": ciphers[cipher][0], "cipher_suite": ciphers[cipher][1],
                        "alpn": offered, "alpn_negotiated": chosen,
                        "alpn_server": chosen if version_name == "TLSv1.2" else ""})

        # openssl s_client: chosen versions and ciphers, stdin at EOF so it
        # closes right after the handshake
        for name, args, sni, alpn, server_alpn, want_version, want_cipher in S_CLIENT_CASES:
            port = ports[name]
            cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port] + args
            if sni:
                cmd += ["-servername", sni]
            if alpn:
                cmd += ["-alpn", alpn]
            p = run(cmd, timeout=20, stdin=subprocess.DEVNULL)
            out = p.stdout.decode(errors="replace")
            m = re.search(r"^New, (TLSv[0-9.]+), Cipher is (\S+)", out, re.M)
            if not m or (m.group(1), m.group(2)) != (want_version, want_cipher):
                raise TrafficError("s_client %s: handshake not as asked (%s %s):\n%s"
                                   % (name, want_version, want_cipher, out[-3000:]))
            a = re.search(r"^ALPN protocol: (\S+)", out, re.M)
            chosen = a.group(1) if a else ""
            if chosen != (server_alpn or ""):
                raise TrafficError("s_client %s: ALPN %r offered, %r chosen, wanted %r"
                                   % (name, alpn, chosen, server_alpn))
            tls.append({"name": name, "client": "openssl s_client", "client_port": None, "server_port": port,
                        "sni": sni or "", "version_name": want_version, "version": VERSIONS[want_version],
                        "cipher_name": ciphers[want_cipher][0], "cipher_suite": ciphers[want_cipher][1],
                        "alpn": alpn, "alpn_negotiated": chosen,
                        "alpn_server": chosen if want_version == "TLSv1.2" else ""})

        procs.check_alive()
        time.sleep(0.5)  # let the last FINs and ACKs pass before stopping the capture
        stats = tcpdump.stop()
        tcpdump = None
        summary.update({"http": http, "tls": tls, "tcpdump": stats, "duration": time.time() - t_start})
    finally:
        if tcpdump is not None:
            tcpdump.stop()
        procs.stop()
    if not os.path.exists(pcap) or os.path.getsize(pcap) <= 24:
        raise TrafficError("capture is empty: %s" % pcap)
    return summary


_CURL_VERSION = []


def curl_version():
    """'7.88.1': the version in curl's default User-Agent."""
    if not _CURL_VERSION:
        out = run(["curl", "--version"]).stdout.decode()
        _CURL_VERSION.append(out.split()[1])
    return _CURL_VERSION[0]


def main(argv):
    if len(argv) != 2:
        print("usage: gen_tls_traffic.py OUTDIR", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("gen_tls_traffic: needs root (tcpdump on lo)", file=sys.stderr)
        return 1
    s = generate(argv[1])
    with open(os.path.join(argv[1], "tls_traffic.json"), "w") as f:
        json.dump(s, f, indent=1)
    print(s["pcap"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
