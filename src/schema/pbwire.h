/*
 * pbwire.h - protobuf wire primitives: varints, lengths, UTF-8.
 *
 * Shared by the codec pbgen writes from the event descriptors (pbcodec.c
 * in the build directory) and by the reflective checker (pbcheck.c), so
 * that both read the wire with exactly the same rules.
 *
 * Writers take a pointer the caller has made room behind and return the
 * pointer after what they wrote. Readers take [p, end) and return the
 * pointer after what they read, or NULL when the input is malformed.
 */
#ifndef SONDE_SCHEMA_PBWIRE_H
#define SONDE_SCHEMA_PBWIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

/* The generated codec calls these hundreds of times; a call costs more than the body. */
#if defined(__GNUC__)
#define PB_INLINE static inline __attribute__((always_inline))
#else
#define PB_INLINE static inline
#endif

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PB_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define PB_ASAN 1
#endif
#if defined(__SSE2__) && !defined(PB_ASAN)
#include <emmintrin.h>
#define PB_SSE2_STRLEN 1
#endif

#define PB_VARINT_MAX   10 /* bytes of a 64-bit varint */
#define PB_VARINT_SLACK 8  /* pb_put_varint may store this many bytes, whatever it keeps */
#define PB_LEN_MAX      5  /* bytes of a key or a length (protobuf-c's bound) */
#define PB_LEN_LIMIT    0x7fffffffu

enum { PB_WIRE_VARINT = 0, PB_WIRE_64 = 1, PB_WIRE_LEN = 2, PB_WIRE_32 = 5 };

/* The wire type a field of type t is written with (not packed). */
static inline int pb_wire_of(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return PB_WIRE_32;
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return PB_WIRE_64;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        return PB_WIRE_LEN;
    default:
        return PB_WIRE_VARINT;
    }
}

/*
 * A varint at p, with room for PB_VARINT_MAX bytes. Up to 56 bits on a
 * little-endian host, the seven-bit groups are spread in a register and
 * stored as one 8-byte word (hence PB_VARINT_SLACK), instead of a loop
 * whose every step waits on the last: timestamps take six bytes.
 */
PB_INLINE uint8_t *pb_put_varint(uint8_t *p, uint64_t v)
{
    if (v < 0x80) {
        *p = (uint8_t)v;
        return p + 1;
    }
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (v < (1ULL << 56)) {
        unsigned n = (unsigned)(63 - __builtin_clzll(v)) / 7 + 1; /* 2 to 8 bytes */
        uint64_t x = (v & 0x7f) | (v << 1 & 0x7f00) | (v << 2 & 0x7f0000) | (v << 3 & 0x7f000000) |
                     (v << 4 & 0x7f00000000) | (v << 5 & 0x7f0000000000) |
                     (v << 6 & 0x7f000000000000) | (v << 7 & 0x7f00000000000000);

        x |= 0x8080808080808080ULL >> (8 * (9 - n)); /* continuation bits, all but the last */
        memcpy(p, &x, 8);
        return p + n;
    }
#endif
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

PB_INLINE size_t pb_varint_size(uint64_t v)
{
    size_t n = 1;

    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/*
 * strlen, inline. An event holds a dozen short strings and a call to the
 * C library's strlen costs more than the scan. The SSE2 scan reads whole
 * aligned 16-byte blocks, as C libraries do: an aligned block never
 * crosses a page, so bytes past the NUL it reads are mapped, but they are
 * outside the string, which AddressSanitizer rightly reports; sanitized
 * builds and other processors use strlen.
 */
PB_INLINE size_t pb_strlen(const char *s)
{
#ifdef PB_SSE2_STRLEN
    uintptr_t off = (uintptr_t)s & 15;
    const __m128i *b = (const __m128i *)(const void *)(s - off);
    const __m128i zero = _mm_setzero_si128();
    unsigned mask = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_load_si128(b), zero)) >> off;
    size_t n;

    if (mask != 0)
        return (size_t)__builtin_ctz(mask);
    for (n = 16 - off, b++;; n += 16, b++) {
        mask = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_load_si128(b), zero));
        if (mask != 0)
            return n + (size_t)__builtin_ctz(mask);
    }
#else
    return strlen(s);
#endif
}

/* memcpy for the short strings of events: overlapping fixed-size moves, no call. */
PB_INLINE void pb_copy(uint8_t *d, const void *src, size_t n)
{
    const uint8_t *s = src;

    if (n >= 8 && n <= 16) {
        memcpy(d, s, 8);
        memcpy(d + n - 8, s + n - 8, 8);
    } else if (n > 16 && n <= 32) {
        memcpy(d, s, 16);
        memcpy(d + n - 16, s + n - 16, 16);
    } else if (n >= 4 && n < 8) {
        memcpy(d, s, 4);
        memcpy(d + n - 4, s + n - 4, 4);
    } else if (n > 0 && n < 4) {
        d[0] = s[0];
        d[n / 2] = s[n / 2];
        d[n - 1] = s[n - 1];
    } else if (n > 32) {
        memcpy(d, s, n);
    }
}

/* A length-delimited value after its key: room for PB_LEN_MAX + n bytes. */
PB_INLINE uint8_t *pb_put_bytes(uint8_t *p, const void *s, size_t n)
{
    if (n < 0x80)
        *p++ = (uint8_t)n;
    else
        p = pb_put_varint(p, n);
    pb_copy(p, s, n);
    return p + n;
}

/*
 * A nested message is written one byte after its length's place, since
 * its length is known only afterwards. Nearly every one is under 128
 * bytes, so the length fits that byte; a longer body slides up by the
 * length's extra bytes (at most PB_LEN_MAX - 1 past body_end).
 */
static inline uint8_t *pb_close_sub(uint8_t *len_at, uint8_t *body_end)
{
    size_t n = (size_t)(body_end - (len_at + 1)), v;
    uint8_t *body;

    if (n < 0x80) {
        *len_at = (uint8_t)n;
        return body_end;
    }
    body = len_at + pb_varint_size(n);
    memmove(body, len_at + 1, n);
    for (v = n; v >= 0x80; v >>= 7) /* byte by byte: the body follows */
        *len_at++ = (uint8_t)(v | 0x80);
    *len_at = (uint8_t)v;
    return body + n;
}

/* The bits of a double or a float: proto3 omits +0.0, but writes -0.0. */
PB_INLINE uint64_t pb_bits64(const void *v)
{
    uint64_t x;

    memcpy(&x, v, 8);
    return x;
}

PB_INLINE uint32_t pb_bits32(const void *v)
{
    uint32_t x;

    memcpy(&x, v, 4);
    return x;
}

/* A varint of at most max bytes. */
PB_INLINE const uint8_t *pb_get_varint(const uint8_t *p, const uint8_t *end, int max, uint64_t *v)
{
    uint64_t x = 0;
    int i;

    if (p < end && *p < 0x80) { /* most values: flags, enums, small counts */
        *v = *p;
        return p + 1;
    }
    for (i = 0; i < max && p < end; i++) {
        uint8_t b = *p++;

        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return p;
        }
    }
    return NULL; /* truncated, or too long */
}

/*
 * Past a varint whose value is not needed (at most 10 bytes). Eight bytes
 * at a time on a little-endian host: its end is the first byte without
 * the continuation bit.
 */
PB_INLINE const uint8_t *pb_skip_varint(const uint8_t *p, const uint8_t *end)
{
    uint64_t v;

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (end - p >= 8) {
        uint64_t w, last;

        memcpy(&w, p, 8);
        last = ~w & 0x8080808080808080ULL;
        if (last != 0)
            return p + (__builtin_ctzll(last) >> 3) + 1;
    }
#endif
    return pb_get_varint(p, end, PB_VARINT_MAX, &v);
}

/* A field key: at most 5 bytes, field number 1 to 2^29 - 1. */
PB_INLINE const uint8_t *pb_get_key(const uint8_t *p, const uint8_t *end, uint64_t *key)
{
    if (p < end && *p < 0x80 && *p >= 8) {
        *key = *p;
        return p + 1;
    }
    if (end - p >= 2 && p[0] >= 0x80 && p[1] < 0x80 && p[1] != 0) { /* fields 16 to 2047 */
        *key = (uint64_t)(p[0] & 0x7f) | (uint64_t)p[1] << 7;
        return p + 2;
    }
    p = pb_get_varint(p, end, PB_LEN_MAX, key);
    return p == NULL || (*key >> 3) == 0 || (*key >> 3) > 0x1fffffff ? NULL : p;
}

/* A length prefix: at most 5 bytes, under 2 GiB, and within [p, end). */
PB_INLINE const uint8_t *pb_get_len(const uint8_t *p, const uint8_t *end, uint64_t *n)
{
    if (p < end && *p < 0x80)
        *n = *p++;
    else if ((p = pb_get_varint(p, end, PB_LEN_MAX, n)) == NULL || *n > PB_LEN_LIMIT)
        return NULL;
    return *n > (uint64_t)(end - p) ? NULL : p;
}

/* Past one value of wire type wire; NULL when malformed or unsupported. */
const uint8_t *pb_skip(const uint8_t *p, const uint8_t *end, int wire);

/* A packed run of varints holds whole elements. */
int pb_packed_varints_ok(const uint8_t *p, size_t n);

/* proto3 strings are UTF-8: well-formed, no surrogates, nothing over U+10FFFF. */
int pb_utf8_check(const uint8_t *p, size_t n);

/* The same, inline for the ASCII strings events are made of: whole words, no call. */
PB_INLINE int pb_utf8_ok(const uint8_t *p, size_t n)
{
    uint64_t acc = 0, w;
    size_t i;

    if (n >= 8) {
        for (i = 0; i + 8 <= n; i += 8) {
            memcpy(&w, p + i, 8);
            acc |= w;
        }
        memcpy(&w, p + n - 8, 8);
        acc |= w;
    } else {
        for (i = 0; i < n; i++)
            acc |= p[i];
    }
    return (acc & 0x8080808080808080ULL) == 0 || pb_utf8_check(p, n);
}

#endif
