/*
 * pbwire.c - the wire primitives too long to inline; see pbwire.h.
 */
#include "pbwire.h"

const uint8_t *pb_skip(const uint8_t *p, const uint8_t *end, int wire)
{
    uint64_t v;

    switch (wire) {
    case PB_WIRE_VARINT:
        return pb_get_varint(p, end, PB_VARINT_MAX, &v);
    case PB_WIRE_64:
        return end - p < 8 ? NULL : p + 8;
    case PB_WIRE_32:
        return end - p < 4 ? NULL : p + 4;
    case PB_WIRE_LEN:
        p = pb_get_len(p, end, &v);
        return p ? p + v : NULL;
    default:
        return NULL; /* groups (3, 4) and the unused 6 and 7 */
    }
}

int pb_packed_varints_ok(const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    uint64_t v;

    while (p < end)
        if ((p = pb_get_varint(p, end, PB_VARINT_MAX, &v)) == NULL)
            return 0;
    return 1;
}

int pb_utf8_check(const uint8_t *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint8_t b = p[i];
        size_t k;
        uint32_t cp;

        if (b < 0x80) { /* ASCII, most of what events hold: 8 bytes at a time */
            uint64_t w;

            while (i + 8 <= n && (memcpy(&w, p + i, 8), (w & 0x8080808080808080ULL) == 0))
                i += 8;
            while (i < n && p[i] < 0x80)
                i++;
            continue;
        }
        if (b >= 0xc2 && b <= 0xdf) {
            k = 1;
            cp = b & 0x1f;
        } else if (b >= 0xe0 && b <= 0xef) {
            k = 2;
            cp = b & 0x0f;
        } else if (b >= 0xf0 && b <= 0xf4) {
            k = 3;
            cp = b & 0x07;
        } else {
            return 0;
        }
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + j] & 0x3f);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}
