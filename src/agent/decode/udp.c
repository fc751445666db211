/*
 * udp.c - UDP headers, and the door to the UDP tunnels (VXLAN, GTP-U).
 *
 * payload_len comes from the IP length like every other transport. A UDP
 * length below 8 is impossible and discards the packet; a UDP length that
 * disagrees with the IP length otherwise is left for the flow to live with.
 * Fragments are never decapsulated: the other fragments could not follow.
 */
#include "decode_int.h"

#define UDP_HLEN 8

int decode_udp(struct pkt *p, uint32_t off, uint32_t len)
{
    int r;

    if (len < UDP_HLEN || !decode_fits(p, off, UDP_HLEN))
        return DECODE_ERR_UDP;
    if (decode_rd16(p, off + 4) < UDP_HLEN)
        return DECODE_ERR_UDP;
    r = decode_layer_add(p, PKT_L_UDP, off, UDP_HLEN);
    if (r != DECODE_OK)
        return r;
    p->seen |= PKT_SEEN_UDP;
    p->l4_off = (uint16_t)off;
    p->sport = decode_rd16(p, off);
    p->dport = decode_rd16(p, off + 2);
    p->payload_off = off + UDP_HLEN;
    p->payload_len = len - UDP_HLEN;

    if (p->frag != PKT_FRAG_NONE)
        return DECODE_OK;
    if (p->dport == DECODE_PORT_VXLAN)
        return decode_vxlan(p, off + UDP_HLEN, len - UDP_HLEN);
    if (p->dport == DECODE_PORT_GTPU || p->sport == DECODE_PORT_GTPU)
        return decode_gtpu(p, off + UDP_HLEN, len - UDP_HLEN);
    return DECODE_OK;
}
