/*
 * decode_int.h - what the per-protocol decoders share, and nothing else sees.
 *
 * Every decoder has the same shape: it takes the packet and the offset where
 * its header starts, checks that the header fits in the capture, records a
 * layer, fills the struct pkt fields it owns and hands the rest to the next
 * decoder. It returns DECODE_OK or the reason the packet is discarded, and
 * that reason travels back up unchanged: the innermost failure wins.
 *
 * Reads go through decode_rd8/16/32, which do not check anything: call them
 * only on bytes a decode_fits() call has already vouched for.
 */
#ifndef SONDE_DECODE_INT_H
#define SONDE_DECODE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "decode.h"

/*
 * Layer offsets are 16 bits wide, so a header must end within the first
 * 64 KiB of the capture. Real headers sit in the first few hundred bytes; a
 * chain that reaches further is treated like a truncated one.
 */
#define DECODE_HDR_LIMIT 0xffffu

/* EtherTypes; GRE, SLL and PPPoE use the same numbers. */
#define DECODE_ETH_IP4      0x0800
#define DECODE_ETH_ARP      0x0806
#define DECODE_ETH_VLAN     0x8100
#define DECODE_ETH_IP6      0x86dd
#define DECODE_ETH_MPLS_UC  0x8847
#define DECODE_ETH_MPLS_MC  0x8848
#define DECODE_ETH_PPPOE    0x8864
#define DECODE_ETH_QINQ     0x88a8
#define DECODE_ETH_QINQ_OLD 0x9100
#define DECODE_ETH_TEB      0x6558 /* GRE: transparent Ethernet bridging */
#define DECODE_ETH_PPTP     0x880b /* enhanced GRE (PPTP) carrying PPP */

/* IP protocol numbers. */
#define DECODE_IPP_HOPOPT   0
#define DECODE_IPP_ICMP     1
#define DECODE_IPP_IGMP     2
#define DECODE_IPP_IPIP     4
#define DECODE_IPP_TCP      6
#define DECODE_IPP_UDP      17
#define DECODE_IPP_IPV6     41
#define DECODE_IPP_ROUTING  43
#define DECODE_IPP_FRAGMENT 44
#define DECODE_IPP_GRE      47
#define DECODE_IPP_AH       51
#define DECODE_IPP_ICMPV6   58
#define DECODE_IPP_NONE     59
#define DECODE_IPP_DSTOPTS  60
#define DECODE_IPP_MOBILITY 135

/* UDP ports that carry tunnels. */
#define DECODE_PORT_VXLAN 4789
#define DECODE_PORT_GTPU  2152

/* Whether [off, off + n) lies inside the capture (and inside the 64 KiB limit). */
static inline int decode_fits(const struct pkt *p, uint32_t off, uint32_t n)
{
    uint64_t end = (uint64_t)off + n;

    return end <= p->caplen && end <= DECODE_HDR_LIMIT;
}

/* Bytes on the wire from off to the end of the frame (0 when off is past it). */
static inline uint32_t decode_wire_left(const struct pkt *p, uint32_t off)
{
    return p->len > off ? p->len - off : 0;
}

static inline uint8_t decode_rd8(const struct pkt *p, uint32_t off)
{
    return p->data[off];
}

static inline uint16_t decode_rd16(const struct pkt *p, uint32_t off)
{
    return (uint16_t)((unsigned)p->data[off] << 8 | p->data[off + 1]);
}

static inline uint32_t decode_rd32(const struct pkt *p, uint32_t off)
{
    return (uint32_t)p->data[off] << 24 | (uint32_t)p->data[off + 1] << 16 |
           (uint32_t)p->data[off + 2] << 8 | p->data[off + 3];
}

/* Record a header; off and len are already known to fit in the capture. */
static inline int decode_layer_add(struct pkt *p, int type, uint32_t off, uint32_t len)
{
    struct pkt_layer *l;

    if (p->nlayers >= DECODE_MAX_LAYERS)
        return DECODE_ERR_LAYERS;
    l = &p->layer[p->nlayers++];
    l->type = (uint8_t)type;
    l->depth = p->tunnel_depth;
    l->off = (uint16_t)off;
    l->len = (uint16_t)len;
    return DECODE_OK;
}

/*
 * An inner IP header replaces the flow: forget the fragment and transport
 * fields the outer datagram left behind (e.g. the UDP ports of VXLAN).
 */
static inline void decode_clear_flow(struct pkt *p)
{
    memset(&p->frag, 0, offsetof(struct pkt, tunnel_type) - offsetof(struct pkt, frag));
}

/* decode.c: dispatch shared by several decoders. */
int decode_ethertype(struct pkt *p, uint16_t type, uint32_t off);
int decode_ip_proto(struct pkt *p, uint8_t proto, uint32_t off, uint32_t len);
int decode_tunnel_enter(struct pkt *p, uint8_t type, uint32_t id);

/* Link layers. off is where the header starts. */
int decode_eth(struct pkt *p, uint32_t off);
int decode_vlan(struct pkt *p, uint32_t off);
int decode_mpls(struct pkt *p, uint32_t off);
int decode_pppoe(struct pkt *p, uint32_t off);
int decode_ppp(struct pkt *p, uint32_t off);
int decode_sll(struct pkt *p, uint32_t off);
int decode_sll2(struct pkt *p, uint32_t off);
int decode_hdlc(struct pkt *p, uint32_t off);
int decode_null(struct pkt *p, uint32_t off, int dlt);
int decode_arp(struct pkt *p, uint32_t off);

/* Network layers. */
int decode_ip4(struct pkt *p, uint32_t off);
int decode_ip6(struct pkt *p, uint32_t off);

/*
 * Transports and tunnels. len is the length of the IP (or UDP) payload that
 * starts at off, from the enclosing header: it may exceed the capture.
 */
int decode_tcp(struct pkt *p, uint32_t off, uint32_t len);
int decode_udp(struct pkt *p, uint32_t off, uint32_t len);
int decode_icmp4(struct pkt *p, uint32_t off, uint32_t len);
int decode_icmp6(struct pkt *p, uint32_t off, uint32_t len);
int decode_igmp(struct pkt *p, uint32_t off, uint32_t len);
int decode_gre(struct pkt *p, uint32_t off, uint32_t len);
int decode_vxlan(struct pkt *p, uint32_t off, uint32_t len);
int decode_gtpu(struct pkt *p, uint32_t off, uint32_t len);

#endif
