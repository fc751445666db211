/*
 * eth.c - Ethernet II (and 802.3, which we recognise but do not look into).
 *
 * The first Ethernet header of a packet is the link it was captured on and
 * sets eth_off; one found inside a tunnel (VXLAN, GRE bridging) only adds a
 * layer, so the flow engine keeps seeing the outer MAC addresses.
 */
#include "decode_int.h"

#define ETH_HLEN 14

int decode_eth(struct pkt *p, uint32_t off)
{
    int r;

    if (!decode_fits(p, off, ETH_HLEN))
        return DECODE_ERR_ETH;
    r = decode_layer_add(p, PKT_L_ETH, off, ETH_HLEN);
    if (r != DECODE_OK)
        return r;
    p->seen |= PKT_SEEN_ETH;
    if (p->tunnel_depth == 0)
        p->eth_off = (int32_t)off;
    /* Values up to 1500 are 802.3 lengths (LLC, STP): decode_ethertype ignores them. */
    return decode_ethertype(p, decode_rd16(p, off + 12), off + ETH_HLEN);
}
