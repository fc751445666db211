/*
 * icmp.c - ICMP for IPv4.
 *
 * Only type and code are reported. The echo identifier is not a port: the
 * flow of a ping is keyed by addresses and type, so sport and dport stay 0.
 */
#include "decode_int.h"

#define ICMP_HLEN 8 /* type, code, checksum and the 4-byte rest of header */

int decode_icmp4(struct pkt *p, uint32_t off, uint32_t len)
{
    int r;

    if (len < ICMP_HLEN || !decode_fits(p, off, ICMP_HLEN))
        return DECODE_ERR_ICMP;
    r = decode_layer_add(p, PKT_L_ICMP4, off, ICMP_HLEN);
    if (r != DECODE_OK)
        return r;
    p->seen |= PKT_SEEN_ICMP;
    p->l4_off = (uint16_t)off;
    p->icmp_type = decode_rd8(p, off);
    p->icmp_code = decode_rd8(p, off + 1);
    p->payload_off = off + ICMP_HLEN;
    p->payload_len = len - ICMP_HLEN;
    return DECODE_OK;
}
