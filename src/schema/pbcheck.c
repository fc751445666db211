/*
 * pbcheck.c - protobuf wire validation by descriptor; see pbcheck.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pbcheck.h"

#if defined(__GNUC__)
#define SONDE_CHECK_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SONDE_CHECK_PRINTF(a, b)
#endif

enum { WIRE_VARINT = 0, WIRE_64 = 1, WIRE_LEN = 2, WIRE_32 = 5 };

struct cur {
    const uint8_t *p, *end;
    char *why;
};

static int fail(struct cur *c, const char *fmt, ...) SONDE_CHECK_PRINTF(2, 3);

static int fail(struct cur *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->why, PBCHECK_WHY_MAX, fmt, ap);
    va_end(ap);
    return -1;
}

/* "name: why" becomes "parent.name: why" on the way out of a nested message. */
static void prefix(char *why, const char *name)
{
    char tmp[PBCHECK_WHY_MAX];

    snprintf(tmp, sizeof(tmp), "%s.%s", name, why);
    memcpy(why, tmp, PBCHECK_WHY_MAX);
}

/* proto3 strings are UTF-8: well-formed, no surrogates, nothing over U+10FFFF. */
static int utf8_ok(const uint8_t *p, size_t n)
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

/* At most max bytes: 10 for values, 5 for keys and lengths (protobuf-c's bound). */
static int varint_max(struct cur *c, uint64_t *v, int max)
{
    uint64_t x = 0;
    int i;

    for (i = 0; i < max && c->p < c->end; i++) {
        uint8_t b = *c->p++;

        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1; /* truncated, or too long */
}

static int varint(struct cur *c, uint64_t *v)
{
    return varint_max(c, v, 10);
}

/* A length prefix: 5 bytes at most, under 2 GiB, and within the message. */
static int length(struct cur *c, uint64_t *v)
{
    return varint_max(c, v, 5) < 0 || *v > 0x7fffffff || *v > (uint64_t)(c->end - c->p) ? -1 : 0;
}

/* The wire type a field of this type is written with (not packed). */
static int wire_of(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return WIRE_32;
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return WIRE_64;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        return WIRE_LEN;
    default:
        return WIRE_VARINT;
    }
}

/* A packed run of scalars must hold whole elements. */
static int packed_ok(ProtobufCType t, const uint8_t *p, size_t n)
{
    struct cur c = {p, p + n, NULL};
    uint64_t v;

    switch (wire_of(t)) {
    case WIRE_32:
        return n % 4 == 0;
    case WIRE_64:
        return n % 8 == 0;
    case WIRE_VARINT:
        while (c.p < c.end)
            if (varint(&c, &v) < 0)
                return 0;
        return 1;
    default:
        return 0; /* strings, bytes and messages are never packed */
    }
}

static int skip(struct cur *c, int wire, unsigned field)
{
    uint64_t v;

    switch (wire) {
    case WIRE_VARINT:
        return varint(c, &v) < 0 ? fail(c, "field %u: bad varint", field) : 0;
    case WIRE_64:
    case WIRE_32:
        if ((size_t)(c->end - c->p) < (wire == WIRE_64 ? 8u : 4u))
            return fail(c, "field %u: truncated", field);
        c->p += wire == WIRE_64 ? 8 : 4;
        return 0;
    case WIRE_LEN:
        if (length(c, &v) < 0)
            return fail(c, "field %u: bad length", field);
        c->p += v;
        return 0;
    default:
        return fail(c, "field %u: unsupported wire type", field);
    }
}

static int check(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                 size_t max_string, struct pbcheck_header *h, char *why, int depth)
{
    struct cur c = {p, p + len, why};
    unsigned next = 0; /* fields come in descriptor order: try the one after the last first */

    if (depth > PBCHECK_MAX_DEPTH)
        return fail(&c, "nested deeper than %d", PBCHECK_MAX_DEPTH);
    while (c.p < c.end) {
        const ProtobufCFieldDescriptor *f;
        uint64_t key, v;
        unsigned field;
        int wire;
        const uint8_t *start;

        if (varint_max(&c, &key, 5) < 0 || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
            return fail(&c, "bad field key at byte %u", (unsigned)(c.p - p));
        field = (unsigned)(key >> 3);
        wire = (int)(key & 7);
        if (next < d->n_fields && d->fields[next].id == field) {
            f = &d->fields[next++];
        } else if (next > 0 && d->fields[next - 1].id == field) {
            f = &d->fields[next - 1]; /* a repeated field, again */
        } else {
            f = protobuf_c_message_descriptor_get_field(d, field);
            if (f)
                next = (unsigned)(f - d->fields) + 1;
        }
        if (f == NULL) { /* unknown: kept by protobuf-c, skipped here */
            if (skip(&c, wire, field) < 0)
                return -1;
            continue;
        }
        if (wire == WIRE_LEN && f->label == PROTOBUF_C_LABEL_REPEATED &&
            wire_of(f->type) != WIRE_LEN) {
            if (length(&c, &v) < 0 || !packed_ok(f->type, c.p, (size_t)v))
                return fail(&c, "%s: bad packed run", f->name);
            c.p += v;
            continue;
        }
        /* protobuf-c 1.4.1 cannot unpack sint32 (a missing return): refuse it too */
        if (wire != wire_of(f->type) || f->type == PROTOBUF_C_TYPE_SINT32)
            return fail(&c, "%s: wrong wire type %d", f->name, wire);
        if (wire != WIRE_LEN) {
            start = c.p;
            if (skip(&c, wire, field) < 0)
                return -1;
            if (h && depth == 0 && field == 2 && f->type == PROTOBUF_C_TYPE_UINT64) {
                struct cur s = {start, c.p, why};

                varint(&s, &h->seq);
            }
            continue;
        }
        if (length(&c, &v) < 0)
            return fail(&c, "%s: bad length", f->name);
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            if (check(f->descriptor, c.p, (size_t)v, max_string, NULL, why, depth + 1) < 0) {
                prefix(why, f->name);
                return -1;
            }
        } else if (v > max_string) {
            return fail(&c, "%s: %llu bytes, over the limit of %zu", f->name, (unsigned long long)v,
                        max_string);
        } else if (f->type == PROTOBUF_C_TYPE_STRING && !utf8_ok(c.p, (size_t)v)) {
            return fail(&c, "%s: not UTF-8", f->name);
        } else if (h && depth == 0 && field == 1 && f->type == PROTOBUF_C_TYPE_STRING) {
            h->agent_id = (const char *)c.p;
            h->agent_id_len = (size_t)v;
        }
        c.p += v;
    }
    return 0;
}

int schema_pb_check(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                    size_t max_string, struct pbcheck_header *h, char why[PBCHECK_WHY_MAX])
{
    if (h)
        memset(h, 0, sizeof(*h));
    why[0] = '\0';
    return check(d, p, len, max_string, h, why, 0);
}
