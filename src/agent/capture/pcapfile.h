/*
 * pcapfile.h - the records of a classic pcap file, read through a small
 * sliding memory map instead of stdio (see pcapfile.c for why).
 */
#ifndef SONDE_PCAPFILE_H
#define SONDE_PCAPFILE_H

#include <stddef.h>
#include <stdint.h>

#include <pcap/pcap.h>

#define PCAPFILE_ERR_MAX 256

struct pcapfile {
    int fd;
    uint64_t size;      /* file size when last looked at */
    uint64_t off;       /* offset of the next record */
    const uint8_t *map; /* the window: file bytes [map_off, map_off + map_len) */
    uint64_t map_off;
    size_t map_len;
    size_t page;
    int nsec;         /* time stamps in nanoseconds: scale down to microseconds */
    uint32_t snaplen; /* the file's snapshot length, as libpcap corrected it */
    char err[PCAPFILE_ERR_MAX];
};

/*
 * Take over reading the records of the file libpcap has opened as p, if it
 * is a classic pcap file in this machine's byte order (version 2.4 or
 * later). Returns 1 if it does, 0 if libpcap should go on reading it
 * (pcapng, swapped, old versions, not a regular file), -1 on an error
 * (message in err).
 */
int pcapfile_open(struct pcapfile *pf, const char *path, pcap_t *p, char *err, size_t errlen);
/* The next record: 1 and h/data set, 0 at the end, -1 on a damaged file (pf->err). */
int pcapfile_next(struct pcapfile *pf, struct pcap_pkthdr *h, const uint8_t **data);
void pcapfile_close(struct pcapfile *pf);

#endif
