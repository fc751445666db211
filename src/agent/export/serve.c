/*
 * serve.c - the pull side: Subscribe, GetInfo and health on --listen.
 *
 * Each subscriber has its own queue of at most sub_queue_events events.
 * When it is full the subscriber misses events (counted, and visible to it
 * as jumps in seq) - the agent and the other subscribers go on at full
 * speed. Filters look at the event's fields by name, through the protobuf
 * descriptors, so they work for every event type without code per type.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "event.h"
#include "pbfile.h"
#include "rpcout_int.h"
#include "sonde/v1/d3events.pb-c.h"

#define SERVE_METHODS     (2 + RPC_HEALTH_METHODS)
#define SERVE_APP_MAX     64
#define SERVE_FIELD_DEPTH 3

struct sub {
    struct serve *sv;
    struct rpc_call *call;
    uint64_t types; /* bit per tag; 0 = all */
    int has_addr, family;
    uint8_t addr[16];
    unsigned prefix;
    uint32_t port, protocol, sample;
    char app[SERVE_APP_MAX];
    struct pq q;
    uint64_t dropped;
    int closing; /* exit: finish once the queue is sent */
    struct sub *prev, *next;
};

struct serve {
    struct rpcout *o;
    struct rpc_server *srv;
    struct rpc_health health;
    struct rpc_method methods[SERVE_METHODS];
    struct sub *subs;
    uint32_t nsubs;
    uint64_t dropped; /* of subscribers gone, and of those here */
    struct sbuf buf;
};

/* ------------------------------------------------------------ filters */

struct match {
    const struct sub *s;
    int addr, port, protocol, app; /* which conditions found a matching field */
    char proto_name[SERVE_APP_MAX], app_name[SERVE_APP_MAX];
};

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int addr_in(const struct sub *s, const char *text)
{
    uint8_t a[16];
    unsigned i, bits = s->prefix;

    if (text == NULL || inet_pton(s->family, text, a) != 1)
        return 0;
    for (i = 0; bits >= 8; i++, bits -= 8)
        if (a[i] != s->addr[i])
            return 0;
    return bits == 0 || ((a[i] ^ s->addr[i]) & (uint8_t)(0xff << (8 - bits))) == 0;
}

static void walk(struct match *mt, const ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    unsigned i;

    for (i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *p = (const char *)m + f->offset;

        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            /* lists of addresses: endpoint.ip, interface.addr */
            size_t n = *(const size_t *)((const char *)m + f->quantifier_offset), k;
            const char *const *v = *(const char *const *const *)p;

            if (f->type == PROTOBUF_C_TYPE_STRING && mt->s->has_addr && v &&
                (ends_with(f->name, "ip") || ends_with(f->name, "addr")))
                for (k = 0; k < n; k++)
                    mt->addr |= addr_in(mt->s, v[k]);
            continue;
        }
        if (f->type == PROTOBUF_C_TYPE_STRING) {
            const char *v = *(const char *const *)p;

            if (mt->s->has_addr &&
                (ends_with(f->name, "_ip") || !strcmp(f->name, "src") || !strcmp(f->name, "dst")))
                mt->addr |= addr_in(mt->s, v);
            if (!strcmp(f->name, "detected_protocol_name") && v)
                snprintf(mt->proto_name, sizeof(mt->proto_name), "%s", v);
            if (!strcmp(f->name, "detected_application_name") && v)
                snprintf(mt->app_name, sizeof(mt->app_name), "%s", v);
        } else if (f->type == PROTOBUF_C_TYPE_UINT32) {
            uint32_t v = *(const uint32_t *)p;

            if (mt->s->port && ends_with(f->name, "_port") && v == mt->s->port)
                mt->port = 1;
            if (mt->s->protocol &&
                (!strcmp(f->name, "ip_protocol") || !strcmp(f->name, "protocol")) &&
                v == mt->s->protocol)
                mt->protocol = 1;
        } else if (f->type == PROTOBUF_C_TYPE_MESSAGE && depth < SERVE_FIELD_DEPTH) {
            const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)p;

            if (sub)
                walk(mt, sub, depth + 1);
        }
    }
}

static int app_matches(struct match *mt)
{
    char full[2 * SERVE_APP_MAX + 1];

    snprintf(full, sizeof(full), "%s.%s", mt->proto_name, mt->app_name);
    return (mt->proto_name[0] && !strcasecmp(mt->s->app, mt->proto_name)) ||
           (mt->app_name[0] && !strcasecmp(mt->s->app, mt->app_name)) ||
           !strcasecmp(mt->s->app, full);
}

static int needs_fields(const struct sub *s)
{
    return s->has_addr || s->port || s->protocol || s->app[0];
}

static int matches(const struct sub *s, const struct gmsg *g, const ProtobufCMessage *m)
{
    struct match mt;

    if (s->types && !(s->types & (1ull << g->tag)))
        return 0;
    if (s->sample > 1 && g->seq % s->sample != 0)
        return 0;
    if (!needs_fields(s))
        return 1;
    if (m == NULL)
        return 0;
    memset(&mt, 0, sizeof(mt));
    mt.s = s;
    walk(&mt, m, 0);
    return (!s->has_addr || mt.addr) && (!s->port || mt.port) && (!s->protocol || mt.protocol) &&
           (!s->app[0] || app_matches(&mt));
}

/* SubscribeRequest -> s; an rpc_code and a message in why when invalid. */
static int parse_request(struct sub *s, const Sonde__V1__SubscribeRequest *r, char *why, size_t n)
{
    size_t i;

    for (i = 0; i < r->n_types; i++) {
        int tag = schema_event_tag_by_name(r->types[i]);

        if (tag <= 0 || tag >= RPCOUT_TAGS) {
            snprintf(why, n, "unknown event type '%s'", r->types[i]);
            return RPC_INVALID_ARGUMENT;
        }
        s->types |= 1ull << tag;
    }
    if (r->address && r->address[0]) {
        char a[INET6_ADDRSTRLEN + 8], *slash;
        unsigned max;

        snprintf(a, sizeof(a), "%s", r->address);
        slash = strchr(a, '/');
        if (slash)
            *slash = '\0';
        s->family = strchr(a, ':') ? AF_INET6 : AF_INET;
        max = s->family == AF_INET6 ? 128 : 32;
        s->prefix = slash ? (unsigned)strtoul(slash + 1, NULL, 10) : max;
        if (inet_pton(s->family, a, s->addr) != 1 || s->prefix > max ||
            (slash && strspn(slash + 1, "0123456789") != strlen(slash + 1))) {
            snprintf(why, n, "address '%s' is not an address or CIDR prefix", r->address);
            return RPC_INVALID_ARGUMENT;
        }
        s->has_addr = 1;
    }
    if (r->port > 65535) {
        snprintf(why, n, "port %u out of range", r->port);
        return RPC_INVALID_ARGUMENT;
    }
    if (r->protocol > 255) {
        snprintf(why, n, "protocol %u out of range", r->protocol);
        return RPC_INVALID_ARGUMENT;
    }
    if (r->application && strlen(r->application) >= SERVE_APP_MAX) {
        snprintf(why, n, "application name over %d bytes", SERVE_APP_MAX - 1);
        return RPC_INVALID_ARGUMENT;
    }
    s->port = r->port;
    s->protocol = r->protocol;
    s->sample = r->sample;
    snprintf(s->app, sizeof(s->app), "%s", r->application ? r->application : "");
    return RPC_OK;
}

/* --------------------------------------------------------- subscribers */

static void sub_pump(struct sub *s)
{
    struct serve *sv = s->sv;

    while (s->q.head < s->q.tail && rpc_call_queued(s->call) < RPC_SEND_HIGH_MARK) {
        struct gmsg *g = s->q.v[s->q.head++];

        sbuf_reset(&sv->buf);
        pbfile_event(&sv->buf, g->tag, g->data, g->len);
        if (!sbuf_ok(&sv->buf) ||
            rpc_call_send(s->call, (const uint8_t *)sv->buf.data, sv->buf.len) < 0) {
            s->dropped++; /* not delivered: counted like a full queue */
            sv->dropped++;
        }
        gmsg_unref(g);
    }
    if (s->closing && s->q.head == s->q.tail) /* everything handed over: now end it */
        rpc_call_finish(s->call, RPC_OK, NULL);
}

static void sub_writable(struct rpc_call *c, void *arg)
{
    (void)arg;
    sub_pump(rpc_call_data(c));
}

static int sub_message(struct rpc_call *c, const uint8_t *msg, size_t len, void *arg)
{
    struct serve *sv = arg;
    struct sub *s;
    Sonde__V1__SubscribeRequest *r;
    char why[RPC_STATUS_MAX];
    int rc;

    if (rpc_call_data(c))
        return RPC_INVALID_ARGUMENT; /* one request per call */
    r = sonde__v1__subscribe_request__unpack(NULL, len, msg);
    if (r == NULL) {
        rpc_call_finish(c, RPC_INVALID_ARGUMENT, "not a sonde.v1.SubscribeRequest");
        return 0;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        sonde__v1__subscribe_request__free_unpacked(r, NULL);
        return RPC_RESOURCE_EXHAUSTED;
    }
    rc = parse_request(s, r, why, sizeof(why));
    sonde__v1__subscribe_request__free_unpacked(r, NULL);
    if (rc != RPC_OK) {
        free(s);
        rpc_call_finish(c, rc, why);
        return 0;
    }
    s->sv = sv;
    s->call = c;
    s->next = sv->subs;
    if (sv->subs)
        sv->subs->prev = s;
    sv->subs = s;
    sv->nsubs++;
    rpc_call_set_data(c, s);
    log_info("subscriber %s: subscribed", rpc_call_peer(c));
    return 0;
}

static void sub_close(struct rpc_call *c, int code, const char *message, void *arg)
{
    struct serve *sv = arg;
    struct sub *s = rpc_call_data(c);

    if (s == NULL)
        return;
    s->dropped += s->q.tail - s->q.head; /* queued, never sent */
    sv->dropped += s->q.tail - s->q.head;
    log_info("subscriber %s: gone (%s %s), %llu events missed", rpc_call_peer(c),
             rpc_code_name(code), message, (unsigned long long)s->dropped);
    if (s->prev)
        s->prev->next = s->next;
    else
        sv->subs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    sv->nsubs--;
    pq_free(&s->q);
    free(s);
}

/*
 * Subscribers queue a copy of their own, made once for all of them: the
 * event as handed over lives in a block of others (rpcout_int.h), and a
 * slow subscriber keeping it would keep the whole block alive, up to
 * RPCOUT_BLOCK_BYTES per queued event instead of the event's size.
 */
void serve_event(struct serve *sv, struct gmsg *g)
{
    ProtobufCMessage *m = NULL;
    struct gmsg *own = g->blk ? NULL : g;
    int unpacked = 0, full;
    struct sub *s;

    for (s = sv->subs; s; s = s->next) {
        if (needs_fields(s) && !unpacked) {
            const ProtobufCMessageDescriptor *d = schema_event_descriptor(g->tag);

            m = d ? protobuf_c_message_unpack(d, NULL, g->len, g->data) : NULL;
            unpacked = 1;
        }
        if (!matches(s, g, m))
            continue;
        full = s->q.tail - s->q.head >= sv->o->cfg.sub_queue_events;
        if (!full && own == NULL)
            own = gmsg_new(g->tag, g->seq, g->data, g->len);
        if (full || own == NULL || pq_push(&s->q, own) < 0) {
            s->dropped++;
            sv->dropped++;
            continue;
        }
        sub_pump(s);
    }
    if (own != g)
        gmsg_unref(own); /* the queues hold theirs */
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
}

/* --------------------------------------------------------------- GetInfo */

static int info_message(struct rpc_call *c, const uint8_t *msg, size_t len, void *arg)
{
    struct serve *sv = arg;
    Sonde__V1__GetInfoRequest *r = sonde__v1__get_info_request__unpack(NULL, len, msg);

    if (r == NULL) {
        rpc_call_finish(c, RPC_INVALID_ARGUMENT, "not a sonde.v1.GetInfoRequest");
        return 0;
    }
    sonde__v1__get_info_request__free_unpacked(r, NULL);
    if (sv->o->hello == NULL) {
        rpc_call_finish(c, RPC_UNAVAILABLE, "the agent is starting");
        return 0;
    }
    rpc_call_send(c, sv->o->hello->data, sv->o->hello->len);
    rpc_call_finish(c, RPC_OK, NULL);
    return 0;
}

/* ------------------------------------------------------------ lifecycle */

struct serve *serve_new(struct rpcout *o, char err[RPC_ERR_MAX])
{
    struct serve *sv = calloc(1, sizeof(*sv));
    struct rpc_server_cfg sc = {.tls = o->cfg.tls, .max_message = 64 * 1024};

    if (sv == NULL) {
        snprintf(err, RPC_ERR_MAX, "out of memory");
        return NULL;
    }
    sv->o = o;
    sbuf_init(&sv->buf);
    sv->methods[0] = (struct rpc_method){
        .path = "/sonde.v1.D3Events/Subscribe",
        .cbs = {.on_message = sub_message, .on_writable = sub_writable, .on_close = sub_close},
        .arg = sv,
    };
    sv->methods[1] = (struct rpc_method){
        .path = "/sonde.v1.D3Events/GetInfo",
        .cbs = {.on_message = info_message},
        .arg = sv,
    };
    sv->health.services[sv->health.nservices++] = "sonde.v1.D3Events";
    sv->health.serving = 1;
    rpc_health_methods(&sv->health, sv->methods + 2);
    sv->srv = rpc_server_new(o->base, o->cfg.listen, &sc, sv->methods, SERVE_METHODS, err);
    if (sv->srv == NULL) {
        serve_free(sv);
        return NULL;
    }
    log_info("serving subscribers on %s (port %d)", o->cfg.listen, rpc_server_port(sv->srv));
    return sv;
}

void serve_stats(const struct serve *sv, uint32_t *subscribers, uint64_t *dropped)
{
    *subscribers = sv->nsubs;
    *dropped = sv->dropped;
}

/* Exit: every subscriber gets what is queued and an OK status. */
void serve_shutdown(struct serve *sv)
{
    struct sub *s;

    rpc_health_set(&sv->health, 0);
    for (s = sv->subs; s; s = s->next) {
        s->closing = 1; /* the call ends once its queue is out (sub_pump) */
        sub_pump(s);
    }
}

void serve_free(struct serve *sv)
{
    if (sv == NULL)
        return;
    rpc_server_free(sv->srv); /* ends every call: sub_close frees the subscribers */
    sbuf_free(&sv->buf);
    free(sv);
}
