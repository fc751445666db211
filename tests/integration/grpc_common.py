"""What the gRPC test helpers share (grpc_util.py for the collector's tests,
agent_grpc_util.py for the agent's): paths, the protobuf classes, and the
certificates.

* ``compile_protos(dir)``: protoc --python_out for events, d3events and
  health, once per session, loaded under private module names (nothing is
  put in ``sys.modules['sonde']``); returns a ``Protos``.
* ``make_pki(dir, agents, collectors, clients)``: a CA and certificates made
  by scripts/sonde-certs; agents and collectors get SAN IP:127.0.0.1.
  ``Pki`` gives paths, command-line arguments and grpc credentials.

Run all Python with /usr/bin/python3.
"""

import importlib.util
import os
import re
import subprocess
import sys
import threading
import types

import grpc

import util

PROTO_DIR = os.path.join(util.REPO_ROOT, "proto")
PROTO_FILES = ("sonde/v1/events.proto", "sonde/v1/d3events.proto", "grpc/health/v1/health.proto")
SERVICE = "sonde.v1.D3Events"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
CERTS_SCRIPT = os.path.join(util.REPO_ROOT, "scripts", "sonde-certs")
LISTEN_RE = re.compile(r"sonde-collector: listening on \S+ \(port (\d+), (cleartext|TLS)\)")


def collector_path():
    return os.path.join(util.build_dir(), "sonde-collector")


# ---------------------------------------------------------------- protos

class Protos:
    """The generated modules (.events, .d3, .health) and the maps between
    message names ("FlowPurge"), event type names ("flow_purge", the member
    names of sonde.v1.Event) and the publish method of each type."""

    def __init__(self, events, d3, health):
        self.events = events
        self.d3 = d3
        self.health = health
        self.type_of_message = {}   # "FlowPurge" -> "flow_purge"
        self.class_of_type = {}     # "flow_purge" -> events.FlowPurge
        for f in events.Event.DESCRIPTOR.fields:
            self.type_of_message[f.message_type.name] = f.name
            self.class_of_type[f.name] = getattr(events, f.message_type.name)
        self.publish_methods = {}   # "PublishFlowPurgeStream" -> "flow_purge"
        for m in d3.DESCRIPTOR.services_by_name["D3Events"].methods:
            if m.name.startswith("Publish") and m.name.endswith("Stream"):
                self.publish_methods[m.name] = self.type_of_message[m.input_type.name]

    def method_of_type(self, t):
        for m, tt in self.publish_methods.items():
            if tt == t:
                return m
        raise KeyError(t)

    def event_class(self, short_name):
        """The message class of an Event member by its message name ("Flow")."""
        return getattr(self.events, short_name)

    def status_name(self, value):
        return self.d3.PublishStatus.Name(value)


_protos = None
_protos_lock = threading.Lock()


def _load_module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def compile_protos(out_dir):
    """protoc --python_out=out_dir for the three files, once per session
    (later calls return the first result, whatever their out_dir).

    d3events_pb2 imports ``sonde.v1.events_pb2``: for the time of that import
    a private package stands in for ``sonde.v1`` in sys.modules, and whatever
    was there before is put back. grpc/health/v1/health_pb2.py would clash
    with the installed ``grpc`` package if imported by name."""
    global _protos
    with _protos_lock:
        if _protos is not None:
            return _protos
        out_dir = str(out_dir)
        os.makedirs(out_dir, exist_ok=True)
        p = subprocess.run(["protoc", "--python_out=" + out_dir, "-I", PROTO_DIR]
                           + [os.path.join(PROTO_DIR, f) for f in PROTO_FILES],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, "protoc failed:\n%s" % p.stderr
        events = _load_module("sonde_test_events_pb2",
                              os.path.join(out_dir, "sonde", "v1", "events_pb2.py"))
        names = ("sonde", "sonde.v1", "sonde.v1.events_pb2")
        saved = {k: sys.modules.get(k) for k in names}
        pkg = types.ModuleType("sonde")
        sub = types.ModuleType("sonde.v1")
        pkg.v1 = sub
        sub.events_pb2 = events
        sys.modules.update({"sonde": pkg, "sonde.v1": sub, "sonde.v1.events_pb2": events})
        try:
            d3 = _load_module("sonde_test_d3events_pb2",
                              os.path.join(out_dir, "sonde", "v1", "d3events_pb2.py"))
        finally:
            for k, v in saved.items():
                if v is None:
                    sys.modules.pop(k, None)
                else:
                    sys.modules[k] = v
        health = _load_module("sonde_test_health_pb2",
                              os.path.join(out_dir, "grpc", "health", "v1", "health_pb2.py"))
        _protos = Protos(events, d3, health)
        return _protos


# ---------------------------------------------------------------- pki

class Pki:
    """Paths made by scripts/sonde-certs in one directory."""

    def __init__(self, d):
        self.dir = str(d)
        self.ca = os.path.join(self.dir, "ca.crt")
        self.collector_cert = os.path.join(self.dir, "collector.crt")
        self.collector_key = os.path.join(self.dir, "collector.key")

    def cert(self, name):
        return os.path.join(self.dir, name + ".crt")

    def key(self, name):
        return os.path.join(self.dir, name + ".key")

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    def agent_args(self, name):
        return ["--tls-cert", self.cert(name), "--tls-key", self.key(name), "--tls-ca", self.ca]

    def collector_args(self):
        return ["--tls-cert", self.collector_cert, "--tls-key", self.collector_key,
                "--tls-ca", self.ca]

    def server_credentials(self, name, require_client_auth=True):
        return grpc.ssl_server_credentials([(self.read(self.key(name)), self.read(self.cert(name)))],
                                           root_certificates=self.read(self.ca),
                                           require_client_auth=require_client_auth)

    def channel_credentials(self, name=None, ca=None):
        """Trusting this CA (or ca, a PEM path), with name's certificate as
        client certificate (none when name is None)."""
        root = self.read(ca or self.ca)
        if name is None:
            return grpc.ssl_channel_credentials(root_certificates=root)
        return grpc.ssl_channel_credentials(root_certificates=root,
                                            private_key=self.read(self.key(name)),
                                            certificate_chain=self.read(self.cert(name)))


def sonde_certs(*args):
    p = subprocess.run([CERTS_SCRIPT] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, "sonde-certs %s: exit %d\n%s%s" % (
        " ".join(map(str, args)), p.returncode, p.stdout, p.stderr)


def make_pki(d, agents=(), collectors=(), clients=()):
    """A CA in d; agents and collectors get SAN IP:127.0.0.1, clients
    (collector certificates used only to dial) none."""
    d = str(d)
    os.makedirs(d, exist_ok=True)
    sonde_certs("ca", d)
    for n in collectors:
        sonde_certs("issue", d, "collector", n, "--san", "IP:127.0.0.1")
    for n in agents:
        sonde_certs("issue", d, "agent", n, "--san", "IP:127.0.0.1")
    for n in clients:
        sonde_certs("issue", d, "collector", n)
    return Pki(d)


# ---------------------------------------------------------------- calls

def health_check(channel, pb, service="", timeout=10):
    """grpc.health.v1 Check(service): (status name or None, grpc code)."""
    call = channel.unary_unary(HEALTH_CHECK,
                               request_serializer=pb.health.HealthCheckRequest.SerializeToString,
                               response_deserializer=pb.health.HealthCheckResponse.FromString)
    try:
        r = call(pb.health.HealthCheckRequest(service=service), timeout=timeout)
    except grpc.RpcError as e:
        return None, e.code()
    return pb.health.HealthCheckResponse.ServingStatus.Name(r.status), grpc.StatusCode.OK


def wait_channel_ready(channel, timeout=10):
    grpc.channel_ready_future(channel).result(timeout=timeout)
