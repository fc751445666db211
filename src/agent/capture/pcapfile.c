/*
 * pcapfile.c - read the records of a classic pcap file through a sliding
 * memory map.
 *
 * libpcap reads a file with stdio: read(2) copies the file into the stdio
 * buffer, then fread copies each record again into libpcap's own buffer.
 * When a capture is replayed as fast as the agent can go, those two copies
 * and the stdio calls around them are a sixth of the capture thread's
 * time. A mapped file needs neither: each packet is handed to the decoder
 * where it lies in the page cache.
 *
 * libpcap still opens the file (it checks the header, maps the link type
 * and corrects the snapshot length) and compiles the filter; only the
 * record loop is here, and only for the common case: a classic pcap file
 * in this machine's byte order, version 2.4 or later, so none of libpcap's
 * fix-ups for swapped or ancient files apply. Anything else (pcapng, a
 * pipe, standard input) is left to libpcap. The checks on each record are
 * libpcap's, with its messages, so a damaged file stops at the same record
 * with the same error either way.
 *
 * Only a window of PCAPFILE_WINDOW bytes is mapped at a time, so the
 * mapped file does not count against the agent's memory (RSS) however
 * large it is. A file that grows while it is read is followed (its size
 * is looked at again at its end); one that another program cuts shorter
 * under the map would fault, as with any mapped file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pcapfile.h"

#define PCAPFILE_WINDOW     (1u << 20) /* bytes mapped at a time */
#define PCAPFILE_HDR_LEN    24         /* the file header */
#define PCAPFILE_REC_LEN    16         /* each record's header */
#define PCAPFILE_MAGIC_USEC 0xa1b2c3d4u
#define PCAPFILE_MAGIC_NSEC 0xa1b23c4du
#define PCAPFILE_MAX_CAPLEN 262144u /* libpcap's MAXIMUM_SNAPLEN: larger is a damaged file */

static uint32_t rd32h(const uint8_t *p) /* host byte order, any alignment */
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

int pcapfile_open(struct pcapfile *pf, const char *path, pcap_t *p, char *err, size_t errlen)
{
    uint8_t hdr[PCAPFILE_HDR_LEN];
    struct stat st;
    uint32_t magic;
    long page;

    memset(pf, 0, sizeof(*pf));
    pf->fd = -1;
    if (strcmp(path, "-") == 0)
        return 0;
    pf->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (pf->fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(pf->fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        pread(pf->fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
        goto libpcap;
    magic = rd32h(hdr);
    if (magic != PCAPFILE_MAGIC_USEC && magic != PCAPFILE_MAGIC_NSEC)
        goto libpcap; /* pcapng, other byte order, a libpcap variant */
    if (pcap_major_version(p) != 2 || pcap_minor_version(p) < 4)
        goto libpcap; /* libpcap swaps caplen and len for older versions */
    page = sysconf(_SC_PAGESIZE);
    pf->page = page > 0 ? (size_t)page : 4096;
    pf->size = (uint64_t)st.st_size;
    pf->off = PCAPFILE_HDR_LEN;
    pf->nsec = magic == PCAPFILE_MAGIC_NSEC;
    pf->snaplen = (uint32_t)pcap_snapshot(p);
#if defined(POSIX_FADV_SEQUENTIAL)
    (void)posix_fadvise(pf->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    return 1;

libpcap:
    close(pf->fd);
    pf->fd = -1;
    return 0;
}

static void unmap(struct pcapfile *pf)
{
    if (pf->map)
        munmap((void *)(uintptr_t)pf->map, pf->map_len);
    pf->map = NULL;
    pf->map_len = 0;
}

/*
 * Bytes [off, off + len) of the file, mapping a new window if they are not
 * in the current one; the caller has checked that they are in the file.
 */
static const uint8_t *window(struct pcapfile *pf, uint64_t off, size_t len)
{
    uint64_t start;
    size_t want;
    void *m;

    if (pf->map && off >= pf->map_off && off + len <= pf->map_off + pf->map_len)
        return pf->map + (off - pf->map_off);
    unmap(pf);
    start = off - off % pf->page;
    want = PCAPFILE_WINDOW;
    if (want < off + len - start) /* never: a record is at most 256 KiB */
        want = (size_t)(off + len - start);
    if (start + want > pf->size)
        want = (size_t)(pf->size - start);
    m = mmap(NULL, want, PROT_READ,
             MAP_PRIVATE
#if defined(MAP_POPULATE)
                 | MAP_POPULATE
#endif
             ,
             pf->fd, (off_t)start);
    if (m == MAP_FAILED) {
        snprintf(pf->err, sizeof(pf->err), "cannot map the file: %s", strerror(errno));
        return NULL;
    }
    pf->map = m;
    pf->map_off = start;
    pf->map_len = want;
    return pf->map + (off - start);
}

/* Are n more bytes in the file? Looks again at its size if not: it may be growing. */
static int have(struct pcapfile *pf, uint64_t n)
{
    struct stat st;

    if (pf->off + n <= pf->size)
        return 1;
    if (fstat(pf->fd, &st) == 0 && (uint64_t)st.st_size > pf->size)
        pf->size = (uint64_t)st.st_size;
    return pf->off + n <= pf->size;
}

int pcapfile_next(struct pcapfile *pf, struct pcap_pkthdr *h, const uint8_t **data)
{
    const uint8_t *r;
    uint32_t caplen, keep;

    if (!have(pf, PCAPFILE_REC_LEN)) {
        if (pf->off == pf->size)
            return 0;
        snprintf(pf->err, sizeof(pf->err),
                 "truncated dump file; tried to read %u header bytes, only got %llu",
                 PCAPFILE_REC_LEN, (unsigned long long)(pf->size - pf->off));
        return -1;
    }
    r = window(pf, pf->off, PCAPFILE_REC_LEN);
    if (r == NULL)
        return -1;
    /* signed, as libpcap reads them (struct pcap_timeval) */
    h->ts.tv_sec = (time_t)(int32_t)rd32h(r);
    h->ts.tv_usec = (suseconds_t)(int32_t)rd32h(r + 4);
    if (pf->nsec)
        h->ts.tv_usec /= 1000;
    caplen = rd32h(r + 8);
    h->len = rd32h(r + 12);
    if (caplen > PCAPFILE_MAX_CAPLEN) {
        if (caplen > pf->snaplen)
            snprintf(pf->err, sizeof(pf->err),
                     "invalid packet capture length %u, bigger than snaplen of %u", caplen,
                     pf->snaplen);
        else
            snprintf(pf->err, sizeof(pf->err),
                     "invalid packet capture length %u, bigger than maximum of %u", caplen,
                     PCAPFILE_MAX_CAPLEN);
        return -1;
    }
    if (!have(pf, (uint64_t)PCAPFILE_REC_LEN + caplen)) {
        snprintf(pf->err, sizeof(pf->err),
                 "truncated dump file; tried to read %u captured bytes, only got %llu", caplen,
                 (unsigned long long)(pf->size - pf->off - PCAPFILE_REC_LEN));
        return -1;
    }
    /* Like libpcap: a record longer than the file's snapshot length is cut to it. */
    keep = caplen > pf->snaplen ? pf->snaplen : caplen;
    r = window(pf, pf->off, PCAPFILE_REC_LEN + (size_t)keep);
    if (r == NULL)
        return -1;
    h->caplen = keep;
    *data = r + PCAPFILE_REC_LEN;
    pf->off += PCAPFILE_REC_LEN + (uint64_t)caplen;
    return 1;
}

void pcapfile_close(struct pcapfile *pf)
{
    unmap(pf);
    if (pf->fd >= 0)
        close(pf->fd);
    pf->fd = -1;
}
