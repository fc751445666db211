/*
 * test_decode.c - unit tests of the packet decoders.
 *
 * Every decoder is checked on a crafted packet (decode_pkts.h), then the
 * decoders as a whole on what hostile input looks like: every prefix of
 * every packet, snaplen cuts, single-field corruptions and a long
 * randomized loop. Each decode runs on a heap copy of exactly caplen bytes,
 * so under AddressSanitizer a read past caplen is a test failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "decode/decode.h"
#include "decode_pkts.h"

struct tpkt {
    const char *name;
    const uint8_t *data;
    uint32_t len;
    int dlt;
};

#define PKT(a, dlt)                                                                                \
    {                                                                                              \
#a, a, (uint32_t)sizeof(a), dlt                                                            \
    }

/* Packets that decode to DECODE_OK. */
static const struct tpkt valid_pkts[] = {
    PKT(eth_ip4_tcp_syn, DECODE_DLT_EN10MB),
    PKT(eth_ip4_tcp_pad, DECODE_DLT_EN10MB),
    PKT(eth_ip4opt_udp, DECODE_DLT_EN10MB),
    PKT(eth_ip4_frag_first, DECODE_DLT_EN10MB),
    PKT(eth_ip4_frag_later, DECODE_DLT_EN10MB),
    PKT(eth_ip6_ext_udp, DECODE_DLT_EN10MB),
    PKT(eth_ip6_frag_later, DECODE_DLT_EN10MB),
    PKT(eth_ip6_rh_tcp, DECODE_DLT_EN10MB),
    PKT(eth_ip4_udp, DECODE_DLT_EN10MB),
    PKT(eth_ip4_icmp_echo, DECODE_DLT_EN10MB),
    PKT(eth_ip6_icmp6_echo, DECODE_DLT_EN10MB),
    PKT(eth_ip4_igmp, DECODE_DLT_EN10MB),
    PKT(eth_arp, DECODE_DLT_EN10MB),
    PKT(eth_vlan_udp, DECODE_DLT_EN10MB),
    PKT(eth_qinq_tcp, DECODE_DLT_EN10MB),
    PKT(eth_mpls2_udp, DECODE_DLT_EN10MB),
    PKT(eth_pppoe_tcp, DECODE_DLT_EN10MB),
    PKT(eth_pppoe_ip6, DECODE_DLT_EN10MB),
    PKT(sll_ip4_udp, DECODE_DLT_LINUX_SLL),
    PKT(sll2_ip6_tcp, DECODE_DLT_LINUX_SLL2),
    PKT(null_le_ip4, DECODE_DLT_NULL),
    PKT(null_be_ip6, DECODE_DLT_NULL),
    PKT(loop_ip4_tcp, DECODE_DLT_LOOP),
    PKT(raw_ip4_tcp, DECODE_DLT_LINKTYPE_RAW),
    PKT(raw_ip6_udp, DECODE_DLT_LINKTYPE_RAW),
    PKT(ppp_hdlc_ip4, DECODE_DLT_PPP_SERIAL),
    PKT(ppp_ip6, DECODE_DLT_PPP),
    PKT(hdlc_ip4, DECODE_DLT_C_HDLC),
    PKT(hdlc_slarp, DECODE_DLT_C_HDLC),
    PKT(pppether_ip4, DECODE_DLT_PPP_ETHER),
    PKT(eth_4in4, DECODE_DLT_EN10MB),
    PKT(eth_6in4, DECODE_DLT_EN10MB),
    PKT(eth_4in6, DECODE_DLT_EN10MB),
    PKT(eth_6in6, DECODE_DLT_EN10MB),
    PKT(eth_gre_key_ip4, DECODE_DLT_EN10MB),
    PKT(eth_gre_cks_ip6, DECODE_DLT_EN10MB),
    PKT(eth_gre_teb, DECODE_DLT_EN10MB),
    PKT(eth_gre_pptp, DECODE_DLT_EN10MB),
    PKT(eth_vxlan, DECODE_DLT_EN10MB),
    PKT(eth_vxlan_arp, DECODE_DLT_EN10MB),
    PKT(eth_gtpu, DECODE_DLT_EN10MB),
    PKT(eth_gtpu_ext, DECODE_DLT_EN10MB),
    PKT(eth_gtpu_echo, DECODE_DLT_EN10MB),
    PKT(eth_ipip_x4, DECODE_DLT_EN10MB),
    PKT(eth_ip6_ext8, DECODE_DLT_EN10MB),
    PKT(eth_lldp, DECODE_DLT_EN10MB),
    PKT(eth_stp, DECODE_DLT_EN10MB),
};

/* Packets over a limit; also seeds for the randomized loop. */
static const struct tpkt limit_pkts[] = {
    PKT(eth_ipip_x5, DECODE_DLT_EN10MB),         PKT(eth_ip6_ext9, DECODE_DLT_EN10MB),
    PKT(eth_vlan5, DECODE_DLT_EN10MB),           PKT(eth_mpls9, DECODE_DLT_EN10MB),
    PKT(eth_layers_overflow, DECODE_DLT_EN10MB),
};

#define NVALID (sizeof(valid_pkts) / sizeof(valid_pkts[0]))
#define NLIMIT (sizeof(limit_pkts) / sizeof(limit_pkts[0]))

static const int all_dlts[] = {
    DECODE_DLT_NULL,         DECODE_DLT_EN10MB,     DECODE_DLT_RAW,       DECODE_DLT_RAW_ALT,
    DECODE_DLT_PPP,          DECODE_DLT_PPP_SERIAL, DECODE_DLT_PPP_ETHER, DECODE_DLT_LOOP,
    DECODE_DLT_LINKTYPE_RAW, DECODE_DLT_LINUX_SLL,  DECODE_DLT_IPV4,      DECODE_DLT_IPV6,
    DECODE_DLT_LINUX_SLL2,   DECODE_DLT_C_HDLC,
};

#define NDLTS (sizeof(all_dlts) / sizeof(all_dlts[0]))

/* What must hold for any input: everything the result points at was captured. */
static void check_invariants(const struct pkt *p)
{
    uint32_t cap = p->caplen, alen;
    int i;

    assert_true(p->reason < DECODE_REASON__COUNT);
    assert_true(p->nlayers <= DECODE_MAX_LAYERS);
    for (i = 0; i < p->nlayers; i++) {
        assert_true(p->layer[i].type > PKT_L_NONE && p->layer[i].type < PKT_L__COUNT);
        assert_true(p->layer[i].len > 0);
        assert_true((uint32_t)p->layer[i].off + p->layer[i].len <= cap);
        assert_true(p->layer[i].depth <= DECODE_MAX_TUNNELS);
    }
    if (p->eth_off != -1)
        assert_true(p->eth_off >= 0 && (uint32_t)p->eth_off + 14 <= cap);
    assert_true(p->nvlan <= DECODE_MAX_VLANS);
    assert_true(p->tunnel_depth <= DECODE_MAX_TUNNELS);
    assert_true(p->ip_version == 0 || p->ip_version == 4 || p->ip_version == 6);
    if (p->ip_version != 0) {
        alen = p->ip_version == 4 ? 4 : 16;
        assert_true((uint32_t)p->l3_off + (p->ip_version == 4 ? 20 : 40) <= cap);
        assert_true((uint32_t)p->src_off + alen <= cap);
        assert_true((uint32_t)p->dst_off + alen <= cap);
    }
    if (p->l4_off != 0)
        assert_true((uint32_t)p->l4_off + 4 <= cap);
    assert_true(p->payload_off <= cap);
    assert_true((p->tunnel_type != PKT_TUNNEL_NONE) == (p->tunnel_depth > 0));
    if (p->tunnel_type != PKT_TUNNEL_NONE) {
        alen = p->outer_ip_version == 4 ? 4 : 16;
        assert_true(p->outer_ip_version == 4 || p->outer_ip_version == 6);
        assert_true((uint32_t)p->outer_src_off + alen <= cap);
        assert_true((uint32_t)p->outer_dst_off + alen <= cap);
    }
    if (p->reason == DECODE_OK) {
        if (p->l4_off != 0)
            assert_true(p->ip_version != 0 && p->l4_off > p->l3_off);
        if (p->frag == PKT_FRAG_LATER)
            assert_int_equal(p->l4_off, 0);
    }
}

/*
 * Decode caplen bytes of src (len on the wire) from an exact-size heap copy.
 * p->data is cleared afterwards: tests look at bytes through src.
 */
static int decode_bytes(struct pkt *p, const uint8_t *src, uint32_t caplen, uint32_t len, int dlt)
{
    uint8_t *buf = malloc(caplen ? caplen : 1);
    int r;

    assert_non_null(buf);
    if (caplen)
        memcpy(buf, src, caplen);
    p->data = buf;
    p->caplen = caplen;
    p->len = len;
    p->ts_us = 1;
    r = decode_packet(p, dlt);
    assert_int_equal(r, p->reason);
    check_invariants(p);
    free(buf);
    p->data = NULL;
    return r;
}

static int decode_full(struct pkt *p, const uint8_t *src, uint32_t n, int dlt)
{
    return decode_bytes(p, src, n, n, dlt);
}

#define DECODE(p, a, dlt) decode_full(p, a, (uint32_t)sizeof(a), dlt)

/* Decode a with one byte replaced. */
static int decode_patch8(struct pkt *p, const uint8_t *a, uint32_t n, int dlt, uint32_t at,
                         uint8_t v)
{
    uint8_t buf[512];

    assert_true(n <= sizeof(buf) && at < n);
    memcpy(buf, a, n);
    buf[at] = v;
    return decode_full(p, buf, n, dlt);
}

/* Decode a with a 16-bit big-endian field replaced. */
static int decode_patch16(struct pkt *p, const uint8_t *a, uint32_t n, int dlt, uint32_t at,
                          uint16_t v)
{
    uint8_t buf[512];

    assert_true(n <= sizeof(buf) && at + 1 < n);
    memcpy(buf, a, n);
    buf[at] = (uint8_t)(v >> 8);
    buf[at + 1] = (uint8_t)v;
    return decode_full(p, buf, n, dlt);
}

#define PATCH8(p, a, dlt, at, v)  decode_patch8(p, a, (uint32_t)sizeof(a), dlt, at, v)
#define PATCH16(p, a, dlt, at, v) decode_patch16(p, a, (uint32_t)sizeof(a), dlt, at, v)

/* The layer list, as types and depths. */
static void check_layers(const struct pkt *p, const uint8_t *types, const uint8_t *depths, int n)
{
    int i;

    assert_int_equal(p->nlayers, n);
    for (i = 0; i < n; i++) {
        assert_string_equal(decode_layer_name(p->layer[i].type), decode_layer_name(types[i]));
        if (depths)
            assert_int_equal(p->layer[i].depth, depths[i]);
    }
}

#define LAYERS(p, ...)                                                                             \
    do {                                                                                           \
        static const uint8_t t_[] = {__VA_ARGS__};                                                 \
        check_layers(p, t_, NULL, (int)sizeof(t_));                                                \
    } while (0)

static void check_v4(const uint8_t *pkt, uint16_t off, const char *quad)
{
    char s[16];

    snprintf(s, sizeof(s), "%u.%u.%u.%u", pkt[off], pkt[off + 1], pkt[off + 2], pkt[off + 3]);
    assert_string_equal(s, quad);
}

/* ---- names and link types ---- */

static void test_names(void **state)
{
    int i, j;

    (void)state;
    for (i = 0; i < DECODE_REASON__COUNT; i++) {
        assert_string_not_equal(decode_reason_name(i), "unknown");
        for (j = 0; j < i; j++)
            assert_string_not_equal(decode_reason_name(i), decode_reason_name(j));
    }
    for (i = 1; i < PKT_L__COUNT; i++) {
        assert_string_not_equal(decode_layer_name(i), "unknown");
        for (j = 1; j < i; j++)
            assert_string_not_equal(decode_layer_name(i), decode_layer_name(j));
    }
    assert_string_equal(decode_reason_name(DECODE_OK), "ok");
    assert_string_equal(decode_reason_name(DECODE_ERR_IP4_LEN), "ip4_len");
    assert_string_equal(decode_reason_name(DECODE_ERR_IP6_EXT), "ip6_ext");
    assert_string_equal(decode_reason_name(DECODE_ERR_TUNNEL_DEPTH), "tunnel_depth");
    assert_string_equal(decode_reason_name(DECODE_ERR_LAYERS), "layers");
    assert_string_equal(decode_reason_name(DECODE_REASON__COUNT), "unknown");
    assert_string_equal(decode_reason_name(-1), "unknown");
    assert_string_equal(decode_layer_name(PKT_L_ICMP4), "icmp4");
    assert_string_equal(decode_layer_name(PKT_L_SLL2), "sll2");
    assert_string_equal(decode_layer_name(PKT_L_GTPU), "gtpu");
    assert_string_equal(decode_layer_name(PKT_L__COUNT), "unknown");
}

static void test_dlt(void **state)
{
    struct pkt p;
    size_t i;

    (void)state;
    for (i = 0; i < NDLTS; i++)
        assert_true(decode_dlt_supported(all_dlts[i]));
    assert_false(decode_dlt_supported(105)); /* 802.11 */
    assert_false(decode_dlt_supported(127)); /* radiotap */
    assert_false(decode_dlt_supported(-1));
    assert_int_equal(DECODE(&p, eth_ip4_udp, 105), DECODE_ERR_LINKTYPE);
    assert_int_equal(p.reason, DECODE_ERR_LINKTYPE);
    assert_int_equal(p.nlayers, 0);
}

/* The result is fully reset: nothing left over from the previous packet. */
static void test_reset(void **state)
{
    struct pkt p;

    (void)state;
    memset(&p, 0xa5, sizeof(p));
    assert_int_equal(DECODE(&p, eth_ip4_udp, DECODE_DLT_EN10MB), DECODE_OK);
    assert_int_equal(p.seen, PKT_SEEN_ETH | PKT_SEEN_IP4 | PKT_SEEN_UDP);
    assert_int_equal(p.nvlan, 0);
    assert_int_equal(p.mpls_label, 0);
    assert_int_equal(p.frag, PKT_FRAG_NONE);
    assert_int_equal(p.frag_id, 0);
    assert_int_equal(p.tcp_flags, 0);
    assert_int_equal(p.tcp_seq, 0);
    assert_int_equal(p.tcp_mss, 0);
    assert_int_equal(p.icmp_type, 0);
    assert_int_equal(p.tunnel_type, 0);
    assert_int_equal(p.tunnel_depth, 0);
    assert_int_equal(p.tunnel_id, 0);
    assert_int_equal(p.outer_ip_version, 0);
    assert_int_equal(p.ts_us, 1);

    /* A non-IP frame after an IP one. */
    assert_int_equal(DECODE(&p, eth_lldp, DECODE_DLT_EN10MB), DECODE_OK);
    assert_int_equal(p.ip_version, 0);
    assert_int_equal(p.l4_off, 0);
    assert_int_equal(p.sport, 0);
    LAYERS(&p, PKT_L_ETH);
}

/* ---- Ethernet, IPv4, TCP ---- */

static void test_eth_ip4_tcp(void **state)
{
    struct pkt p;

    (void)state;
    assert_int_equal(DECODE(&p, eth_ip4_tcp_syn, DECODE_DLT_EN10MB), DECODE_OK);
    LAYERS(&p, PKT_L_ETH, PKT_L_IP4, PKT_L_TCP);
    assert_int_equal(p.seen, PKT_SEEN_ETH | PKT_SEEN_IP4 | PKT_SEEN_TCP);
    assert_int_equal(p.eth_off, 0);
    assert_int_equal(p.ip_version, 4);
    assert_int_equal(p.ip_proto, 6);
    assert_int_equal(p.l3_off, 14);
    assert_int_equal(p.src_off, 26);
    assert_int_equal(p.dst_off, 30);
    check_v4(eth_ip4_tcp_syn, p.src_off, "192.0.2.1");
    check_v4(eth_ip4_tcp_syn, p.dst_off, "198.51.100.2");
    assert_int_equal(p.ip_len, 60);
    assert_int_equal(p.frag, PKT_FRAG_NONE);
    assert_int_equal(p.l4_off, 34);
    assert_int_equal(p.layer[2].len, 40);
    assert_int_equal(p.sport, 40000);
    assert_int_equal(p.dport, 443);
    assert_int_equal(p.tcp_flags, TCP_SYN);
    assert_int_equal(p.tcp_seq, 0x01020304);
    assert_int_equal(p.tcp_ack, 0);
    assert_int_equal(p.tcp_win, 64240);
    assert_int_equal(p.tcp_mss, 1460);
    assert_int_equal(p.payload_off, 74);
    assert_int_equal(p.payload_len, 0);
    assert_int_equal(p.tunnel_type, PKT_TUNNEL_NONE);
}

/* Ethernet padding is not payload: lengths come from the IP header. */
static void test_tcp_padding(void **state)
{
    struct pkt p;

    (void)state;
    assert_int_equal(sizeof(eth_ip4_tcp_pad), 60);
    assert_int_equal(DECODE(&p, eth_ip4_tcp_pad, DECODE_DLT_EN10MB), DECODE_OK);
    assert_int_equal(p.ip_len, 42);
    assert_int_equal(p.tcp_flags, TCP_PSH | TCP_ACK);
    assert_int_equal(p.tcp_seq, 5);
    assert_int_equal(p.tcp_ack, 6);
    assert_int_equal(p.tcp_win, 501);
    assert_int_equal(p.tcp_mss, 0);
    assert_int_equal(p.payload_off, 54);
    assert_int_equal(p.payload_len, 2);
}

static void test_ip4_options(void **state)
{
    struct pkt p;

    (void)state;
    assert_int_equal(DECODE(&p, eth_ip4opt_udp, DECODE_DLT_EN10MB), DECODE_OK);
    LAYERS(&p, PKT_L_ETH, PKT_L_IP4, PKT_L_UDP);
    assert_int_equal(p.layer[1].len, 24);
    assert_int_equal(p.l4_off, 38);
    assert_int_equal(p.sport, 5353);
    assert_int_equal(p.dport, 53);
    assert_int_equal(p.payload_off, 46);
    assert_int_equal(p.payload_len, 4);
}

static void test_ip4_fragments(void **state)
{
    struct pkt p;

    (void)state;
    assert_int_equal(DECODE(&p, eth_ip4_frag_first, DECODE_DLT_EN10MB), DECODE_OK);
    assert_int_equal(p.frag, PKT_FRAG_FIRST);
    assert_int_equal(p.frag_id, 0xbeef);
    assert_true(p.seen & PKT_SEEN_FRAG);
    assert_int_equal(p.l4_off, 34);
    assert_int_equal(p.sport, 1111);
    assert_int_equal(p.dport, 2222);
    assert_int_equal(p.payload_len, 24); /* this fragment's share */

    assert_int_equal(DECODE(&p, eth_ip4_frag_later, DECODE_DLT_EN10MB), DECODE_OK);
    LAYERS(&p, PKT_L_ETH, PKT_L_IP4);
    assert_int_equal(p.frag, PKT_FRAG_LATER);
    assert_int_equal(p.frag_id, 0xbeef);
    assert_true(p.seen & PKT_SEEN_FRAG);
    assert_int_equal(p.ip_proto, 17);
    assert_int_equal(p.l4_off, 0);
    assert_int_equal(p.sport, 0);
    assert_int_equal(p.dport, 0);
}

/* ---- IPv6 ---- */

static void test_ip6_ext(void **state)
{
    struct pkt p;

    (void)state;
    assert_int_equal(DECODE(&p, eth_ip6_ext_udp, DECODE_DLT_EN10MB), DECODE_OK);
    LAYERS(&p, PKT_L_ETH, PKT_L_IP6, PKT_L_UDP);
    assert_int_equal(p.ip_version, 6);
    assert_int_equal(p.ip_proto, 17);
    assert_int_equal(p.src_off, 22);
    assert_int_equal(p.dst_off, 38);
    assert_int_equal(p.layer[1].len, 40 + 8 + 8 + 8);
    assert_int_equal(p.ip_len, 40 + 24 + 8 + 3);
    assert_int_equal(p.frag, PKT_FRAG_FIRST);
    assert_int_equal(p.frag_id, 0x11223344);
    assert_int_equal(p.seen, PKT_SEEN_ETH | PKT_SEEN_IP6 | PKT_SEEN_UDP | PKT_SEEN_FRAG);
    assert_int_equal(p.l4_off, 78);
    assert_int_equal(p.sport, 546);
    assert_int_equal(p.dport, 547);
    assert_int_equal(p.payload_len, 3);

    assert_int_equal(DECODE(&p, eth_ip6_frag_later, DECODE_DLT_EN10MB), DECODE_OK);
    assert_int_equal(p.frag, PKT_FRAG_LATER);
    assert_int_equal(p.frag_id, 0x55667788);
    assert_int_equal(p.ip_proto, 17);
    assert_int_equal(p.l4_off, 0);

    assert_int_equal(DECODE(&p, eth_ip6_rh_tcp, DECODE_DLT_EN10MB), DECODE_OK);
    assert_int_equal(p.ip_proto, 6);
    assert_int_equal(p.layer[1].len, 40 + 24);
    assert_int_equal(p.frag, PKT_FRAG_NONE);
    assert_int_equal(p.sport, 1234);
    assert_int_equal(p.tcp_flags, TCP_ACK);

    /* The limit is inclusive: 8 extension headers decode, 9 do not. */
    assert_int_equal(DECODE(&p, eth_ip6_ext8, DECODE_DLT_EN10MB), DECODE_OK);
    assert_int_equal(p.ip_proto, 17);
    assert_int_equal(p.dport, 1013);
    assert_int_equal(DECODE(&p, eth_ip6_ext9, DECODE_DLT_EN10MB), DECODE_ERR_IP6_EXT);
}

/* ---- UDP, ICMP, ICMPv6, IGMP, ARP ---- */

static void test_udp_icmp_igmp_arp(void **state)
{
    struct pkt p;

    (void)state;
    assert_int_equal(DECODE(&p, eth_ip4_udp, DECODE_DLT_EN10MB), DECODE_OK);
    assert_int_equal(p.ip_proto, 17);
    assert_int_equal(p.sport, 12345);
    assert_int_equal(p.dport, 53);
    assert_int_equal(p.payload_off, 42);
    assert_int_equal(p.payload_len, 20);

    assert_int_equal(DECODE(&p, eth_ip4_icmp_echo, DECODE_DLT_EN10MB), DECODE_OK);
    LAYERS(&p, PKT_L_ETH, PKT_L_IP4, PKT_L_ICMP4);
    assert_int_equal(p.seen, PKT_SEEN_ETH | PKT_SEEN_IP4 | PKT_SEEN_ICMP);
    assert_int_equal(p.icmp_type, 8);
    assert_int_equal(p.icmp_code, 0);
    assert_int_equal(p.sport, 0); /* the echo id is not a port */
    assert_int_equal(p.dport, 0);
    assert_int_equal(p.l4_off, 34);
    assert_int_equal(p.payload_len, 4);

    assert_int_equal(DECODE(&p, eth_ip6_icmp6_echo, DECODE_DLT_EN10MB), DECODE_OK);
    LAYERS(&p, PKT_L_ETH, PKT_L_IP6, PKT_L_ICMP6);
    assert_int_equal(p.ip_proto, 58);
    assert_int_equal(p.icmp_type, 128);
    assert_int_equal(p.sport, 0);
    assert_int_equal(p.dport, 0);
    assert_int_equal(p.payload_len, 4);

    assert_int_equal(DECODE(&p, eth_ip4_igmp, DECODE_DLT_EN10MB), DECODE_OK);
    LAYERS(&p, PKT_L_ETH, PKT_L_IP4, PKT_L_IGMP);
    assert_int_equal(p.seen, PKT_SEEN_ETH | PKT_SEEN_IP4 | PKT_SEEN_IGMP);
    assert_int_equal(p.ip_proto, 2);
    assert_int_equal(p.l4_off, 38);
    assert_int_equal(p.sport, 0);

    assert_int_equal(DECODE(&p, eth_arp, DECODE_DLT_EN10MB), DECODE_OK);
    LAYERS(&p, PKT_L_ETH, PKT_L_ARP);
    assert_int_equal(p.seen, PKT_SEEN_ETH | PKT_SEEN_ARP);
    assert_int_equal(p.ip_version, 0);
    assert_int_equal(p.layer[1].off, 14);

    assert_int_equal(DECODE(&p, eth_stp, DECODE_DLT_EN10MB), DECODE_OK);
    LAYERS(&p, PKT_L_ETH);
    assert_int_equal(p.ip_version, 0);
}

/* ---- VLAN, MPLS, PPPoE ---- */

static void test_vlan(void **state)
{
    struct pkt p;

    (void)state;
    assert_int_equal(DECODE(&p, eth_vlan_udp, DECODE_DLT_EN10MB), DECODE_OK);
    LAYERS(&p, PKT_L_ETH, PKT_L_VLAN, PKT_L_IP4, PKT_L_UDP);
    assert_true(p.seen & PKT_SEEN_VLAN);
    assert_int_equal(p.nvlan, 1);
    assert_int_equal(p.vlan[0], 100); /* the priority bits are not part of the id */
    assert_int_equal(p.l3_off, 18);
    assert_int_equal(p.dport, 2000);

    assert_int_equal(DECODE(&p, eth_qinq_tcp, DECODE_DLT_EN10MB), DECODE_OK);
    LAYERS(&p, PKT_L_ETH, PKT_L_VLAN, PKT_L_VLAN, PKT_L_IP4, PKT_L_TCP);
    assert_int_equal(p.nvlan, 2);
    assert_int_equal(p.vlan[0], 200);
    assert_int_equal(p.vlan[1], 100);
    assert_int_equal(p.l3_off, 22);
    assert_int_equal(p.dport, 4000);

    /* 0x9100 is a tag too. */
    assert_int_equal(PATCH16(&p, eth_qinq_tcp, DECODE_DLT_EN10MB, 12, 0x9100), DECODE_OK);
    assert_int_equal(p.nvlan, 2);

    assert_int_equal(DECODE(&p, eth_vlan5, DECODE_DLT_EN10MB), DECODE_ERR_VLAN);
}

static void test_mpls(void **state)
{
    struct pkt p;

    (void)state;
    assert_int_equal(DECODE(&p, eth_mpls2_udp, DECODE_DLT_EN10MB), DECODE_OK);
    LAYERS(&p, PKT_L_ETH, PKT_L_MPLS, PKT_L_MPLS, PKT_L_IP4, PKT_L_UDP);
    assert_true(p.seen & PKT_SEEN_MPLS);
    assert_int_equal(p.mpls_label, 16);
    assert_int_equal(p.l3_off, 22);
    assert_int_equal(p.sport, 5000);

    /* A payload starting with nibble 0 (a pseudowire control word) is not IP. */
    assert_int_equal(PATCH8(&p, eth_mpls2_udp, DECODE_DLT_EN10MB, 22, 0x00), DECODE_OK);
    assert_int_equal(p.ip_version, 0);
    assert_int_equal(p.mpls_label, 16);

    assert_int_equal(DECODE(&p, eth_mpls9, DECODE_DLT_EN10MB), DECODE_ERR_MPLS);
}

static void test_pppoe(void **state)
{
    struct pkt p;

    (void)state;
    assert_int_equal(DECODE(&p, eth_pppoe_tcp, DECODE_DLT_EN10MB), DECODE_OK);
    LAYERS(&p, PKT_L_ETH, PKT_L_PPPOE, PKT_L_PPP, PKT_L_IP4, PKT_L_TCP);
    assert_true(p.seen & PKT_SEEN_PPPOE);
    assert_int_equal(p.l3_off, 22);
    assert_int_equal(p.dport, 80);

    assert_int_equal(DECODE(&p, eth_pppoe_ip6, DECODE_DLT_EN10MB), DECODE_OK);
    LAYERS(&p, PKT_L_ETH, PKT_L_PPPOE, PKT_L_PPP, PKT_L_IP6, PKT_L_UDP);
    assert_int_equal(p.sport, 7001);

    assert_int_equal(DECODE(&p, pppether_ip4, DECODE_DLT_PPP_ETHER), DECODE_OK);
    LAYERS(&p, PKT_L_PPPOE, PKT_L_PPP, PKT_L_IP4, PKT_L_UDP);
    assert_int_equal(p.eth_off, -1);
    assert_int_equal(p.l3_off, 8);
    assert_int_equal(p.dport, 100);

    /* Bad version/type, a discovery code, a length longer than the frame. */
    assert_int_equal(PATCH8(&p, eth_pppoe_tcp, DECODE_DLT_EN10MB, 14, 0x21), DECODE_ERR_PPPOE);
    assert_int_equal(PATCH8(&p, eth_pppoe_tcp, DECODE_DLT_EN10MB, 15, 0x09), DECODE_ERR_PPPOE);
    assert_int_equal(PATCH16(&p, eth_pppoe_tcp, DECODE_DLT_EN10MB, 18, 1000), DECODE_ERR_PPPOE);
    /* LCP is not IP. */
    assert_int_equal(PATCH16(&p, eth_pppoe_tcp, DECODE_DLT_EN10MB, 20, 0xc021), DECODE_OK);
    assert_int_equal(p.ip_version, 0);
}

/* ---- other link types ---- */

static void test_sll(void **state)
{
    struct pkt p;

    (void)state;
    assert_int_equal(DECODE(&p, sll_ip4_udp, DECODE_DLT_LINUX_SLL), DECODE_OK);
    LAYERS(&p, PKT_L_SLL, PKT_L_IP4, PKT_L_UDP);
    assert_int_equal(p.eth_off, -1);
    assert_int_equal(p.l3_off, 16);
    assert_int_equal(p.sport, 8000);

    assert_int_equal(DECODE(&p, sll2_ip6_tcp, DECODE_DLT_LINUX_SLL2), DECODE_OK);
    LAYERS(&p, PKT_L_SLL2, PKT_L_IP6, PKT_L_TCP);
    assert_int_equal(p.eth_off, -1);
    assert_int_equal(p.l3_off, 20);
    assert_int_equal(p.sport, 8001);
    assert_int_equal(p.tcp_flags, TCP_SYN);

    assert_int_equal(decode_full(&p, sll_ip4_udp, 15, DECODE_DLT_LINUX_SLL), DECODE_ERR_SLL);
    assert_int_equal(decode_full(&p, sll2_ip6_tcp, 19, DECODE_DLT_LINUX_SLL2), DECODE_ERR_SLL);
}

static void test_null_loop(void **state)
{
    struct pkt p;

    (void)state;
    assert_int_equal(DECODE(&p, null_le_ip4, DECODE_DLT_NULL), DECODE_OK);
    LAYERS(&p, PKT_L_NULL, PKT_L_IP4, PKT_L_UDP);
    assert_int_equal(p.l3_off, 4);
    assert_int_equal(p.dport, 2);
    /* The same family in the other byte order. */
    assert_int_equal(PATCH8(&p, null_le_ip4, DECODE_DLT_NULL, 0, 0), DECODE_OK);
    assert_int_equal(p.ip_version, 0);
    {
        uint8_t be[sizeof(null_le_ip4)];

        memcpy(be, null_le_ip4, sizeof(be));
        be[0] = 0;
        be[3] = 2;
        assert_int_equal(DECODE(&p, be, DECODE_DLT_NULL), DECODE_OK);
        assert_int_equal(p.ip_version, 4);
        assert_int_equal(p.dport, 2);
    }

    assert_int_equal(DECODE(&p, null_be_ip6, DECODE_DLT_NULL), DECODE_OK);
    LAYERS(&p, PKT_L_NULL, PKT_L_IP6, PKT_L_ICMP6);
    assert_int_equal(p.icmp_type, 129);
    /* Every AF_INET6, in little-endian too. */
    assert_int_equal(PATCH8(&p, null_be_ip6, DECODE_DLT_NULL, 3, 24), DECODE_OK);
    assert_int_equal(p.ip_version, 6);
    assert_int_equal(PATCH8(&p, null_be_ip6, DECODE_DLT_NULL, 3, 28), DECODE_OK);
    assert_int_equal(p.ip_version, 6);
    assert_int_equal(PATCH8(&p, null_be_ip6, DECODE_DLT_NULL, 3, 10), DECODE_OK);
    assert_int_equal(p.ip_version, 6);
    {
        uint8_t le[sizeof(null_be_ip6)];

        memcpy(le, null_be_ip6, sizeof(le));
        le[0] = 28;
        le[3] = 0;
        assert_int_equal(DECODE(&p, le, DECODE_DLT_NULL), DECODE_OK);
        assert_int_equal(p.ip_version, 6);
    }

    assert_int_equal(DECODE(&p, loop_ip4_tcp, DECODE_DLT_LOOP), DECODE_OK);
    LAYERS(&p, PKT_L_NULL, PKT_L_IP4, PKT_L_TCP);
    assert_int_equal(p.tcp_flags, TCP_RST);
    /* DLT_LOOP is network order only. */
    assert_int_equal(DECODE(&p, null_le_ip4, DECODE_DLT_LOOP), DECODE_OK);
    assert_int_equal(p.ip_version, 0);

    assert_int_equal(decode_full(&p, null_le_ip4, 3, DECODE_DLT_NULL), DECODE_ERR_NULL);
}

static void test_raw(void **state)
{
    struct pkt p;

    (void)state;
    assert_int_equal(DECODE(&p, raw_ip4_tcp, DECODE_DLT_LINKTYPE_RAW), DECODE_OK);
    LAYERS(&p, PKT_L_IP4, PKT_L_TCP);
    assert_int_equal(p.l3_off, 0);
    assert_int_equal(p.tcp_flags, TCP_FIN);
    assert_int_equal(DECODE(&p, raw_ip6_udp, DECODE_DLT_LINKTYPE_RAW), DECODE_OK);
    LAYERS(&p, PKT_L_IP6, PKT_L_UDP);
    assert_int_equal(p.dport, 40);
    assert_int_equal(DECODE(&p, raw_ip4_tcp, DECODE_DLT_RAW), DECODE_OK);
    assert_int_equal(DECODE(&p, raw_ip6_udp, DECODE_DLT_RAW_ALT), DECODE_OK);
    assert_int_equal(DECODE(&p, raw_ip4_tcp, DECODE_DLT_IPV4), DECODE_OK);
    assert_int_equal(DECODE(&p, raw_ip6_udp, DECODE_DLT_IPV6), DECODE_OK);
    assert_int_equal(p.ip_version, 6);
    /* The link type fixes the version. */
    assert_int_equal(DECODE(&p, raw_ip6_udp, DECODE_DLT_IPV4), DECODE_ERR_IP4);
    assert_int_equal(DECODE(&p, raw_ip4_tcp, DECODE_DLT_IPV6), DECODE_ERR_IP6);
    assert_int_equal(PATCH8(&p, raw_ip4_tcp, DECODE_DLT_LINKTYPE_RAW, 0, 0x55), DECODE_ERR_IP4);
    assert_int_equal(decode_full(&p, raw_ip4_tcp, 0, DECODE_DLT_LINKTYPE_RAW), DECODE_ERR_IP4);
}

static void test_hdlc(void **state)
{
    struct pkt p;

    (void)state;
    assert_int_equal(DECODE(&p, hdlc_ip4, DECODE_DLT_C_HDLC), DECODE_OK);
    LAYERS(&p, PKT_L_HDLC, PKT_L_IP4, PKT_L_UDP);
    assert_int_equal(p.l3_off, 4);
    assert_int_equal(p.sport, 50);
    assert_int_equal(p.dport, 60);
    /* Cisco HDLC frames in a capture labelled PPP. */
    assert_int_equal(DECODE(&p, hdlc_ip4, DECODE_DLT_PPP), DECODE_OK);
    LAYERS(&p, PKT_L_HDLC, PKT_L_IP4, PKT_L_UDP);
    assert_int_equal(DECODE(&p, hdlc_slarp, DECODE_DLT_C_HDLC), DECODE_OK);
    assert_int_equal(p.ip_version, 0);
    assert_int_equal(p.nlayers, 1);
    assert_int_equal(decode_full(&p, hdlc_ip4, 3, DECODE_DLT_C_HDLC), DECODE_ERR_HDLC);
    assert_string_equal(decode_reason_name(DECODE_ERR_HDLC), "hdlc");
    assert_string_equal(decode_layer_name(PKT_L_HDLC), "hdlc");
}

static void test_ppp(void **state)
{
    struct pkt p;

    (void)state;
    assert_int_equal(DECODE(&p, ppp_hdlc_ip4, DECODE_DLT_PPP_SERIAL), DECODE_OK);
    LAYERS(&p, PKT_L_PPP, PKT_L_IP4, PKT_L_UDP);
    assert_int_equal(p.layer[0].len, 4);
    assert_int_equal(p.l3_off, 4);
    assert_int_equal(p.dport, 60);
    assert_int_equal(DECODE(&p, ppp_hdlc_ip4, DECODE_DLT_PPP), DECODE_OK);

    assert_int_equal(DECODE(&p, ppp_ip6, DECODE_DLT_PPP), DECODE_OK);
    LAYERS(&p, PKT_L_PPP, PKT_L_IP6, PKT_L_TCP);
    assert_int_equal(p.l3_off, 2);
    assert_int_equal(p.dport, 80);

    /* A compressed (1-byte) protocol field. */
    assert_int_equal(decode_full(&p, ppp_ip6 + 1, sizeof(ppp_ip6) - 1, DECODE_DLT_PPP), DECODE_OK);
    assert_int_equal(p.ip_version, 6);
    assert_int_equal(p.l3_off, 1);

    assert_int_equal(PATCH8(&p, ppp_hdlc_ip4, DECODE_DLT_PPP_SERIAL, 1, 0x05), DECODE_ERR_PPP);
    assert_int_equal(decode_full(&p, ppp_hdlc_ip4, 3, DECODE_DLT_PPP_SERIAL), DECODE_ERR_PPP);
}

/* ---- IP in IP ---- */

static void test_ipip(void **state)
{
    static const uint8_t d4in4[] = {0, 0, 1, 1};
    static const uint8_t t4in4[] = {PKT_L_ETH, PKT_L_IP4, PKT_L_IP4, PKT_L_TCP};
    struct pkt p;

    (void)state;
    assert_int_equal(DECODE(&p, eth_4in4, DECODE_DLT_EN10MB), DECODE_OK);
    check_layers(&p, t4in4, d4in4, 4);
    assert_true(p.seen & PKT_SEEN_TUNNEL);
    assert_int_equal(p.tunnel_type, PKT_TUNNEL_IPIP);
    assert_int_equal(p.tunnel_depth, 1);
    assert_int_equal(p.tunnel_id, 0);
    assert_int_equal(p.outer_ip_version, 4);
    check_v4(eth_4in4, p.outer_src_off, "10.0.0.1");
    check_v4(eth_4in4, p.outer_dst_off, "10.0.0.2");
    assert_int_equal(p.ip_version, 4);
    assert_int_equal(p.ip_proto, 6);
    assert_int_equal(p.l3_off, 34);
    check_v4(eth_4in4, p.src_off, "192.0.2.1");
    assert_int_equal(p.ip_len, 40);
    assert_int_equal(p.sport, 1000);
    assert_int_equal(p.dport, 22);

    assert_int_equal(DECODE(&p, eth_6in4, DECODE_DLT_EN10MB), DECODE_OK);
    LAYERS(&p, PKT_L_ETH, PKT_L_IP4, PKT_L_IP6, PKT_L_UDP);
    assert_int_equal(p.tunnel_type, PKT_TUNNEL_IPIP);
    assert_int_equal(p.outer_ip_version, 4);
    assert_int_equal(p.ip_version, 6);
    assert_int_equal(p.ip_proto, 17);
    assert_int_equal(p.seen & (PKT_SEEN_IP4 | PKT_SEEN_IP6), PKT_SEEN_IP4 | PKT_SEEN_IP6);
    assert_int_equal(p.dport, 53);

    assert_int_equal(DECODE(&p, eth_4in6, DECODE_DLT_EN10MB), DECODE_OK);
    LAYERS(&p, PKT_L_ETH, PKT_L_IP6, PKT_L_IP4, PKT_L_ICMP4);
    assert_int_equal(p.tunnel_type, PKT_TUNNEL_IPIP);
    assert_int_equal(p.outer_ip_version, 6);
    assert_int_equal(p.outer_src_off, 22);
    assert_int_equal(p.outer_dst_off, 38);
    assert_int_equal(p.ip_version, 4);
    assert_int_equal(p.icmp_type, 0);
    assert_int_equal(p.l4_off, 74);

    assert_int_equal(DECODE(&p, eth_6in6, DECODE_DLT_EN10MB), DECODE_OK);
    LAYERS(&p, PKT_L_ETH, PKT_L_IP6, PKT_L_IP6, PKT_L_TCP);
    assert_int_equal(p.outer_ip_version, 6);
    assert_int_equal(p.ip_version, 6);
    assert_int_equal(p.l3_off, 54);
    assert_int_equal(p.src_off, 62);
    assert_int_equal(p.dport, 443);

    /* An inner error is the packet's error. */
    assert_int_equal(PATCH16(&p, eth_4in4, DECODE_DLT_EN10MB, 36, 1000), DECODE_ERR_IP4_LEN);
    assert_int_equal(PATCH8(&p, eth_4in4, DECODE_DLT_EN10MB, 34, 0x44), DECODE_ERR_IP4);
    /* An outer first fragment is not decapsulated. */
    assert_int_equal(PATCH8(&p, eth_4in4, DECODE_DLT_EN10MB, 20, 0x20), DECODE_OK);
    assert_int_equal(p.frag, PKT_FRAG_FIRST);
    assert_int_equal(p.tunnel_type, PKT_TUNNEL_NONE);
    assert_int_equal(p.ip_proto, 4);
    assert_int_equal(p.l4_off, 0);
}

static void test_tunnel_depth(void **state)
{
    struct pkt p;

    (void)state;
    assert_int_equal(DECODE(&p, eth_ipip_x4, DECODE_DLT_EN10MB), DECODE_OK);
    assert_int_equal(p.tunnel_depth, DECODE_MAX_TUNNELS);
    assert_int_equal(p.tunnel_type, PKT_TUNNEL_IPIP);
    check_v4(eth_ipip_x4, p.outer_src_off, "10.0.3.1"); /* the outermost */
    check_v4(eth_ipip_x4, p.src_off, "192.0.2.1");      /* the innermost */
    assert_int_equal(p.sport, 1010);
    assert_int_equal(p.layer[p.nlayers - 1].depth, DECODE_MAX_TUNNELS);

    assert_int_equal(DECODE(&p, eth_ipip_x5, DECODE_DLT_EN10MB), DECODE_ERR_TUNNEL_DEPTH);
    assert_int_equal(p.reason, DECODE_ERR_TUNNEL_DEPTH);

    assert_int_equal(DECODE(&p, eth_layers_overflow, DECODE_DLT_EN10MB), DECODE_ERR_LAYERS);
    assert_int_equal(p.nlayers, DECODE_MAX_LAYERS);
}

/* ---- GRE ---- */

static void test_gre(void **state)
{
    static const uint8_t tteb[] = {PKT_L_ETH,  PKT_L_IP4, PKT_L_GRE, PKT_L_ETH,
                                   PKT_L_VLAN, PKT_L_IP4, PKT_L_UDP};
    static const uint8_t dteb[] = {0, 0, 0, 1, 1, 1, 1};
    struct pkt p;

    (void)state;
    assert_int_equal(DECODE(&p, eth_gre_key_ip4, DECODE_DLT_EN10MB), DECODE_OK);
    LAYERS(&p, PKT_L_ETH, PKT_L_IP4, PKT_L_GRE, PKT_L_IP4, PKT_L_TCP);
    assert_int_equal(p.layer[2].len, 8);
    assert_int_equal(p.layer[2].depth, 0);
    assert_int_equal(p.layer[3].depth, 1);
    assert_int_equal(p.tunnel_type, PKT_TUNNEL_GRE);
    assert_int_equal(p.tunnel_id, 0xdeadbeef);
    assert_int_equal(p.tunnel_depth, 1);
    check_v4(eth_gre_key_ip4, p.outer_src_off, "10.0.0.1");
    check_v4(eth_gre_key_ip4, p.src_off, "192.0.2.1");
    assert_int_equal(p.ip_proto, 6);
    assert_int_equal(p.l3_off, 42);
    assert_int_equal(p.dport, 80);

    assert_int_equal(DECODE(&p, eth_gre_cks_ip6, DECODE_DLT_EN10MB), DECODE_OK);
    LAYERS(&p, PKT_L_ETH, PKT_L_IP4, PKT_L_GRE, PKT_L_IP6, PKT_L_UDP);
    assert_int_equal(p.layer[2].len, 12);
    assert_int_equal(p.tunnel_id, 0);
    assert_int_equal(p.ip_version, 6);
    assert_int_equal(p.dport, 53);

    /* Bridged Ethernet: the inner MACs and VLAN do not replace the outer link. */
    assert_int_equal(DECODE(&p, eth_gre_teb, DECODE_DLT_EN10MB), DECODE_OK);
    check_layers(&p, tteb, dteb, 7);
    assert_int_equal(p.eth_off, 0);
    assert_int_equal(p.nvlan, 0);
    assert_int_equal(p.tunnel_type, PKT_TUNNEL_GRE);
    assert_int_equal(p.sport, 1005);
    assert_int_equal(p.l3_off, 56);

    /* PPTP (version 1) is recorded but stays the outer flow. */
    assert_int_equal(DECODE(&p, eth_gre_pptp, DECODE_DLT_EN10MB), DECODE_OK);
    LAYERS(&p, PKT_L_ETH, PKT_L_IP4, PKT_L_GRE);
    assert_int_equal(p.layer[2].len, 16);
    assert_int_equal(p.tunnel_type, PKT_TUNNEL_NONE);
    assert_int_equal(p.ip_proto, 47);
    assert_int_equal(p.l4_off, 34);
    assert_int_equal(p.sport, 0);
    assert_int_equal(p.payload_off, 50);
    assert_int_equal(p.payload_len, 24);

    /* Version 1 that is not PPTP, versions 2-7, RFC 1701 routing/recursion bits. */
    assert_int_equal(PATCH16(&p, eth_gre_key_ip4, DECODE_DLT_EN10MB, 34, 0x2001), DECODE_ERR_GRE);
    assert_int_equal(PATCH16(&p, eth_gre_key_ip4, DECODE_DLT_EN10MB, 34, 0x2002), DECODE_ERR_GRE);
    assert_int_equal(PATCH16(&p, eth_gre_key_ip4, DECODE_DLT_EN10MB, 34, 0x2007), DECODE_ERR_GRE);
    assert_int_equal(PATCH16(&p, eth_gre_key_ip4, DECODE_DLT_EN10MB, 34, 0x6000), DECODE_ERR_GRE);
    assert_int_equal(PATCH16(&p, eth_gre_key_ip4, DECODE_DLT_EN10MB, 34, 0x2100), DECODE_ERR_GRE);
    assert_int_equal(PATCH16(&p, eth_gre_key_ip4, DECODE_DLT_EN10MB, 34, 0x2800), DECODE_ERR_GRE);
    /* Reserved0 bits 6-12 are ignored (RFC 2784). */
    assert_int_equal(PATCH16(&p, eth_gre_key_ip4, DECODE_DLT_EN10MB, 34, 0x2040), DECODE_OK);
    assert_int_equal(p.tunnel_type, PKT_TUNNEL_GRE);
    /* An unknown payload type (ERSPAN) is the outer GRE flow. */
    assert_int_equal(PATCH16(&p, eth_gre_key_ip4, DECODE_DLT_EN10MB, 36, 0x88be), DECODE_OK);
    assert_int_equal(p.tunnel_type, PKT_TUNNEL_NONE);
    assert_int_equal(p.ip_proto, 47);
    assert_int_equal(p.l4_off, 34);
    /* A payload type that does not match the inner header. */
    assert_int_equal(PATCH16(&p, eth_gre_key_ip4, DECODE_DLT_EN10MB, 36, 0x86dd), DECODE_ERR_IP6);
    /* An IP length too short for the GRE header. */
    assert_int_equal(PATCH16(&p, eth_gre_key_ip4, DECODE_DLT_EN10MB, 16, 26), DECODE_ERR_GRE);
}

/* ---- VXLAN ---- */

static void test_vxlan(void **state)
{
    struct pkt p;

    (void)state;
    assert_int_equal(DECODE(&p, eth_vxlan, DECODE_DLT_EN10MB), DECODE_OK);
    LAYERS(&p, PKT_L_ETH, PKT_L_IP4, PKT_L_UDP, PKT_L_VXLAN, PKT_L_ETH, PKT_L_IP4, PKT_L_TCP);
    assert_int_equal(p.layer[3].depth, 0);
    assert_int_equal(p.layer[4].depth, 1);
    assert_int_equal(p.eth_off, 0);
    assert_int_equal(p.tunnel_type, PKT_TUNNEL_VXLAN);
    assert_int_equal(p.tunnel_id, 5000);
    check_v4(eth_vxlan, p.outer_src_off, "10.0.0.1");
    check_v4(eth_vxlan, p.src_off, "192.0.2.1");
    assert_int_equal(p.ip_proto, 6);
    assert_int_equal(p.l3_off, 64);
    assert_int_equal(p.l4_off, 84);
    assert_int_equal(p.sport, 1007); /* the inner ports, not 54321 -> 4789 */
    assert_int_equal(p.dport, 8080);
    assert_int_equal(p.tcp_flags, TCP_SYN);

    /* Inner non-IP: the innermost IP datagram is the outer one. */
    assert_int_equal(DECODE(&p, eth_vxlan_arp, DECODE_DLT_EN10MB), DECODE_OK);
    LAYERS(&p, PKT_L_ETH, PKT_L_IP4, PKT_L_UDP, PKT_L_VXLAN, PKT_L_ETH, PKT_L_ARP);
    assert_int_equal(p.tunnel_type, PKT_TUNNEL_VXLAN);
    assert_int_equal(p.tunnel_id, 5001);
    assert_true(p.seen & PKT_SEEN_ARP);
    assert_int_equal(p.ip_version, 4);
    assert_int_equal(p.src_off, 26);
    assert_int_equal(p.dport, 4789);

    /* Without the I flag it is not VXLAN: a plain UDP flow. */
    assert_int_equal(PATCH8(&p, eth_vxlan, DECODE_DLT_EN10MB, 42, 0x00), DECODE_OK);
    LAYERS(&p, PKT_L_ETH, PKT_L_IP4, PKT_L_UDP);
    assert_int_equal(p.tunnel_type, PKT_TUNNEL_NONE);
    assert_int_equal(p.dport, 4789);

    /* Cut inside the inner Ethernet header, or the VXLAN header. */
    assert_int_equal(decode_bytes(&p, eth_vxlan, 60, sizeof(eth_vxlan), DECODE_DLT_EN10MB),
                     DECODE_ERR_ETH);
    assert_int_equal(decode_bytes(&p, eth_vxlan, 45, sizeof(eth_vxlan), DECODE_DLT_EN10MB),
                     DECODE_ERR_VXLAN);
    /* A bad inner IP header. */
    assert_int_equal(PATCH8(&p, eth_vxlan, DECODE_DLT_EN10MB, 64, 0x43), DECODE_ERR_IP4);
}

/* ---- GTP-U ---- */

static void test_gtpu(void **state)
{
    struct pkt p;

    (void)state;
    assert_int_equal(DECODE(&p, eth_gtpu, DECODE_DLT_EN10MB), DECODE_OK);
    LAYERS(&p, PKT_L_ETH, PKT_L_IP4, PKT_L_UDP, PKT_L_GTPU, PKT_L_IP4, PKT_L_UDP);
    assert_int_equal(p.layer[3].len, 8);
    assert_int_equal(p.tunnel_type, PKT_TUNNEL_GTPU);
    assert_int_equal(p.tunnel_id, 0x01020304);
    assert_int_equal(p.l3_off, 50);
    assert_int_equal(p.sport, 1008);
    assert_int_equal(p.dport, 53);

    assert_int_equal(DECODE(&p, eth_gtpu_ext, DECODE_DLT_EN10MB), DECODE_OK);
    LAYERS(&p, PKT_L_ETH, PKT_L_IP4, PKT_L_UDP, PKT_L_GTPU, PKT_L_IP6, PKT_L_TCP);
    assert_int_equal(p.layer[3].len, 16);
    assert_int_equal(p.tunnel_id, 0xa0b0c0d0);
    assert_int_equal(p.outer_ip_version, 4);
    assert_int_equal(p.ip_version, 6);
    assert_int_equal(p.l3_off, 58);
    assert_int_equal(p.sport, 1009);

    /* Signalling is not decapsulated. */
    assert_int_equal(DECODE(&p, eth_gtpu_echo, DECODE_DLT_EN10MB), DECODE_OK);
    LAYERS(&p, PKT_L_ETH, PKT_L_IP4, PKT_L_UDP, PKT_L_GTPU);
    assert_int_equal(p.layer[3].len, 12);
    assert_int_equal(p.tunnel_type, PKT_TUNNEL_NONE);
    assert_int_equal(p.sport, 2152);

    /* An extension header of length 0, a GTP length beyond the UDP payload. */
    assert_int_equal(PATCH8(&p, eth_gtpu_ext, DECODE_DLT_EN10MB, 54, 0), DECODE_ERR_GTPU);
    assert_int_equal(PATCH8(&p, eth_gtpu_ext, DECODE_DLT_EN10MB, 54, 100), DECODE_ERR_GTPU);
    assert_int_equal(PATCH16(&p, eth_gtpu, DECODE_DLT_EN10MB, 44, 1000), DECODE_ERR_GTPU);
    /* Not GTPv1 with PT set: a plain UDP flow. */
    assert_int_equal(PATCH8(&p, eth_gtpu, DECODE_DLT_EN10MB, 42, 0x48), DECODE_OK);
    assert_int_equal(p.tunnel_type, PKT_TUNNEL_NONE);
    assert_int_equal(p.sport, 2152);
    /* A G-PDU that is not IP. */
    assert_int_equal(PATCH8(&p, eth_gtpu, DECODE_DLT_EN10MB, 50, 0x00), DECODE_OK);
    assert_int_equal(p.tunnel_type, PKT_TUNNEL_NONE);
    /* A truncated inner packet is the inner decoder's error. */
    assert_int_equal(decode_bytes(&p, eth_gtpu, 60, sizeof(eth_gtpu), DECODE_DLT_EN10MB),
                     DECODE_ERR_IP4);
    assert_int_equal(decode_bytes(&p, eth_gtpu, 50, sizeof(eth_gtpu), DECODE_DLT_EN10MB),
                     DECODE_ERR_GTPU);
}

/* ---- malformed headers ---- */

static void test_malformed(void **state)
{
    const int eth = DECODE_DLT_EN10MB;
    struct pkt p;

    (void)state;
    /* IPv4: IHL < 5, bad version, IHL beyond the capture. */
    assert_int_equal(PATCH8(&p, eth_ip4_tcp_syn, eth, 14, 0x44), DECODE_ERR_IP4);
    assert_int_equal(PATCH8(&p, eth_ip4_tcp_syn, eth, 14, 0x55), DECODE_ERR_IP4);
    assert_int_equal(PATCH8(&p, eth_ip4_tcp_syn, eth, 14, 0x65), DECODE_ERR_IP4);
    assert_int_equal(PATCH8(&p, eth_ip4_udp, eth, 14, 0x4f), DECODE_ERR_IP4);
    /* Total length below the header, above the frame; fine under a snaplen. */
    assert_int_equal(PATCH16(&p, eth_ip4_tcp_syn, eth, 16, 19), DECODE_ERR_IP4_LEN);
    assert_int_equal(PATCH16(&p, eth_ip4_tcp_syn, eth, 16, 61), DECODE_ERR_IP4_LEN);
    /* 0 (TCP segmentation offload on the sender): the frame's length. */
    assert_int_equal(PATCH16(&p, eth_ip4_tcp_syn, eth, 16, 0), DECODE_OK);
    assert_int_equal(p.ip_len, sizeof(eth_ip4_tcp_syn) - 14);
    assert_int_equal(decode_bytes(&p, eth_ip4_tcp_syn, sizeof(eth_ip4_tcp_syn), 1514, eth),
                     DECODE_OK);
    assert_int_equal(decode_bytes(&p, eth_ip4_udp, 42, sizeof(eth_ip4_udp), eth), DECODE_OK);
    assert_int_equal(p.payload_off, 42);
    assert_int_equal(p.payload_len, 20);
    assert_int_equal(decode_full(&p, eth_ip4_udp, 13, eth), DECODE_ERR_ETH);

    /* TCP: data offset < 5, beyond the IP payload, beyond the capture. */
    assert_int_equal(PATCH8(&p, eth_ip4_tcp_syn, eth, 46, 0x40), DECODE_ERR_TCP);
    assert_int_equal(PATCH8(&p, eth_ip4_tcp_syn, eth, 46, 0xf0), DECODE_ERR_TCP);
    assert_int_equal(decode_bytes(&p, eth_ip4_tcp_syn, 60, sizeof(eth_ip4_tcp_syn), eth),
                     DECODE_ERR_TCP);
    /* A malformed option ends the option walk, not the packet. */
    assert_int_equal(PATCH8(&p, eth_ip4_tcp_syn, eth, 55, 1), DECODE_OK);
    assert_int_equal(p.tcp_mss, 0);

    /* UDP: length < 8, IP payload shorter than the header. */
    assert_int_equal(PATCH16(&p, eth_ip4_udp, eth, 38, 7), DECODE_ERR_UDP);
    assert_int_equal(PATCH16(&p, eth_ip4_udp, eth, 16, 27), DECODE_ERR_UDP);

    /* ICMP and ICMPv6 shorter than 8 bytes. */
    assert_int_equal(PATCH16(&p, eth_ip4_icmp_echo, eth, 16, 24), DECODE_ERR_ICMP);
    assert_int_equal(PATCH16(&p, eth_ip6_icmp6_echo, eth, 18, 4), DECODE_ERR_ICMP6);

    /* IPv6: bad version, payload length beyond the frame, jumbogram. */
    assert_int_equal(PATCH8(&p, eth_ip6_icmp6_echo, eth, 14, 0x40), DECODE_ERR_IP6);
    assert_int_equal(PATCH16(&p, eth_ip6_icmp6_echo, eth, 18, 13), DECODE_ERR_IP6_LEN);
    assert_int_equal(PATCH16(&p, eth_ip6_icmp6_echo, eth, 18, 0), DECODE_OK);
    assert_int_equal(p.ip_len, sizeof(eth_ip6_icmp6_echo) - 14);
    /* Extension headers: beyond the datagram, beyond the capture. */
    assert_int_equal(PATCH8(&p, eth_ip6_ext_udp, eth, 55, 20), DECODE_ERR_IP6_EXT);
    assert_int_equal(decode_bytes(&p, eth_ip6_ext_udp, 58, sizeof(eth_ip6_ext_udp), eth),
                     DECODE_ERR_IP6_EXT);
    /* An atomic fragment is a whole datagram. */
    assert_int_equal(PATCH8(&p, eth_ip6_ext_udp, eth, 73, 0), DECODE_OK);
    assert_int_equal(p.frag, PKT_FRAG_NONE);
    assert_int_equal(p.dport, 547);

    /* ARP that is not Ethernet/IPv4, or truncated. */
    assert_int_equal(PATCH8(&p, eth_arp, eth, 15, 6), DECODE_ERR_ARP);
    assert_int_equal(decode_full(&p, eth_arp, 41, eth), DECODE_ERR_ARP);

    /* Truncated VLAN tag and MPLS label stack. */
    assert_int_equal(decode_full(&p, eth_vlan_udp, 17, eth), DECODE_ERR_VLAN);
    assert_int_equal(decode_full(&p, eth_mpls2_udp, 21, eth), DECODE_ERR_MPLS);
}

/* ---- every prefix, snaplen cuts ---- */

/* The reasons a truncated copy of a packet with these layers may give. */
static uint32_t reason_family(const struct pkt *full, int dlt)
{
    uint32_t m = 1u << DECODE_OK;
    int i;

    for (i = 0; i < full->nlayers; i++) {
        switch (full->layer[i].type) {
        case PKT_L_ETH:
            m |= 1u << DECODE_ERR_ETH;
            break;
        case PKT_L_VLAN:
            m |= 1u << DECODE_ERR_VLAN;
            break;
        case PKT_L_MPLS:
            m |= 1u << DECODE_ERR_MPLS;
            break;
        case PKT_L_PPPOE:
            m |= 1u << DECODE_ERR_PPPOE;
            break;
        case PKT_L_PPP:
            m |= 1u << DECODE_ERR_PPP;
            break;
        case PKT_L_SLL:
        case PKT_L_SLL2:
            m |= 1u << DECODE_ERR_SLL;
            break;
        case PKT_L_NULL:
            m |= 1u << DECODE_ERR_NULL;
            break;
        case PKT_L_ARP:
            m |= 1u << DECODE_ERR_ARP;
            break;
        case PKT_L_IP4:
            m |= 1u << DECODE_ERR_IP4 | 1u << DECODE_ERR_IP4_LEN;
            break;
        case PKT_L_IP6:
            m |= 1u << DECODE_ERR_IP6 | 1u << DECODE_ERR_IP6_LEN | 1u << DECODE_ERR_IP6_EXT;
            break;
        case PKT_L_TCP:
            m |= 1u << DECODE_ERR_TCP;
            break;
        case PKT_L_UDP:
            m |= 1u << DECODE_ERR_UDP;
            break;
        case PKT_L_ICMP4:
            m |= 1u << DECODE_ERR_ICMP;
            break;
        case PKT_L_ICMP6:
            m |= 1u << DECODE_ERR_ICMP6;
            break;
        case PKT_L_GRE:
            m |= 1u << DECODE_ERR_GRE;
            break;
        case PKT_L_VXLAN:
            m |= 1u << DECODE_ERR_VXLAN;
            break;
        case PKT_L_GTPU:
            m |= 1u << DECODE_ERR_GTPU;
            break;
        case PKT_L_HDLC:
            m |= 1u << DECODE_ERR_HDLC;
            break;
        default:
            break;
        }
    }
    /* An empty raw IP packet has no version: reported as a bad IPv4 header. */
    if (dlt == DECODE_DLT_LINKTYPE_RAW)
        m |= 1u << DECODE_ERR_IP4;
    return m;
}

/* Both results say the same, layer by layer (padding and unused layers aside). */
static void check_same_result(const struct pkt *a, const struct pkt *b)
{
    assert_memory_equal(&a->reason, &b->reason,
                        offsetof(struct pkt, layer) - offsetof(struct pkt, reason));
    assert_memory_equal(a->layer, b->layer, sizeof(a->layer[0]) * a->nlayers);
    assert_memory_equal(&a->eth_off, &b->eth_off, sizeof(*a) - offsetof(struct pkt, eth_off));
}

static uint32_t headers_end(const struct pkt *p)
{
    uint32_t end = 0, e;
    int i;

    for (i = 0; i < p->nlayers; i++) {
        e = (uint32_t)p->layer[i].off + p->layer[i].len;
        if (e > end)
            end = e;
    }
    return end;
}

/* caplen = len = every prefix: a frame that short on the wire. */
static void test_prefixes(void **state)
{
    struct pkt full, p;
    uint32_t fam, n;
    size_t i;
    int r;

    (void)state;
    for (i = 0; i < NVALID; i++) {
        const struct tpkt *t = &valid_pkts[i];

        assert_int_equal(decode_full(&full, t->data, t->len, t->dlt), DECODE_OK);
        fam = reason_family(&full, t->dlt);
        for (n = 0; n <= t->len; n++) {
            r = decode_full(&p, t->data, n, t->dlt);
            if (!(fam & 1u << r))
                fail_msg("%s prefix %u: unexpected reason %s", t->name, n, decode_reason_name(r));
        }
    }
}

/*
 * caplen < len (a snaplen): once every header is captured the result is the
 * same as for the whole packet; before that, only the expected reasons.
 */
static void test_snaplen(void **state)
{
    struct pkt full, p;
    uint32_t fam, n, hend;
    size_t i;
    int r;

    (void)state;
    for (i = 0; i < NVALID; i++) {
        const struct tpkt *t = &valid_pkts[i];

        assert_int_equal(decode_full(&full, t->data, t->len, t->dlt), DECODE_OK);
        fam = reason_family(&full, t->dlt);
        hend = headers_end(&full);
        for (n = 0; n <= t->len; n++) {
            r = decode_bytes(&p, t->data, n, t->len, t->dlt);
            if (n >= hend) {
                if (r != DECODE_OK)
                    fail_msg("%s snaplen %u: %s", t->name, n, decode_reason_name(r));
                check_same_result(&full, &p);
            } else if (!(fam & 1u << r)) {
                fail_msg("%s snaplen %u: unexpected reason %s", t->name, n, decode_reason_name(r));
            }
        }
    }
}

/* ---- randomized robustness ---- */

static uint64_t rng_state = 0x5eed5eed12345678ull;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

#define FUZZ_ROUNDS 200000

/*
 * Bit flips, byte overwrites, truncation and wrong link types applied to the
 * crafted packets, and plain noise; check_invariants() runs on every result.
 */
static void test_random(void **state)
{
    /* version/IHL, tag and flag bytes the decoders branch on */
    static const uint8_t interesting[] = {0x00, 0xff, 0x45, 0x60, 0x81, 0x08, 0x7f, 0x30};
    uint8_t buf[512];
    const struct tpkt *t;
    struct pkt p;
    uint32_t n, caplen, len, k, nflips;
    int dlt, i, counts[DECODE_REASON__COUNT] = {0};

    (void)state;
    for (i = 0; i < FUZZ_ROUNDS; i++) {
        k = rng() % (NVALID + NLIMIT);
        t = k < NVALID ? &valid_pkts[k] : &limit_pkts[k - NVALID];
        n = t->len;
        dlt = t->dlt;
        memcpy(buf, t->data, n);
        switch (rng() % 4) {
        case 0: /* flip a few bits anywhere in the headers */
            nflips = 1 + rng() % 8;
            while (nflips--) {
                k = rng() % (n < 128 ? n : 128);
                buf[k] ^= (uint8_t)(1u << (rng() % 8));
            }
            break;
        case 1: /* overwrite a byte with an interesting value */
            buf[rng() % n] = interesting[rng() % sizeof(interesting)];
            break;
        case 2: /* noise */
            n = rng() % sizeof(buf);
            for (k = 0; k < n; k++)
                buf[k] = (uint8_t)rng();
            break;
        default: /* unchanged bytes, only the lengths and link type vary */
            break;
        }
        if (rng() % 10 == 0)
            dlt = all_dlts[rng() % NDLTS];
        caplen = rng() % 2 ? n : rng() % (n + 1);
        len = caplen;
        if (rng() % 4 == 0)
            len += rng() % 2000;
        else if (rng() % 50 == 0)
            len = rng() % (caplen + 1); /* a bogus len below caplen */
        counts[decode_bytes(&p, buf, caplen, len, dlt)]++;
    }
    /* The loop reached past the link layers. */
    assert_true(counts[DECODE_OK] > FUZZ_ROUNDS / 10);
    assert_true(counts[DECODE_ERR_TCP] > 0);
    assert_true(counts[DECODE_ERR_IP6_EXT] > 0);
    assert_true(counts[DECODE_ERR_GTPU] > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_dlt),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_eth_ip4_tcp),
        cmocka_unit_test(test_tcp_padding),
        cmocka_unit_test(test_ip4_options),
        cmocka_unit_test(test_ip4_fragments),
        cmocka_unit_test(test_ip6_ext),
        cmocka_unit_test(test_udp_icmp_igmp_arp),
        cmocka_unit_test(test_vlan),
        cmocka_unit_test(test_mpls),
        cmocka_unit_test(test_pppoe),
        cmocka_unit_test(test_sll),
        cmocka_unit_test(test_null_loop),
        cmocka_unit_test(test_raw),
        cmocka_unit_test(test_ppp),
        cmocka_unit_test(test_hdlc),
        cmocka_unit_test(test_ipip),
        cmocka_unit_test(test_tunnel_depth),
        cmocka_unit_test(test_gre),
        cmocka_unit_test(test_vxlan),
        cmocka_unit_test(test_gtpu),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_prefixes),
        cmocka_unit_test(test_snaplen),
        cmocka_unit_test(test_random),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
