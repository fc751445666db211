#!/usr/bin/python3
"""Generate docs/events.md from proto/sonde/v1/events.proto.

The proto is the one source of truth: every event, field, unit and enum
value is documented there in comments, and this script turns those comments
into the user-facing reference. tests/integration/test_docs.py fails when
docs/events.md is stale, so the two never drift.

Usage: gen_events_doc.py [--check] [PROTO] [OUT]
"""
import re
import sys

HEADER = """# Events reference

Generated from `proto/sonde/v1/events.proto` by `scripts/gen_events_doc.py`;
do not edit by hand.

Every event is one protobuf message; in JSON output (`-o json:PATH`) it is one
object per line whose `"type"` is the message name in snake_case. Enum values
are written in lower case without their prefix (`OTHER_TYPE_REMOTE` ->
`"remote"`), bytes as lower-case hex, sub-messages as nested objects. In
protobuf output (`-o pb:PATH`) each event is a `sonde.v1.Event` preceded by its
length as a varint; `sonde-pbcat FILE` prints such a file as JSON lines.

Units: times are milliseconds since the Unix epoch unless the name ends in
`_us` (microseconds) or says seconds; byte counts are frame lengths as seen on
the wire (the pcap `len`), so per-direction bytes match tshark's conversation
statistics.

Select event types with `--events` (comma list of the type names below,
`default`, `all`). The packet-layer records are off by default.
"""


def snake(name):
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def parse(text):
    """Return a list of (kind, name, doc, fields) in file order."""
    items = []
    pending = []
    cur = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("//"):
            if cur is None:
                pending.append(line[2:].strip())
            continue
        if not line:
            if cur is None:
                pending = []
            continue
        m = re.match(r"(message|enum)\s+(\w+)\s*\{", line)
        if m and cur is None:
            cur = {"kind": m.group(1), "name": m.group(2), "doc": " ".join(pending), "fields": []}
            pending = []
            continue
        if line.startswith("}") and cur is not None:
            if cur["name"] != "Event":
                items.append(cur)
            cur = None
            continue
        if cur is None:
            continue
        comment = ""
        if "//" in line:
            line, comment = line.split("//", 1)
            line, comment = line.strip(), comment.strip()
        if cur["kind"] == "message":
            fm = re.match(r"(repeated\s+)?([\w.]+)\s+(\w+)\s*=\s*(\d+);", line)
            if fm:
                typ = ("repeated " if fm.group(1) else "") + fm.group(2)
                cur["fields"].append((fm.group(3), typ, comment))
        else:
            em = re.match(r"(\w+)\s*=\s*(\d+);", line)
            if em:
                cur["fields"].append((em.group(1), em.group(2), comment))
    return items


def render(items):
    out = [HEADER]
    enums = {i["name"]: i for i in items if i["kind"] == "enum"}
    msgs = [i for i in items if i["kind"] == "message"]
    out.append("## Event types\n")
    out.append("| type | message | what |\n|---|---|---|")
    for m in msgs:
        if m["fields"] and m["fields"][0][0] == "agent_id":
            out.append("| `%s` | `%s` | %s |" % (snake(m["name"]), m["name"], m["doc"]))
    out.append("")
    for m in msgs:
        is_event = m["fields"] and m["fields"][0][0] == "agent_id"
        title = "`%s`" % snake(m["name"]) if is_event else "%s (sub-message)" % m["name"]
        out.append("## %s\n" % title)
        if m["doc"]:
            out.append(m["doc"] + "\n")
        out.append("| field | type | meaning |\n|---|---|---|")
        for name, typ, comment in m["fields"]:
            base = typ.replace("repeated ", "")
            if base in enums:
                vals = ", ".join(
                    "`%s`" % v[0][len(snake(base).upper()) + 1:].lower() for v in enums[base]["fields"]
                )
                comment = (comment + " " if comment else "") + "One of: " + vals + "."
            if name == "agent_id" and not comment:
                comment = "the agent that produced the event"
            if name == "seq" and not comment:
                comment = "per-agent sequence number, strictly increasing in output order"
            if name == "timestamp" and not comment:
                comment = "event time, ms (packet time for flow and packet events)"
            out.append("| `%s` | %s | %s |" % (name, typ, comment.replace("|", "\\|")))
        out.append("")
    out.append("## Enums\n")
    for e in enums.values():
        out.append("### %s\n" % e["name"])
        if e["doc"]:
            out.append(e["doc"] + "\n")
        out.append("| JSON value | number | meaning |\n|---|---|---|")
        prefix = snake(e["name"]).upper() + "_"
        for name, num, comment in e["fields"]:
            out.append("| `%s` | %s | %s |" % (name[len(prefix):].lower(), num, comment))
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def main(argv):
    check = "--check" in argv
    args = [a for a in argv[1:] if a != "--check"]
    proto = args[0] if args else "proto/sonde/v1/events.proto"
    dest = args[1] if len(args) > 1 else "docs/events.md"
    doc = render(parse(open(proto, encoding="utf-8").read()))
    if check:
        try:
            cur = open(dest, encoding="utf-8").read()
        except OSError:
            cur = ""
        if cur != doc:
            sys.stderr.write("%s is stale: run scripts/gen_events_doc.py\n" % dest)
            return 1
        return 0
    with open(dest, "w", encoding="utf-8") as f:
        f.write(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
