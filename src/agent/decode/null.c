/*
 * null.c - BSD loopback: DLT_NULL and DLT_LOOP.
 *
 * A 4-byte address family precedes the IP header. DLT_NULL writes it in the
 * byte order of the machine that captured, which need not be ours, so both
 * orders are accepted (families are small numbers, so the order that gives
 * a small value is the right one). DLT_LOOP writes it in network order.
 * IPv6 has a different AF_INET6 on every system: 24 (NetBSD, OpenBSD),
 * 28 (FreeBSD, DragonFly), 30 (macOS) and 10 (Linux).
 */
#include "decode_int.h"

#define NULL_HLEN 4

static uint32_t decode_swap32(uint32_t v)
{
    return v >> 24 | (v >> 8 & 0xff00) | (v << 8 & 0xff0000) | v << 24;
}

int decode_null(struct pkt *p, uint32_t off, int dlt)
{
    uint32_t family;
    int r;

    if (!decode_fits(p, off, NULL_HLEN))
        return DECODE_ERR_NULL;
    r = decode_layer_add(p, PKT_L_NULL, off, NULL_HLEN);
    if (r != DECODE_OK)
        return r;
    family = decode_rd32(p, off);
    if (dlt == DECODE_DLT_NULL && family > 0xffff)
        family = decode_swap32(family);
    switch (family) {
    case 2:
        return decode_ip4(p, off + NULL_HLEN);
    case 10:
    case 24:
    case 28:
    case 30:
        return decode_ip6(p, off + NULL_HLEN);
    default:
        return DECODE_OK; /* another family: not an IP flow */
    }
}
