/*
 * dpi.h - application detection with nDPI, one module per flow worker.
 *
 * A flow is inspected on its first packets only: up to a limit (default
 * 32, as the Netify agent), and beyond detection while nDPI says more
 * dissection is possible (certificates, JA3S), at most to the limit. Then
 * detection ends (guessing when nDPI found nothing), the result is copied
 * to a struct flow_app, and nDPI's per-flow state is freed at once: a
 * long-lived flow costs only its flow record.
 */
#ifndef SONDE_DPI_H
#define SONDE_DPI_H

#include <stdint.h>

#include "app.h"
#include "decode/decode.h"
#include "flow/flow.h"

#define DPI_PACKETS_DEFAULT 32
#define DPI_PACKETS_MAX     1000

struct dpi;

/* NULL on failure (out of memory). */
struct dpi *dpi_new(unsigned max_packets);
void dpi_free(struct dpi *d);

/*
 * Hand one packet of f to nDPI (p decoded, f accounted). Returns 1 when
 * detection ended with this packet: then *out points to the result, valid
 * until the next call on d (the flow event copies it at once), and f's
 * nDPI state is gone.
 */
int dpi_packet(struct dpi *d, struct flow *f, const struct pkt *p, struct flow_app **out);
/* End detection now (the flow is being purged): guess, and set *out as above. */
void dpi_conclude(struct dpi *d, struct flow *f, struct flow_app **out);

/* nDPI's description of risk number r (an ndpi_risk_enum value). */
const char *dpi_risk_name(int r);

#endif
