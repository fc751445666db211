/*
 * quic.c - QUIC versions; see quic.h.
 */
#include <stdio.h>

#include "common/bytes.h"
#include "quic.h"

#define QUIC_LONG_HEADER  0x80
#define GQUIC_HAS_VERSION 0x01 /* Google QUIC public flags (Q043 and older) */
#define GQUIC_HAS_CID     0x08
#define GQUIC_CID_LEN     8
#define QUIC_V1           0x00000001u
#define QUIC_V2           0x6b3343cfu
#define QUIC_V2_DRAFT_00  0x709a50c4u
#define QUIC_DRAFT_MASK   0xffffff00u
#define QUIC_DRAFT        0xff000000u
#define QUIC_MVFST_MASK   0xfffffff0u
#define QUIC_MVFST        0xfaceb000u

/* Google's versions are four ASCII characters: "Q046", "T051". */
static int is_google(uint32_t v)
{
    uint8_t c = (uint8_t)(v >> 24);

    return (c == 'Q' || c == 'T') && (v >> 16 & 0xff) >= '0' && (v >> 16 & 0xff) <= '9';
}

uint32_t quic_version(const uint8_t *data, size_t len)
{
    if (len >= 1 + GQUIC_CID_LEN + 4 &&
        (data[0] & (GQUIC_HAS_VERSION | GQUIC_HAS_CID)) == (GQUIC_HAS_VERSION | GQUIC_HAS_CID) &&
        !(data[0] & QUIC_LONG_HEADER) && is_google(rd32(data + 1 + GQUIC_CID_LEN)))
        return rd32(data + 1 + GQUIC_CID_LEN);
    if (len >= 5 && (data[0] & QUIC_LONG_HEADER))
        return rd32(data + 1);
    return 0;
}

const char *quic_version_name(uint32_t v, char *buf, size_t size)
{
    if (v == 0)
        snprintf(buf, size, "%s", "");
    else if (v == QUIC_V1)
        snprintf(buf, size, "v1");
    else if (v == QUIC_V2)
        snprintf(buf, size, "v2");
    else if (v == QUIC_V2_DRAFT_00)
        snprintf(buf, size, "v2-draft-00");
    else if ((v & QUIC_DRAFT_MASK) == QUIC_DRAFT)
        snprintf(buf, size, "draft-%u", v & 0xff);
    else if ((v & QUIC_MVFST_MASK) == QUIC_MVFST)
        snprintf(buf, size, "mvfst-%u", v & 0xf);
    else if (is_google(v))
        snprintf(buf, size, "%c%c%c%c", (char)(v >> 24), (char)(v >> 16), (char)(v >> 8), (char)v);
    else
        snprintf(buf, size, "0x%08x", v);
    return buf;
}
