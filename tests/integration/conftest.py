"""Fixtures shared by the integration tests.

* ``agent``: path of the sonde-agent under test ($SONDE_BUILD/sonde-agent,
  SONDE_BUILD defaulting to <repo>/build). A missing binary is a failure, not
  a skip: these tests exist to check it.
* ``real_capture``: one capture of real loopback traffic per session (see
  gen_traffic.py), with its tshark analysis. Needs root, tcpdump and the
  clients and servers; skips with the reason otherwise.
* ``root``: skips a test that needs root when not root.

Run: SONDE_BUILD=build /usr/bin/python3 -m pytest -q tests/integration
"""

import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gen_traffic  # noqa: E402
import util  # noqa: E402

TRAFFIC_TOOLS = ("tcpdump", "tshark", "curl", "dig", "dnsmasq", "openssl", "ping")


def pytest_report_header(config):
    return "sonde build: %s (sanitizers: %s)" % (util.build_dir(), util.is_sanitizer_build())


@pytest.fixture(scope="session")
def agent():
    path = util.agent_path()
    if not os.access(path, os.X_OK):
        pytest.fail("sonde-agent not found at %s: build it first (ninja -C %s) or set SONDE_BUILD"
                    % (path, util.build_dir()))
    return path


@pytest.fixture(scope="session")
def tshark():
    if not util.tshark_available():
        pytest.skip("tshark is not installed (scripts/deps.sh installs it)")
    return shutil.which("tshark")


@pytest.fixture
def root():
    if os.geteuid() != 0:
        pytest.skip("needs root (packet capture, network namespaces)")


class RealCapture:
    """The loopback capture and tshark's view of it."""

    def __init__(self, summary):
        self.summary = summary
        self.pcap = summary["pcap"]
        self.packets, self.conv_tables, _ = util.tshark_analyse(self.pcap)
        self.conversations, self.streams = util.tshark_conversations(self.packets)


@pytest.fixture(scope="session")
def real_capture(tmp_path_factory):
    util.require_root_and_tools("capturing real traffic on lo",
                                [t for t in TRAFFIC_TOOLS if shutil.which(t) is None],
                                "real traffic")
    d = tmp_path_factory.mktemp("real-traffic")
    summary = gen_traffic.generate(str(d))
    return RealCapture(summary)
