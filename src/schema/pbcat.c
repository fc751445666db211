/*
 * pbcat.c - sonde-pbcat: print an -o pb: file as JSON lines.
 *
 * The pb output is compact but opaque; this turns it into exactly what
 * -o json: would have written, so a file can be checked or inspected (and
 * the two outputs compared) without any other tool.
 *
 * Exit status: 0 when the whole input was printed, 1 on an error (corrupt
 * input, with its byte offset; unreadable file; failed write), 2 on usage.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "pbfile.h"

#define PBCAT_USAGE                                                                                \
    "usage: sonde-pbcat [FILE|-]\n"                                                                \
    "Print the sonde.v1.Event messages of a sonde -o pb: file (standard input\n"                   \
    "if FILE is - or absent) as JSON lines.\n"

/* One event: unpack, encode, write. Returns 0 or -1 (reported). */
static int print_event(const struct pbfile_reader *r, const struct sbuf *msg, struct sbuf *line,
                       const char *path)
{
    unsigned long long at = (unsigned long long)r->frame_offset;
    Sonde__V1__Event *ev;
    int rc;

    ev = sonde__v1__event__unpack(NULL, msg->len, (const uint8_t *)msg->data);
    if (ev == NULL) {
        log_error("%s: invalid sonde.v1.Event at byte offset %llu", path, at);
        return -1;
    }
    /* A type added after this build is not corruption: say so and go on. */
    if (ev->event_case == SONDE__V1__EVENT__EVENT__NOT_SET) {
        log_warn("%s: event of a type unknown to this build at byte offset %llu, skipped", path,
                 at);
        sonde__v1__event__free_unpacked(ev, NULL);
        return 0;
    }
    sbuf_reset(line);
    rc = schema_json_encode_event(line, ev);
    sonde__v1__event__free_unpacked(ev, NULL);
    sbuf_putc(line, '\n');
    if (rc < 0 || !sbuf_ok(line)) {
        log_error("%s: cannot encode the event at byte offset %llu as JSON", path, at);
        return -1;
    }
    if (fwrite(line->data, 1, line->len, stdout) != line->len) {
        log_error("writing output: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int pbcat(FILE *fp, const char *path)
{
    struct pbfile_reader r;
    struct sbuf msg, line;
    int rc, status = 0;

    pbfile_reader_init(&r, fp);
    sbuf_init(&msg);
    sbuf_init(&line);
    while ((rc = pbfile_read(&r, &msg)) > 0) {
        if (print_event(&r, &msg, &line, path) < 0) {
            status = 1;
            break;
        }
    }
    if (rc < 0) {
        log_error("%s: %s", path, r.err);
        status = 1;
    }
    if (fflush(stdout) != 0) {
        log_error("writing output: %s", strerror(errno));
        status = 1;
    }
    sbuf_free(&msg);
    sbuf_free(&line);
    return status;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "-";
    FILE *fp;
    int status;

    log_set_prog("sonde-pbcat");
    if (argc > 2 || (path[0] == '-' && path[1] != '\0')) {
        int help = argc == 2 && (strcmp(path, "-h") == 0 || strcmp(path, "--help") == 0);

        fputs(PBCAT_USAGE, help ? stdout : stderr);
        return help ? 0 : 2;
    }
    if (strcmp(path, "-") == 0) {
        fp = stdin;
        path = "<stdin>";
    } else if ((fp = fopen(path, "rb")) == NULL) {
        log_error("%s: %s", path, strerror(errno));
        return 1;
    }
    status = pbcat(fp, path);
    if (fp != stdin)
        fclose(fp);
    return status;
}
