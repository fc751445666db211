/*
 * sbuf.c - growable buffer; see sbuf.h for the failure convention.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbuf.h"

#define SBUF_MIN_CAP 256

void sbuf_init(struct sbuf *b)
{
    memset(b, 0, sizeof(*b));
}

void sbuf_free(struct sbuf *b)
{
    free(b->data);
    sbuf_init(b);
}

void sbuf_reset(struct sbuf *b)
{
    b->len = 0;
    b->failed = 0;
}

int sbuf_ok(const struct sbuf *b)
{
    return !b->failed;
}

char *sbuf_reserve(struct sbuf *b, size_t n)
{
    if (b->failed)
        return NULL;
    if (b->cap - b->len < n + 1) {
        size_t cap = b->cap ? b->cap : SBUF_MIN_CAP;
        char *p;

        while (cap - b->len < n + 1) {
            if (cap > SIZE_MAX / 2) {
                b->failed = 1;
                return NULL;
            }
            cap *= 2;
        }
        p = realloc(b->data, cap);
        if (p == NULL) {
            b->failed = 1;
            return NULL;
        }
        b->data = p;
        b->cap = cap;
    }
    return b->data + b->len;
}

void sbuf_append(struct sbuf *b, const void *p, size_t n)
{
    char *dst = sbuf_reserve(b, n);

    if (dst == NULL)
        return;
    memcpy(dst, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void sbuf_putc(struct sbuf *b, char c)
{
    sbuf_append(b, &c, 1);
}

void sbuf_puts(struct sbuf *b, const char *s)
{
    sbuf_append(b, s, strlen(s));
}

void sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    char *dst;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    dst = sbuf_reserve(b, (size_t)n);
    if (dst == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(dst, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}
