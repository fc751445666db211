/*
 * tls.c - OpenSSL contexts for gRPC, and address helpers.
 *
 * Both sides: TLS 1.2 or later, our certificate and key, peers verified
 * against the configured CA (mutual TLS: the server demands a client
 * certificate). HTTP/2 (RFC 9113 9.2) forbids TLS 1.2 suites without
 * forward secrecy or AEAD, so only ECDHE with AES-GCM or ChaCha20 is
 * offered there; TLS 1.3 suites are all AEAD. AES-128-GCM comes first in
 * both: with AES-NI it costs a fifth less CPU per byte than AES-256-GCM
 * (openssl speed, 16 KiB blocks: 3.4 against 2.7 GB/s here), and every
 * event crosses it twice; Go and BoringSSL order them the same way. ALPN
 * is h2 only: a peer that does not speak it gets a
 * no_application_protocol alert.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "rpc_int.h"

#define TLS12_CIPHERS "ECDHE+AESGCM+AES128:ECDHE+AESGCM:ECDHE+CHACHA20"
#define TLS13_SUITES  "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

void rpc_tls_error(const char *what, char err[RPC_ERR_MAX])
{
    unsigned long e = ERR_get_error();
    char buf[RPC_ERR_MAX];

    if (e) {
        ERR_error_string_n(e, buf, sizeof(buf));
        snprintf(err, RPC_ERR_MAX, "%.100s: %.150s", what, buf);
    } else {
        snprintf(err, RPC_ERR_MAX, "%s failed", what);
    }
    ERR_clear_error();
}

/*
 * What went wrong on a TLS bufferevent, in words; 0 if libevent kept no
 * TLS error. For an I/O error under TLS (SSL_ERROR_SYSCALL) libevent keeps
 * that code, not an OpenSSL error, and the socket's error says what
 * happened: "error:00000005:lib(0)::reason(5)" meant a refused connection.
 */
int rpc_tls_bev_error(struct bufferevent *bev, char *buf, size_t n)
{
    unsigned long e = bufferevent_get_openssl_error(bev);
    int err = EVUTIL_SOCKET_ERROR();
    char what[RPC_ERR_MAX];

    if (e == 0)
        return 0;
    if (e == SSL_ERROR_SYSCALL) {
        snprintf(buf, n, "%s", err ? evutil_socket_error_to_string(err) : "connection lost");
    } else {
        ERR_error_string_n(e, what, sizeof(what));
        snprintf(buf, n, "TLS: %s", what);
    }
    return 1;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg)
{
    static const unsigned char h2[] = {2, 'h', '2'};
    unsigned char *sel = NULL;

    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto(&sel, outlen, h2, sizeof(h2), in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

SSL_CTX *rpc_tls_ctx(const struct rpc_tls *t, int server, char err[RPC_ERR_MAX])
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    char what[RPC_ERR_MAX];

    if (ctx == NULL) {
        rpc_tls_error("SSL_CTX_new", err);
        return NULL;
    }
    if (!t->cert || !t->key || !t->ca) {
        snprintf(err, RPC_ERR_MAX,
                 "TLS needs a certificate, its key and a CA (--tls-cert, --tls-key, --tls-ca)");
        goto fail;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES) != 1) {
        rpc_tls_error("cipher list", err);
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, t->cert) != 1) {
        snprintf(what, sizeof(what), "certificate %s", t->cert);
        rpc_tls_error(what, err);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, t->key, SSL_FILETYPE_PEM) != 1) {
        snprintf(what, sizeof(what), "key %s", t->key);
        rpc_tls_error(what, err);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(what, sizeof(what), "key %s does not match certificate %s", t->key, t->cert);
        rpc_tls_error(what, err);
        goto fail;
    }
    if (SSL_CTX_load_verify_locations(ctx, t->ca, NULL) != 1) {
        snprintf(what, sizeof(what), "CA %s", t->ca);
        rpc_tls_error(what, err);
        goto fail;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
    if (server) {
        SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    } else if (SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x02h2", 3) != 0) {
        rpc_tls_error("ALPN", err);
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

int rpc_host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (strcmp(host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return 0;
}

int rpc_parse_url(const char *url, char *host, size_t hcap, char *port, size_t pcap, int *tls)
{
    if (strncmp(url, "grpcs://", 8) == 0) {
        *tls = 1;
        url += 8;
    } else if (strncmp(url, "grpc://", 7) == 0) {
        *tls = 0;
        url += 7;
    } else {
        return -1;
    }
    return rpc_split_addr(url, host, hcap, port, pcap) < 0 || host[0] == '\0' ? -1 : 0;
}

int rpc_check_url(const char *opt, const char *url, int cleartext_anywhere, int *tls,
                  char err[RPC_ERR_MAX])
{
    char host[256], port[16];

    if (rpc_parse_url(url, host, sizeof(host), port, sizeof(port), tls) < 0) {
        snprintf(err, RPC_ERR_MAX, "%s %.100s: expected grpcs://HOST:PORT or grpc://HOST:PORT", opt,
                 url);
        return -1;
    }
    if (!*tls && !cleartext_anywhere && !rpc_host_is_loopback(host)) {
        snprintf(err, RPC_ERR_MAX,
                 "%s %.100s: cleartext to a non-loopback address; use grpcs://, or add "
                 "--insecure-cleartext-anywhere",
                 opt, url);
        return -1;
    }
    return 0;
}

int rpc_check_listen(const char *addr, int cleartext, int cleartext_anywhere, char err[RPC_ERR_MAX])
{
    char host[256], port[16];

    if (rpc_split_addr(addr, host, sizeof(host), port, sizeof(port)) < 0) {
        snprintf(err, RPC_ERR_MAX, "--listen %.100s: expected HOST:PORT, [V6]:PORT or :PORT", addr);
        return -1;
    }
    if (cleartext && !cleartext_anywhere && !rpc_host_is_loopback(host)) {
        snprintf(err, RPC_ERR_MAX,
                 "--listen %.100s with --insecure-cleartext: not a loopback address; use TLS, "
                 "or add --insecure-cleartext-anywhere",
                 addr);
        return -1;
    }
    return 0;
}

int rpc_split_addr(const char *addr, char *host, size_t hostcap, char *port, size_t portcap)
{
    const char *colon, *h = addr;
    size_t hl;

    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');

        if (end == NULL || end[1] != ':')
            return -1;
        h = addr + 1;
        hl = (size_t)(end - h);
        colon = end + 1;
    } else {
        colon = strrchr(addr, ':');
        if (colon == NULL || strchr(addr, ':') != colon)
            return -1; /* a bare IPv6 address needs brackets */
        hl = (size_t)(colon - addr);
    }
    if (hl >= hostcap || strlen(colon + 1) >= portcap || colon[1] == '\0' ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1) || strlen(colon + 1) > 5 ||
        atoi(colon + 1) > 65535)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    strcpy(port, colon + 1);
    return 0;
}
