/*
 * igmp.c - IGMP (IPv4 protocol 2), recorded for the interface counters.
 *
 * There is no IGMP discard reason: a message shorter than the 8 bytes every
 * IGMP version has is kept as an IP flow without a transport layer.
 */
#include "decode_int.h"

#define IGMP_HLEN 8

int decode_igmp(struct pkt *p, uint32_t off, uint32_t len)
{
    int r;

    if (len < IGMP_HLEN || !decode_fits(p, off, IGMP_HLEN))
        return DECODE_OK;
    r = decode_layer_add(p, PKT_L_IGMP, off, IGMP_HLEN);
    if (r != DECODE_OK)
        return r;
    p->seen |= PKT_SEEN_IGMP;
    p->l4_off = (uint16_t)off;
    p->payload_off = off + IGMP_HLEN;
    p->payload_len = len - IGMP_HLEN;
    return DECODE_OK;
}
