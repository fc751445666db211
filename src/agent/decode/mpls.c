/*
 * mpls.c - MPLS label stacks (EtherType 0x8847 unicast, 0x8848 multicast).
 *
 * Nothing in a label stack says what the payload is. Like most tools we guess
 * from the first nibble after the bottom label: 4 is IPv4, 6 is IPv6, and
 * anything else (pseudowires, control words) is a frame without an IP flow.
 * A guess of IP that does not parse is reported with the IP decoder's reason.
 */
#include "decode_int.h"

#define MPLS_HLEN 4
#define MPLS_BOS  0x100 /* bottom of stack bit in a label stack entry */

int decode_mpls(struct pkt *p, uint32_t off)
{
    unsigned n = 0;
    uint32_t entry;
    int r;

    do {
        if (n == DECODE_MAX_MPLS || !decode_fits(p, off, MPLS_HLEN))
            return DECODE_ERR_MPLS;
        r = decode_layer_add(p, PKT_L_MPLS, off, MPLS_HLEN);
        if (r != DECODE_OK)
            return r;
        entry = decode_rd32(p, off);
        if (n == 0 && p->tunnel_depth == 0)
            p->mpls_label = entry >> 12;
        off += MPLS_HLEN;
        n++;
    } while (!(entry & MPLS_BOS));
    p->seen |= PKT_SEEN_MPLS;

    if (decode_wire_left(p, off) == 0)
        return DECODE_OK; /* an empty payload: nothing to guess */
    if (!decode_fits(p, off, 1))
        return DECODE_ERR_MPLS;
    switch (decode_rd8(p, off) >> 4) {
    case 4:
        return decode_ip4(p, off);
    case 6:
        return decode_ip6(p, off);
    default:
        return DECODE_OK;
    }
}
