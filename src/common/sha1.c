/*
 * sha1.c - SHA-1, one call over a buffer; see sha1.h.
 */
#include <string.h>

#include "sha1.h"

static uint32_t rol(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], t;
    int i;

    for (i = 0; i < 16; i++)
        w[i] = be32(p + 4 * i);
    for (; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        /* The four rounds of 20 steps, each its own loop: no branch per step. */
#define SHA1_STEP(fexpr, k)                                                                        \
    do {                                                                                           \
        t = rol(a, 5) + (fexpr) + e + (k) + w[i];                                                  \
        e = d;                                                                                     \
        d = c;                                                                                     \
        c = rol(b, 30);                                                                            \
        b = a;                                                                                     \
        a = t;                                                                                     \
    } while (0)
    for (i = 0; i < 20; i++)
        SHA1_STEP(d ^ (b & (c ^ d)), 0x5a827999u);
    for (; i < 40; i++)
        SHA1_STEP(b ^ c ^ d, 0x6ed9eba1u);
    for (; i < 60; i++)
        SHA1_STEP((b & c) | (d & (b | c)), 0x8f1bbcdcu);
    for (; i < 80; i++)
        SHA1_STEP(b ^ c ^ d, 0xca62c1d6u);
#undef SHA1_STEP
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void sha1(const void *data, size_t len, uint8_t out[SHA1_LEN])
{
    uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    const uint8_t *p = data;
    uint8_t tail[128];
    uint64_t bits = (uint64_t)len * 8;
    size_t rest, n, i;

    for (; len >= 64; p += 64, len -= 64)
        block(h, p);
    /* Padding: 0x80, zeros, then the length in bits, big-endian. */
    rest = len;
    memset(tail, 0, sizeof(tail));
    memcpy(tail, p, rest);
    tail[rest] = 0x80;
    n = rest + 1 + 8 <= 64 ? 64 : 128;
    for (i = 0; i < 8; i++)
        tail[n - 1 - i] = (uint8_t)(bits >> (8 * i));
    block(h, tail);
    if (n == 128)
        block(h, tail + 64);
    for (i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}
