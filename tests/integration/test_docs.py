"""The documentation says what the code does: docs/events.md is generated
from the proto and must not be stale, and every option of --help is in the
README or docs."""

import os
import re
import subprocess

import util

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_events_doc_is_generated_from_the_proto():
    r = subprocess.run(["/usr/bin/python3", "scripts/gen_events_doc.py", "--check"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_every_event_type_is_documented(agent, tmp_path):
    doc = open(os.path.join(ROOT, "docs", "events.md"), encoding="utf-8").read()
    proto = open(os.path.join(ROOT, "proto", "sonde", "v1", "events.proto"), encoding="utf-8").read()
    oneof = proto[proto.index("message Event {"):]
    names = re.findall(r"^\s+\w+ (\w+) = \d+;", oneof, re.M)
    assert len(names) >= 16
    for n in names:
        assert "## `%s`" % n in doc, n


def test_every_option_is_documented(agent):
    """Every option --help prints is explained in docs/agent.md."""
    help_text = subprocess.run([agent, "--help"], capture_output=True, text=True, timeout=30).stdout
    opts = set(re.findall(r"--([a-z][a-z0-9-]+)", help_text))
    assert len(opts) > 20
    doc = open(os.path.join(ROOT, "docs", "agent.md"), encoding="utf-8").read()
    missing = [o for o in sorted(opts) if "--" + o not in doc]
    assert not missing, "options missing from docs/agent.md: %s" % missing
