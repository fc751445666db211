/*
 * vlan.c - 802.1Q and 802.1ad tags (0x8100, 0x88a8, and the older 0x9100).
 *
 * A stack of tags is walked here in one loop, so the DECODE_MAX_VLANS limit
 * applies to one link header. Only tags of the outermost link are reported
 * in nvlan/vlan[]; tags inside a tunnel just add layers.
 */
#include "decode_int.h"

#define VLAN_HLEN 4

static int decode_is_vlan(uint16_t type)
{
    return type == DECODE_ETH_VLAN || type == DECODE_ETH_QINQ || type == DECODE_ETH_QINQ_OLD;
}

/* off is where the tag control information starts (just after the TPID). */
int decode_vlan(struct pkt *p, uint32_t off)
{
    unsigned n = 0;
    uint16_t type;
    int r;

    do {
        if (n == DECODE_MAX_VLANS || !decode_fits(p, off, VLAN_HLEN))
            return DECODE_ERR_VLAN;
        r = decode_layer_add(p, PKT_L_VLAN, off, VLAN_HLEN);
        if (r != DECODE_OK)
            return r;
        if (p->tunnel_depth == 0) {
            if (p->nvlan < 2)
                p->vlan[p->nvlan] = decode_rd16(p, off) & 0x0fff;
            p->nvlan++;
        }
        type = decode_rd16(p, off + 2);
        off += VLAN_HLEN;
        n++;
    } while (decode_is_vlan(type));
    p->seen |= PKT_SEEN_VLAN;
    return decode_ethertype(p, type, off);
}
