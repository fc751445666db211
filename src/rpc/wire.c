/*
 * wire.c - gRPC's wire details that are plain data; see wire.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

static const char *const code_names[RPC_CODE__COUNT] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *rpc_code_name(int code)
{
    if (code < 0 || code >= RPC_CODE__COUNT)
        return "UNKNOWN";
    return code_names[code];
}

/* Milliseconds per unit, and the divisor for the sub-millisecond ones. */
static int unit_scale(char u, uint64_t *mul, uint64_t *div)
{
    *mul = 1;
    *div = 1;
    switch (u) {
    case 'H':
        *mul = 3600000;
        return 0;
    case 'M':
        *mul = 60000;
        return 0;
    case 'S':
        *mul = 1000;
        return 0;
    case 'm':
        return 0;
    case 'u':
        *div = 1000;
        return 0;
    case 'n':
        *div = 1000000;
        return 0;
    default:
        return -1;
    }
}

int64_t rpc_timeout_parse(const char *s, size_t len)
{
    uint64_t v = 0, mul, div;
    size_t i;

    /* "TimeoutValue: positive integer as ASCII string of at most 8 digits" */
    if (len < 2 || len > 9)
        return -1;
    for (i = 0; i + 1 < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (unit_scale(s[len - 1], &mul, &div) < 0)
        return -1;
    return (int64_t)((v * mul + div - 1) / div);
}

void rpc_timeout_format(uint64_t ms, char out[10])
{
    static const struct {
        char unit;
        uint64_t ms;
    } units[] = {{'m', 1}, {'S', 1000}, {'M', 60000}, {'H', 3600000}};
    size_t i;

    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        uint64_t v = (ms + units[i].ms - 1) / units[i].ms; /* round up: never shorter */

        if (v <= 99999999 || i + 1 == sizeof(units) / sizeof(units[0])) {
            if (v > 99999999)
                v = 99999999;
            snprintf(out, 10, "%llu%c", (unsigned long long)v, units[i].unit);
            return;
        }
    }
}

size_t rpc_message_encode(const char *in, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;

    if (cap == 0)
        return 0;
    for (; *in; in++) {
        unsigned char c = (unsigned char)*in;

        if (c >= 0x20 && c <= 0x7e && c != '%') {
            if (n + 1 >= cap)
                break;
            out[n++] = (char)c;
        } else {
            if (n + 3 >= cap)
                break;
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
    return n;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t rpc_message_decode(const char *in, size_t len, char *out, size_t cap)
{
    size_t i, n = 0;

    if (cap == 0)
        return 0;
    for (i = 0; i < len && n + 1 < cap; i++) {
        int hi, lo;

        if (in[i] == '%' && i + 2 < len && (hi = hexval(in[i + 1])) >= 0 &&
            (lo = hexval(in[i + 2])) >= 0) {
            out[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[n++] = in[i];
        }
    }
    out[n] = '\0';
    return n;
}

int rpc_code_from_http(int http_status)
{
    switch (http_status) {
    case 400:
        return RPC_INTERNAL;
    case 401:
        return RPC_UNAUTHENTICATED;
    case 403:
        return RPC_PERMISSION_DENIED;
    case 404:
        return RPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return RPC_UNAVAILABLE;
    default:
        return RPC_UNKNOWN;
    }
}

int rpc_code_from_h2(uint32_t h2_error)
{
    switch (h2_error) {
    case 0x7:
        return RPC_UNAVAILABLE; /* REFUSED_STREAM */
    case 0x8:
        return RPC_CANCELLED; /* CANCEL */
    case 0xb:
        return RPC_RESOURCE_EXHAUSTED; /* ENHANCE_YOUR_CALM */
    case 0xc:
        return RPC_PERMISSION_DENIED; /* INADEQUATE_SECURITY */
    default:
        return RPC_INTERNAL; /* NO_ERROR without trailers, and the rest */
    }
}

void rpc_deframer_init(struct rpc_deframer *d, size_t max_message)
{
    memset(d, 0, sizeof(*d));
    d->max_message = max_message ? max_message : RPC_MESSAGE_MAX;
}

void rpc_deframer_free(struct rpc_deframer *d)
{
    free(d->msg);
    d->msg = NULL;
    d->cap = 0;
}

static int fail(struct rpc_deframer *d, int code, const char *why)
{
    d->error = code;
    snprintf(d->why, sizeof(d->why), "%s", why);
    return -1;
}

/* The prefix is complete: check it and get room for the message. */
static int start_message(struct rpc_deframer *d)
{
    uint32_t len = (uint32_t)d->prefix[1] << 24 | (uint32_t)d->prefix[2] << 16 |
                   (uint32_t)d->prefix[3] << 8 | d->prefix[4];

    if (d->prefix[0] != 0) {
        return fail(d, RPC_INTERNAL,
                    d->prefix[0] == 1 ? "compressed message without grpc-encoding"
                                      : "invalid message flags");
    }
    if (len > d->max_message) {
        char why[RPC_STATUS_MAX];

        snprintf(why, sizeof(why), "message of %u bytes over the limit of %zu", len,
                 d->max_message);
        return fail(d, RPC_RESOURCE_EXHAUSTED, why);
    }
    d->len = len;
    d->have = 0;
    return 0;
}

/*
 * Room for `more` bytes of the message being read. The buffer grows with
 * what has arrived, not with the length the prefix announces: a peer that
 * announces 4 MiB on 100 streams and sends nothing costs nothing.
 */
static int reserve(struct rpc_deframer *d, size_t more)
{
    size_t need = d->have + more, cap = d->cap ? d->cap : 256;
    uint8_t *m;

    if (need <= d->cap)
        return 0;
    while (cap < need)
        cap *= 2;
    if (cap > d->len)
        cap = d->len;
    m = realloc(d->msg, cap);
    if (m == NULL)
        return fail(d, RPC_RESOURCE_EXHAUSTED, "out of memory for a message");
    d->msg = m;
    d->cap = cap;
    return 0;
}

int rpc_deframer_feed(struct rpc_deframer *d, const uint8_t *p, size_t n, rpc_message_fn fn,
                      void *arg)
{
    if (d->error)
        return -1;
    while (n > 0) {
        size_t take;

        if (d->have_prefix < RPC_PREFIX_LEN) {
            take = RPC_PREFIX_LEN - d->have_prefix;
            if (take > n)
                take = n;
            memcpy(d->prefix + d->have_prefix, p, take);
            d->have_prefix += take;
            p += take;
            n -= take;
            if (d->have_prefix < RPC_PREFIX_LEN)
                return 0;
            if (start_message(d) < 0)
                return -1;
            if (n >= d->len) { /* all of it here: no copy */
                int rc;

                d->have_prefix = 0;
                rc = fn(arg, p, d->len);
                p += d->len;
                n -= d->len;
                if (rc)
                    return rc;
                continue;
            }
        }
        take = d->len - d->have;
        if (take > n)
            take = n;
        if (take && reserve(d, take) < 0)
            return -1;
        if (take)
            memcpy(d->msg + d->have, p, take);
        d->have += take;
        p += take;
        n -= take;
        if (d->have == d->len) {
            int rc;

            d->have_prefix = 0; /* before the callback: it may feed no more */
            rc = fn(arg, d->msg, d->len);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int rpc_deframer_partial(const struct rpc_deframer *d)
{
    return d->have_prefix > 0;
}

void rpc_frame_prefix(uint8_t out[RPC_PREFIX_LEN], uint32_t len)
{
    out[0] = 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}
