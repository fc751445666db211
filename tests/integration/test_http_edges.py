"""HTTP/1.x edge cases, on a TCP conversation written here with scapy.

Real clients do not produce these at will: a response body whose second
segment starts with the text of a status line (a body about HTTP), a
retransmitted request, two pipelined requests in one segment, a 100
Continue before the final response, and a request left unanswered when the
connection ends. The agent must report one http event per real request,
in order, and nothing for the body or the retransmission.
"""

import pytest

import util

scapy = pytest.importorskip("scapy.all")

CLIENT, SERVER = ("10.1.0.2", 40000), ("10.1.0.1", 8080)


class Conv:
    """One TCP connection; each call appends a segment and advances seq."""

    def __init__(self):
        self.pkts, self.seq, self.t = [], {0: 1000, 1: 5000}, 1700000000.0

    def seg(self, side, data=b"", flags="PA", seq=None):
        src, dst = (CLIENT, SERVER) if side == 0 else (SERVER, CLIENT)
        s = self.seq[side] if seq is None else seq
        p = (scapy.Ether() / scapy.IP(src=src[0], dst=dst[0])
             / scapy.TCP(sport=src[1], dport=dst[1], flags=flags, seq=s, ack=self.seq[1 - side])
             / data)
        self.t += 0.001
        p.time = self.t
        self.pkts.append(p)
        if seq is None:
            self.seq[side] += len(data) + (1 if "S" in flags or "F" in flags else 0)


def make_pcap(path):
    c = Conv()
    c.seg(0, flags="S")
    c.seg(1, flags="SA")
    c.seg(0, flags="A")
    get1 = b"GET /about-http.txt HTTP/1.1\r\nHost: h.test\r\n\r\n"
    c.seg(0, get1)
    c.seg(0, get1, seq=c.seq[0] - len(get1))  # retransmission
    body = b"intro...\n" + b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" + b"outro\n"
    c.seg(1, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body)
          + body[:9])
    c.seg(1, body[9:])  # starts like a status line, but is body
    # two pipelined requests in one segment, answered in order
    c.seg(0, b"GET /one HTTP/1.1\r\nHost: h.test\r\n\r\nGET /two HTTP/1.1\r\nHost: h.test\r\n\r\n")
    c.seg(1, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    c.seg(1, b"HTTP/1.1 204 No Content\r\n\r\n")
    # 100 Continue, then the final response
    post = b"POST /up HTTP/1.1\r\nHost: h.test\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
    c.seg(0, post)
    c.seg(1, b"HTTP/1.1 100 Continue\r\n\r\n")
    c.seg(0, b"data")
    c.seg(1, b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
    c.seg(0, b"GET /never HTTP/1.1\r\nHost: h.test\r\n\r\n")  # no answer
    c.seg(0, flags="FA")
    c.seg(1, flags="FA")
    scapy.wrpcap(path, c.pkts)


def test_http_edge_cases(agent, tmp_path):
    pcap = str(tmp_path / "http-edges.pcap")
    make_pcap(pcap)
    r = util.run_agent(["-r", pcap, "--threads", "1", "--events", "http,flow"], tmp_path=tmp_path)
    got = [(e["method"], e["uri"], e["answered"], e["status_code"]) for e in r.of_type("http")]
    assert got == [("GET", "/about-http.txt", True, 200),
                   ("GET", "/one", True, 404),
                   ("GET", "/two", True, 204),
                   ("POST", "/up", True, 201),
                   ("GET", "/never", False, 0)], got
    flows = r.of_type("flow")
    assert len(flows) == 1
    assert all(e["digest"] == flows[0]["digest"] for e in r.of_type("http"))
    first = r.of_type("http")[0]
    assert first["content_type"] == "text/plain" and first["host"] == "h.test"
    assert first["response_time_us"] > 0
