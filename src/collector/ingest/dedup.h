/*
 * dedup.h - the highest sequence number stored, per (agent, event type).
 *
 * An agent resends every event it has not seen acknowledged, in seq order
 * per type, so "seq <= highest stored" is exactly "already stored". The
 * table is rebuilt from the outputs when the collector starts (sink_scan),
 * so a restart neither loses nor repeats anything.
 */
#ifndef SONDE_COLLECTOR_DEDUP_H
#define SONDE_COLLECTOR_DEDUP_H

#include <stddef.h>
#include <stdint.h>

#define DEDUP_AGENT_MAX  128   /* longest agent_id, NUL included */
#define DEDUP_TAGS       64    /* Event member numbers 0..63 (EV_TAG_MAX) */
#define DEDUP_MAX_AGENTS 65536 /* every table is bounded: ~33 MiB at most */

struct dedup_agent {
    char id[DEDUP_AGENT_MAX];
    uint64_t max[DEDUP_TAGS];
};

struct dedup {
    struct dedup_agent *v;
    size_t n, cap;
};

void dedup_init(struct dedup *d);
void dedup_free(struct dedup *d);
/* The agent's entry, created on first use; -1 when the id is too long,
 * there are DEDUP_MAX_AGENTS already, or memory runs out. Indexes stay
 * valid (entries are never removed). */
long dedup_agent(struct dedup *d, const char *id);
/* Record seq as stored for (agent index, tag); only ever raises. */
void dedup_store(struct dedup *d, long agent, int tag, uint64_t seq);
uint64_t dedup_max(const struct dedup *d, long agent, int tag);

#endif
