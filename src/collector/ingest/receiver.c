/*
 * receiver.c - the publish streams; see receiver.h.
 *
 * The method table is made from the service descriptor protoc-c generated
 * for sonde.v1.D3Events: every rpc named Publish<X>Stream whose input is an
 * Event member becomes a method here, so a new event type needs no code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "event.h"
#include "pbcheck.h"
#include "log.h"
#include "receiver.h"
#include "sonde/v1/d3events.pb-c.h"
#include "writer.h"

#define RECV_PATH_PREFIX "/sonde.v1.D3Events/"
#define RECV_MAX_METHODS 64
#define RECV_RESP_MAX    512 /* a packed PublishResponse */
#define RECV_PATH_MAX    128
#define RECV_SEQ_MAX     (1ull << 53) /* the largest integer a JSON double keeps exact */
#define RECV_FLUSH_BYTES (1u << 20)   /* output pending that starts a write between commits */
#define RECV_BUFFER_MAX  (64u << 20)  /* output pending that waits for the writer */

struct pub; /* one open publish call */

struct receiver {
    struct event_base *base;
    struct receiver_cfg cfg;
    struct sink *sinks;
    int nsinks;
    struct dedup *dedup;
    struct rpc_method methods[RECV_MAX_METHODS];
    char paths[RECV_MAX_METHODS][RECV_PATH_MAX];
    int tags[RECV_MAX_METHODS];
    int nmethods;
    struct pub *pubs;
    struct event *timer;
    struct writer *writer;
    int dirty;         /* events stored since the last commit */
    int again;         /* a commit was due while the writer was busy */
    int round_commits; /* the writer's round syncs, and acknowledges */
    int failed;        /* a sink could not be committed: refuse everything */
    int need_unpack;   /* a JSON sink: events are unpacked to be written */
    struct receiver_stats st;
};

struct pub {
    struct receiver *r;
    struct rpc_call *call;
    int tag;
    long agent;      /* dedup index; -1 until the first message */
    uint64_t seen;   /* highest seq received on this call (stored or duplicate) */
    uint64_t acked;  /* highest seq acknowledged */
    uint64_t synced; /* highest seq the running (or last) commit covers */
    uint64_t accepted, duplicates;
    int done; /* the publisher half-closed: end the call after the last ack */
    struct pub *prev, *next;
};

/* ------------------------------------------------------------ checking */

/* NULL for a tag that is no event type, or one deduplication cannot hold. */
static const ProtobufCMessageDescriptor *event_descriptor(int tag)
{
    return tag > 0 && tag < DEDUP_TAGS ? schema_event_descriptor(tag) : NULL;
}

static void respond(struct pub *p, int status, const char *reason);
static int commit_now(struct receiver *r);
static size_t pending_bytes(const struct receiver *r);
static void make_room(struct receiver *r);

/*
 * End a stream for a bad event. What it stored before is committed and
 * acknowledged first (PUBLISH_STATUS_ERROR with acked_seq), so the agent
 * knows the refused event is the one right after acked_seq.
 */
static int refuse(struct pub *p, int code, const char *fmt, const char *arg)
{
    char msg[RPC_STATUS_MAX];

    snprintf(msg, sizeof(msg), fmt, arg);
    p->r->st.rejected++;
    log_warn("receiver: %s: %s: %s", rpc_call_peer(p->call), rpc_call_path(p->call), msg);
    if (commit_now(p->r) == 0)
        p->acked = p->seen;
    respond(p, SONDE__V1__PUBLISH_STATUS__PUBLISH_STATUS_ERROR, msg);
    rpc_call_finish(p->call, code, msg);
    return 0;
}

/* ------------------------------------------------------------- the calls */

/* Write to every sink; JSON sinks need the message unpacked, pb ones only the bytes. */
static int store(struct receiver *r, int tag, const uint8_t *msg, size_t len, struct ingest *in)
{
    ProtobufCMessage *m = NULL;
    int i;

    if (r->need_unpack) {
        m = protobuf_c_message_unpack(event_descriptor(tag), NULL, len, msg);
        if (m == NULL) {
            snprintf(in->why, sizeof(in->why), "an event protobuf-c cannot unpack");
            return RPC_INVALID_ARGUMENT;
        }
    }
    for (i = 0; i < r->nsinks; i++) {
        if (sink_write(&r->sinks[i], tag, m, msg, len) < 0) {
            snprintf(in->why, sizeof(in->why), "cannot write to %s", r->sinks[i].path);
            r->failed = 1;
            break;
        }
    }
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
    return i < r->nsinks ? RPC_UNAVAILABLE : RPC_OK;
}

/*
 * Sets in->agent to the dedup index of the event's agent, once its name
 * checks out. An event of the stream's agent (found, and held to the
 * certificate, at the stream's first event) costs one compare.
 */
static int event_agent(struct receiver *r, const struct pbcheck_header *h, const char *identity,
                       long agent, struct ingest *in)
{
    char id[DEDUP_AGENT_MAX];

    if (agent >= 0 && h->agent_id_len < DEDUP_AGENT_MAX &&
        memcmp(r->dedup->v[agent].id, h->agent_id, h->agent_id_len) == 0 &&
        r->dedup->v[agent].id[h->agent_id_len] == '\0')
        return RPC_OK;
    if (h->agent_id_len >= DEDUP_AGENT_MAX || memchr(h->agent_id, 0, h->agent_id_len)) {
        snprintf(in->why, sizeof(in->why), "agent_id over 127 bytes or with a NUL");
        return RPC_INVALID_ARGUMENT;
    }
    memcpy(id, h->agent_id, h->agent_id_len);
    id[h->agent_id_len] = '\0';
    if (identity && !r->cfg.trust_agent_id && strcmp(id, identity) != 0) {
        snprintf(in->why, sizeof(in->why), "agent_id %s is not the name in the agent's certificate",
                 id);
        return RPC_PERMISSION_DENIED;
    }
    if (agent >= 0) {
        snprintf(in->why, sizeof(in->why), "agent_id changed within the stream (to %s)", id);
        return RPC_INVALID_ARGUMENT;
    }
    if ((in->agent = dedup_agent(r->dedup, id)) < 0) {
        snprintf(in->why, sizeof(in->why), "no room for another agent (%d at most)",
                 DEDUP_MAX_AGENTS);
        return RPC_RESOURCE_EXHAUSTED;
    }
    return RPC_OK;
}

int receiver_ingest(struct receiver *r, int tag, const uint8_t *msg, size_t len,
                    const char *identity, long agent, struct ingest *in)
{
    const ProtobufCMessageDescriptor *d = event_descriptor(tag);
    struct pbcheck_header h;
    char why[PBCHECK_WHY_MAX];
    int rc;

    in->agent = agent; /* not a memset: why[] is large and this runs per event */
    in->seq = 0;
    in->duplicate = 0;
    in->why[0] = '\0';
    if (r->failed) {
        snprintf(in->why, sizeof(in->why), "the collector cannot store events now");
        return RPC_UNAVAILABLE;
    }
    if (d == NULL || schema_pb_check(d, msg, len, r->cfg.max_string, &h, why) < 0) {
        snprintf(in->why, sizeof(in->why), "not a valid %s: %s", d ? d->name : "event", why);
        return RPC_INVALID_ARGUMENT;
    }
    if (h.agent_id_len == 0 || h.seq == 0) {
        snprintf(in->why, sizeof(in->why), "an event without agent_id or seq");
        return RPC_INVALID_ARGUMENT;
    }
    if (h.seq >= RECV_SEQ_MAX) {
        snprintf(in->why, sizeof(in->why), "seq %llu at or over 2^53 (JSON readers lose it)",
                 (unsigned long long)h.seq);
        return RPC_INVALID_ARGUMENT;
    }
    if ((rc = event_agent(r, &h, identity, agent, in)) != RPC_OK)
        return rc;
    in->seq = h.seq;
    if (h.seq <= dedup_max(r->dedup, in->agent, tag)) {
        in->duplicate = 1;
        r->st.duplicates++;
        return RPC_OK;
    }
    rc = store(r, tag, msg, len, in);
    if (rc != RPC_OK)
        return rc;
    dedup_store(r->dedup, in->agent, tag, h.seq);
    r->st.accepted++;
    r->dirty = 1;
    if (pending_bytes(r) >= RECV_FLUSH_BYTES)
        make_room(r);
    return RPC_OK;
}

/* One event on a publish stream; a refusal ends the stream with its status. */
static int on_message(struct rpc_call *c, const uint8_t *msg, size_t len, void *arg)
{
    struct pub *p = rpc_call_data(c);
    struct ingest in;
    int rc;

    (void)arg;
    rc = receiver_ingest(p->r, p->tag, msg, len,
                         rpc_call_authenticated(c) ? rpc_call_peer(c) : NULL, p->agent, &in);
    if (rc != RPC_OK)
        return refuse(p, rc, "%s", in.why);
    p->agent = in.agent;
    if (in.duplicate)
        p->duplicates++;
    else
        p->accepted++;
    if (in.seq > p->seen)
        p->seen = in.seq;
    return 0;
}

/* acked_seq is p->acked: the caller raises it only after a successful commit. */
static void respond(struct pub *p, int status, const char *reason)
{
    Sonde__V1__PublishResponse resp = SONDE__V1__PUBLISH_RESPONSE__INIT;
    uint8_t buf[RECV_RESP_MAX];

    resp.status = (Sonde__V1__PublishStatus)status;
    resp.acked_seq = p->acked;
    resp.reason = (char *)(reason ? reason : "");
    resp.accepted = p->accepted;
    resp.duplicates = p->duplicates;
    if (sonde__v1__publish_response__get_packed_size(&resp) <= sizeof(buf))
        rpc_call_send(p->call, buf, sonde__v1__publish_response__pack(&resp, buf));
}

static int on_open(struct rpc_call *c, void *arg)
{
    struct receiver *r = arg;
    struct pub *p;
    int i, tag = 0;

    for (i = 0; i < r->nmethods; i++)
        if (strcmp(r->paths[i], rpc_call_path(c)) == 0)
            tag = r->tags[i];
    if (tag == 0)
        return RPC_UNIMPLEMENTED;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return RPC_RESOURCE_EXHAUSTED;
    p->r = r;
    p->call = c;
    p->tag = tag;
    p->agent = -1;
    p->next = r->pubs;
    if (r->pubs)
        r->pubs->prev = p;
    r->pubs = p;
    r->st.streams++;
    rpc_call_set_data(c, p);
    if (r->cfg.accept_types && !(r->cfg.accept_types & (1ull << tag))) {
        /* not wanted here: say so, and that retrying will not help */
        respond(p, SONDE__V1__PUBLISH_STATUS__PUBLISH_STATUS_UNSUBSCRIBE,
                "this collector does not accept this event type");
        rpc_call_finish(c, RPC_OK, NULL);
    }
    return RPC_OK;
}

static void on_half_close(struct rpc_call *c, void *arg)
{
    struct pub *p = rpc_call_data(c);

    (void)arg;
    /* the publisher is done: acknowledge what it sent once it is on disk */
    p->done = 1;
    p->r->dirty = 1;
}

static void on_close(struct rpc_call *c, int code, const char *message, void *arg)
{
    struct pub *p = rpc_call_data(c);
    struct receiver *r = arg;

    if (p == NULL)
        return;
    if (code != RPC_OK && code != RPC_CANCELLED)
        log_info("receiver: %s: %s ended: %s %s", rpc_call_peer(c), rpc_call_path(c),
                 rpc_code_name(code), message);
    if (p->prev)
        p->prev->next = p->next;
    else
        r->pubs = p->next;
    if (p->next)
        p->next->prev = p->prev;
    free(p);
}

/* ------------------------------------------------------------ commits */

static void commit_failed(struct receiver *r, const char *err)
{
    if (!r->failed)
        log_error("receiver: %s (no more acknowledgements)", err);
    r->failed = 1;
}

/* Acknowledge what the last commit covered; streams whose publisher is
 * done, and has everything acknowledged, are ended. */
static void acknowledge(struct receiver *r)
{
    struct pub *p, *next;

    for (p = r->pubs; p; p = next) {
        next = p->next;
        if (p->synced > p->acked) {
            p->acked = p->synced;
            respond(p, SONDE__V1__PUBLISH_STATUS__PUBLISH_STATUS_OK, NULL);
        }
        if (p->done && p->acked >= p->seen)
            rpc_call_finish(p->call, RPC_OK, NULL);
    }
}

static void mark_synced(struct receiver *r)
{
    struct pub *p;

    for (p = r->pubs; p; p = p->next)
        p->synced = p->seen;
}

static size_t pending_bytes(const struct receiver *r)
{
    size_t n = 0;
    int i;

    for (i = 0; i < r->nsinks; i++)
        if (r->sinks[i].buf.len > n)
            n = r->sinks[i].buf.len;
    return n;
}

/* Hand what is pending to the writer (idle): a commit syncs it, and what
 * every stream had seen is acknowledged when it is done. */
static void start_round(struct receiver *r, int commit)
{
    if (commit) {
        mark_synced(r);
        r->dirty = 0;
    }
    r->round_commits = commit;
    writer_start(r->writer, r->sinks, r->nsinks, commit);
}

static void commit_and_ack(struct receiver *r);

static void on_written(int ok, const char *err, void *arg)
{
    struct receiver *r = arg;

    if (!ok) {
        commit_failed(r, err);
        return;
    }
    if (r->round_commits) {
        r->st.commits++;
        acknowledge(r);
    }
    if (r->again) {
        r->again = 0;
        commit_and_ack(r);
    } else if (pending_bytes(r) >= RECV_FLUSH_BYTES) {
        start_round(r, 0);
    }
}

/* Past RECV_FLUSH_BYTES: write now if the writer is idle; past
 * RECV_BUFFER_MAX, wait for it (the loop, and so the agents, slow down to
 * what the disk takes). */
static void make_room(struct receiver *r)
{
    if (!writer_busy(r->writer))
        start_round(r, 0);
    else if (pending_bytes(r) >= RECV_BUFFER_MAX)
        writer_wait(r->writer); /* on_written starts the next round */
}

/*
 * Every commit_ms: have what is pending written and synced; it is
 * acknowledged when the writer is done (on_written), while the loop goes
 * on reading. Nothing stored since the last commit: everything seen is
 * durable already (duplicates included) and is acknowledged now.
 */
static void commit_and_ack(struct receiver *r)
{
    if (r->failed)
        return;
    if (writer_busy(r->writer)) {
        r->again = 1;
        return;
    }
    if (!r->dirty) {
        mark_synced(r);
        acknowledge(r);
        return;
    }
    start_round(r, 1);
}

/* Everything stored so far into the files and on disk now, on the loop (a
 * refusal, shutdown): the writer's rounds first. */
static int commit_now(struct receiver *r)
{
    char err[SINK_ERR_MAX];
    int i;

    while (writer_busy(r->writer))
        writer_wait(r->writer);
    if (r->failed)
        return -1;
    if (!r->dirty)
        return 0;
    for (i = 0; i < r->nsinks; i++) {
        if (sink_commit(&r->sinks[i], err) < 0) {
            commit_failed(r, err);
            return -1;
        }
    }
    r->dirty = 0;
    r->st.commits++;
    return 0;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    commit_and_ack(arg);
}

/* ----------------------------------------------------------- the table */

static int build_methods(struct receiver *r, char err[RPC_ERR_MAX])
{
    const ProtobufCServiceDescriptor *sd = &sonde__v1__d3_events__descriptor;
    unsigned i;
    size_t t;

    for (i = 0; i < sd->n_methods; i++) {
        const ProtobufCMethodDescriptor *md = &sd->methods[i];
        int tag = 0;

        if (strncmp(md->name, "Publish", 7) != 0)
            continue;
        for (t = 0; t < schema_event_count(); t++)
            if (schema_event_descriptor(schema_event_tag_at(t)) == md->input)
                tag = schema_event_tag_at(t);
        if (tag <= 0 || tag >= DEDUP_TAGS || r->nmethods == RECV_MAX_METHODS) {
            snprintf(err, RPC_ERR_MAX, "rpc %s: input is not an Event member", md->name);
            return -1;
        }
        snprintf(r->paths[r->nmethods], RECV_PATH_MAX, RECV_PATH_PREFIX "%s", md->name);
        r->tags[r->nmethods] = tag;
        r->methods[r->nmethods] = (struct rpc_method){
            .path = r->paths[r->nmethods],
            .cbs = {.on_open = on_open,
                    .on_message = on_message,
                    .on_half_close = on_half_close,
                    .on_close = on_close},
            .arg = r,
        };
        r->nmethods++;
    }
    return 0;
}

struct receiver *receiver_new(struct event_base *base, const struct receiver_cfg *cfg,
                              struct sink *sinks, int nsinks, struct dedup *dedup,
                              char err[RPC_ERR_MAX])
{
    struct receiver *r = calloc(1, sizeof(*r));
    struct timeval tv;

    if (r == NULL) {
        snprintf(err, RPC_ERR_MAX, "out of memory");
        return NULL;
    }
    r->base = base;
    r->cfg = *cfg;
    r->sinks = sinks;
    r->nsinks = nsinks;
    r->dedup = dedup;
    for (int i = 0; i < nsinks; i++)
        r->need_unpack |= sinks[i].kind == SINK_JSON;
    tv.tv_sec = cfg->commit_ms / 1000;
    tv.tv_usec = (suseconds_t)(cfg->commit_ms % 1000) * 1000;
    if (build_methods(r, err) < 0)
        goto fail;
    r->writer = writer_new(base, on_written, r);
    if (r->writer == NULL) {
        snprintf(err, RPC_ERR_MAX, "cannot start the output thread");
        goto fail;
    }
    r->timer = event_new(base, -1, EV_PERSIST, on_timer, r);
    if (r->timer == NULL || event_add(r->timer, &tv) < 0) {
        snprintf(err, RPC_ERR_MAX, "cannot arm the commit timer");
        goto fail;
    }
    return r;
fail:
    receiver_free(r);
    return NULL;
}

const struct rpc_method *receiver_methods(const struct receiver *r, int *n)
{
    *n = r->nmethods;
    return r->methods;
}

void receiver_shutdown(struct receiver *r)
{
    struct pub *p, *next;

    if (commit_now(r) == 0) {
        mark_synced(r);
        acknowledge(r);
    }
    for (p = r->pubs; p; p = next) {
        next = p->next;
        respond(p, SONDE__V1__PUBLISH_STATUS__PUBLISH_STATUS_STOP, "collector shutting down");
        rpc_call_finish(p->call, RPC_UNAVAILABLE, "collector shutting down");
    }
}

const struct receiver_stats *receiver_stats(const struct receiver *r)
{
    return &r->st;
}

void receiver_free(struct receiver *r)
{
    if (r == NULL)
        return;
    writer_free(r->writer);
    if (r->timer)
        event_free(r->timer);
    /* open calls belong to the server, which is freed first */
    free(r);
}
