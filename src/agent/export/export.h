/*
 * export.h - the exporter thread: drains the event queue into the outputs.
 *
 * Outputs are given as TYPE:PATH, several at once:
 *   json:PATH   JSON lines (json:- for stdout)
 *   pb:PATH     length-delimited sonde.v1.Event messages (pb:- for stdout)
 *   null        discard (benchmarks: events are still built and encoded)
 */
#ifndef SONDE_EXPORT_H
#define SONDE_EXPORT_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "common/queue.h"
#include "common/sbuf.h"

struct ev_sink;
struct rpcout;

#define EXPORT_MAX_OUTPUTS 8
#define EXPORT_ERR_MAX     256

enum export_kind { EXPORT_JSON = 1, EXPORT_PB, EXPORT_NULL };

struct export_output {
    int kind;
    char *path;
    FILE *f;
    int close_f; /* not stdout */
    uint64_t written, errors;
};

struct exporter {
    struct evq *q;
    struct export_output out[EXPORT_MAX_OUTPUTS];
    int nout;
    int need_json;
    pthread_t thread;
    int started;
    struct sbuf buf;
    struct sbuf pack; /* flow events built here */
    const struct ev_sink *sink;
    uint64_t encode_errors;
    uint64_t json_errors;
    unsigned idle_rounds;
    uint64_t seq;       /* last sequence number given */
    struct rpcout *rpc; /* gRPC push and pull, or NULL */
};

/* Check one -o spec without opening anything (usage errors first). */
int export_check(const char *spec, char *err);
/* Parse one -o spec and open it. */
int export_add(struct exporter *x, const char *spec, char *err);
int export_start(struct exporter *x, struct evq *q, const struct ev_sink *sink);
/* Waits until the queue is closed and drained, then flushes and closes. */
int export_join(struct exporter *x);

#endif
