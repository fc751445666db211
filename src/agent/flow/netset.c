/*
 * netset.c - prefix set and address classes; see netset.h.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "netset.h"

void netset_init(struct netset *s)
{
    s->n = 0;
}

/*
 * An address as two host-order words, most significant bits first (IPv4 in
 * the top 32 bits of the first), so a prefix test is a mask and a compare.
 */
static void addr_words(int ip_version, const uint8_t *addr, uint64_t w[2])
{
    int i, n = ip_version == 4 ? 4 : 16;

    w[0] = w[1] = 0;
    for (i = 0; i < n; i++)
        w[i / 8] |= (uint64_t)addr[i] << (56 - 8 * (i % 8));
}

int netset_add_addr(struct netset *s, int ip_version, const uint8_t *addr, int bits)
{
    struct netset_entry *e;
    int max = ip_version == 4 ? 32 : 128;
    int i;

    if (s->n >= NETSET_MAX || bits < 0 || bits > max)
        return -1;
    e = &s->e[s->n++];
    memset(e, 0, sizeof(*e));
    e->ip_version = (uint8_t)ip_version;
    e->bits = (uint8_t)bits;
    memcpy(e->addr, addr, ip_version == 4 ? 4 : 16);
    /* Clear host bits so lookups compare whole bytes. */
    for (i = bits; i < max; i++)
        e->addr[i / 8] &= (uint8_t) ~(0x80 >> (i % 8));
    addr_words(ip_version, e->addr, e->net);
    for (i = 0; i < 2; i++) {
        int b = bits - 64 * i; /* prefix bits that fall in word i */

        e->mask[i] = b <= 0 ? 0 : b >= 64 ? ~0ULL : ~0ULL << (64 - b);
    }
    return 0;
}

int netset_add(struct netset *s, const char *cidr)
{
    char buf[64];
    uint8_t addr[16];
    const char *slash = strchr(cidr, '/');
    size_t alen = slash ? (size_t)(slash - cidr) : strlen(cidr);
    int v6 = memchr(cidr, ':', alen) != NULL;
    int bits = v6 ? 128 : 32;

    if (alen == 0 || alen >= sizeof(buf))
        return -1;
    memcpy(buf, cidr, alen);
    buf[alen] = '\0';
    if (inet_pton(v6 ? AF_INET6 : AF_INET, buf, addr) != 1)
        return -1;
    if (slash) {
        char *end;
        long b = strtol(slash + 1, &end, 10);

        if (end == slash + 1 || *end != '\0' || b < 0 || b > bits)
            return -1;
        bits = (int)b;
    }
    return netset_add_addr(s, v6 ? 6 : 4, addr, bits);
}

int netset_add_defaults(struct netset *s)
{
    static const char *defaults[] = {
        "10.0.0.0/8",     "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8",
        "169.254.0.0/16", "fc00::/7",      "fe80::/10",      "::1/128",
    };
    size_t i;

    for (i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
        if (netset_add(s, defaults[i]) < 0)
            return -1;
    return 0;
}

/* Once per new flow and side: a mask and a compare per prefix. */
int netset_contains(const struct netset *s, int ip_version, const uint8_t *addr)
{
    uint64_t w[2];
    size_t i;

    addr_words(ip_version, addr, w);
    for (i = 0; i < s->n; i++) {
        const struct netset_entry *e = &s->e[i];

        if (e->ip_version == ip_version && (w[0] & e->mask[0]) == e->net[0] &&
            (w[1] & e->mask[1]) == e->net[1])
            return 1;
    }
    return 0;
}

int addr_is_multicast(int ip_version, const uint8_t *addr)
{
    if (ip_version == 4)
        return (addr[0] & 0xf0) == 0xe0;
    return addr[0] == 0xff;
}

int addr_is_broadcast(int ip_version, const uint8_t *addr)
{
    return ip_version == 4 && addr[0] == 0xff && addr[1] == 0xff && addr[2] == 0xff &&
           addr[3] == 0xff;
}
