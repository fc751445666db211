/*
 * hdlc.c - Cisco HDLC (DLT_C_HDLC), the framing of Cisco serial and POS
 * links: an address byte (0x0f unicast, 0x8f broadcast), a control byte,
 * then an EtherType. SLARP keepalives and CDP are not IP: counted, no flow.
 */
#include "decode_int.h"

#define HDLC_LEN 4

int decode_hdlc(struct pkt *p, uint32_t off)
{
    int r;

    if (!decode_fits(p, off, HDLC_LEN))
        return DECODE_ERR_HDLC;
    r = decode_layer_add(p, PKT_L_HDLC, off, HDLC_LEN);
    if (r != DECODE_OK)
        return r;
    return decode_ethertype(p, decode_rd16(p, off + 2), off + HDLC_LEN);
}
