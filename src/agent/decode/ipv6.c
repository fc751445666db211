/*
 * ipv6.c - IPv6 headers and their extension header chain.
 *
 * The chain is walked up to DECODE_MAX_IP6_EXT headers to find the
 * upper-layer protocol, which becomes ip_proto. The IP6 layer record covers
 * the fixed header and the extension headers together. A fragment header
 * sets frag/frag_id as in IPv4; an atomic fragment (offset 0, no more
 * fragments) is a whole datagram and is treated as one.
 *
 * A payload length of 0 is a jumbogram or an empty packet; either way the
 * frame on the wire is the datagram.
 */
#include "decode_int.h"

#define IP6_HLEN      40
#define IP6_FRAG_HLEN 8
#define IP6_OFFMASK   0xfff8 /* fragment offset, in 8-byte units, shifted by 3 */
#define IP6_MF        0x0001

static int decode_ip6_is_ext(uint8_t nh)
{
    switch (nh) {
    case DECODE_IPP_HOPOPT:
    case DECODE_IPP_ROUTING:
    case DECODE_IPP_FRAGMENT:
    case DECODE_IPP_DSTOPTS:
    case DECODE_IPP_AH:
    case DECODE_IPP_MOBILITY:
        return 1;
    default:
        return 0;
    }
}

/* Length of the extension header at off; its first two bytes are captured. */
static uint32_t decode_ip6_ext_len(const struct pkt *p, uint8_t nh, uint32_t off)
{
    if (nh == DECODE_IPP_FRAGMENT)
        return IP6_FRAG_HLEN;
    if (nh == DECODE_IPP_AH)
        return (decode_rd8(p, off + 1) + 2u) * 4; /* in 4-byte units, minus 2 */
    return (decode_rd8(p, off + 1) + 1u) * 8;     /* in 8-byte units, minus 1 */
}

static void decode_ip6_frag(struct pkt *p, uint32_t off)
{
    uint16_t fo = decode_rd16(p, off + 2);

    if (fo & IP6_OFFMASK)
        p->frag = PKT_FRAG_LATER;
    else if (fo & IP6_MF)
        p->frag = PKT_FRAG_FIRST;
    else
        return; /* atomic fragment */
    p->seen |= PKT_SEEN_FRAG;
    p->frag_id = decode_rd32(p, off + 4);
}

/*
 * Walk the extension headers starting at *off with next header *nh, inside a
 * datagram ending at end. Leaves *off and *nh at the upper-layer header.
 */
static int decode_ip6_exts(struct pkt *p, uint32_t *off, uint8_t *nh, uint32_t end)
{
    unsigned n = 0;
    uint32_t elen;

    while (decode_ip6_is_ext(*nh)) {
        if (n++ == DECODE_MAX_IP6_EXT)
            return DECODE_ERR_IP6_EXT;
        if (*off + 2 > end || !decode_fits(p, *off, 2))
            return DECODE_ERR_IP6_EXT;
        elen = decode_ip6_ext_len(p, *nh, *off);
        if (*off + elen > end || !decode_fits(p, *off, elen))
            return DECODE_ERR_IP6_EXT;
        if (*nh == DECODE_IPP_FRAGMENT)
            decode_ip6_frag(p, *off);
        *nh = decode_rd8(p, *off);
        *off += elen;
        if (p->frag == PKT_FRAG_LATER)
            break; /* what follows is the middle of a datagram */
    }
    return DECODE_OK;
}

int decode_ip6(struct pkt *p, uint32_t off)
{
    uint32_t plen, left, end, l4;
    uint8_t nh;
    int r;

    if (!decode_fits(p, off, IP6_HLEN) || decode_rd8(p, off) >> 4 != 6)
        return DECODE_ERR_IP6;
    left = decode_wire_left(p, off);
    if (left < IP6_HLEN)
        return DECODE_ERR_IP6_LEN;
    plen = decode_rd16(p, off + 4);
    if (plen == 0)
        plen = left - IP6_HLEN;
    else if (plen > left - IP6_HLEN)
        return DECODE_ERR_IP6_LEN;
    end = off + IP6_HLEN + plen;

    if (p->tunnel_depth > 0)
        decode_clear_flow(p);
    nh = decode_rd8(p, off + 6);
    l4 = off + IP6_HLEN;
    r = decode_ip6_exts(p, &l4, &nh, end);
    if (r != DECODE_OK)
        return r;
    r = decode_layer_add(p, PKT_L_IP6, off, l4 - off);
    if (r != DECODE_OK)
        return r;

    p->seen |= PKT_SEEN_IP6;
    p->ip_version = 6;
    p->ip_proto = nh;
    p->l3_off = (uint16_t)off;
    p->src_off = (uint16_t)(off + 8);
    p->dst_off = (uint16_t)(off + 24);
    p->ip_len = IP6_HLEN + plen;
    if (p->frag == PKT_FRAG_LATER || nh == DECODE_IPP_NONE)
        return DECODE_OK;
    return decode_ip_proto(p, nh, l4, end - l4);
}
