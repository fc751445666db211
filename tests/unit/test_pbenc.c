/*
 * test_pbenc.c - the one-pass encoder writes exactly what protobuf-c's
 * pack writes, for every event message filled with random values (zeros,
 * empty, NULL and long strings, repeated and nested fields included), and
 * refuses every buffer that is too small without writing past it. And
 * the generated checker decides as the reflective one on all of them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "event.h"
#include "pbcheck.h"
#include "pbenc.h"
#include "sonde/v1/events.pb-c.h"

#define ROUNDS 300
#define ARENA  (1 << 16)

struct arena {
    uint8_t buf[ARENA];
    size_t used;
    uint64_t rng;
};

static uint64_t rnd(struct arena *a)
{
    a->rng ^= a->rng << 13;
    a->rng ^= a->rng >> 7;
    a->rng ^= a->rng << 17;
    return a->rng;
}

static void *take(struct arena *a, size_t n)
{
    void *p = a->buf + a->used;

    a->used += (n + 7) & ~(size_t)7;
    assert_true(a->used <= ARENA);
    memset(p, 0, n);
    return p;
}

/* Zero often, small or huge otherwise: every varint length. */
static uint64_t value(struct arena *a)
{
    switch (rnd(a) % 4) {
    case 0:
        return 0;
    case 1:
        return rnd(a) % 200;
    default:
        return rnd(a) >> (rnd(a) % 64);
    }
}

static char *string(struct arena *a)
{
    size_t n = rnd(a) % 8 == 0 ? 100 + rnd(a) % 300 : rnd(a) % 40, i; /* some over 127 */
    char *s;

    if (rnd(a) % 5 == 0)
        return NULL;
    s = take(a, n + 1);
    for (i = 0; i < n; i++)
        s[i] = (char)('a' + rnd(a) % 26);
    return s;
}

static void fill(struct arena *a, ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    unsigned i;

    for (i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char *member = (char *)m + f->offset;
        size_t count = 1, k, sz;
        char *dst = member;

        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            count = rnd(a) % 4;
            *(size_t *)((char *)m + f->quantifier_offset) = count;
            sz = f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE
                     ? sizeof(void *)
                 : f->type == PROTOBUF_C_TYPE_BYTES ? sizeof(ProtobufCBinaryData)
                 : f->type == PROTOBUF_C_TYPE_DOUBLE || f->type == PROTOBUF_C_TYPE_UINT64 ||
                         f->type == PROTOBUF_C_TYPE_INT64
                     ? 8
                     : 4;
            dst = count ? take(a, count * sz) : NULL;
            *(char **)member = dst;
        }
        for (k = 0; k < count; k++) {
            switch (f->type) {
            case PROTOBUF_C_TYPE_STRING: {
                char *s = string(a);
                ((char **)dst)[k] = s ? s : (f->label == PROTOBUF_C_LABEL_REPEATED ? "" : NULL);
                break;
            }
            case PROTOBUF_C_TYPE_BYTES: {
                ProtobufCBinaryData *b = &((ProtobufCBinaryData *)dst)[k];
                b->len = rnd(a) % 9;
                b->data = take(a, b->len + 1);
                memset(b->data, 0xab, b->len);
                break;
            }
            case PROTOBUF_C_TYPE_MESSAGE: {
                const ProtobufCMessageDescriptor *sd = f->descriptor;
                ProtobufCMessage *sub = NULL;

                /* A repeated message element may not be NULL; a single one may. */
                if (f->label == PROTOBUF_C_LABEL_REPEATED || (depth < 2 && rnd(a) % 3)) {
                    sub = take(a, sd->sizeof_message);
                    sd->message_init(sub);
                    fill(a, sub, depth + 1);
                }
                ((ProtobufCMessage **)dst)[k] = sub;
                break;
            }
            case PROTOBUF_C_TYPE_UINT64:
            case PROTOBUF_C_TYPE_INT64:
                ((uint64_t *)dst)[k] = value(a);
                break;
            case PROTOBUF_C_TYPE_DOUBLE:
                ((double *)dst)[k] = rnd(a) % 3 ? (double)(rnd(a) % 100000) / 7.0 : 0.0;
                break;
            case PROTOBUF_C_TYPE_BOOL:
                ((protobuf_c_boolean *)dst)[k] = (protobuf_c_boolean)(rnd(a) % 2);
                break;
            case PROTOBUF_C_TYPE_ENUM: /* a peer may send any int32, negative too */
                ((int32_t *)dst)[k] =
                    rnd(a) % 4 ? (int32_t)(rnd(a) % 6) : -(int32_t)(rnd(a) % 1000) - 1;
                break;
            default:
                ((uint32_t *)dst)[k] = (uint32_t)value(a);
                break;
            }
        }
    }
}

/*
 * Every event type's generated checker decides as the reflective one on
 * these messages and on mutations of them (test_pbcheck.c compares the
 * reflective one with protobuf-c's unpack).
 */
static void checkers_agree(struct arena *a, const ProtobufCMessageDescriptor *d, const uint8_t *msg,
                           size_t n)
{
    uint8_t buf[ARENA];
    char why[PBCHECK_WHY_MAX];
    int i;

    for (i = 0; i < 20; i++) {
        size_t len = n;

        memcpy(buf, msg, n);
        if (i > 0 && n > 0) {
            size_t pos = rnd(a) % n;

            if (i % 3 == 0)
                len = pos; /* cut */
            else
                buf[pos] = i % 3 == 1 ? (uint8_t)rnd(a) : (uint8_t)(buf[pos] ^ 0x80);
        }
        assert_int_equal(schema_pb_check_fast(d, buf, len, 64, NULL),
                         schema_pb_check_reflect(d, buf, len, 64, NULL, why));
    }
}

static void test_same_bytes_as_protobuf_c(void **state)
{
    static struct arena a;
    static uint8_t ours[ARENA], ref[ARENA];
    size_t t, r;

    (void)state;
    a.rng = 0x9e3779b97f4a7c15ULL;
    for (t = 0; t < schema_event_count(); t++) {
        const ProtobufCMessageDescriptor *d = schema_event_descriptor(schema_event_tag_at(t));

        for (r = 0; r < ROUNDS; r++) {
            ProtobufCMessage *m;
            size_t want;
            long got, cap;

            a.used = 0;
            m = take(&a, d->sizeof_message);
            d->message_init(m);
            fill(&a, m, 0);
            want = protobuf_c_message_pack(m, ref);
            got = schema_pb_encode(m, ours, sizeof(ours));
            assert_int_equal(got, (long)want);
            assert_memory_equal(ours, ref, want);
            checkers_agree(&a, d, ref, want);
            /* Any smaller buffer is refused, never overrun (AddressSanitizer watches). */
            for (cap = 0; cap < (long)want; cap += 1 + cap / 8) {
                uint8_t *exact = malloc(cap ? (size_t)cap : 1);

                assert_non_null(exact);
                assert_int_equal(schema_pb_encode(m, exact, (size_t)cap), -1);
                free(exact);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_bytes_as_protobuf_c),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
