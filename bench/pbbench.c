/*
 * pbbench.c - protobuf encode and decode time and size per event type
 * (the thesis's marshal, unmarshal and size tables), for `make bench`.
 *
 * Reads a -o pb: file the agent wrote (real events of a real capture),
 * groups the events by type, and for each type times, over every event of
 * that type, repeated until about BENCH_NS of work (the fastest of
 * BENCH_ROUNDS rounds):
 *   encode  - schema_pb_encode, the agent's encoder (unpacked -> bytes)
 *   pack    - protobuf_c_message_pack, for reference
 *   decode  - protobuf_c_message_unpack + free (what a reader pays)
 *   check   - schema_pb_check, the collector's validation
 * and prints one JSON line per type: count, mean bytes, ns per event.
 *
 * usage: pbbench FILE.pb [TYPE]   (TYPE: only that event type, e.g. flow)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event.h"
#include "pbcheck.h"
#include "pbenc.h"
#include "pbfile.h"

#define BENCH_NS     200000000.0 /* per type and operation */
#define BENCH_ROUNDS 10
#define MAX_PER_TYPE 20000
#define ENC_MAX      (1 << 16)

struct sample {
    ProtobufCMessage *m[MAX_PER_TYPE];
    uint8_t *bytes[MAX_PER_TYPE];
    size_t len[MAX_PER_TYPE];
    size_t n;
};

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The member of an Event, unpacked on its own, and its packed bytes. */
static int add(struct sample *s, const Sonde__V1__Event *ev)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(ev->base.descriptor, (unsigned)ev->event_case);
    const ProtobufCMessage *inner;
    size_t len;

    if (f == NULL || s->n == MAX_PER_TYPE)
        return 0;
    inner = *(const ProtobufCMessage *const *)((const char *)ev + f->offset);
    len = protobuf_c_message_get_packed_size(inner);
    s->bytes[s->n] = malloc(len ? len : 1);
    if (s->bytes[s->n] == NULL)
        return -1;
    s->len[s->n] = protobuf_c_message_pack(inner, s->bytes[s->n]);
    s->m[s->n] = protobuf_c_message_unpack(inner->descriptor, NULL, len, s->bytes[s->n]);
    if (s->m[s->n] == NULL)
        return -1;
    s->n++;
    return 0;
}

typedef void (*op_fn)(const struct sample *s, size_t i, uint8_t *buf);

static void op_encode(const struct sample *s, size_t i, uint8_t *buf)
{
    if (schema_pb_encode(s->m[i], buf, ENC_MAX) < 0)
        abort();
}

static void op_pack(const struct sample *s, size_t i, uint8_t *buf)
{
    protobuf_c_message_pack(s->m[i], buf);
}

static void op_decode(const struct sample *s, size_t i, uint8_t *buf)
{
    ProtobufCMessage *m =
        protobuf_c_message_unpack(s->m[i]->descriptor, NULL, s->len[i], s->bytes[i]);

    (void)buf;
    if (m == NULL)
        abort();
    protobuf_c_message_free_unpacked(m, NULL);
}

static void op_check(const struct sample *s, size_t i, uint8_t *buf)
{
    char why[PBCHECK_WHY_MAX];

    (void)buf;
    if (schema_pb_check(s->m[i]->descriptor, s->bytes[i], s->len[i], 1u << 30, NULL, why) < 0)
        abort();
}

/*
 * ns per event: BENCH_ROUNDS rounds, each over all events until
 * BENCH_NS / BENCH_ROUNDS has passed; the fastest round counts, since on
 * a shared machine the slower ones measure the neighbours.
 */
static double time_op(const struct sample *s, op_fn fn, uint8_t *buf)
{
    double best = 0;
    int r;

    for (r = 0; r < BENCH_ROUNDS; r++) {
        double t0 = now_ns(), t;
        size_t done = 0, i;

        do {
            for (i = 0; i < s->n; i++)
                fn(s, i, buf);
            done += s->n;
            t = now_ns() - t0;
        } while (t < BENCH_NS / BENCH_ROUNDS);
        if (r == 0 || t / (double)done < best)
            best = t / (double)done;
    }
    return best;
}

int main(int argc, char **argv)
{
    static struct sample samples[64];
    static uint8_t buf[ENC_MAX];
    struct pbfile_reader r;
    struct sbuf msg;
    FILE *f;
    int rc, tag;

    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: pbbench FILE.pb [TYPE]\n");
        return 2;
    }
    f = fopen(argv[1], "rb");
    if (f == NULL) {
        perror(argv[1]);
        return 1;
    }
    sbuf_init(&msg);
    pbfile_reader_init(&r, f);
    while ((rc = pbfile_read(&r, &msg)) == 1) {
        Sonde__V1__Event *ev = sonde__v1__event__unpack(NULL, msg.len, (const uint8_t *)msg.data);

        if (ev == NULL || ev->event_case <= 0 || ev->event_case >= 64 ||
            add(&samples[ev->event_case], ev) < 0) {
            fprintf(stderr, "pbbench: %s: a bad event\n", argv[1]);
            return 1;
        }
        sonde__v1__event__free_unpacked(ev, NULL);
    }
    if (rc < 0) {
        fprintf(stderr, "pbbench: %s\n", r.err);
        return 1;
    }
    for (tag = 1; tag < 64; tag++) {
        struct sample *s = &samples[tag];
        double bytes = 0;
        size_t i;

        if (s->n == 0 ||
            (argc == 3 && strcmp(argv[2], schema_type_name(schema_event_descriptor(tag))) != 0))
            continue;
        for (i = 0; i < s->n; i++)
            bytes += (double)s->len[i];
        printf("{\"type\": \"%s\", \"count\": %zu, \"bytes\": %.1f, \"encode_ns\": %.1f, "
               "\"pack_ns\": %.1f, \"decode_ns\": %.1f, \"check_ns\": %.1f}\n",
               schema_type_name(schema_event_descriptor(tag)), s->n, bytes / (double)s->n,
               time_op(s, op_encode, buf), time_op(s, op_pack, buf), time_op(s, op_decode, buf),
               time_op(s, op_check, buf));
        for (i = 0; i < s->n; i++) {
            protobuf_c_message_free_unpacked(s->m[i], NULL);
            free(s->bytes[i]);
        }
    }
    sbuf_free(&msg);
    fclose(f);
    return 0;
}
