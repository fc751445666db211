/*
 * arp.c - ARP for IPv4 over Ethernet, the only kind the agent reports.
 *
 * ARP is not a flow; it is recorded (PKT_SEEN_ARP and a layer) so the
 * endpoint and interface counters can use it.
 */
#include "decode_int.h"

#define ARP_HLEN 28 /* fixed part plus two MAC and two IPv4 addresses */

int decode_arp(struct pkt *p, uint32_t off)
{
    int r;

    if (!decode_fits(p, off, ARP_HLEN))
        return DECODE_ERR_ARP;
    /* hardware Ethernet (1), protocol IPv4, address lengths 6 and 4 */
    if (decode_rd16(p, off) != 1 || decode_rd16(p, off + 2) != DECODE_ETH_IP4 ||
        decode_rd8(p, off + 4) != 6 || decode_rd8(p, off + 5) != 4)
        return DECODE_ERR_ARP;
    r = decode_layer_add(p, PKT_L_ARP, off, ARP_HLEN);
    if (r != DECODE_OK)
        return r;
    p->seen |= PKT_SEEN_ARP;
    return DECODE_OK;
}
