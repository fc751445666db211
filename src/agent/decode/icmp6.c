/*
 * icmp6.c - ICMPv6.
 *
 * As for ICMPv4: type and code, no ports. Every ICMPv6 message has at least
 * the 4-byte type/code/checksum and 4 bytes of body, so 8 bytes are required.
 */
#include "decode_int.h"

#define ICMP6_HLEN 8

int decode_icmp6(struct pkt *p, uint32_t off, uint32_t len)
{
    int r;

    if (len < ICMP6_HLEN || !decode_fits(p, off, ICMP6_HLEN))
        return DECODE_ERR_ICMP6;
    r = decode_layer_add(p, PKT_L_ICMP6, off, ICMP6_HLEN);
    if (r != DECODE_OK)
        return r;
    p->seen |= PKT_SEEN_ICMP;
    p->l4_off = (uint16_t)off;
    p->icmp_type = decode_rd8(p, off);
    p->icmp_code = decode_rd8(p, off + 1);
    p->payload_off = off + ICMP6_HLEN;
    p->payload_len = len - ICMP6_HLEN;
    return DECODE_OK;
}
