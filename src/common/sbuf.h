/*
 * sbuf.h - a growable byte buffer for building output (JSON lines, framed
 * protobuf). Appends never fail silently: on allocation failure the buffer
 * is marked broken and every later append is a no-op, so callers check once
 * at the end (sbuf_ok) instead of after every byte.
 */
#ifndef SONDE_SBUF_H
#define SONDE_SBUF_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

struct sbuf {
    char *data;
    size_t len;
    size_t cap;
    int failed;
};

void sbuf_init(struct sbuf *b);
void sbuf_free(struct sbuf *b);
void sbuf_reset(struct sbuf *b);
int sbuf_ok(const struct sbuf *b);
/* Make room for n more bytes; returns a pointer to them or NULL. */
char *sbuf_reserve(struct sbuf *b, size_t n);
void sbuf_append(struct sbuf *b, const void *p, size_t n);
void sbuf_putc(struct sbuf *b, char c);
void sbuf_puts(struct sbuf *b, const char *s);
void sbuf_printf(struct sbuf *b, const char *fmt, ...) SONDE_PRINTF(2, 3);

#endif
