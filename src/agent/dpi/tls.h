/*
 * tls.h - TLS handshakes: the Tls event, and the one part of the
 * ServerHello nDPI 4.2 does not keep (the protocol the server chose by
 * ALPN).
 *
 * nDPI dissects the handshake during detection (versions, SNI, JA3/JA3S,
 * cipher, certificate); a flow's Tls event is built from that result when
 * its detection ends, one per flow: a connection carries one handshake.
 */
#ifndef SONDE_TLS_H
#define SONDE_TLS_H

#include <stddef.h>

#include "app.h"
#include "events/emit.h"
#include "flow/flow.h"

#define TLS_RECORD_HEADER    5
#define TLS_HANDSHAKE_HEADER 4

/*
 * If data[0 .. len) starts with a TLS record holding a ServerHello with an
 * ALPN extension, copy the chosen protocol to out (cut to size) and return
 * 1; else 0. TLS 1.3 sends ALPN encrypted: there is nothing to find.
 */
int tls_server_alpn(const uint8_t *data, size_t len, char *out, size_t size);

/* The Tls event of flow f, whose detection ended with a (a->has_tls). */
void tls_emit(struct ev_sink *s, const struct flow *f, const struct flow_app *a, uint64_t now_us);

#endif
