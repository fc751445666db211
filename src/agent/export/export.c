/*
 * export.c - the exporter thread; see export.h.
 *
 * JSON needs the message decoded again (protobuf-c unpack, then the
 * reflective encoder); pb output writes the packed bytes as they came.
 * Writes go through stdio buffers and are flushed when the queue runs dry,
 * so a tail -f of the output is at most ~a second behind.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "export.h"
#include "events/emit.h"
#include "events/flow_events.h"
#include "event.h"
#include "json.h"
#include "pbfile.h"
#include "rpcout.h"

#define EXPORT_IDLE_MS   500
#define EXPORT_STDIO_BUF (1 << 20)
#define EXPORT_FLUSH_MS  500

/* Validate TYPE:PATH; set the kind and, unless null, the path. Opens nothing. */
static int parse_spec(const char *spec, int *kind, const char **path, char *err)
{
    const char *colon = strchr(spec, ':');

    *path = colon ? colon + 1 : NULL;
    if (strcmp(spec, "null") == 0) {
        *kind = EXPORT_NULL;
        return 0;
    }
    if (colon && colon - spec == 4 && strncmp(spec, "json", 4) == 0)
        *kind = EXPORT_JSON;
    else if (colon && colon - spec == 2 && strncmp(spec, "pb", 2) == 0)
        *kind = EXPORT_PB;
    else {
        snprintf(err, EXPORT_ERR_MAX, "-o %s: expected json:PATH, pb:PATH or null", spec);
        return -1;
    }
    if (**path == '\0') {
        snprintf(err, EXPORT_ERR_MAX, "-o %s: missing path", spec);
        return -1;
    }
    return 0;
}

int export_check(const char *spec, char *err)
{
    const char *path;
    int kind;

    return parse_spec(spec, &kind, &path, err);
}

int export_add(struct exporter *x, const char *spec, char *err)
{
    struct export_output *o;
    const char *path;
    int kind;

    if (x->nout >= EXPORT_MAX_OUTPUTS) {
        snprintf(err, EXPORT_ERR_MAX, "-o %s: at most %d outputs", spec, EXPORT_MAX_OUTPUTS);
        return -1;
    }
    if (parse_spec(spec, &kind, &path, err) < 0)
        return -1;
    o = &x->out[x->nout];
    memset(o, 0, sizeof(*o));
    o->kind = kind;
    if (kind == EXPORT_JSON)
        x->need_json = 1;
    if (kind != EXPORT_NULL) {
        if (strcmp(path, "-") == 0) {
            o->f = stdout;
        } else {
            o->f = fopen(path, kind == EXPORT_PB ? "wb" : "w");
            if (o->f == NULL) {
                snprintf(err, EXPORT_ERR_MAX, "-o %s: %s", spec, strerror(errno));
                return -1;
            }
            o->close_f = 1;
            setvbuf(o->f, NULL, _IOFBF, EXPORT_STDIO_BUF);
        }
        o->path = strdup(path);
    }
    x->nout++;
    return 0;
}

static void write_out(struct export_output *o, const void *p, size_t n)
{
    if (fwrite(p, 1, n, o->f) != n) {
        if (o->errors++ == 0)
            fprintf(stderr, "sonde: error: writing %s: %s\n", o->path, strerror(errno));
        return;
    }
    o->written++;
}

static void export_one(struct exporter *x, struct evq_item *it)
{
    ProtobufCMessage *m = NULL;
    uint8_t *data = it->data;
    size_t len = it->len;
    int i;

    if (it->flags & EVQ_F_FLOW_SNAPSHOT) {
        /* Built here, off the packet path (see flow_events.c). */
        sbuf_reset(&x->pack);
        if (ev_flow_encode(x->sink, it, &x->pack) < 0) {
            x->encode_errors++;
            return;
        }
        data = (uint8_t *)x->pack.data;
        len = x->pack.len;
    }
    len += ev_put_seq(data + len, ++x->seq);
    if (x->rpc)
        rpcout_event(x->rpc, (int)it->tag, x->seq, data, len);
    if (x->need_json) {
        const ProtobufCMessageDescriptor *d = schema_event_descriptor((int)it->tag);

        m = d ? protobuf_c_message_unpack(d, NULL, len, data) : NULL;
        if (m == NULL)
            x->json_errors++;
    }
    for (i = 0; i < x->nout; i++) {
        struct export_output *o = &x->out[i];

        sbuf_reset(&x->buf);
        if (o->kind == EXPORT_PB) {
            pbfile_frame_event(&x->buf, (int)it->tag, data, len);
        } else if (o->kind == EXPORT_JSON && m) {
            schema_json_encode(&x->buf, m);
            sbuf_putc(&x->buf, '\n');
        } else {
            continue;
        }
        if (sbuf_ok(&x->buf))
            write_out(o, x->buf.data, x->buf.len);
        else
            o->errors++;
    }
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
}

static void flush_all(struct exporter *x)
{
    int i;

    for (i = 0; i < x->nout; i++)
        if (x->out[i].f)
            fflush(x->out[i].f);
}

/* Flush outputs when the queue has been idle for EXPORT_FLUSH_MS, so a
 * reader of the output sees events promptly without a flush per wake-up. */
static void flush_idle(struct exporter *x)
{
    if (++x->idle_rounds * EXPORT_IDLE_MS >= EXPORT_FLUSH_MS) {
        flush_all(x);
        x->idle_rounds = 0;
    }
}

static void *export_main(void *arg)
{
    struct exporter *x = arg;
    struct evq_item *recycle = NULL;

    for (;;) {
        struct evq_item *it = evq_pop_all(x->q, EXPORT_IDLE_MS), *next;

        if (it == NULL) {
            if (evq_finished(x->q))
                break;
            flush_idle(x);
            continue;
        }
        for (; it; it = next) {
            next = it->next;
            export_one(x, it);
            if (it->flags & EVQ_F_RECYCLE) {
                it->next = recycle;
                recycle = it;
            } else {
                free(it);
            }
        }
        if (x->rpc)
            rpcout_flush(x->rpc); /* the batch leaves together */
        evq_recycle(x->q, recycle);
        recycle = NULL;
    }
    return NULL;
}

/*
 * Sequence numbers start at the wall clock in microseconds, not at 1: a
 * collector deduplicates by (agent, type, seq) across the agent's
 * restarts, so a new run must not reuse the numbers of the last one. It
 * would only catch up with the clock by producing over a million events a
 * second for its whole run; and past 2^53 (year 2255) JSON readers in
 * JavaScript would lose precision.
 */
static uint64_t seq_base(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

int export_start(struct exporter *x, struct evq *q, const struct ev_sink *sink)
{
    x->seq = seq_base();
    x->q = q;
    x->sink = sink;
    sbuf_init(&x->buf);
    sbuf_init(&x->pack);
    if (pthread_create(&x->thread, NULL, export_main, x) != 0)
        return -1;
    x->started = 1;
    return 0;
}

int export_join(struct exporter *x)
{
    int i, rc = 0;

    if (x->started)
        pthread_join(x->thread, NULL);
    x->started = 0;
    for (i = 0; i < x->nout; i++) {
        struct export_output *o = &x->out[i];

        if (o->f && fflush(o->f) != 0)
            o->errors++;
        if (o->close_f && fclose(o->f) != 0)
            o->errors++;
        if (o->errors) {
            fprintf(stderr, "sonde: error: %s: %llu events not written\n", o->path,
                    (unsigned long long)o->errors);
            rc = -1;
        }
        free(o->path);
        o->f = NULL;
    }
    sbuf_free(&x->buf);
    sbuf_free(&x->pack);
    if (x->encode_errors) {
        fprintf(stderr, "sonde: error: %llu events could not be encoded\n",
                (unsigned long long)x->encode_errors);
        rc = -1;
    }
    return rc;
}
