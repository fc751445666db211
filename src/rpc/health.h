/*
 * health.h - grpc.health.v1.Health, for the agent and the collector alike.
 *
 * Check answers SERVING for "" (the whole server) and for each service
 * name the server registered, NOT_FOUND for any other; Watch sends the
 * status once and keeps the call open until the client ends it or the
 * status changes (rpc_health_set), as the protocol asks.
 */
#ifndef SONDE_RPC_HEALTH_H
#define SONDE_RPC_HEALTH_H

#include "rpc.h"

#define RPC_HEALTH_SERVICES 4
#define RPC_HEALTH_WATCHERS 64

struct rpc_health {
    const char *services[RPC_HEALTH_SERVICES]; /* besides "" */
    int nservices;
    int serving; /* 1 SERVING, 0 NOT_SERVING */
    struct rpc_call *watchers[RPC_HEALTH_WATCHERS];
};

/* The two methods, to append to a server's method table. */
#define RPC_HEALTH_METHODS 2
void rpc_health_methods(struct rpc_health *h, struct rpc_method out[RPC_HEALTH_METHODS]);
/* Change the status (NOT_SERVING while shutting down); watchers hear it. */
void rpc_health_set(struct rpc_health *h, int serving);

#endif
