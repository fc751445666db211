/*
 * log.c - one line per message on stderr: "prog: level: text".
 * stderr is unbuffered, and each message is written with a single fprintf so
 * lines from different threads do not interleave.
 */
#include <stdarg.h>
#include <stdio.h>

#include "log.h"

static int log_level = LOG_WARN;
static const char *log_prog = "sonde";

void log_set_level(int level)
{
    log_level = level;
}

int log_get_level(void)
{
    return log_level;
}

void log_set_prog(const char *prog)
{
    log_prog = prog;
}

void log_msg(int level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warning", "info", "debug"};
    char line[1024];
    va_list ap;

    if (level > log_level)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s: %s\n", log_prog, names[level], line);
}
