/*
 * tls.c - the Tls event and the server's ALPN choice; see tls.h.
 *
 * The ServerHello walk reads only what it needs and checks every length
 * against the bytes present: it sees packets nDPI has not validated yet.
 */
#include <string.h>

#include <ndpi/ndpi_api.h>

#include "common/bytes.h"
#include "events/flow_events.h"
#include "tls.h"

#define TLS_CONTENT_HANDSHAKE 22
#define TLS_SERVER_HELLO      2
#define TLS_RANDOM_LEN        32
#define TLS_EXT_ALPN          16

/* The first protocol name of an ALPN extension body. */
static int alpn_first(const uint8_t *p, size_t len, char *out, size_t size)
{
    size_t n;

    if (len < 3 || rd16(p) + 2u > len || (n = p[2]) == 0 || n + 3 > len)
        return 0;
    if (n >= size)
        n = size - 1;
    memcpy(out, p + 3, n);
    out[n] = '\0';
    return 1;
}

int tls_server_alpn(const uint8_t *data, size_t len, char *out, size_t size)
{
    const uint8_t *p = data, *end;
    size_t n;

    if (size == 0 || len < TLS_RECORD_HEADER + TLS_HANDSHAKE_HEADER ||
        p[0] != TLS_CONTENT_HANDSHAKE || p[1] != 3 || p[5] != TLS_SERVER_HELLO)
        return 0;
    /* the handshake message may run past this segment; read what is here */
    end = data + len;
    p += TLS_RECORD_HEADER + TLS_HANDSHAKE_HEADER;
    if (end - p < 2 + TLS_RANDOM_LEN + 1)
        return 0;
    p += 2 + TLS_RANDOM_LEN; /* legacy version, random */
    n = *p++;                /* session id */
    if ((size_t)(end - p) < n + 2 + 1 + 2)
        return 0;
    p += n + 2 + 1; /* session id, cipher suite, compression */
    n = rd16(p);    /* extensions */
    p += 2;
    if ((size_t)(end - p) < n)
        return 0;
    end = p + n;
    while (end - p >= 4) {
        uint16_t type = rd16(p);
        size_t elen = rd16(p + 2);

        p += 4;
        if ((size_t)(end - p) < elen)
            return 0;
        if (type == TLS_EXT_ALPN)
            return alpn_first(p, elen, out, size);
        p += elen;
    }
    return 0;
}

static const char *transport(const struct flow *f, const struct flow_app *a)
{
    if (a->is_quic)
        return "quic";
    return f->key.proto == 6 ? "tcp" : "udp";
}

void tls_emit(struct ev_sink *s, const struct flow *f, const struct flow_app *a, uint64_t now_us)
{
    Sonde__V1__Tls m = SONDE__V1__TLS__INIT;
    char cip[EV_IP_STRLEN], sip[EV_IP_STRLEN], digest[EV_DIGEST_HEXLEN];
    char fp[2 * sizeof(a->tls.fingerprint) + 1];
    const char *cipher;
    int c = f->origin, srv = !f->origin;

    /* a flow nDPI named TLS or QUIC from its ports or a partial packet,
     * with nothing of a handshake: no event */
    if (!ev_enabled(s, EV_TLS) ||
        (a->tls.version == 0 && a->host == 0 && a->tls.ja3c == 0 && a->tls.ja3s == 0))
        return;
    EV_STAMP(s, m, now_us / 1000);
    m.interface = (char *)ev_iface_name(s, f->key.source);
    ev_flow_digest(s, f, digest);
    m.digest = digest;
    ev_fmt_ip(cip, f->key.ip_version, f->key.addr[c]);
    ev_fmt_ip(sip, f->key.ip_version, f->key.addr[srv]);
    m.client_ip = cip;
    m.client_port = f->key.port[c];
    m.server_ip = sip;
    m.server_port = f->key.port[srv];
    m.transport = (char *)transport(f, a);
    m.version = a->tls.version;
    m.version_name = (char *)app_text(a, a->tls.version_name);
    m.sni = (char *)app_text(a, a->host);
    m.alpn = (char *)app_text(a, a->tls.alpn);
    m.alpn_server = (char *)app_text(a, a->tls.alpn_server);
    m.cipher_suite = a->tls.cipher;
    cipher = a->tls.cipher ? ndpi_cipher2str(a->tls.cipher) : NULL;
    m.cipher_name = (char *)(cipher ? cipher : "");
    m.ja3 = (char *)app_text(a, a->tls.ja3c);
    m.ja3s = (char *)app_text(a, a->tls.ja3s);
    m.supported_versions = (char *)app_text(a, a->tls.versions);
    m.subject_dn = (char *)app_text(a, a->tls.subject);
    m.issuer_dn = (char *)app_text(a, a->tls.issuer);
    m.server_names = (char *)app_text(a, a->tls.server_names);
    m.not_before = a->tls.not_before;
    m.not_after = a->tls.not_after;
    fp[0] = '\0';
    if (a->tls.has_fingerprint)
        ev_fmt_hex(fp, a->tls.fingerprint, sizeof(a->tls.fingerprint));
    m.cert_fingerprint = fp;
    m.handshake_complete = a->tls.cipher != 0 || a->tls.ja3s != 0;
    ev_emit(s, EV_TLS, &m.base);
}
