/*
 * puller.h - the collector's pull mode (--pull): subscribe to agents.
 */
#ifndef SONDE_COLLECTOR_PULLER_H
#define SONDE_COLLECTOR_PULLER_H

#include "receiver.h"
#include "rpc.h"

#define PULLER_URL_MAX 300

struct puller_cfg {
    struct rpc_tls tls;       /* cleartext is taken from the URL's scheme */
    const char *const *types; /* event type names to subscribe to; none = all */
    size_t ntypes;
};

struct puller_stats {
    int connected;
    uint64_t received, duplicates, rejected, reconnects;
};

struct puller;

/* Start dialling url (grpcs://agent:port); events go to r. */
struct puller *puller_new(struct event_base *base, struct receiver *r, const char *url,
                          const struct puller_cfg *cfg, char err[RPC_ERR_MAX]);
const struct puller_stats *puller_stats(const struct puller *pl);
void puller_free(struct puller *pl);

#endif
