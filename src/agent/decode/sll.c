/*
 * sll.c - Linux "cooked" captures: SLL (DLT 113) and SLL2 (DLT 276).
 *
 * What tcpdump -i any produces. Both headers carry the payload's EtherType;
 * neither has MAC addresses we report, so eth_off stays -1.
 */
#include "decode_int.h"

#define SLL_HLEN  16 /* type, hatype, halen, addr[8], protocol */
#define SLL2_HLEN 20 /* protocol, reserved, ifindex, hatype, type, halen, addr[8] */

int decode_sll(struct pkt *p, uint32_t off)
{
    int r;

    if (!decode_fits(p, off, SLL_HLEN))
        return DECODE_ERR_SLL;
    r = decode_layer_add(p, PKT_L_SLL, off, SLL_HLEN);
    if (r != DECODE_OK)
        return r;
    return decode_ethertype(p, decode_rd16(p, off + 14), off + SLL_HLEN);
}

int decode_sll2(struct pkt *p, uint32_t off)
{
    int r;

    if (!decode_fits(p, off, SLL2_HLEN))
        return DECODE_ERR_SLL;
    r = decode_layer_add(p, PKT_L_SLL2, off, SLL2_HLEN);
    if (r != DECODE_OK)
        return r;
    return decode_ethertype(p, decode_rd16(p, off), off + SLL2_HLEN);
}
