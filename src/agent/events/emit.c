/*
 * emit.c - pack and queue events; see emit.h.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "emit.h"
#include "pbenc.h"

#define EV_PACK_STACK 4096 /* bytes; larger events take the slow path */

int ev_emit(struct ev_sink *s, int tag, const ProtobufCMessage *m)
{
    uint8_t buf[EV_PACK_STACK];
    long n = schema_pb_encode(m, buf, sizeof(buf));
    size_t len = n >= 0 ? (size_t)n : protobuf_c_message_get_packed_size(m);
    struct evq_item *it = malloc(sizeof(*it) + len + EV_SEQ_ROOM);

    if (it == NULL) {
        atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
        return -1;
    }
    it->tag = (uint32_t)tag;
    if (n >= 0) /* the common case: one pass into the stack buffer */
        memcpy(it->data, buf, len);
    else /* an event larger than the stack buffer */
        protobuf_c_message_pack(m, it->data);
    it->len = (uint32_t)len;
    it->flags = 0;
    return ev_queue(s, it);
}

int ev_queue(struct ev_sink *s, struct evq_item *it)
{
    if (evq_push(s->q, it, s->wait) < 0) {
        atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
        return -1;
    }
    atomic_fetch_add_explicit(&s->events, 1, memory_order_relaxed);
    return 0;
}

void ev_batch_add(struct ev_sink *s, struct ev_batch *b, struct evq_item *it)
{
    it->next = NULL;
    if (b->tail)
        b->tail->next = it;
    else
        b->head = it;
    b->tail = it;
    if (++b->n >= EV_BATCH)
        ev_batch_flush(s, b);
}

void ev_batch_flush(struct ev_sink *s, struct ev_batch *b)
{
    size_t dropped;

    if (b->n == 0)
        return;
    dropped = evq_push_list(s->q, b->head, b->tail, b->n, s->wait, b->spare);
    atomic_fetch_add_explicit(&s->events, b->n - dropped, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->dropped, dropped, memory_order_relaxed);
    b->head = b->tail = NULL;
    b->n = 0;
}

void ev_batch_free(struct ev_batch *b)
{
    int c;

    for (c = 0; c < EVQ_SPARE_CLASSES; c++) {
        evq_free_list(b->spare[c]);
        b->spare[c] = NULL;
    }
}

/* Dotted quad by hand: snprintf/inet_ntop cost more than the rest of an event. */
static char *put_dec(char *p, unsigned v)
{
    if (v >= 100)
        *p++ = (char)('0' + v / 100);
    if (v >= 10)
        *p++ = (char)('0' + v / 10 % 10);
    *p++ = (char)('0' + v % 10);
    return p;
}

void ev_fmt_ip(char *buf, int ip_version, const uint8_t *addr)
{
    if (ip_version == 4) {
        char *p = buf;
        int i;

        for (i = 0; i < 4; i++) {
            p = put_dec(p, addr[i]);
            *p++ = i < 3 ? '.' : '\0';
        }
        return;
    }
    if (inet_ntop(ip_version == 4 ? AF_INET : AF_INET6, addr, buf, EV_IP_STRLEN) == NULL)
        buf[0] = '\0';
}

void ev_fmt_mac(char *buf, const uint8_t *mac)
{
    static const char hex[] = "0123456789abcdef";
    int i;

    for (i = 0; i < 6; i++) {
        buf[3 * i] = hex[mac[i] >> 4];
        buf[3 * i + 1] = hex[mac[i] & 15];
        buf[3 * i + 2] = i < 5 ? ':' : '\0';
    }
}

void ev_fmt_hex(char *buf, const uint8_t *data, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        buf[2 * i] = hex[data[i] >> 4];
        buf[2 * i + 1] = hex[data[i] & 15];
    }
    buf[2 * n] = '\0';
}
