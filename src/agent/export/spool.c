/*
 * spool.c - segment files of events waiting for a collector; see spool.h.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"

#define SEG_PREFIX "seg-"
#define SEG_SUFFIX ".spool"

static int is_segment(const char *name)
{
    size_t n = strlen(name);

    return n == strlen(SEG_PREFIX) + 20 + strlen(SEG_SUFFIX) &&
           strncmp(name, SEG_PREFIX, strlen(SEG_PREFIX)) == 0 &&
           strcmp(name + n - strlen(SEG_SUFFIX), SEG_SUFFIX) == 0;
}

/*
 * Remove a segment that has been read. If that fails (a read-only
 * directory), the spool stops reading rather than read it again forever.
 */
static int gone(struct spool *s, const char *name)
{
    if (unlink(name) == 0 || errno == ENOENT)
        return 1;
    fprintf(stderr,
            "sonde-agent: error: spool: cannot remove %s (%s): not reading the spool "
            "any more\n",
            name, strerror(errno));
    s->stuck = 1;
    return 0;
}

/* The oldest segment's name into out (not the one being written); 0 if none. */
static int oldest_segment(struct spool *s, char *out, size_t cap)
{
    DIR *d = opendir(s->dir);
    struct dirent *e;
    char best[64] = "";

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char path[SPOOL_PATH_MAX];

        if (!is_segment(e->d_name))
            continue;
        snprintf(path, sizeof(path), "%." SPOOL_DIR_MAX_S "s/%.40s", s->dir, e->d_name);
        if (s->w && strcmp(path, s->wname) == 0)
            continue;
        if (best[0] == '\0' || strcmp(e->d_name, best) < 0)
            snprintf(best, sizeof(best), "%.40s", e->d_name);
    }
    closedir(d);
    if (best[0] == '\0')
        return 0;
    snprintf(out, cap, "%." SPOOL_DIR_MAX_S "s/%.40s", s->dir, best);
    return 1;
}

int spool_open(struct spool *s, const char *dir, uint64_t max_bytes, char err[SPOOL_ERR_MAX])
{
    DIR *d;
    struct dirent *e;

    memset(s, 0, sizeof(*s));
    if (strlen(dir) > SPOOL_DIR_MAX) {
        snprintf(err, SPOOL_ERR_MAX, "spool directory name over %d bytes", SPOOL_DIR_MAX);
        return -1;
    }
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    s->max_bytes = max_bytes;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, SPOOL_ERR_MAX, "spool %s: %s", dir, strerror(errno));
        return -1;
    }
    d = opendir(dir);
    if (d == NULL) {
        snprintf(err, SPOOL_ERR_MAX, "spool %s: %s", dir, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        char path[SPOOL_PATH_MAX];
        struct stat st;

        if (!is_segment(e->d_name))
            continue;
        snprintf(path, sizeof(path), "%." SPOOL_DIR_MAX_S "s/%.40s", dir, e->d_name);
        if (stat(path, &st) == 0)
            s->bytes += (uint64_t)st.st_size;
    }
    closedir(d);
    return 0;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    int i;

    for (i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    int i;

    for (i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int write_record(struct spool *s, FILE *f, int tag, uint64_t seq, const uint8_t *p, size_t n)
{
    uint8_t head[SPOOL_RECORD_HEAD];

    if (n > SPOOL_RECORD_MAX || s->bytes + SPOOL_RECORD_HEAD + n > s->max_bytes)
        return -1;
    put_le(head, n, 4);
    head[4] = (uint8_t)tag;
    put_le(head + 5, seq, 8);
    if (fwrite(head, 1, sizeof(head), f) != sizeof(head) || fwrite(p, 1, n, f) != n)
        return -1;
    s->bytes += SPOOL_RECORD_HEAD + n;
    return 0;
}

static FILE *new_segment(struct spool *s, uint64_t first_seq, char *name, size_t cap)
{
    snprintf(name, cap, "%." SPOOL_DIR_MAX_S "s/" SEG_PREFIX "%020llu" SEG_SUFFIX, s->dir,
             (unsigned long long)first_seq);
    return fopen(name, "ab");
}

/* Close the segment being written; an empty one is removed. */
static void close_writer(struct spool *s)
{
    if (s->w == NULL)
        return;
    fclose(s->w);
    s->w = NULL;
    if (s->wbytes == 0)
        unlink(s->wname);
}

int spool_append(struct spool *s, int tag, uint64_t seq, const uint8_t *p, size_t n)
{
    if (s->w && s->wbytes >= SPOOL_SEGMENT_BYTES)
        close_writer(s);
    if (s->w == NULL) {
        s->w = new_segment(s, seq, s->wname, sizeof(s->wname));
        s->wbytes = 0;
        if (s->w == NULL)
            return -1;
    }
    if (write_record(s, s->w, tag, seq, p, n) < 0)
        return -1;
    s->wbytes += SPOOL_RECORD_HEAD + n;
    return 0;
}

int spool_prepend_begin(struct spool *s, uint64_t first_seq)
{
    char name[SPOOL_PATH_MAX];

    close_writer(s); /* the newest: everything is going to disk now */
    s->w = new_segment(s, first_seq, name, sizeof(name));
    if (s->w == NULL)
        return -1;
    snprintf(s->wname, sizeof(s->wname), "%s", name);
    s->wbytes = 0;
    return 0;
}

int spool_prepend(struct spool *s, int tag, uint64_t seq, const uint8_t *p, size_t n)
{
    if (s->w == NULL || write_record(s, s->w, tag, seq, p, n) < 0)
        return -1;
    s->wbytes += SPOOL_RECORD_HEAD + n;
    return 0;
}

void spool_prepend_end(struct spool *s)
{
    close_writer(s);
}

/*
 * A damaged record (a torn write, a bad length): the rest of its segment
 * cannot be framed, so it goes, and its bytes leave the count. `read` is
 * what was consumed of the bad record itself.
 */
static void drop_segment(struct spool *s, long read)
{
    long left = s->rsize - (ftell(s->r) - read);

    s->records_dropped_bad++;
    s->bytes = (uint64_t)left < s->bytes ? s->bytes - (uint64_t)left : 0;
    fclose(s->r);
    s->r = NULL;
    gone(s, s->rname);
}

int spool_read(struct spool *s, int *tag, uint64_t *seq, struct sbuf *out)
{
    if (s->stuck)
        return 0; /* what is on disk stays there, for a later run */
    for (;;) {
        uint8_t head[SPOOL_RECORD_HEAD];
        size_t got;
        uint32_t n;

        if (s->r == NULL) {
            /* the segment being written becomes readable once closed */
            if (!oldest_segment(s, s->rname, sizeof(s->rname))) {
                if (s->w == NULL || s->wbytes == 0)
                    return 0;
                close_writer(s);
                if (!oldest_segment(s, s->rname, sizeof(s->rname)))
                    return 0;
            }
            s->r = fopen(s->rname, "rb");
            if (s->r == NULL) {
                if (!gone(s, s->rname))
                    return 0;
                continue;
            }
            {
                struct stat st;

                s->rsize = fstat(fileno(s->r), &st) == 0 ? (long)st.st_size : 0;
            }
        }
        got = fread(head, 1, sizeof(head), s->r);
        if (got == 0) { /* this segment is done */
            fclose(s->r);
            s->r = NULL;
            s->segments_read++;
            if (!gone(s, s->rname))
                return 0;
            continue;
        }
        n = (uint32_t)get_le(head, 4);
        sbuf_reset(out);
        if (got < sizeof(head) || n > SPOOL_RECORD_MAX || sbuf_reserve(out, n) == NULL ||
            fread(out->data, 1, n, s->r) != n) {
            drop_segment(s, (long)(got < sizeof(head) ? got : sizeof(head)));
            return -1;
        }
        out->len = n;
        *tag = head[4];
        *seq = get_le(head + 5, 8);
        s->bytes = s->bytes >= SPOOL_RECORD_HEAD + n ? s->bytes - SPOOL_RECORD_HEAD - n : 0;
        if (ftell(s->r) >= s->rsize) { /* its last record: the segment is done */
            fclose(s->r);
            s->r = NULL;
            s->segments_read++;
            gone(s, s->rname);
        }
        return 1;
    }
}

int spool_empty(const struct spool *s)
{
    return s->bytes == 0;
}

void spool_close(struct spool *s)
{
    close_writer(s);
    /* A segment read in part stays whole: the next run reads it from the
     * start, and the collector drops what it already has (by seq). */
    if (s->r)
        fclose(s->r);
    s->w = s->r = NULL;
}
