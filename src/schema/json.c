/*
 * json.c - JSON encoding of protobuf-c messages by reflection.
 *
 * Nothing here knows a message type: names, types and offsets all come from
 * the descriptors generated from proto/, so a new event is JSON-encodable the
 * moment it is added to the .proto. The encoder keeps no state and allocates
 * nothing but the output buffer; see json.h for the rules.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "json.h"

/* Digits of UINT64_MAX. */
#define JSON_U64_DIGITS 20
/* Enough for "%.17g" of any double: sign, 17 digits, point, "e-308", NUL. */
#define JSON_DOUBLE_BUF 32

static const char hex_digits[] = "0123456789abcdef";

/* U+FFFD REPLACEMENT CHARACTER, written for bytes that are not UTF-8. */
static const char utf8_replacement[] = "\xef\xbf\xbd";

static int put_object(struct sbuf *out, const ProtobufCMessage *m, int with_type, int depth);

/* Commit n bytes written at the pointer sbuf_reserve returned. */
static void commit(struct sbuf *out, size_t n)
{
    out->len += n;
    out->data[out->len] = '\0';
}

static void put_u64(struct sbuf *out, uint64_t v)
{
    char tmp[JSON_U64_DIGITS];
    size_t n = sizeof(tmp);

    do {
        tmp[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    sbuf_append(out, tmp + n, sizeof(tmp) - n);
}

static void put_i64(struct sbuf *out, int64_t v)
{
    if (v < 0) {
        sbuf_putc(out, '-');
        put_u64(out, 0 - (uint64_t)v); /* INT64_MIN safe: unsigned negation */
    } else {
        put_u64(out, (uint64_t)v);
    }
}

/*
 * The shortest "%.Ng" that reads back as the same value, N from DIG (always
 * exact in decimal) up to DECIMAL_DIG (always round-trips): 0.1 stays "0.1".
 */
static void put_double(struct sbuf *out, double v, int is_float)
{
    char tmp[JSON_DOUBLE_BUF];
    int prec = is_float ? FLT_DIG : DBL_DIG;
    int max = is_float ? FLT_DECIMAL_DIG : DBL_DECIMAL_DIG;

    if (isnan(v) || isinf(v)) {
        sbuf_append(out, "null", 4);
        return;
    }
    for (;; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (prec >= max)
            break;
        if (is_float ? strtof(tmp, NULL) == (float)v : strtod(tmp, NULL) == v)
            break;
    }
    sbuf_puts(out, tmp);
}

static void put_escape(struct sbuf *out, unsigned char c)
{
    char u[6] = {'\\', 'u', '0', '0', hex_digits[c >> 4], hex_digits[c & 15]};

    switch (c) {
    case '"':
        sbuf_append(out, "\\\"", 2);
        break;
    case '\\':
        sbuf_append(out, "\\\\", 2);
        break;
    case '\n':
        sbuf_append(out, "\\n", 2);
        break;
    case '\r':
        sbuf_append(out, "\\r", 2);
        break;
    case '\t':
        sbuf_append(out, "\\t", 2);
        break;
    case '\b':
        sbuf_append(out, "\\b", 2);
        break;
    case '\f':
        sbuf_append(out, "\\f", 2);
        break;
    default:
        sbuf_append(out, u, sizeof(u));
        break;
    }
}

/*
 * Length of the well-formed UTF-8 sequence starting at p (Unicode table 3-7:
 * no overlongs, surrogates or values past U+10FFFF), or 0; then *skip is the
 * length of the maximal ill-formed subpart, which becomes one U+FFFD.
 */
static size_t utf8_seq(const unsigned char *p, size_t n, size_t *skip)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xbf;
    size_t need, i;

    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        *skip = 1;
        return 0;
    }
    for (i = 1; i < need; i++) {
        if (i >= n || p[i] < lo || p[i] > hi) {
            *skip = i;
            return 0;
        }
        lo = 0x80;
        hi = 0xbf;
    }
    return need;
}

/* Bytes that go through unchanged are copied in runs, not one by one. */
static void put_string(struct sbuf *out, const char *str)
{
    const unsigned char *s = (const unsigned char *)(str != NULL ? str : "");
    size_t n = strlen((const char *)s), i = 0, run = 0, len, skip = 0;

    sbuf_putc(out, '"');
    while (i < n) {
        unsigned char c = s[i];

        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        if (c >= 0x80 && (len = utf8_seq(s + i, n - i, &skip)) != 0) {
            i += len;
            continue;
        }
        sbuf_append(out, s + run, i - run);
        if (c >= 0x80) {
            sbuf_append(out, utf8_replacement, sizeof(utf8_replacement) - 1);
            i += skip;
        } else {
            put_escape(out, c);
            i++;
        }
        run = i;
    }
    sbuf_append(out, s + run, i - run);
    sbuf_putc(out, '"');
}

static void put_hex(struct sbuf *out, const ProtobufCBinaryData *b)
{
    char *dst = sbuf_reserve(out, 2 * b->len + 2);
    size_t i, n = 0;

    if (dst == NULL)
        return;
    dst[n++] = '"';
    for (i = 0; i < b->len; i++) {
        dst[n++] = hex_digits[b->data[i] >> 4];
        dst[n++] = hex_digits[b->data[i] & 15];
    }
    dst[n++] = '"';
    commit(out, n);
}

/* Known values by their short lower-case name; unknown ones as numbers. */
static void put_enum(struct sbuf *out, const ProtobufCEnumDescriptor *e, int v)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(e, v);
    const char *name;
    size_t i, len;
    char *dst;

    if (ev == NULL) {
        put_i64(out, v);
        return;
    }
    name = schema_enum_value_suffix(e, ev->name);
    len = strlen(name);
    dst = sbuf_reserve(out, len + 2);
    if (dst == NULL)
        return;
    dst[0] = '"';
    for (i = 0; i < len; i++)
        dst[i + 1] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a') : name[i];
    dst[len + 1] = '"';
    commit(out, len + 2);
}

/* "name": — proto field names are identifiers, so no escaping is needed. */
static void put_key(struct sbuf *out, const char *name, int comma)
{
    size_t len = strlen(name), n = 0;
    char *dst = sbuf_reserve(out, len + 4);

    if (dst == NULL)
        return;
    if (comma)
        dst[n++] = ',';
    dst[n++] = '"';
    memcpy(dst + n, name, len);
    n += len;
    dst[n++] = '"';
    dst[n++] = ':';
    commit(out, n);
}

/* The snake_case type name, written straight into the buffer. */
static void put_type(struct sbuf *out, const ProtobufCMessageDescriptor *d)
{
    size_t len = strlen(d->short_name);
    char *dst = sbuf_reserve(out, SCHEMA_SNAKE_MAX(len) + 2);
    size_t n;

    if (dst == NULL)
        return;
    dst[0] = '"';
    n = schema_snake_case(dst + 1, d->short_name, 0);
    dst[n + 1] = '"';
    commit(out, n + 2);
}

/* Size of one element of a repeated field of type t, 0 if t is unknown. */
static size_t elt_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM: /* generated enums are forced to int size */
        return sizeof(int32_t);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return sizeof(int64_t);
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* One value of field f stored at p. */
static int put_value(struct sbuf *out, const ProtobufCFieldDescriptor *f, const void *p, int depth)
{
    const ProtobufCMessage *sub;

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        put_i64(out, *(const int32_t *)p);
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        put_u64(out, *(const uint32_t *)p);
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        put_i64(out, *(const int64_t *)p);
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        put_u64(out, *(const uint64_t *)p);
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
        put_double(out, *(const float *)p, 1);
        return 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        put_double(out, *(const double *)p, 0);
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        sbuf_puts(out, *(const protobuf_c_boolean *)p ? "true" : "false");
        return 0;
    case PROTOBUF_C_TYPE_ENUM:
        put_enum(out, f->descriptor, *(const int32_t *)p);
        return 0;
    case PROTOBUF_C_TYPE_STRING:
        put_string(out, *(const char *const *)p);
        return 0;
    case PROTOBUF_C_TYPE_BYTES:
        put_hex(out, p);
        return 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        sub = *(const ProtobufCMessage *const *)p;
        if (sub == NULL) { /* only reachable inside an array */
            sbuf_append(out, "null", 4);
            return 0;
        }
        return put_object(out, sub, 0, depth + 1);
    }
    return -1;
}

static int put_repeated(struct sbuf *out, const ProtobufCMessage *m,
                        const ProtobufCFieldDescriptor *f, int depth)
{
    size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
    const char *arr = *(const char *const *)((const char *)m + f->offset);
    size_t i, size = elt_size(f->type);

    if (size == 0 || (n > 0 && arr == NULL))
        return -1;
    sbuf_putc(out, '[');
    for (i = 0; i < n; i++) {
        if (i > 0)
            sbuf_putc(out, ',');
        if (put_value(out, f, arr + i * size, depth) < 0)
            return -1;
    }
    sbuf_putc(out, ']');
    return 0;
}

/* Oneof members only when their case is set; sub-messages only when present. */
static int field_written(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)m;

    if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
        *(const uint32_t *)(base + f->quantifier_offset) != f->id)
        return 0;
    if (f->type == PROTOBUF_C_TYPE_MESSAGE && f->label != PROTOBUF_C_LABEL_REPEATED &&
        *(const ProtobufCMessage *const *)(base + f->offset) == NULL)
        return 0;
    return 1;
}

static int put_object(struct sbuf *out, const ProtobufCMessage *m, int with_type, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    int comma = 0, rc;
    unsigned i;

    if (d == NULL || depth > SCHEMA_JSON_MAX_DEPTH)
        return -1;
    sbuf_putc(out, '{');
    if (with_type) {
        sbuf_append(out, "\"type\":", 7);
        put_type(out, d);
        comma = 1;
    }
    for (i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];

        if (!field_written(m, f))
            continue;
        put_key(out, f->name, comma);
        comma = 1;
        if (f->label == PROTOBUF_C_LABEL_REPEATED)
            rc = put_repeated(out, m, f, depth);
        else
            rc = put_value(out, f, (const char *)m + f->offset, depth);
        if (rc < 0)
            return -1;
    }
    sbuf_putc(out, '}');
    return 0;
}

int schema_json_encode(struct sbuf *out, const ProtobufCMessage *msg)
{
    size_t start = out->len;

    if (msg != NULL && put_object(out, msg, 1, 0) == 0 && sbuf_ok(out))
        return 0;
    /* Leave no half object behind (a failed buffer is the caller's to reset). */
    if (sbuf_ok(out) && out->data != NULL) {
        out->len = start;
        out->data[start] = '\0';
    }
    return -1;
}

/* The member is found through the descriptor: no list of event types here. */
int schema_json_encode_event(struct sbuf *out, const Sonde__V1__Event *ev)
{
    const ProtobufCFieldDescriptor *f;

    if (ev == NULL || ev->event_case == SONDE__V1__EVENT__EVENT__NOT_SET)
        return -1;
    f = protobuf_c_message_descriptor_get_field(ev->base.descriptor, (unsigned)ev->event_case);
    if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE)
        return -1;
    return schema_json_encode(out,
                              *(const ProtobufCMessage *const *)((const char *)ev + f->offset));
}
