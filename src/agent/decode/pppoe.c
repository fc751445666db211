/*
 * pppoe.c - PPPoE session stage (EtherType 0x8864, and DLT_PPP_ETHER).
 *
 * The 6-byte PPPoE header is followed by a PPP protocol field, which ppp.c
 * decodes. Discovery packets (0x8863) are not IP and never reach here.
 */
#include "decode_int.h"

#define PPPOE_HLEN     6
#define PPPOE_VER_TYPE 0x11 /* version 1, type 1 */
#define PPPOE_SESSION  0x00 /* code of session data */

int decode_pppoe(struct pkt *p, uint32_t off)
{
    uint16_t plen;
    int r;

    if (!decode_fits(p, off, PPPOE_HLEN))
        return DECODE_ERR_PPPOE;
    if (decode_rd8(p, off) != PPPOE_VER_TYPE || decode_rd8(p, off + 1) != PPPOE_SESSION)
        return DECODE_ERR_PPPOE;
    /* The length covers the PPP protocol field and what follows. */
    plen = decode_rd16(p, off + 4);
    if (plen < 2 || plen > decode_wire_left(p, off + PPPOE_HLEN))
        return DECODE_ERR_PPPOE;
    r = decode_layer_add(p, PKT_L_PPPOE, off, PPPOE_HLEN);
    if (r != DECODE_OK)
        return r;
    p->seen |= PKT_SEEN_PPPOE;
    return decode_ppp(p, off + PPPOE_HLEN);
}
