"""scripts/sonde-certs makes a CA and agent and collector certificates that
OpenSSL accepts, with the fields docs/certs.md promises, and that carry a
real mutual-TLS handshake (openssl s_server / s_client, TLS 1.2, ALPN h2) on
loopback; a client whose certificate comes from another CA is refused.

Needs only openssl; nothing here needs root or a build.

Run: /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration/test_certs.py
"""

import datetime
import os
import re
import shutil
import socket
import stat
import subprocess

import pytest

import util

SCRIPT = os.path.join(util.REPO_ROOT, "scripts", "sonde-certs")
DOC = os.path.join(util.REPO_ROOT, "docs", "certs.md")

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


# ---------------------------------------------------------------- helpers

def certs(*args, expect_rc=0, env=None):
    """Run sonde-certs; check its exit code unless expect_rc is None."""
    p = subprocess.run([SCRIPT] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=30, env=env)
    if expect_rc is not None:
        assert p.returncode == expect_rc, "sonde-certs %s: exit %d, expected %d\nstdout:\n%s\nstderr:\n%s" % (
            " ".join(map(str, args)), p.returncode, expect_rc, p.stdout, p.stderr)
    return p


def openssl(*args, check=True, input_text=None):
    p = subprocess.run(["openssl"] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=30, input=input_text)
    if check:
        assert p.returncode == 0, "openssl %s: exit %d\n%s" % (" ".join(map(str, args)), p.returncode,
                                                             p.stderr)
    return p


def verify(ca, cert, *extra):
    return openssl("verify", *extra, "-CAfile", ca, cert, check=False)


class Cert:
    """What `openssl x509 -text` says about a certificate: subject and issuer
    as {attribute: value}, and each extension as (critical, value text)."""

    def __init__(self, path):
        self.path = str(path)
        self.text = openssl("x509", "-in", self.path, "-noout", "-text").stdout
        self.subject = self._dn("Subject")
        self.issuer = self._dn("Issuer")
        self.ext = {}
        lines = self.text.splitlines()
        for i, line in enumerate(lines):
            m = re.match(r"^ {12}(X509v3 [^:]+):( critical)?\s*$", line)
            if m:
                value = []
                for nxt in lines[i + 1:]:
                    if not nxt.startswith(" " * 16):
                        break
                    value.append(nxt.strip())
                self.ext[m.group(1)] = (bool(m.group(2)), " ".join(value))
        dates = openssl("x509", "-in", self.path, "-noout", "-startdate", "-enddate").stdout
        fmt = "%b %d %H:%M:%S %Y GMT"
        d = dict(line.split("=", 1) for line in dates.splitlines())
        self.not_before = datetime.datetime.strptime(" ".join(d["notBefore"].split()), fmt)
        self.not_after = datetime.datetime.strptime(" ".join(d["notAfter"].split()), fmt)
        self.serial = openssl("x509", "-in", self.path, "-noout", "-serial").stdout.strip()

    def _dn(self, which):
        m = re.search(r"^\s+%s: (.*)$" % which, self.text, re.M)
        assert m, "no %s in:\n%s" % (which, self.text)
        return dict(part.strip().split(" = ", 1) for part in m.group(1).split(", "))

    def sans(self):
        _, v = self.ext.get("X509v3 Subject Alternative Name", (False, ""))
        return set(s.strip() for s in v.split(",") if s.strip())

    def days(self):
        return (self.not_after - self.not_before).days


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def pubkey_of_key(key):
    return openssl("pkey", "-in", key, "-pubout").stdout


def pubkey_of_cert(crt):
    return openssl("x509", "-in", crt, "-noout", "-pubkey").stdout


def read(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """CA "a" with a collector certificate (SAN IP:127.0.0.1) and an agent
    certificate; an unrelated CA "b" with an agent certificate of the same
    name."""
    d = tmp_path_factory.mktemp("pki")
    a, b = d / "a", d / "b"
    certs("ca", a)
    certs("ca", b, "--name", "other CA")
    certs("issue", a, "collector", "collector.test", "--san", "IP:127.0.0.1,DNS:collector")
    certs("issue", a, "agent", "agent-1")
    certs("issue", b, "agent", "agent-1")
    return a, b


# ---------------------------------------------------------------- the script itself

def test_script_is_executable_posix_sh():
    assert os.access(SCRIPT, os.X_OK), "%s is not executable" % SCRIPT
    with open(SCRIPT) as f:
        head = f.read(2000)
    assert head.startswith("#!/bin/sh\n")
    assert re.search(r"^set -eu$", head, re.M)
    p = subprocess.run(["sh", "-n", SCRIPT], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    if shutil.which("shellcheck"):
        p = subprocess.run(["shellcheck", "-s", "sh", SCRIPT], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr


def test_help_and_no_arguments():
    for flag in ("-h", "--help"):
        p = certs(flag)
        for word in ("ca DIR", "issue DIR ROLE NAME", "show FILE", "--san", "--days", "--force", "--name"):
            assert word in p.stdout, (flag, word, p.stdout)
    p = certs(expect_rc=2)
    assert "usage:" in p.stderr and p.stdout == ""
    p = certs("frobnicate", expect_rc=2)
    assert "frobnicate" in p.stderr


def test_every_option_is_documented():
    doc = open(DOC, encoding="utf-8").read()
    usage = certs("--help").stdout
    opts = set(re.findall(r"--[a-z][a-z-]+", usage))
    assert {"--days", "--name", "--san", "--force"} <= opts
    missing = [o for o in sorted(opts) if o not in doc]
    assert not missing, "options missing from docs/certs.md: %s" % missing
    for word in ("--tls-cert", "--tls-key", "--tls-ca", "sonde-certs ca", "sonde-certs issue",
                 "sonde-certs show", "--force", "CN"):
        assert word in doc, word


# ---------------------------------------------------------------- the CA

def test_ca(pki):
    a, _ = pki
    assert mode(a / "ca.key") == 0o600
    ca = Cert(a / "ca.crt")
    assert ca.subject == {"CN": "sonde CA"} and ca.issuer == ca.subject
    assert ca.ext["X509v3 Basic Constraints"] == (True, "CA:TRUE")
    assert ca.ext["X509v3 Key Usage"] == (True, "Certificate Sign, CRL Sign")
    assert "X509v3 Subject Key Identifier" in ca.ext
    assert "NIST CURVE: P-256" in ca.text and "ecdsa-with-SHA256" in ca.text
    assert ca.days() == 3650
    assert pubkey_of_key(a / "ca.key") == pubkey_of_cert(a / "ca.crt")
    p = verify(a / "ca.crt", a / "ca.crt")
    assert p.returncode == 0 and p.stdout.strip().endswith(": OK"), p.stdout + p.stderr


def test_ca_name_and_days(tmp_path):
    certs("ca", tmp_path / "x", "--name", "site 7 CA", "--days", "30")
    ca = Cert(tmp_path / "x" / "ca.crt")
    assert ca.subject == {"CN": "site 7 CA"}
    assert ca.days() == 30


def test_ca_refuses_to_overwrite(tmp_path):
    certs("ca", tmp_path)
    before = (read(tmp_path / "ca.key"), read(tmp_path / "ca.crt"))
    p = certs("ca", tmp_path, expect_rc=1)
    assert "ca.key" in p.stderr and "overwrit" in p.stderr, p.stderr
    assert (read(tmp_path / "ca.key"), read(tmp_path / "ca.crt")) == before
    # one file left alone is enough to refuse
    os.unlink(tmp_path / "ca.key")
    certs("ca", tmp_path, expect_rc=1)
    assert not os.path.exists(tmp_path / "ca.key")


@pytest.mark.parametrize("args", [["--days", "0"], ["--days", "ten"], ["--days"],
                                  ["--name", "a/b"], ["--name", ""], ["--bogus"]])
def test_ca_bad_options(tmp_path, args):
    p = certs("ca", tmp_path / "x", *args, expect_rc=2)
    assert p.stderr.strip()
    assert not os.path.exists(tmp_path / "x" / "ca.key")


# ---------------------------------------------------------------- leaf certificates

@pytest.mark.parametrize("name,role", [("collector.test", "collector"), ("agent-1", "agent")])
def test_issued_certificate(pki, name, role):
    a, _ = pki
    crt, key = a / (name + ".crt"), a / (name + ".key")
    assert mode(key) == 0o600
    c = Cert(crt)
    assert c.subject == {"O": "sonde", "OU": role, "CN": name}
    assert c.issuer == {"CN": "sonde CA"}
    assert c.ext["X509v3 Basic Constraints"] == (False, "CA:FALSE")
    assert c.ext["X509v3 Key Usage"] == (True, "Digital Signature, Key Encipherment")
    assert c.ext["X509v3 Extended Key Usage"] == (
        False, "TLS Web Server Authentication, TLS Web Client Authentication")
    ca = Cert(a / "ca.crt")
    aki = c.ext["X509v3 Authority Key Identifier"][1]
    assert ca.ext["X509v3 Subject Key Identifier"][1] in aki
    assert "NIST CURVE: P-256" in c.text and "ecdsa-with-SHA256" in c.text
    assert c.days() == 825
    assert pubkey_of_key(key) == pubkey_of_cert(crt)
    want = {"DNS:" + name}
    if role == "collector":
        want |= {"IP Address:127.0.0.1", "DNS:collector"}
    assert c.sans() == want
    # both roles serve and dial: the certificate passes as either
    for purpose in ("sslserver", "sslclient"):
        p = verify(a / "ca.crt", crt, "-purpose", purpose)
        assert p.returncode == 0 and p.stdout.strip().endswith(": OK"), (purpose, p.stdout + p.stderr)


def test_certificate_from_another_ca_does_not_verify(pki):
    a, b = pki
    p = verify(a / "ca.crt", b / "agent-1.crt")
    assert p.returncode != 0, p.stdout
    assert "unable to get local issuer certificate" in p.stderr + p.stdout


def test_serials_are_random(pki):
    a, b = pki
    serials = {Cert(a / "collector.test.crt").serial, Cert(a / "agent-1.crt").serial,
               Cert(b / "agent-1.crt").serial}
    assert len(serials) == 3
    for s in serials:
        assert len(s.split("=", 1)[1]) >= 30, s  # ~128 random bits, not 01, 02, ...


def test_ip_name_and_sans(tmp_path):
    certs("ca", tmp_path)
    certs("issue", tmp_path, "collector", "192.0.2.7", "--san", "DNS:c.example, IP:2001:db8::7",
          "--san", "DNS:*.c.example,IP:192.0.2.7", "--days", "10")
    c = Cert(tmp_path / "192.0.2.7.crt")
    assert c.subject["CN"] == "192.0.2.7"
    assert c.sans() == {"IP Address:192.0.2.7", "DNS:c.example", "IP Address:2001:DB8:0:0:0:0:0:7",
                        "DNS:*.c.example"}
    assert c.days() == 10
    p = verify(tmp_path / "ca.crt", tmp_path / "192.0.2.7.crt", "-verify_ip", "192.0.2.7")
    assert p.returncode == 0, p.stdout + p.stderr


def test_issue_refuses_to_overwrite_and_force_replaces(tmp_path):
    certs("ca", tmp_path)
    certs("issue", tmp_path, "agent", "s1")
    before = (read(tmp_path / "s1.key"), read(tmp_path / "s1.crt"))
    p = certs("issue", tmp_path, "agent", "s1", expect_rc=1)
    assert "s1.crt" in p.stderr and "--force" in p.stderr, p.stderr
    assert (read(tmp_path / "s1.key"), read(tmp_path / "s1.crt")) == before

    certs("issue", tmp_path, "agent", "s1", "--force")
    after = (read(tmp_path / "s1.key"), read(tmp_path / "s1.crt"))
    assert after[0] != before[0] and after[1] != before[1], "--force must make a new key and certificate"
    assert mode(tmp_path / "s1.key") == 0o600
    assert pubkey_of_key(tmp_path / "s1.key") == pubkey_of_cert(tmp_path / "s1.crt")
    assert Cert(tmp_path / "s1.crt").subject["CN"] == "s1"
    assert verify(tmp_path / "ca.crt", tmp_path / "s1.crt").returncode == 0
    assert sorted(os.listdir(tmp_path)) == ["ca.crt", "ca.key", "s1.crt", "s1.key"]


@pytest.mark.parametrize("role", ["server", "Agent", "", "agent,collector"])
def test_bad_role_is_refused(tmp_path, role):
    certs("ca", tmp_path)
    p = certs("issue", tmp_path, role, "x1", expect_rc=None)
    assert p.returncode != 0 and "ROLE" in p.stderr, (p.returncode, p.stderr)
    assert sorted(os.listdir(tmp_path)) == ["ca.crt", "ca.key"]


@pytest.mark.parametrize("name", ["../x", "a/b", "-x", ".hidden", "a b", "", "x;rm", "ca", "caf\u00e9",
                                  "a" * 65])
def test_bad_name_is_refused(tmp_path, name):
    certs("ca", tmp_path / "pki")
    p = certs("issue", tmp_path / "pki", "agent", name, expect_rc=None)
    assert p.returncode != 0 and p.stderr.strip(), (p.returncode, p.stderr)
    assert sorted(os.listdir(tmp_path / "pki")) == ["ca.crt", "ca.key"]
    assert sorted(os.listdir(tmp_path)) == ["pki"]


@pytest.mark.parametrize("args", [["--san", "URI:http://x"], ["--san", "DNS:a$b"], ["--san", "DNS:"],
                                  ["--san", "IP:300.1.1.1"], ["--san", "DNS:a,,DNS:b"], ["--san"],
                                  ["--days", "-1"], ["--days", "99999999"], ["--frob"]])
def test_bad_issue_options_are_refused(tmp_path, args):
    certs("ca", tmp_path)
    p = certs("issue", tmp_path, "agent", "x1", *args, expect_rc=2)
    assert p.stderr.strip()
    assert sorted(os.listdir(tmp_path)) == ["ca.crt", "ca.key"]


def test_issue_needs_a_ca(tmp_path):
    p = certs("issue", tmp_path, "agent", "x1", expect_rc=1)
    assert "no CA" in p.stderr and "sonde-certs ca" in p.stderr, p.stderr
    assert os.listdir(tmp_path) == []


def test_openssl_failure_names_the_command(tmp_path):
    """A CA key that is not a key: the signing step fails, the message names
    the openssl command, nothing is written and no temporary is left."""
    certs("ca", tmp_path / "pki")
    with open(tmp_path / "pki" / "ca.key", "w") as f:
        f.write("not a key\n")
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = dict(os.environ, TMPDIR=str(tmpdir))
    p = certs("issue", tmp_path / "pki", "agent", "x1", expect_rc=1, env=env)
    assert "command failed" in p.stderr and "openssl x509 -req" in p.stderr, p.stderr
    assert sorted(os.listdir(tmp_path / "pki")) == ["ca.crt", "ca.key"]
    assert os.listdir(tmpdir) == []


def test_no_temporaries_left(tmp_path):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = dict(os.environ, TMPDIR=str(tmpdir))
    certs("ca", tmp_path / "pki", env=env)
    certs("issue", tmp_path / "pki", "agent", "x1", env=env)
    certs("issue", tmp_path / "pki", "agent", "x1", expect_rc=1, env=env)
    certs("show", tmp_path / "pki" / "x1.crt", env=env)
    assert os.listdir(tmpdir) == []
    assert sorted(os.listdir(tmp_path / "pki")) == ["ca.crt", "ca.key", "x1.crt", "x1.key"]


def test_show(pki):
    a, _ = pki
    p = certs("show", a / "collector.test.crt")
    out = p.stdout
    assert re.search(r"^subject=.*CN = collector\.test", out, re.M), out
    assert re.search(r"^issuer=CN = sonde CA", out, re.M), out
    assert "IP Address:127.0.0.1" in out and "DNS:collector.test" in out
    assert "TLS Web Server Authentication, TLS Web Client Authentication" in out
    assert "notBefore=" in out and "notAfter=" in out
    p = certs("show", a / "nonexistent.crt", expect_rc=1)
    assert "nonexistent.crt" in p.stderr
    p = certs("show", a / "ca.key", expect_rc=1)
    assert "openssl x509" in p.stderr


# ---------------------------------------------------------------- a real mutual-TLS handshake

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TLSServer:
    """openssl s_server as a stand-in collector: TLS 1.2, ALPN h2, requires
    a client certificate signed by its CA. One connection, then it exits."""

    def __init__(self, tmp_path, cert, key, ca):
        self.out_path = tmp_path / "s_server.out"
        for _ in range(5):
            self.port = free_port()
            self.out = open(self.out_path, "wb")
            self.proc = subprocess.Popen(
                ["openssl", "s_server", "-accept", "127.0.0.1:%d" % self.port,
                 "-cert", str(cert), "-key", str(key), "-CAfile", str(ca),
                 "-Verify", "1", "-verify_return_error", "-alpn", "h2", "-tls1_2", "-naccept", "1"],
                stdin=subprocess.PIPE, stdout=self.out, stderr=subprocess.STDOUT)
            self.out.close()
            try:
                util.wait_for(lambda: "ACCEPT" in self.output() or self.proc.poll() is not None,
                              10, what="openssl s_server to listen")
            except AssertionError:
                self.stop()
                raise
            if self.proc.poll() is None:
                return
            # lost the port to someone else: try another
        raise AssertionError("openssl s_server would not start:\n" + self.output())

    def output(self):
        with open(self.out_path, errors="replace") as f:
            return f.read()

    def finish(self, timeout=10):
        """Wait for the one connection to end; returns the server's output."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        return self.output()

    def stop(self):
        if self.proc.stdin:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        util.kill_proc(self.proc)


def s_client(port, cert, key, ca, *extra):
    return subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-cert", str(cert),
         "-key", str(key), "-CAfile", str(ca), "-verify_return_error", "-alpn", "h2",
         "-tls1_2"] + list(extra),
        input="Q\n", capture_output=True, text=True, timeout=15)


def test_mutual_tls_handshake(pki, tmp_path):
    a, _ = pki
    srv = TLSServer(tmp_path, a / "collector.test.crt", a / "collector.test.key", a / "ca.crt")
    try:
        c = s_client(srv.port, a / "agent-1.crt", a / "agent-1.key", a / "ca.crt",
                     "-verify_ip", "127.0.0.1", "-verify_hostname", "collector.test")
        out = srv.finish()
    finally:
        srv.stop()
    assert c.returncode == 0, c.stdout[-3000:] + c.stderr[-3000:]
    assert "Verify return code: 0 (ok)" in c.stdout
    assert "ALPN protocol: h2" in c.stdout
    assert re.search(r"Protocol\s*: TLSv1\.2", c.stdout), c.stdout
    assert re.search(r"^subject=.*CN = collector\.test", c.stdout, re.M), c.stdout
    # the server asked for, got and verified the agent's certificate
    assert re.search(r"^subject=.*OU = agent, CN = agent-1", out, re.M), out
    assert "verify error" not in out, out


def test_handshake_refuses_a_client_from_another_ca(pki, tmp_path):
    a, b = pki
    srv = TLSServer(tmp_path, a / "collector.test.crt", a / "collector.test.key", a / "ca.crt")
    try:
        c = s_client(srv.port, b / "agent-1.crt", b / "agent-1.key", a / "ca.crt",
                     "-verify_ip", "127.0.0.1")
        out = srv.finish()
    finally:
        srv.stop()
    assert c.returncode != 0, c.stdout[-3000:]
    assert "alert unknown ca" in c.stderr, c.stderr
    assert "unable to get local issuer certificate" in out, out
    assert not re.search(r"^subject=.*CN = agent-1", out, re.M), out


def test_handshake_refuses_a_collector_address_not_in_its_sans(pki, tmp_path):
    """The agent's side of the check: 127.0.0.2 is not among the collector
    certificate's SANs, so a client checking that address hangs up."""
    a, _ = pki
    srv = TLSServer(tmp_path, a / "collector.test.crt", a / "collector.test.key", a / "ca.crt")
    try:
        c = s_client(srv.port, a / "agent-1.crt", a / "agent-1.key", a / "ca.crt",
                     "-verify_ip", "127.0.0.2")
        srv.finish()
    finally:
        srv.stop()
    assert c.returncode != 0, c.stdout[-3000:]
    assert "IP address mismatch" in c.stdout + c.stderr, c.stdout[-3000:] + c.stderr
