"""Cleartext gRPC is for loopback only, unless forced: the agent's --push and
--listen and the collector's --listen and --pull refuse a cleartext
non-loopback address with a usage error (exit 2) that says why, and accept
it with --insecure-cleartext-anywhere (docs/agent.md, docs/collector.md).
Malformed addresses are usage errors too. Nothing is opened in the refused
cases, so no network is needed. A push over TLS to a loopback port where
nothing listens is reported in words (the socket's error), not as an
OpenSSL error code."""
import os
import subprocess

import pytest

import agent_grpc_util
import grpc_common
import util

REFUSED = "cleartext to a non-loopback address"
TIMEOUT = 30


def collector_path():
    return os.path.join(util.build_dir(), "sonde-collector")


def run(argv):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT,
                       env=util.agent_env())
    util.assert_no_sanitizer(r.stderr, os.path.basename(argv[0]))
    return r


@pytest.mark.parametrize("args,why", [
    (["--push", "grpc://192.0.2.1:50051"], "--push grpc://192.0.2.1:50051: " + REFUSED),
    (["--listen", "192.0.2.1:50052", "--insecure-cleartext"],
     "--listen 192.0.2.1:50052 with --insecure-cleartext: not a loopback address"),
    (["--push", "http://127.0.0.1:1"], "expected grpcs://HOST:PORT or grpc://HOST:PORT"),
    (["--listen", "::1:50052"], "expected HOST:PORT, [V6]:PORT or :PORT"),
])
def test_agent_refuses(tmp_path, args, why):
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000"))
    r = run([util.agent_path(), "-r", str(empty), "-o", "null"] + args)
    assert r.returncode == 2, r.stderr
    assert why in r.stderr, r.stderr


def test_agent_cleartext_anywhere_is_allowed(tmp_path):
    """Forced: the address is accepted. 0.0.0.0 is not loopback by name but
    connects locally (to a closed port), so no packet leaves the machine;
    with no collector the agent's events are counted as lost: exit 1."""
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000"))
    r = run([util.agent_path(), "-r", str(empty), "-o", "null", "--push", "grpc://0.0.0.0:9",
             "--insecure-cleartext-anywhere", "--push-drain", "0"])
    assert REFUSED not in r.stderr, r.stderr
    assert r.returncode == 1, r.stderr
    assert "events lost" in r.stderr, r.stderr


@pytest.mark.parametrize("args,why", [
    (["--listen", "192.0.2.1:50051", "--insecure-cleartext"],
     "--listen 192.0.2.1:50051 with --insecure-cleartext: not a loopback address"),
    (["--listen", "127.0.0.1:0", "--insecure-cleartext", "--pull", "grpc://192.0.2.1:50052"],
     "--pull grpc://192.0.2.1:50052: " + REFUSED),
    (["--listen", "127.0.0.1:0", "--insecure-cleartext", "--pull", "192.0.2.1:50052"],
     "expected grpcs://HOST:PORT or grpc://HOST:PORT"),
])
def test_collector_refuses(args, why):
    r = run([collector_path()] + args)
    assert r.returncode == 2, r.stderr
    assert why in r.stderr, r.stderr


def test_tls_push_to_closed_port_says_refused(tmp_path):
    pki = grpc_common.make_pki(tmp_path / "pki", agents=("a",))
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000"))
    port = agent_grpc_util.free_port()
    r = run([util.agent_path(), "-r", str(empty), "-o", "null", "--agent-id", "a",
             "--push", "grpcs://127.0.0.1:%d" % port, "--push-drain", "0"] + pki.agent_args("a"))
    assert "127.0.0.1:%d: Connection refused" % port in r.stderr, r.stderr
    assert "reason(" not in r.stderr, r.stderr
