/*
 * ppp.c - PPP frames (DLT_PPP, DLT_PPP_SERIAL, and inside PPPoE).
 *
 * A frame may start with the HDLC address/control bytes 0xff 0x03, then has
 * a protocol field of two bytes, or one when protocol field compression was
 * negotiated (a compressed value is odd). 0xff can never start a protocol
 * value, so the HDLC prefix is recognised wherever it appears.
 */
#include "decode_int.h"

#define PPP_ADDRESS    0xff
#define PPP_CONTROL    0x03
#define PPP_IP4        0x0021
#define PPP_IP6        0x0057
#define HDLC_UNICAST   0x0f
#define HDLC_BROADCAST 0x8f

int decode_ppp(struct pkt *p, uint32_t off)
{
    uint32_t hl = 0;
    uint16_t proto;
    int r;

    if (!decode_fits(p, off, 1))
        return DECODE_ERR_PPP;
    /* Some captures labelled PPP carry Cisco HDLC frames; its address
     * bytes 0x0f/0x8f can never start a PPP frame, so tell them apart. */
    if (decode_rd8(p, off) == HDLC_UNICAST || decode_rd8(p, off) == HDLC_BROADCAST)
        return decode_hdlc(p, off);
    if (decode_rd8(p, off) == PPP_ADDRESS) {
        if (!decode_fits(p, off, 2) || decode_rd8(p, off + 1) != PPP_CONTROL)
            return DECODE_ERR_PPP;
        hl = 2;
    }
    if (!decode_fits(p, off + hl, 1))
        return DECODE_ERR_PPP;
    if (decode_rd8(p, off + hl) & 1) {
        proto = decode_rd8(p, off + hl);
        hl += 1;
    } else {
        if (!decode_fits(p, off + hl, 2))
            return DECODE_ERR_PPP;
        proto = decode_rd16(p, off + hl);
        hl += 2;
    }
    r = decode_layer_add(p, PKT_L_PPP, off, hl);
    if (r != DECODE_OK)
        return r;
    switch (proto) {
    case PPP_IP4:
        return decode_ip4(p, off + hl);
    case PPP_IP6:
        return decode_ip6(p, off + hl);
    default:
        return DECODE_OK; /* LCP, IPCP, ...: not an IP flow */
    }
}
