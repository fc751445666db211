/*
 * decode.c - the entry point of packet decoding and the dispatch it shares.
 *
 * decode_packet() clears the result, picks the first decoder from the link
 * type and lets each decoder call the next. The EtherType and IP protocol
 * switches live here because many decoders end in them (Ethernet, VLAN,
 * SLL, GRE, ... all name their payload by EtherType). Raw IP links have no
 * header of their own, so they are decoded here too.
 */
#include "decode_int.h"

static const char *const reason_names[DECODE_REASON__COUNT] = {
    [DECODE_OK] = "ok",
    [DECODE_ERR_LINKTYPE] = "linktype",
    [DECODE_ERR_ETH] = "eth",
    [DECODE_ERR_VLAN] = "vlan",
    [DECODE_ERR_MPLS] = "mpls",
    [DECODE_ERR_PPPOE] = "pppoe",
    [DECODE_ERR_PPP] = "ppp",
    [DECODE_ERR_SLL] = "sll",
    [DECODE_ERR_NULL] = "null",
    [DECODE_ERR_ARP] = "arp",
    [DECODE_ERR_IP4] = "ip4",
    [DECODE_ERR_IP4_LEN] = "ip4_len",
    [DECODE_ERR_IP6] = "ip6",
    [DECODE_ERR_IP6_LEN] = "ip6_len",
    [DECODE_ERR_IP6_EXT] = "ip6_ext",
    [DECODE_ERR_TCP] = "tcp",
    [DECODE_ERR_UDP] = "udp",
    [DECODE_ERR_ICMP] = "icmp",
    [DECODE_ERR_ICMP6] = "icmp6",
    [DECODE_ERR_GRE] = "gre",
    [DECODE_ERR_VXLAN] = "vxlan",
    [DECODE_ERR_GTPU] = "gtpu",
    [DECODE_ERR_TUNNEL_DEPTH] = "tunnel_depth",
    [DECODE_ERR_LAYERS] = "layers",
    [DECODE_ERR_HDLC] = "hdlc",
};

static const char *const layer_names[PKT_L__COUNT] = {
    [PKT_L_NONE] = "none",   [PKT_L_ETH] = "eth", [PKT_L_VLAN] = "vlan",   [PKT_L_MPLS] = "mpls",
    [PKT_L_PPPOE] = "pppoe", [PKT_L_PPP] = "ppp", [PKT_L_SLL] = "sll",     [PKT_L_SLL2] = "sll2",
    [PKT_L_NULL] = "null",   [PKT_L_ARP] = "arp", [PKT_L_IP4] = "ip4",     [PKT_L_IP6] = "ip6",
    [PKT_L_TCP] = "tcp",     [PKT_L_UDP] = "udp", [PKT_L_ICMP4] = "icmp4", [PKT_L_ICMP6] = "icmp6",
    [PKT_L_IGMP] = "igmp",   [PKT_L_GRE] = "gre", [PKT_L_VXLAN] = "vxlan", [PKT_L_GTPU] = "gtpu",
    [PKT_L_HDLC] = "hdlc",
};

const char *decode_reason_name(int reason)
{
    if (reason < 0 || reason >= DECODE_REASON__COUNT || !reason_names[reason])
        return "unknown";
    return reason_names[reason];
}

const char *decode_layer_name(int type)
{
    if (type < 0 || type >= PKT_L__COUNT || !layer_names[type])
        return "unknown";
    return layer_names[type];
}

int decode_dlt_supported(int dlt)
{
    switch (dlt) {
    case DECODE_DLT_NULL:
    case DECODE_DLT_EN10MB:
    case DECODE_DLT_RAW:
    case DECODE_DLT_RAW_ALT:
    case DECODE_DLT_PPP:
    case DECODE_DLT_PPP_SERIAL:
    case DECODE_DLT_PPP_ETHER:
    case DECODE_DLT_LOOP:
    case DECODE_DLT_LINKTYPE_RAW:
    case DECODE_DLT_LINUX_SLL:
    case DECODE_DLT_IPV4:
    case DECODE_DLT_IPV6:
    case DECODE_DLT_LINUX_SLL2:
    case DECODE_DLT_C_HDLC:
        return 1;
    default:
        return 0;
    }
}

/*
 * Zero the result. The layer array is left alone: only layer[0 .. nlayers)
 * is meaningful, and clearing 144 bytes per packet for nothing is not free.
 */
static void decode_reset(struct pkt *p)
{
    memset(&p->reason, 0, offsetof(struct pkt, layer) - offsetof(struct pkt, reason));
    memset(&p->eth_off, 0, sizeof(*p) - offsetof(struct pkt, eth_off));
    p->eth_off = -1;
}

/* Raw IP links: the version nibble says which IP it is. */
static int decode_raw(struct pkt *p)
{
    if (!decode_fits(p, 0, 1))
        return DECODE_ERR_IP4;
    switch (decode_rd8(p, 0) >> 4) {
    case 4:
        return decode_ip4(p, 0);
    case 6:
        return decode_ip6(p, 0);
    default:
        return DECODE_ERR_IP4; /* neither version: a bad IP header */
    }
}

static int decode_link(struct pkt *p, int dlt)
{
    switch (dlt) {
    case DECODE_DLT_EN10MB:
        return decode_eth(p, 0);
    case DECODE_DLT_LINUX_SLL:
        return decode_sll(p, 0);
    case DECODE_DLT_LINUX_SLL2:
        return decode_sll2(p, 0);
    case DECODE_DLT_C_HDLC:
        return decode_hdlc(p, 0);
    case DECODE_DLT_NULL:
    case DECODE_DLT_LOOP:
        return decode_null(p, 0, dlt);
    case DECODE_DLT_RAW:
    case DECODE_DLT_RAW_ALT:
    case DECODE_DLT_LINKTYPE_RAW:
        return decode_raw(p);
    case DECODE_DLT_IPV4:
        return decode_ip4(p, 0);
    case DECODE_DLT_IPV6:
        return decode_ip6(p, 0);
    case DECODE_DLT_PPP:
    case DECODE_DLT_PPP_SERIAL:
        return decode_ppp(p, 0);
    case DECODE_DLT_PPP_ETHER:
        return decode_pppoe(p, 0);
    default:
        return DECODE_ERR_LINKTYPE;
    }
}

int decode_packet(struct pkt *p, int dlt)
{
    int r;

    decode_reset(p);
    /* Ethernet is nearly every packet: skip the switch for it. */
    if (dlt == DECODE_DLT_EN10MB)
        r = decode_eth(p, 0);
    else
        r = decode_link(p, dlt);
    p->reason = (uint16_t)r;
    return r;
}

/*
 * What follows a header that names its payload by EtherType. Anything we do
 * not decode (LLDP, STP, 802.3 length fields, PPPoE discovery, ...) is a
 * valid frame without an IP flow.
 */
int decode_ethertype(struct pkt *p, uint16_t type, uint32_t off)
{
    if (type == DECODE_ETH_IP4)
        return decode_ip4(p, off);
    switch (type) {
    case DECODE_ETH_IP6:
        return decode_ip6(p, off);
    case DECODE_ETH_VLAN:
    case DECODE_ETH_QINQ:
    case DECODE_ETH_QINQ_OLD:
        return decode_vlan(p, off);
    case DECODE_ETH_ARP:
        return decode_arp(p, off);
    case DECODE_ETH_MPLS_UC:
    case DECODE_ETH_MPLS_MC:
        return decode_mpls(p, off);
    case DECODE_ETH_PPPOE:
        return decode_pppoe(p, off);
    default:
        return DECODE_OK;
    }
}

/* IP in IP (4in4, 6in4, 4in6, 6in6): no tunnel header, just another IP. */
static int decode_ipip(struct pkt *p, uint8_t proto, uint32_t off)
{
    int r;

    /* A fragment cannot be decapsulated without reassembly: keep the outer flow. */
    if (p->frag != PKT_FRAG_NONE)
        return DECODE_OK;
    r = decode_tunnel_enter(p, PKT_TUNNEL_IPIP, 0);
    if (r != DECODE_OK)
        return r;
    return proto == DECODE_IPP_IPIP ? decode_ip4(p, off) : decode_ip6(p, off);
}

/*
 * What follows an IP header (after IPv6 extension headers). Protocols we do
 * not decode leave l4_off at 0: the packet is still a valid IP flow.
 */
int decode_ip_proto(struct pkt *p, uint8_t proto, uint32_t off, uint32_t len)
{
    if (proto == DECODE_IPP_TCP)
        return decode_tcp(p, off, len);
    switch (proto) {
    case DECODE_IPP_UDP:
        return decode_udp(p, off, len);
    case DECODE_IPP_ICMP:
        return decode_icmp4(p, off, len);
    case DECODE_IPP_ICMPV6:
        return decode_icmp6(p, off, len);
    case DECODE_IPP_IGMP:
        return decode_igmp(p, off, len);
    case DECODE_IPP_GRE:
        return decode_gre(p, off, len);
    case DECODE_IPP_IPIP:
    case DECODE_IPP_IPV6:
        return decode_ipip(p, proto, off);
    default:
        return DECODE_OK;
    }
}

/*
 * Called when a decoder removes an encapsulation, before the inner headers
 * are decoded. The first tunnel removed is the one reported; its outer IP
 * header is the IP header decoded last, which the inner one will replace.
 */
int decode_tunnel_enter(struct pkt *p, uint8_t type, uint32_t id)
{
    if (p->tunnel_depth >= DECODE_MAX_TUNNELS)
        return DECODE_ERR_TUNNEL_DEPTH;
    if (p->tunnel_depth == 0) {
        p->tunnel_type = type;
        p->tunnel_id = id;
        p->outer_ip_version = p->ip_version;
        p->outer_src_off = p->src_off;
        p->outer_dst_off = p->dst_off;
    }
    p->tunnel_depth++;
    p->seen |= PKT_SEEN_TUNNEL;
    return DECODE_OK;
}
