/*
 * ipv4.c - IPv4 headers, options skipped, fragments recognised.
 *
 * The total length is checked against the frame on the wire, not against
 * the capture: a snaplen may cut the datagram, Ethernet padding may extend
 * the frame, and only a length the frame could not hold is an error; a
 * length of 0 (TSO, see below) means the whole frame.
 * A first fragment carries the transport header and is decoded through it;
 * a later one has none, so its flow stops at the IP header.
 */
#include "decode_int.h"

#define IP4_MIN_HLEN 20
#define IP4_MF       0x2000 /* more fragments */
#define IP4_OFFMASK  0x1fff /* fragment offset, in 8-byte units */

int decode_ip4(struct pkt *p, uint32_t off)
{
    uint32_t hl, tot;
    uint16_t frag;
    int r;

    if (!decode_fits(p, off, IP4_MIN_HLEN) || decode_rd8(p, off) >> 4 != 4)
        return DECODE_ERR_IP4;
    hl = (decode_rd8(p, off) & 0x0fu) * 4;
    if (hl < IP4_MIN_HLEN || !decode_fits(p, off, hl))
        return DECODE_ERR_IP4;
    tot = decode_rd16(p, off + 2);
    /* 0 is what TCP segmentation offload leaves in datagrams captured on
     * the sending host before the NIC splits them: the frame holds it all. */
    if (tot == 0)
        tot = decode_wire_left(p, off);
    if (tot < hl || tot > decode_wire_left(p, off))
        return DECODE_ERR_IP4_LEN;
    r = decode_layer_add(p, PKT_L_IP4, off, hl);
    if (r != DECODE_OK)
        return r;

    if (p->tunnel_depth > 0)
        decode_clear_flow(p);
    p->seen |= PKT_SEEN_IP4;
    p->ip_version = 4;
    p->ip_proto = decode_rd8(p, off + 9);
    p->l3_off = (uint16_t)off;
    p->src_off = (uint16_t)(off + 12);
    p->dst_off = (uint16_t)(off + 16);
    p->ip_len = tot;

    frag = decode_rd16(p, off + 6);
    if (frag & (IP4_MF | IP4_OFFMASK)) {
        p->seen |= PKT_SEEN_FRAG;
        p->frag_id = decode_rd16(p, off + 4);
        if (frag & IP4_OFFMASK) {
            p->frag = PKT_FRAG_LATER;
            return DECODE_OK;
        }
        p->frag = PKT_FRAG_FIRST;
    }
    return decode_ip_proto(p, p->ip_proto, off + hl, tot - hl);
}
