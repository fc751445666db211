/*
 * netset.h - a small set of IPv4/IPv6 prefixes: the "local" networks.
 * Looked up once per new flow, so a linear scan over a short array is the
 * simplest thing that is fast enough.
 */
#ifndef SONDE_NETSET_H
#define SONDE_NETSET_H

#include <stddef.h>
#include <stdint.h>

#define NETSET_MAX 256

struct netset_entry {
    uint8_t ip_version;
    uint8_t bits;
    uint8_t addr[16];
    uint64_t net[2], mask[2]; /* the prefix as two host-order words (netset_add_addr) */
};

struct netset {
    struct netset_entry e[NETSET_MAX];
    size_t n;
};

void netset_init(struct netset *s);
/* Parse "10.0.0.0/8", "fd00::/8" or a bare address (host prefix). */
int netset_add(struct netset *s, const char *cidr);
int netset_add_addr(struct netset *s, int ip_version, const uint8_t *addr, int bits);
/* The default local networks: RFC 1918, 100.64/10, 127/8, 169.254/16, ULA, link-local, ::1. */
int netset_add_defaults(struct netset *s);
int netset_contains(const struct netset *s, int ip_version, const uint8_t *addr);

/* Address classes used for other_type. */
int addr_is_multicast(int ip_version, const uint8_t *addr);
int addr_is_broadcast(int ip_version, const uint8_t *addr);

#endif
