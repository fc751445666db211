/*
 * pbenc.c - a one-pass protobuf encoder over protobuf-c descriptors.
 *
 * protobuf_c_message_pack() needs protobuf_c_message_get_packed_size()
 * first, so every event is walked twice, and each walk is general enough
 * to cost ~5,000 instructions for a flow event. Events are built and packed
 * on the packet path, so this encoder walks the descriptor once, writing
 * into a buffer whose size the caller bounds. The output is byte for byte
 * what protobuf-c produces (same field order, proto3 zero values omitted,
 * repeated scalars packed); tests/unit/test_json.c checks that.
 */
#include <string.h>

#include "pbenc.h"

#define VARINT_MAX 10

struct enc {
    uint8_t *p, *end;
};

static int room(const struct enc *e, size_t n)
{
    return (size_t)(e->end - e->p) >= n;
}

static int put_varint(struct enc *e, uint64_t v)
{
    if (!room(e, VARINT_MAX))
        return -1;
    while (v >= 0x80) {
        *e->p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *e->p++ = (uint8_t)v;
    return 0;
}

static int put_key(struct enc *e, unsigned id, unsigned wire)
{
    return put_varint(e, (uint64_t)id << 3 | wire);
}

static int put_bytes(struct enc *e, const void *p, size_t n)
{
    if (put_varint(e, n) < 0 || !room(e, n))
        return -1;
    memcpy(e->p, p, n);
    e->p += n;
    return 0;
}

static int put_fixed(struct enc *e, const void *p, size_t n)
{
    if (!room(e, n))
        return -1;
    memcpy(e->p, p, n); /* little-endian hosts, as protobuf-c assumes */
    e->p += n;
    return 0;
}

static int wire_type(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return 5;
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 1;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        return 2;
    default:
        return 0;
    }
}

static int encode_msg(struct enc *e, const ProtobufCMessage *m);

/* One value of a scalar field, without its key. */
static int put_scalar(struct enc *e, ProtobufCType t, const void *v)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_ENUM:
        return put_varint(e, (uint64_t)(int64_t) * (const int32_t *)v);
    case PROTOBUF_C_TYPE_SINT32: {
        int32_t x = *(const int32_t *)v;
        return put_varint(e, (uint32_t)((uint32_t)x << 1) ^ (uint32_t)(x >> 31));
    }
    case PROTOBUF_C_TYPE_UINT32:
        return put_varint(e, *(const uint32_t *)v);
    case PROTOBUF_C_TYPE_SINT64: {
        int64_t x = *(const int64_t *)v;
        return put_varint(e, ((uint64_t)x << 1) ^ (uint64_t)(x >> 63));
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64:
        return put_varint(e, *(const uint64_t *)v);
    case PROTOBUF_C_TYPE_BOOL:
        return put_varint(e, *(const protobuf_c_boolean *)v ? 1 : 0);
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return put_fixed(e, v, 4);
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return put_fixed(e, v, 8);
    default:
        return -1;
    }
}

static size_t scalar_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    default:
        return 4;
    }
}

/*
 * A length-delimited run whose length is known only once written: leave a
 * gap for the longest varint (open_gap), write the body, then put the
 * length in front of it and slide it down (close_gap).
 */
static uint8_t *open_gap(struct enc *e)
{
    uint8_t *start = e->p;

    if (!room(e, VARINT_MAX))
        return NULL;
    e->p += VARINT_MAX;
    return start;
}

static void close_gap(struct enc *e, uint8_t *start)
{
    uint8_t *body = start + VARINT_MAX, tmp[VARINT_MAX];
    size_t len = (size_t)(e->p - body), n = 0;
    uint64_t v;

    for (v = len; v >= 0x80; v >>= 7)
        tmp[n++] = (uint8_t)(v | 0x80);
    tmp[n++] = (uint8_t)v;
    memcpy(start, tmp, n);
    memmove(start + n, body, len);
    e->p = start + n + len;
}

static int put_submsg(struct enc *e, const ProtobufCMessage *sub)
{
    uint8_t *start = open_gap(e);

    if (start == NULL || encode_msg(e, sub) < 0)
        return -1;
    close_gap(e, start);
    return 0;
}

static int put_one(struct enc *e, const ProtobufCFieldDescriptor *f, const void *v)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)v;
        return put_key(e, f->id, 2) < 0 ? -1 : put_bytes(e, s ? s : "", s ? strlen(s) : 0);
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = v;
        return put_key(e, f->id, 2) < 0 ? -1 : put_bytes(e, b->data, b->len);
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        return put_key(e, f->id, 2) < 0 ? -1 : put_submsg(e, *(ProtobufCMessage *const *)v);
    default:
        return put_key(e, f->id, (unsigned)wire_type(f->type)) < 0 ? -1 : put_scalar(e, f->type, v);
    }
}

/* proto3: a field left at its zero value is not written. */
static int is_zero(const ProtobufCFieldDescriptor *f, const void *v)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)v;
        return s == NULL || *s == '\0';
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)v)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *)v == NULL;
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)v == 0;
    default:
        if (scalar_size(f->type) == 8)
            return *(const uint64_t *)v == 0; /* bit pattern: -0.0 is written */
        return *(const uint32_t *)v == 0;
    }
}

static int put_repeated(struct enc *e, const ProtobufCFieldDescriptor *f, const void *member,
                        size_t count)
{
    const char *arr = *(char *const *)member;
    uint8_t *start;
    size_t i, sz;

    if (count == 0)
        return 0;
    if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE) {
        for (i = 0; i < count; i++)
            if (put_one(e, f, arr + i * sizeof(void *)) < 0)
                return -1;
        return 0;
    }
    sz = f->type == PROTOBUF_C_TYPE_BYTES ? sizeof(ProtobufCBinaryData) : scalar_size(f->type);
    if (!(f->flags & PROTOBUF_C_FIELD_FLAG_PACKED) || f->type == PROTOBUF_C_TYPE_BYTES) {
        for (i = 0; i < count; i++)
            if (put_one(e, f, arr + i * sz) < 0)
                return -1;
        return 0;
    }
    /* Packed: one key, then the values as one length-delimited run. */
    if (put_key(e, f->id, 2) < 0 || (start = open_gap(e)) == NULL)
        return -1;
    for (i = 0; i < count; i++)
        if (put_scalar(e, f->type, arr + i * sz) < 0)
            return -1;
    close_gap(e, start);
    return 0;
}

/* Unchecked varint: the caller made room for VARINT_MAX bytes. */
static uint8_t *varint_at(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/*
 * The fields every event is made of: a plain (proto3) integer, bool, enum
 * or string. Returns 1 when handled (written or skipped as zero), 0 when the
 * general path must handle the field, -1 when out of room.
 */
static int put_plain(struct enc *e, const ProtobufCFieldDescriptor *f, const void *member)
{
    uint64_t v;

    switch (f->type) {
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_INT64:
        v = *(const uint64_t *)member;
        break;
    case PROTOBUF_C_TYPE_UINT32:
        v = *(const uint32_t *)member;
        break;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_ENUM:
        v = (uint64_t)(int64_t) * (const int32_t *)member;
        break;
    case PROTOBUF_C_TYPE_BOOL:
        v = *(const protobuf_c_boolean *)member != 0;
        break;
    case PROTOBUF_C_TYPE_STRING: {
        const char *str = *(char *const *)member;
        size_t n;

        if (str == NULL || *str == '\0')
            return 1;
        n = strlen(str);
        if (!room(e, 2 * VARINT_MAX + n))
            return -1;
        e->p = varint_at(e->p, (uint64_t)f->id << 3 | 2);
        e->p = varint_at(e->p, n);
        memcpy(e->p, str, n);
        e->p += n;
        return 1;
    }
    default:
        return 0;
    }
    if (v == 0)
        return 1;
    if (!room(e, 2 * VARINT_MAX))
        return -1;
    e->p = varint_at(e->p, (uint64_t)f->id << 3);
    e->p = varint_at(e->p, v);
    return 1;
}

static int encode_msg(struct enc *e, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    unsigned i;

    for (i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const void *member = (const char *)m + f->offset;

        if (f->label == PROTOBUF_C_LABEL_NONE && !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) {
            int r = put_plain(e, f, member);

            if (r < 0)
                return -1;
            if (r > 0)
                continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t count = *(const size_t *)((const char *)m + f->quantifier_offset);

            if (put_repeated(e, f, member, count) < 0)
                return -1;
            continue;
        }
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
                continue;
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
                   f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING) {
            if (!*(const protobuf_c_boolean *)((const char *)m + f->quantifier_offset))
                continue; /* proto2 optional without has_ */
        } else if (f->label != PROTOBUF_C_LABEL_REQUIRED && is_zero(f, member)) {
            continue;
        }
        if (put_one(e, f, member) < 0)
            return -1;
    }
    return 0;
}

long schema_pb_encode(const ProtobufCMessage *m, uint8_t *buf, size_t cap)
{
    struct enc e = {buf, buf + cap};

    if (encode_msg(&e, m) < 0)
        return -1;
    return (long)(e.p - buf);
}
