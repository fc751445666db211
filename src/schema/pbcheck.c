/*
 * pbcheck.c - protobuf wire validation by descriptor; see pbcheck.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pbcheck.h"
#include "pbwire.h"

#if defined(__GNUC__)
#define SONDE_CHECK_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SONDE_CHECK_PRINTF(a, b)
#endif

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

static int varint(struct cur *c, uint64_t *v)
{
    const uint8_t *p = pb_get_varint(c->p, c->end, PB_VARINT_MAX, v);

    if (p == NULL)
        return -1;
    c->p = p;
    return 0;
}

static int length(struct cur *c, uint64_t *v)
{
    const uint8_t *p = pb_get_len(c->p, c->end, v);

    if (p == NULL)
        return -1;
    c->p = p;
    return 0;
}

/* A packed run of scalars must hold whole elements. */
static int packed_ok(ProtobufCType t, const uint8_t *p, size_t n)
{
    switch (pb_wire_of(t)) {
    case PB_WIRE_32:
        return n % 4 == 0;
    case PB_WIRE_64:
        return n % 8 == 0;
    case PB_WIRE_VARINT:
        return pb_packed_varints_ok(p, n);
    default:
        return 0; /* strings, bytes and messages are never packed */
    }
}

static int skip(struct cur *c, int wire, unsigned field)
{
    const uint8_t *p = pb_skip(c->p, c->end, wire);

    if (p == NULL)
        return fail(c, "field %u: %s", field,
                    wire == PB_WIRE_VARINT                     ? "bad varint"
                    : wire == PB_WIRE_LEN                      ? "bad length"
                    : wire == PB_WIRE_64 || wire == PB_WIRE_32 ? "truncated"
                                                               : "unsupported wire type");
    c->p = p;
    return 0;
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
        const uint8_t *start = c.p;

        if ((c.p = pb_get_key(c.p, c.end, &key)) == NULL)
            return fail(&c, "bad field key at byte %u", (unsigned)(start - p));
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
        if (wire == PB_WIRE_LEN && f->label == PROTOBUF_C_LABEL_REPEATED &&
            pb_wire_of(f->type) != PB_WIRE_LEN) {
            if (length(&c, &v) < 0 || !packed_ok(f->type, c.p, (size_t)v))
                return fail(&c, "%s: bad packed run", f->name);
            c.p += v;
            continue;
        }
        /* protobuf-c 1.4.1 cannot unpack sint32 (a missing return): refuse it too */
        if (wire != pb_wire_of(f->type) || f->type == PROTOBUF_C_TYPE_SINT32)
            return fail(&c, "%s: wrong wire type %d", f->name, wire);
        if (wire != PB_WIRE_LEN) {
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
        } else if (f->type == PROTOBUF_C_TYPE_STRING && !pb_utf8_ok(c.p, (size_t)v)) {
            return fail(&c, "%s: not UTF-8", f->name);
        } else if (h && depth == 0 && field == 1 && f->type == PROTOBUF_C_TYPE_STRING) {
            h->agent_id = (const char *)c.p;
            h->agent_id_len = (size_t)v;
        }
        c.p += v;
    }
    return 0;
}

int schema_pb_check_reflect(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                            size_t max_string, struct pbcheck_header *h, char why[PBCHECK_WHY_MAX])
{
    if (h)
        memset(h, 0, sizeof(*h));
    why[0] = '\0';
    return check(d, p, len, max_string, h, why, 0);
}

/* The generated walker decides; this one explains a refusal. */
int schema_pb_check(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                    size_t max_string, struct pbcheck_header *h, char why[PBCHECK_WHY_MAX])
{
    int r = schema_pb_check_fast(d, p, len, max_string, h);

    if (r == 0) {
        why[0] = '\0';
        return 0;
    }
    return schema_pb_check_reflect(d, p, len, max_string, h, why);
}
