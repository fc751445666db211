/*
 * pcapread.c - the floor of `make bench`: a bare libpcap read loop.
 *
 * Opens FILE with pcap_open_offline() and runs pcap_dispatch() over it with a
 * callback that only touches the header (sums caplen), so the time measured is
 * what any libpcap-based reader pays before doing any work of its own.
 * Prints "PACKETS SECONDS CAPLEN_SUM" on stdout (seconds: CLOCK_MONOTONIC
 * around the loop, open included).
 *
 *   cc -O2 bench/pcapread.c -lpcap -o bench/out/pcapread
 */
#include <pcap/pcap.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

struct count {
    uint64_t packets;
    uint64_t caplen;
};

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *data)
{
    struct count *c = (struct count *)user;

    (void)data;
    c->packets++;
    c->caplen += h->caplen;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    char err[PCAP_ERRBUF_SIZE];
    struct count c = {0, 0};
    pcap_t *p;
    double t0;
    int n;

    if (argc != 2) {
        fprintf(stderr, "usage: pcapread FILE\n");
        return 2;
    }
    t0 = now();
    p = pcap_open_offline(argv[1], err);
    if (p == NULL) {
        fprintf(stderr, "pcapread: %s\n", err);
        return 1;
    }
    while ((n = pcap_dispatch(p, -1, on_packet, (u_char *)&c)) > 0)
        ;
    if (n == PCAP_ERROR) {
        fprintf(stderr, "pcapread: %s\n", pcap_geterr(p));
        pcap_close(p);
        return 1;
    }
    pcap_close(p);
    printf("%llu %.6f %llu\n", (unsigned long long)c.packets, now() - t0,
           (unsigned long long)c.caplen);
    return 0;
}
