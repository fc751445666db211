/*
 * packet_events.c - packet-layer records, read back from the layer list
 * the decoder left in struct pkt. The decoder already checked that each
 * recorded header fits in the capture (layer.len bytes at layer.off); the
 * few variable parts read here (TCP options, IPv6 extension headers) are
 * bounded again against caplen.
 */
#include <string.h>

#include "common/bytes.h"
#include "dpi/dhcp.h"
#include "dpi/dns.h"
#include "packet_events.h"

#define IP6_EXT_MAX 8

struct pctx {
    struct ev_sink *s;
    const struct pkt *p;
    const char *iface;
    uint8_t id[EV_ETHER_ID_LEN];
    uint64_t ts_ms;
};

#define PSTAMP(c, m)                                                                               \
    do {                                                                                           \
        EV_STAMP((c)->s, m, (c)->ts_ms);                                                           \
        (m).ether_id.data = (c)->id;                                                               \
        (m).ether_id.len = EV_ETHER_ID_LEN;                                                        \
    } while (0)

static void eth(struct pctx *c, const struct pkt_layer *l)
{
    Sonde__V1__Eth m = SONDE__V1__ETH__INIT;
    const uint8_t *h = c->p->data + l->off;
    char src[EV_MAC_STRLEN], dst[EV_MAC_STRLEN];
    uint32_t vlan[2];
    int outer = (int32_t)l->off == c->p->eth_off;

    PSTAMP(c, m);
    ev_fmt_mac(dst, h);
    ev_fmt_mac(src, h + 6);
    m.interface = (char *)c->iface;
    m.src = src;
    m.dst = dst;
    m.ethertype = rd16(h + 12);
    if (outer && c->p->nvlan) {
        vlan[0] = c->p->vlan[0];
        vlan[1] = c->p->vlan[1];
        m.n_vlan = c->p->nvlan > 2 ? 2 : c->p->nvlan;
        m.vlan = vlan;
    }
    m.frame_len = c->p->len;
    m.cap_len = c->p->caplen;
    ev_emit(c->s, EV_ETH, &m.base);
}

static void arp(struct pctx *c, const struct pkt_layer *l)
{
    Sonde__V1__Arp m = SONDE__V1__ARP__INIT;
    const uint8_t *h = c->p->data + l->off;
    char sha[EV_MAC_STRLEN] = "", tha[EV_MAC_STRLEN] = "";
    char spa[EV_IP_STRLEN] = "", tpa[EV_IP_STRLEN] = "";

    PSTAMP(c, m);
    m.htype = rd16(h);
    m.ptype = rd16(h + 2);
    m.hlen = h[4];
    m.plen = h[5];
    m.op = rd16(h + 6);
    if (l->len >= 28 && h[4] == 6 && h[5] == 4) {
        ev_fmt_mac(sha, h + 8);
        ev_fmt_ip(spa, 4, h + 14);
        ev_fmt_mac(tha, h + 18);
        ev_fmt_ip(tpa, 4, h + 24);
    }
    m.sha = sha;
    m.spa = spa;
    m.tha = tha;
    m.tpa = tpa;
    ev_emit(c->s, EV_ARP, &m.base);
}

static void ip4(struct pctx *c, const struct pkt_layer *l)
{
    Sonde__V1__Ip4 m = SONDE__V1__IP4__INIT;
    const uint8_t *h = c->p->data + l->off;
    char src[EV_IP_STRLEN], dst[EV_IP_STRLEN];
    uint16_t fo = rd16(h + 6);

    PSTAMP(c, m);
    ev_fmt_ip(src, 4, h + 12);
    ev_fmt_ip(dst, 4, h + 16);
    m.ihl = (uint32_t)(h[0] & 0x0f) * 4;
    m.tos = h[1];
    m.total_length = rd16(h + 2);
    m.id = rd16(h + 4);
    m.flags = fo >> 13;
    m.frag_offset = (uint32_t)(fo & 0x1fff) * 8;
    m.ttl = h[8];
    m.protocol = h[9];
    m.checksum = rd16(h + 10);
    m.src = src;
    m.dst = dst;
    m.depth = l->depth;
    ev_emit(c->s, EV_IP4, &m.base);
}

static int ip6_is_ext(uint8_t nh)
{
    return nh == 0 || nh == 43 || nh == 44 || nh == 60 || nh == 51 || nh == 135;
}

static void ip6(struct pctx *c, const struct pkt_layer *l)
{
    Sonde__V1__Ip6 m = SONDE__V1__IP6__INIT;
    const uint8_t *h = c->p->data + l->off;
    char src[EV_IP_STRLEN], dst[EV_IP_STRLEN];
    uint32_t ext[IP6_EXT_MAX];
    uint32_t vtf = rd32(h), off = l->off + 40;
    uint8_t nh = h[6];
    size_t n = 0;

    PSTAMP(c, m);
    ev_fmt_ip(src, 6, h + 8);
    ev_fmt_ip(dst, 6, h + 24);
    m.traffic_class = (vtf >> 20) & 0xff;
    m.flow_label = vtf & 0xfffff;
    m.payload_length = rd16(h + 4);
    m.next_header = nh;
    m.hop_limit = h[7];
    m.src = src;
    m.dst = dst;
    while (ip6_is_ext(nh) && n < IP6_EXT_MAX && off + 2 <= c->p->caplen) {
        const uint8_t *e = c->p->data + off;
        ext[n++] = nh;
        off += nh == 44 ? 8 : nh == 51 ? ((uint32_t)e[1] + 2) * 4 : ((uint32_t)e[1] + 1) * 8;
        nh = e[0];
    }
    m.protocol = nh;
    m.n_ext_headers = n;
    m.ext_headers = ext;
    m.depth = l->depth;
    ev_emit(c->s, EV_IP6, &m.base);
}

/* Parse the TCP options we report; bounded by the header and the capture. */
static void tcp_options(Sonde__V1__Tcp *m, const uint8_t *o, uint32_t len)
{
    uint32_t i = 0;

    while (i < len) {
        uint8_t kind = o[i], olen;

        if (kind == 0)
            break;
        if (kind == 1) {
            i++;
            continue;
        }
        if (i + 1 >= len || (olen = o[i + 1]) < 2 || i + olen > len)
            break;
        if (kind == 2 && olen == 4)
            m->mss = rd16(o + i + 2);
        else if (kind == 3 && olen == 3)
            m->window_scale = o[i + 2];
        else if (kind == 4 && olen == 2)
            m->sack_permitted = 1;
        else if (kind == 8 && olen == 10) {
            m->ts_val = rd32(o + i + 2);
            m->ts_ecr = rd32(o + i + 6);
        }
        i += olen;
    }
}

static void tcp(struct pctx *c, const struct pkt_layer *l)
{
    Sonde__V1__Tcp m = SONDE__V1__TCP__INIT;
    const uint8_t *h = c->p->data + l->off;
    uint32_t hl = (uint32_t)(h[12] >> 4) * 4;

    PSTAMP(c, m);
    m.src_port = rd16(h);
    m.dst_port = rd16(h + 2);
    m.seq_num = rd32(h + 4);
    m.ack_num = rd32(h + 8);
    m.data_offset = hl;
    m.flags = h[13];
    m.window = rd16(h + 14);
    m.checksum = rd16(h + 16);
    m.urgent = rd16(h + 18);
    if (hl > 20 && l->len >= hl)
        tcp_options(&m, h + 20, hl - 20);
    if (l->off == c->p->l4_off)
        m.payload_length = c->p->payload_len;
    ev_emit(c->s, EV_TCP, &m.base);
}

static void udp(struct pctx *c, const struct pkt_layer *l)
{
    Sonde__V1__Udp m = SONDE__V1__UDP__INIT;
    const uint8_t *h = c->p->data + l->off;

    PSTAMP(c, m);
    m.src_port = rd16(h);
    m.dst_port = rd16(h + 2);
    m.length = rd16(h + 4);
    m.checksum = rd16(h + 6);
    ev_emit(c->s, EV_UDP, &m.base);
}

static void icmp(struct pctx *c, const struct pkt_layer *l, int v6)
{
    const uint8_t *h = c->p->data + l->off;
    int echo = v6 ? (h[0] == 128 || h[0] == 129) : (h[0] == 0 || h[0] == 8);
    uint32_t id = echo && l->len >= 8 ? rd16(h + 4) : 0;
    uint32_t sq = echo && l->len >= 8 ? rd16(h + 6) : 0;

    if (v6) {
        Sonde__V1__Icmp6 m = SONDE__V1__ICMP6__INIT;
        PSTAMP(c, m);
        m.icmp_type = h[0];
        m.icmp_code = h[1];
        m.checksum = rd16(h + 2);
        m.id = id;
        m.sequence = sq;
        ev_emit(c->s, EV_ICMP6, &m.base);
    } else {
        Sonde__V1__Icmp4 m = SONDE__V1__ICMP4__INIT;
        PSTAMP(c, m);
        m.icmp_type = h[0];
        m.icmp_code = h[1];
        m.checksum = rd16(h + 2);
        m.id = id;
        m.sequence = sq;
        ev_emit(c->s, EV_ICMP4, &m.base);
    }
}

/* DnsHeader and MdnsHeader have the same fields. */
#define FILL_DNS_HEADER(c, m, h)                                                                   \
    do {                                                                                           \
        PSTAMP(c, m);                                                                              \
        (m).transaction_id = (h).id;                                                               \
        (m).flags = (h).flags;                                                                     \
        (m).qdcount = (h).qdcount;                                                                 \
        (m).ancount = (h).ancount;                                                                 \
        (m).nscount = (h).nscount;                                                                 \
        (m).arcount = (h).arcount;                                                                 \
        (m).qname = (h).qname;                                                                     \
    } while (0)

/*
 * The DNS header record of the transport payload, when the innermost UDP
 * or TCP header has port 53 or 5353 on either side. Over TCP the message
 * starts after its two-byte length; a message not whole in this packet, or
 * malformed, gets no record.
 */
static void dns_header(struct pctx *c, int tcp)
{
    const struct pkt *p = c->p;
    int mdns = p->sport == MDNS_PORT || p->dport == MDNS_PORT;
    int tag = mdns ? EV_MDNS_HEADER : EV_DNS_HEADER;
    const uint8_t *d = p->data + p->payload_off;
    size_t len = p->payload_len;
    struct dns_header h;

    if (!ev_enabled(c->s, tag) || !dns_port(c->s, p->sport, p->dport) ||
        p->payload_off >= p->caplen || len > p->caplen - p->payload_off)
        return;
    if (tcp) {
        if (len < DNS_TCP_LEN_PREFIX || rd16(d) + (size_t)DNS_TCP_LEN_PREFIX > len)
            return;
        len = rd16(d);
        d += DNS_TCP_LEN_PREFIX;
    }
    if (dns_header_parse(d, len, &h) < 0)
        return;
    if (mdns) {
        Sonde__V1__MdnsHeader m = SONDE__V1__MDNS_HEADER__INIT;
        FILL_DNS_HEADER(c, m, h);
        ev_emit(c->s, tag, &m.base);
    } else {
        Sonde__V1__DnsHeader m = SONDE__V1__DNS_HEADER__INIT;
        FILL_DNS_HEADER(c, m, h);
        ev_emit(c->s, tag, &m.base);
    }
}

/* The DHCP header record of a UDP payload between ports 67 and 68. */
static void dhcp_header(struct pctx *c)
{
    Sonde__V1__DhcpHeader m = SONDE__V1__DHCP_HEADER__INIT;
    struct dhcp_msg d;
    char ci[EV_IP_STRLEN], yi[EV_IP_STRLEN], si[EV_IP_STRLEN], gi[EV_IP_STRLEN];
    char ch[2 * DHCP_CHADDR_LEN + 1];

    if (!ev_enabled(c->s, EV_DHCP_HEADER) || dhcp_of_packet(c->p, &d) < 0)
        return;
    PSTAMP(c, m);
    m.op = d.op;
    m.htype = d.htype;
    m.hlen = d.hlen;
    m.hops = d.hops;
    m.xid = d.xid;
    m.secs = d.secs;
    m.flags = d.flags;
    ev_fmt_ip(ci, 4, d.ciaddr);
    ev_fmt_ip(yi, 4, d.yiaddr);
    ev_fmt_ip(si, 4, d.siaddr);
    ev_fmt_ip(gi, 4, d.giaddr);
    dhcp_fmt_chaddr(ch, sizeof(ch), &d);
    m.ciaddr = ci;
    m.yiaddr = yi;
    m.siaddr = si;
    m.giaddr = gi;
    m.chaddr = ch;
    m.message_type = d.type;
    ev_emit(c->s, EV_DHCP_HEADER, &m.base);
}

void ev_packet_layers(struct ev_sink *s, const struct pkt *p, const char *iface, uint64_t ether_id)
{
    struct pctx c;
    int i;

    c.s = s;
    c.p = p;
    c.iface = iface;
    c.ts_ms = p->ts_us / 1000;
    for (i = 0; i < EV_ETHER_ID_LEN; i++)
        c.id[i] = (uint8_t)(ether_id >> (8 * (EV_ETHER_ID_LEN - 1 - i)));
    for (i = 0; i < p->nlayers; i++) {
        const struct pkt_layer *l = &p->layer[i];

        switch (l->type) {
        case PKT_L_ETH:
            if (ev_enabled(s, EV_ETH) && l->len >= 14)
                eth(&c, l);
            break;
        case PKT_L_ARP:
            if (ev_enabled(s, EV_ARP) && l->len >= 8)
                arp(&c, l);
            break;
        case PKT_L_IP4:
            if (ev_enabled(s, EV_IP4) && l->len >= 20)
                ip4(&c, l);
            break;
        case PKT_L_IP6:
            if (ev_enabled(s, EV_IP6) && l->len >= 40)
                ip6(&c, l);
            break;
        case PKT_L_TCP:
            if (ev_enabled(s, EV_TCP) && l->len >= 20)
                tcp(&c, l);
            if (l->off == p->l4_off && p->payload_len)
                dns_header(&c, 1);
            break;
        case PKT_L_UDP:
            if (ev_enabled(s, EV_UDP) && l->len >= 8)
                udp(&c, l);
            if (l->off == p->l4_off && p->payload_len) {
                dns_header(&c, 0);
                dhcp_header(&c);
            }
            break;
        case PKT_L_ICMP4:
            if (ev_enabled(s, EV_ICMP4) && l->len >= 4)
                icmp(&c, l, 0);
            break;
        case PKT_L_ICMP6:
            if (ev_enabled(s, EV_ICMP6) && l->len >= 4)
                icmp(&c, l, 1);
            break;
        default:
            break;
        }
    }
}
