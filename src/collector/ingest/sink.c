/*
 * sink.c - JSON lines or protobuf frames, appended; see sink.h.
 *
 * Records collect in one buffer (buf, the event loop's) and reach the
 * file in large write(2)s: at a million events a second, stdio's 4 KiB
 * buffer made a system call every ten events. The writer thread
 * (writer.c) does the writing: sink_swap hands it what is pending (out),
 * and the loop fills buf again meanwhile. Owning the buffers also means a
 * failed write can be undone: the file is cut back to its size before the
 * write, so it never ends in half a record.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "event.h"
#include "json.h"
#include "pbfile.h"
#include "log.h"
#include "sink.h"

int sink_open(struct sink *s, const char *spec, int fsync_on_commit, char err[SINK_ERR_MAX])
{
    const char *path;
    struct stat st;

    memset(s, 0, sizeof(*s));
    sbuf_init(&s->buf);
    sbuf_init(&s->out);
    if (strncmp(spec, "json:", 5) == 0) {
        s->kind = SINK_JSON;
        path = spec + 5;
    } else if (strncmp(spec, "pb:", 3) == 0) {
        s->kind = SINK_PB;
        path = spec + 3;
    } else {
        snprintf(err, SINK_ERR_MAX, "-o %s: expected json:PATH or pb:PATH", spec);
        return -1;
    }
    if (*path == '\0') {
        snprintf(err, SINK_ERR_MAX, "-o %s: missing path", spec);
        return -1;
    }
    s->path = strdup(path);
    if (strcmp(path, "-") == 0) {
        s->f = stdout;
        s->is_stdout = 1;
    } else {
        /* a+: reads for sink_scan, every write at the end */
        s->f = fopen(path, s->kind == SINK_PB ? "a+b" : "a+");
        if (s->f == NULL) {
            snprintf(err, SINK_ERR_MAX, "-o %s: %s", spec, strerror(errno));
            return -1;
        }
    }
    s->regular = fstat(fileno(s->f), &st) == 0 && S_ISREG(st.st_mode);
    s->size = s->regular ? (uint64_t)st.st_size : 0;
    s->sync = fsync_on_commit && s->regular;
    return 0;
}

/* Cut the file back to its last whole record. */
static int cut_at(struct sink *s, long good, char err[SINK_ERR_MAX])
{
    if (fflush(s->f) != 0 || ftruncate(fileno(s->f), good) != 0) {
        snprintf(err, SINK_ERR_MAX, "%s: removing a partial last record: %s", s->path,
                 strerror(errno));
        return -1;
    }
    fprintf(stderr, "sonde-collector: %s: removed a partial last record at byte %ld\n", s->path,
            good);
    return 0;
}

static long scan_json(struct sink *s, struct dedup *d, char err[SINK_ERR_MAX])
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long good = 0, count = 0;

    while ((n = getline(&line, &cap, s->f)) > 0) {
        json_t *o;
        const char *type, *agent;
        int tag;

        if (line[n - 1] != '\n')
            break; /* cut short */
        /* as reals: jansson refuses integers over 2^63, and seq stays exact
         * (the receiver takes none at or over 2^53) */
        o = json_loadb(line, (size_t)n, JSON_DECODE_INT_AS_REAL, NULL);
        if (o == NULL) {
            snprintf(err, SINK_ERR_MAX, "%s: byte %ld: not a JSON line; not appending to it",
                     s->path, good);
            free(line);
            return -1;
        }
        type = json_string_value(json_object_get(o, "type"));
        agent = json_string_value(json_object_get(o, "agent_id"));
        tag = type ? schema_event_tag_by_name(type) : 0;
        if (tag > 0 && agent)
            dedup_store(d, dedup_agent(d, agent), tag,
                        (uint64_t)json_number_value(json_object_get(o, "seq")));
        json_decref(o);
        good += n;
        count++;
    }
    free(line);
    if (!feof(s->f) && n < 0) {
        snprintf(err, SINK_ERR_MAX, "%s: %s", s->path, strerror(errno));
        return -1;
    }
    if (ftell(s->f) != good && cut_at(s, good, err) < 0)
        return -1;
    return count;
}

/* The member set in an Event, and its agent_id and seq (the common header). */
static int event_header(const Sonde__V1__Event *ev, const char **agent, uint64_t *seq)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(ev->base.descriptor, (unsigned)ev->event_case);

    if (f == NULL || f->type != PROTOBUF_C_TYPE_MESSAGE ||
        schema_get_header(*(const ProtobufCMessage *const *)((const char *)ev + f->offset), agent,
                          seq) < 0)
        return -1;
    return (int)ev->event_case;
}

static long scan_pb(struct sink *s, struct dedup *d, char err[SINK_ERR_MAX])
{
    struct pbfile_reader r;
    struct sbuf msg;
    long count = 0;
    int rc;

    sbuf_init(&msg);
    pbfile_reader_init(&r, s->f);
    while ((rc = pbfile_read(&r, &msg)) == 1) {
        Sonde__V1__Event *ev = sonde__v1__event__unpack(NULL, msg.len, (const uint8_t *)msg.data);
        const char *agent;
        uint64_t seq;
        int tag;

        if (ev == NULL) {
            snprintf(err, SINK_ERR_MAX, "%s: byte %llu: not a sonde.v1.Event; not appending to it",
                     s->path, (unsigned long long)r.frame_offset);
            sbuf_free(&msg);
            return -1;
        }
        tag = event_header(ev, &agent, &seq);
        if (tag > 0 && agent)
            dedup_store(d, dedup_agent(d, agent), tag, seq);
        sonde__v1__event__free_unpacked(ev, NULL);
        count++;
    }
    sbuf_free(&msg);
    if (rc < 0 && !r.truncated) {
        snprintf(err, SINK_ERR_MAX, "%s: %s; not appending to it", s->path, r.err);
        return -1;
    }
    if (rc < 0 && cut_at(s, (long)r.frame_offset, err) < 0)
        return -1;
    return count;
}

long sink_scan(struct sink *s, struct dedup *d, char err[SINK_ERR_MAX])
{
    long n;

    /* a pipe, a FIFO or a terminal has nothing to read back (and would block) */
    if (s->is_stdout || !s->regular)
        return 0;
    rewind(s->f);
    n = s->kind == SINK_JSON ? scan_json(s, d, err) : scan_pb(s, d, err);
    if (fseek(s->f, 0, SEEK_END) != 0 && n >= 0) {
        snprintf(err, SINK_ERR_MAX, "%s: %s", s->path, strerror(errno));
        return -1;
    }
    s->size = (uint64_t)ftell(s->f); /* after any cut of a partial record */
    return n;
}

void sink_swap(struct sink *s)
{
    struct sbuf t = s->out;

    s->out = s->buf;
    s->buf = t;
}

int sink_write_out(struct sink *s, char err[SINK_ERR_MAX])
{
    int fd = fileno(s->f);
    size_t off = 0;

    if (!sbuf_ok(&s->out)) {
        snprintf(err, SINK_ERR_MAX, "%s: out of memory", s->path);
        return -1;
    }
    while (off < s->out.len) {
        ssize_t n = write(fd, s->out.data + off, s->out.len - off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, SINK_ERR_MAX, "%s: %s", s->path, n < 0 ? strerror(errno) : "short write");
            if (off > 0 && s->regular && ftruncate(fd, (off_t)s->size) != 0)
                log_error("%s: cannot remove a partly written record: %s", s->path,
                          strerror(errno));
            return -1;
        }
        off += (size_t)n;
    }
    s->size += s->out.len;
    sbuf_reset(&s->out);
    return 0;
}

int sink_sync(struct sink *s, char err[SINK_ERR_MAX])
{
    if (s->sync && fdatasync(fileno(s->f)) != 0) {
        snprintf(err, SINK_ERR_MAX, "%s: fdatasync: %s", s->path, strerror(errno));
        return -1;
    }
    return 0;
}

int sink_write(struct sink *s, int tag, const ProtobufCMessage *m, const uint8_t *packed,
               size_t len)
{
    if (s->kind == SINK_JSON) {
        if (schema_json_encode(&s->buf, m) < 0)
            return -1;
        sbuf_putc(&s->buf, '\n');
    } else {
        pbfile_frame_event(&s->buf, tag, packed, len);
    }
    if (!sbuf_ok(&s->buf))
        return -1;
    s->written++;
    return 0;
}

int sink_commit(struct sink *s, char err[SINK_ERR_MAX])
{
    /* out first: what a failed round left there comes before buf */
    if (sink_write_out(s, err) < 0)
        return -1;
    sink_swap(s);
    if (sink_write_out(s, err) < 0)
        return -1;
    return sink_sync(s, err);
}

/* Records not committed are dropped: nobody acknowledged them. */
void sink_close(struct sink *s)
{
    if (s->f && !s->is_stdout)
        fclose(s->f);
    s->f = NULL;
    free(s->path);
    s->path = NULL;
    sbuf_free(&s->buf);
    sbuf_free(&s->out);
}
