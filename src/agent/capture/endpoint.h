/*
 * endpoint.h - the local devices seen on one interface: a MAC address and
 * the local IP addresses it sent from. A fixed-capacity open-addressing
 * table: when it is full, new devices are counted as dropped, never
 * silently ignored.
 */
#ifndef SONDE_ENDPOINT_H
#define SONDE_ENDPOINT_H

#include <stddef.h>
#include <stdint.h>

#define ENDPOINT_MAX_IPS  8
#define ENDPOINT_NAME_MAX 64

struct endpoint_ip {
    uint8_t ip_version;
    uint8_t addr[16];
};

struct endpoint {
    uint8_t mac[6];
    uint8_t used;
    uint8_t dirty; /* changed since the last report */
    uint8_t nip;
    struct endpoint_ip ip[ENDPOINT_MAX_IPS];
    uint64_t first_us, last_us;
    uint64_t packets, bytes;
    char hostname[ENDPOINT_NAME_MAX]; /* from DHCP, "" if none */
};

struct endpoint_table {
    struct endpoint *slot;
    size_t cap; /* power of two; at most cap * 3 / 4 used */
    size_t count;
    uint32_t *used;   /* slot indices in use, [0, count): report without a scan */
    uint64_t dropped; /* devices not tracked: table full */
};

int endpoint_table_init(struct endpoint_table *t, size_t max_endpoints);
void endpoint_table_destroy(struct endpoint_table *t);
/*
 * Note a frame from mac; addr (may be NULL) is a local address it used.
 * Returns the endpoint, and sets *is_new when the device or the address was
 * not known before (the caller reports it at once). NULL when full.
 */
struct endpoint *endpoint_note(struct endpoint_table *t, const uint8_t *mac, int ip_version,
                               const uint8_t *addr, uint32_t len, uint64_t ts_us, int *is_new);

/*
 * What DHCP says of a device: an address it was given (ip4, may be NULL)
 * and the name it gave (may be NULL); no traffic is counted. Returns the
 * endpoint, and sets *changed when it learned something. NULL when full.
 */
struct endpoint *endpoint_learn(struct endpoint_table *t, const uint8_t *mac, const uint8_t *ip4,
                                const char *hostname, uint64_t ts_us, int *changed);

#endif
