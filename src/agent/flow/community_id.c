/*
 * community_id.c - Community ID v1.
 *
 * SHA-1 over: seed (2 bytes, network order), source address, destination
 * address, protocol (1 byte), a zero pad byte, then source and destination
 * port (2 bytes each) for TCP, UDP, SCTP, ICMP and ICMPv6. The endpoints are
 * ordered so both directions hash the same; ICMP types that come in
 * request/reply pairs are mapped onto "ports" so the pair shares an ID, and
 * the other (one-way) ICMP messages keep their direction.
 */
#include <string.h>

#include "common/sha1.h"

#include "community_id.h"

#define PROTO_ICMP  1
#define PROTO_TCP   6
#define PROTO_UDP   17
#define PROTO_ICMP6 58
#define PROTO_SCTP  132

struct icmp_pair {
    uint8_t a, b;
};

static const struct icmp_pair icmp4_pairs[] = {
    {8, 0}, {0, 8}, {13, 14}, {14, 13}, {15, 16}, {16, 15}, {10, 9}, {9, 10}, {17, 18}, {18, 17},
};

static const struct icmp_pair icmp6_pairs[] = {
    {128, 129}, {129, 128}, {133, 134}, {134, 133}, {135, 136}, {136, 135},
    {130, 131}, {131, 130}, {139, 140}, {140, 139}, {144, 145}, {145, 144},
};

/* Map an ICMP type/code to ports; returns 1 when the message is one-way. */
static int icmp_ports(uint8_t proto, uint16_t *sport, uint16_t *dport)
{
    const struct icmp_pair *t = proto == PROTO_ICMP ? icmp4_pairs : icmp6_pairs;
    size_t n = proto == PROTO_ICMP ? sizeof(icmp4_pairs) / sizeof(icmp4_pairs[0])
                                   : sizeof(icmp6_pairs) / sizeof(icmp6_pairs[0]);
    size_t i;

    for (i = 0; i < n; i++) {
        if (t[i].a == *sport) {
            *dport = t[i].b;
            return 0;
        }
    }
    return 1;
}

void base64_encode(char *out, const uint8_t *in, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i;

    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = tab[v >> 18];
        *out++ = tab[(v >> 12) & 63];
        *out++ = tab[(v >> 6) & 63];
        *out++ = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        *out++ = tab[v >> 18];
        *out++ = tab[(v >> 12) & 63];
        *out++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *out++ = '=';
    }
    *out = '\0';
}

int community_id_v1(char out[COMMUNITY_ID_LEN], uint16_t seed, int ip_version, uint8_t proto,
                    const uint8_t *src, const uint8_t *dst, uint16_t sport, uint16_t dport)
{
    uint8_t buf[2 + 16 + 16 + 2 + 4];
    uint8_t digest[SHA1_LEN];
    size_t alen, n = 0;
    int has_ports, one_way = 0, cmp;

    if (ip_version != 4 && ip_version != 6)
        return -1;
    alen = ip_version == 4 ? 4 : 16;
    has_ports = proto == PROTO_TCP || proto == PROTO_UDP || proto == PROTO_SCTP ||
                proto == PROTO_ICMP || proto == PROTO_ICMP6;
    if (proto == PROTO_ICMP || proto == PROTO_ICMP6)
        one_way = icmp_ports(proto, &sport, &dport);

    cmp = memcmp(src, dst, alen);
    if (!one_way && (cmp > 0 || (cmp == 0 && has_ports && sport > dport))) {
        const uint8_t *ta = src;
        uint16_t tp = sport;

        src = dst;
        dst = ta;
        sport = dport;
        dport = tp;
    }
    buf[n++] = (uint8_t)(seed >> 8);
    buf[n++] = (uint8_t)seed;
    memcpy(buf + n, src, alen);
    n += alen;
    memcpy(buf + n, dst, alen);
    n += alen;
    buf[n++] = proto;
    buf[n++] = 0;
    if (has_ports) {
        buf[n++] = (uint8_t)(sport >> 8);
        buf[n++] = (uint8_t)sport;
        buf[n++] = (uint8_t)(dport >> 8);
        buf[n++] = (uint8_t)dport;
    }
    sha1(buf, n, digest);
    out[0] = '1';
    out[1] = ':';
    base64_encode(out + 2, digest, sizeof(digest));
    return 0;
}
