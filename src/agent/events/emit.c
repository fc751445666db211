/*
 * emit.c - pack and queue events; see emit.h.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "emit.h"

uint64_t ev_next_seq(struct ev_sink *s)
{
    return atomic_fetch_add_explicit(&s->seq, 1, memory_order_relaxed) + 1;
}

int ev_emit(struct ev_sink *s, int tag, const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    struct evq_item *it = malloc(sizeof(*it) + len);

    if (it == NULL) {
        atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
        return -1;
    }
    it->tag = (uint32_t)tag;
    it->len = (uint32_t)protobuf_c_message_pack(m, it->data);
    if (evq_push(s->q, it, s->wait) < 0) {
        atomic_fetch_add_explicit(&s->dropped, 1, memory_order_relaxed);
        return -1;
    }
    atomic_fetch_add_explicit(&s->events, 1, memory_order_relaxed);
    return 0;
}

void ev_fmt_ip(char *buf, int ip_version, const uint8_t *addr)
{
    if (inet_ntop(ip_version == 4 ? AF_INET : AF_INET6, addr, buf, EV_IP_STRLEN) == NULL)
        buf[0] = '\0';
}

void ev_fmt_mac(char *buf, const uint8_t *mac)
{
    snprintf(buf, EV_MAC_STRLEN, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
             mac[4], mac[5]);
}
