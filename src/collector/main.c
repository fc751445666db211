/*
 * main.c - sonde-collector: receives agents' event streams (the push side
 * of D3Events) and writes what it accepts to its outputs.
 *
 * One libevent loop: the gRPC server, the commit timer and the signals all
 * run on it; only the writes to the outputs and their fdatasync have a
 * thread of their own (ingest/writer.c). SIGINT/SIGTERM: commit and
 * acknowledge, tell each publisher to stop (it keeps what was not
 * acknowledged and resends it to the next collector it reaches), GOAWAY,
 * then exit.
 *
 * Exit codes: 0 success, 1 runtime error, 2 usage error.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "common/log.h"
#include "event.h"
#include "health.h"
#include "ingest/puller.h"
#include "ingest/receiver.h"
#include "options.h"
#include "rpc.h"

#define SHUTDOWN_GRACE_MS 2000
#define EXIT_POLL_MS      50
#define MAX_METHODS       (64 + RPC_HEALTH_METHODS)
#define MAX_PULL          64
#define MAX_TYPES         64

struct collector {
    struct collector_settings *cfg;
    struct event_base *base;
    struct sink sinks[RECV_MAX_SINKS];
    int nsinks;
    struct dedup dedup;
    struct receiver *recv;
    struct rpc_health health;
    struct rpc_method methods[MAX_METHODS];
    struct rpc_server *srv;
    struct puller *pull[MAX_PULL];
    int npull;
    char *types[MAX_TYPES]; /* --accept-types, split */
    size_t ntypes;
    struct event *sig_int, *sig_term, *exit_timer;
    int stopping;
    uint64_t exit_at; /* monotonic ms */
};

/* "flow,dns" -> a bit per Event tag; -1 naming the first unknown type. */
static int parse_types(struct collector *c, const char *list, uint64_t *bits,
                       char err[CONFIG_ERR_MAX])
{
    char *copy = strdup(list), *save = NULL, *t;

    if (copy == NULL)
        return -1;
    *bits = 0;
    for (t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int tag = schema_event_tag_by_name(t);

        if (tag <= 0 || tag >= 64 || c->ntypes == MAX_TYPES) {
            snprintf(err, CONFIG_ERR_MAX, "--accept-types: unknown event type '%.64s'", t);
            free(copy);
            return -1;
        }
        *bits |= 1ull << tag;
        c->types[c->ntypes++] = (char *)schema_type_name(schema_event_descriptor(tag));
    }
    free(copy);
    return 0;
}

/* err is CONFIG_ERR_MAX bytes, the same as RPC_ERR_MAX (rpc_check_*). */
_Static_assert(CONFIG_ERR_MAX == RPC_ERR_MAX, "one error buffer size for both");

static int check_settings(struct collector_settings *c, char err[CONFIG_ERR_MAX])
{
    if (!c->listen && !(c->listen = strdup(COLLECTOR_LISTEN)))
        return -1;
    if (rpc_check_listen(c->listen, c->cleartext, c->cleartext_anywhere, err) < 0)
        return -1;
    if (c->pull.n > MAX_PULL) {
        snprintf(err, CONFIG_ERR_MAX, "at most %d --pull agents", MAX_PULL);
        return -1;
    }
    for (size_t i = 0; i < c->pull.n; i++) {
        int tls;

        if (rpc_check_url("--pull", c->pull.v[i], c->cleartext_anywhere, &tls, err) < 0)
            return -1;
        if (tls && (!c->tls_cert || !c->tls_key || !c->tls_ca)) {
            snprintf(err, CONFIG_ERR_MAX,
                     "--pull %.100s: TLS needs --tls-cert, --tls-key and --tls-ca", c->pull.v[i]);
            return -1;
        }
    }
    if (!c->cleartext && (!c->tls_cert || !c->tls_key || !c->tls_ca)) {
        snprintf(err, CONFIG_ERR_MAX,
                 "TLS needs --tls-cert, --tls-key and --tls-ca (see docs/certs.md), or "
                 "--insecure-cleartext on loopback");
        return -1;
    }
    return 0;
}

/* After a signal: exit once every connection is gone, or when the grace is over. */
static void on_exit_timer(evutil_socket_t fd, short what, void *arg)
{
    struct collector *c = arg;

    (void)fd;
    (void)what;
    if (rpc_server_connections(c->srv) == 0 || rpc_now_ms() >= c->exit_at)
        event_base_loopexit(c->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct collector *c = arg;
    struct timeval tv = {0, EXIT_POLL_MS * 1000};

    (void)what;
    if (c->stopping++) {
        event_base_loopexit(c->base, NULL); /* a second signal: now */
        return;
    }
    log_info("signal %d: shutting down", (int)sig);
    rpc_health_set(&c->health, 0);
    receiver_shutdown(c->recv);
    rpc_server_shutdown(c->srv, SHUTDOWN_GRACE_MS);
    c->exit_at = rpc_now_ms() + SHUTDOWN_GRACE_MS + EXIT_POLL_MS;
    c->exit_timer = event_new(c->base, -1, EV_PERSIST, on_exit_timer, c);
    if (c->exit_timer == NULL || event_add(c->exit_timer, &tv) < 0)
        event_base_loopexit(c->base, NULL);
}

static int open_sinks(struct collector *c, char err[CONFIG_ERR_MAX])
{
    struct collector_settings *cfg = c->cfg;
    size_t i;

    if (cfg->outputs.n == 0 && config_list_add(&cfg->outputs, "json:-") < 0)
        return -1;
    if (cfg->outputs.n > RECV_MAX_SINKS) {
        snprintf(err, CONFIG_ERR_MAX, "at most %d outputs", RECV_MAX_SINKS);
        return -1;
    }
    for (i = 0; i < cfg->outputs.n; i++) {
        long n;

        if (sink_open(&c->sinks[c->nsinks], cfg->outputs.v[i], !cfg->no_fsync, err) < 0)
            return -1;
        c->nsinks++;
        n = sink_scan(&c->sinks[i], &c->dedup, err);
        if (n < 0)
            return -1;
        if (n > 0)
            log_info("%s: %ld events already there", c->sinks[i].path, n);
    }
    return 0;
}

static int setup(struct collector *c, char err[RPC_ERR_MAX])
{
    struct collector_settings *cfg = c->cfg;
    struct receiver_cfg rc = {
        .max_string = (size_t)cfg->max_string,
        .commit_ms = (uint32_t)cfg->commit_ms,
        .trust_agent_id = cfg->trust_agent_id,
    };
    struct rpc_server_cfg sc = {
        .tls = {cfg->tls_cert, cfg->tls_key, cfg->tls_ca, cfg->cleartext},
        .max_message = (size_t)cfg->max_message,
    };
    const struct rpc_method *pm;
    int n, np;

    if (cfg->accept_types && parse_types(c, cfg->accept_types, &rc.accept_types, err) < 0)
        return -1;
    c->recv = receiver_new(c->base, &rc, c->sinks, c->nsinks, &c->dedup, err);
    if (c->recv == NULL)
        return -1;
    pm = receiver_methods(c->recv, &np);
    memcpy(c->methods, pm, sizeof(*pm) * (size_t)np);
    c->health.services[c->health.nservices++] = "sonde.v1.D3Events";
    c->health.serving = 1;
    rpc_health_methods(&c->health, c->methods + np);
    n = np + RPC_HEALTH_METHODS;
    c->srv = rpc_server_new(c->base, cfg->listen, &sc, c->methods, n, err);
    if (c->srv == NULL)
        return -1;
    for (size_t i = 0; i < cfg->pull.n; i++) {
        struct puller_cfg pc = {
            .tls = {cfg->tls_cert, cfg->tls_key, cfg->tls_ca, 0},
            .types = (const char *const *)c->types,
            .ntypes = c->ntypes,
        };

        c->pull[c->npull] = puller_new(c->base, c->recv, cfg->pull.v[i], &pc, err);
        if (c->pull[c->npull] == NULL)
            return -1;
        c->npull++;
    }
    c->sig_int = evsignal_new(c->base, SIGINT, on_signal, c);
    c->sig_term = evsignal_new(c->base, SIGTERM, on_signal, c);
    if (!c->sig_int || !c->sig_term || evsignal_add(c->sig_int, NULL) < 0 ||
        evsignal_add(c->sig_term, NULL) < 0) {
        snprintf(err, RPC_ERR_MAX, "cannot install signal handlers");
        return -1;
    }
    return 0;
}

static int run(struct collector_settings *cfg)
{
    struct collector c;
    char err[RPC_ERR_MAX];
    int rc = 1, i;

    memset(&c, 0, sizeof(c));
    c.cfg = cfg;
    dedup_init(&c.dedup);
    signal(SIGPIPE, SIG_IGN);
    /* the output thread (writer.c) wakes the loop */
    if (evthread_use_pthreads() == 0)
        c.base = event_base_new();
    if (c.base == NULL) {
        log_error("cannot create the event loop");
        return 1;
    }
    if (open_sinks(&c, err) < 0 || setup(&c, err) < 0) {
        log_error("%s", err);
        goto out;
    }
    /* tests and scripts wait for this line to know the port */
    if (!cfg->quiet)
        fprintf(stderr, "sonde-collector: listening on %s (port %d, %s)\n", cfg->listen,
                rpc_server_port(c.srv), cfg->cleartext ? "cleartext" : "TLS");
    event_base_dispatch(c.base);
    rc = 0;
    {
        const struct receiver_stats *st = receiver_stats(c.recv);

        log_info("%llu events accepted, %llu duplicates dropped, %llu refused, %llu streams",
                 (unsigned long long)st->accepted, (unsigned long long)st->duplicates,
                 (unsigned long long)st->rejected, (unsigned long long)st->streams);
    }
out:
    for (i = 0; i < c.npull; i++)
        puller_free(c.pull[i]);
    rpc_server_free(c.srv);
    receiver_free(c.recv);
    for (i = 0; i < c.nsinks; i++) {
        char serr[SINK_ERR_MAX];

        if (sink_commit(&c.sinks[i], serr) < 0) {
            log_error("%s", serr);
            rc = 1;
        }
        sink_close(&c.sinks[i]);
    }
    dedup_free(&c.dedup);
    if (c.sig_int)
        event_free(c.sig_int);
    if (c.sig_term)
        event_free(c.sig_term);
    if (c.exit_timer)
        event_free(c.exit_timer);
    event_base_free(c.base);
    return rc;
}

int main(int argc, char **argv)
{
    struct collector_settings cfg;
    char err[CONFIG_ERR_MAX];
    int rc;

    log_set_prog("sonde-collector");
    collector_settings_defaults(&cfg);
    if (config_parse(collector_options, &cfg, argc, argv, err, sizeof(err)) < 0 ||
        (!cfg.help && !cfg.version && check_settings(&cfg, err) < 0)) {
        fprintf(stderr, "sonde-collector: %s\n(try --help)\n", err);
        config_free(collector_options, &cfg);
        return 2;
    }
    if (cfg.help) {
        config_usage(stdout, COLLECTOR_SYNOPSIS, collector_options);
        printf("\nSee docs/collector.md and docs/certs.md.\n");
        config_free(collector_options, &cfg);
        return 0;
    }
    if (cfg.version) {
        printf("sonde-collector %s\n", SONDE_VERSION);
        config_free(collector_options, &cfg);
        return 0;
    }
    log_set_level(cfg.quiet ? LOG_ERROR : cfg.verbose ? LOG_INFO : LOG_WARN);
    rc = run(&cfg);
    config_free(collector_options, &cfg);
    return rc;
}
