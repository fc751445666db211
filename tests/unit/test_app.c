/*
 * test_app.c - the application parsers sonde writes itself: HTTP/1.x
 * start lines and headers, DHCP messages, the ServerHello's ALPN and the
 * QUIC version, on messages built here byte by byte. Every parser must
 * refuse every truncation of a good message without reading past it
 * (the sanitizer build checks the reads).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dpi/dhcp.h"
#include "dpi/http.h"
#include "dpi/quic.h"
#include "dpi/tls.h"

/* A copy of exactly n bytes on the heap, so ASan sees a read past n. */
static uint8_t *dup_n(const void *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);

    assert_non_null(d);
    memcpy(d, p, n);
    return d;
}

/* ---- HTTP ---- */

static const char req[] = "GET /a/b?c=1 HTTP/1.1\r\n"
                          "Host: www.example.test\r\n"
                          "user-agent:   curl/7.88.1  \r\n"
                          "Referer: http://ref.example/\r\n"
                          "Content-Length: 12\r\n"
                          "Accept: */*\r\n"
                          "\r\n";

static void test_http_request(void **state)
{
    struct http_msg m;

    (void)state;
    assert_int_equal(http_parse((const uint8_t *)req, strlen(req), &m), 1);
    assert_true(m.is_request);
    assert_string_equal(m.method, "GET");
    assert_string_equal(m.uri, "/a/b?c=1");
    assert_string_equal(m.version, "HTTP/1.1");
    assert_string_equal(m.host, "www.example.test");
    assert_string_equal(m.user_agent, "curl/7.88.1"); /* name case, spaces around the value */
    assert_string_equal(m.referer, "http://ref.example/");
    assert_true(m.has_length);
    assert_int_equal(m.content_length, 12);
    assert_int_equal(m.header_len, strlen(req));
}

static void test_http_response(void **state)
{
    static const char r[] = "HTTP/1.0 404 Not Found\n"
                            "Server: SimpleHTTP/0.6 Python/3.11.2\n"
                            "Content-Type: text/html;charset=utf-8\n"
                            "Content-Length: x12\n" /* not a number: as if absent */
                            "\n"
                            "body";
    struct http_msg m;

    (void)state;
    assert_int_equal(http_parse((const uint8_t *)r, strlen(r), &m), 1);
    assert_false(m.is_request);
    assert_int_equal(m.status, 404);
    assert_string_equal(m.reason, "Not Found");
    assert_string_equal(m.version, "HTTP/1.0");
    assert_string_equal(m.server, "SimpleHTTP/0.6 Python/3.11.2");
    assert_string_equal(m.content_type, "text/html;charset=utf-8");
    assert_false(m.has_length);
    assert_int_equal(m.header_len, strlen(r) - 4);
}

static void test_http_refused(void **state)
{
    static const char *const bad[] = {
        "GET / HTTP/2.0\r\n",                        /* not 1.x */
        "get / HTTP/1.1\r\n",                        /* methods are upper case */
        "GET  HTTP/1.1\r\n",                         /* no target */
        "GET /\r\n",                                 /* HTTP/0.9 */
        "HTTP/1.1 20 OK\r\n",                        /* two digits */
        "HTTP/1.1 700 Odd\r\n",                      /* no such class */
        "HTTP/1.1 200OK\r\n",                        /* no space after the code */
        "\x16\x03\x01\x02\x00\n",                    /* TLS */
        "GET / HTTP/1.1",                            /* no line end: not whole */
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ / HTTP/1.1\r\n", /* method too long */
    };
    struct http_msg m;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t *d = dup_n(bad[i], strlen(bad[i]));

        assert_int_equal(http_parse(d, strlen(bad[i]), &m), 0);
        free(d);
    }
}

static void test_http_truncations(void **state)
{
    struct http_msg m;
    size_t n, line = strlen("GET /a/b?c=1 HTTP/1.1\r\n");

    (void)state;
    for (n = 0; n <= strlen(req); n++) {
        uint8_t *d = dup_n(req, n);
        int r = http_parse(d, n, &m);

        /* a start line is whole once its line end is there; the header
         * ends only with the blank line */
        assert_int_equal(r, n >= line);
        if (r)
            assert_int_equal(m.header_len, n == strlen(req) ? n : 0);
        free(d);
    }
}

static void test_http_long_values_cut(void **state)
{
    char buf[4096];
    struct http_msg m;
    int n;

    (void)state;
    memset(buf, 0, sizeof(buf));
    n = snprintf(buf, sizeof(buf), "POST /%0*d HTTP/1.1\r\nHost: %0*d\r\n\r\n", 1000, 7, 600, 9);
    assert_int_equal(http_parse((const uint8_t *)buf, (size_t)n, &m), 1);
    assert_int_equal(strlen(m.uri), HTTP_URI_MAX - 1);
    assert_int_equal(strlen(m.host), HTTP_FIELD_MAX - 1);
    assert_string_equal(m.method, "POST");
}

/* ---- DHCP ---- */

static size_t dhcp_build(uint8_t *b, const uint8_t *opts, size_t nopts)
{
    memset(b, 0, 240);
    b[0] = 1;                                           /* op: request */
    b[1] = 1;                                           /* Ethernet */
    b[2] = 6;                                           /* hlen */
    b[4] = 0xde, b[5] = 0xad, b[6] = 0xbe, b[7] = 0xef; /* xid */
    b[10] = 0x80;                                       /* broadcast */
    b[12] = 10, b[15] = 7;                              /* ciaddr 10.0.0.7 */
    memcpy(b + 28, "\x02\x00\x00\x00\x00\x11", 6);
    b[236] = 99, b[237] = 130, b[238] = 83, b[239] = 99;
    memcpy(b + 240, opts, nopts);
    return 240 + nopts;
}

static const uint8_t opts[] = {
    53,  1, 3,                       /* REQUEST */
    0,                               /* pad */
    50,  4, 10,  0,    0,    50,     /* requested address */
    54,  4, 10,  0,    0,    1,      /* server identifier */
    12,  5, 'b', 'o',  'x',  '1', 0, /* host name, its NUL counted */
    60,  4, 'v', 'e',  'n',  'd',    /* vendor class */
    55,  4, 1,   3,    6,    15,     /* parameter request list */
    61,  3, 1,   0xab, 0xcd,         /* client id */
    51,  4, 0,   0,    2,    88,     /* lease 600 s */
    255,
};

static void test_dhcp_message(void **state)
{
    uint8_t b[512];
    size_t n = dhcp_build(b, opts, sizeof(opts));
    struct dhcp_msg m;
    char mac[64];

    (void)state;
    assert_int_equal(dhcp_parse(b, n, &m), 0);
    assert_int_equal(m.op, 1);
    assert_int_equal(m.xid, 0xdeadbeef);
    assert_int_equal(m.flags, 0x8000);
    assert_int_equal(m.ciaddr[0], 10);
    assert_int_equal(m.ciaddr[3], 7);
    assert_int_equal(m.type, DHCP_REQUEST);
    assert_string_equal(dhcp_type_name(m.type), "REQUEST");
    assert_true(m.has_requested);
    assert_int_equal(m.requested[3], 50);
    assert_true(m.has_server_id);
    assert_string_equal(m.hostname, "box1");
    assert_string_equal(m.vendor_class, "vend");
    assert_string_equal(m.fingerprint, "1,3,6,15");
    assert_string_equal(m.client_id, "01abcd");
    assert_int_equal(m.lease_time, 600);
    dhcp_fmt_chaddr(mac, sizeof(mac), &m);
    assert_string_equal(mac, "02:00:00:00:00:11");
    m.htype = 6; /* not Ethernet: hex */
    dhcp_fmt_chaddr(mac, sizeof(mac), &m);
    assert_string_equal(mac, "020000000011");
    assert_string_equal(dhcp_type_name(0), "");
    assert_string_equal(dhcp_type_name(200), "");
}

static void test_dhcp_truncations(void **state)
{
    uint8_t b[512];
    size_t full = dhcp_build(b, opts, sizeof(opts)), n;
    struct dhcp_msg m;

    (void)state;
    for (n = 0; n <= full; n++) {
        uint8_t *d = dup_n(b, n);

        /* the fixed part and the cookie are needed; options cut short are
         * dropped from where the cut is */
        assert_int_equal(dhcp_parse(d, n, &m), n >= 240 ? 0 : -1);
        if (n >= 240 && n < 243)
            assert_int_equal(m.type, 0);
        free(d);
    }
    b[236] = 0; /* no magic cookie: BOOTP, or not DHCP at all */
    assert_int_equal(dhcp_parse(b, full, &m), -1);
}

static void test_dhcp_option_overrun(void **state)
{
    static const uint8_t bad[] = {53, 1, 5, 12, 200, 'x'}; /* length beyond the data */
    uint8_t b[512];
    size_t n = dhcp_build(b, bad, sizeof(bad));
    uint8_t *d = dup_n(b, n);
    struct dhcp_msg m;

    (void)state;
    assert_int_equal(dhcp_parse(d, n, &m), 0);
    assert_int_equal(m.type, DHCP_ACK);
    assert_string_equal(m.hostname, "");
    free(d);
}

/* ---- TLS ServerHello ALPN ---- */

static size_t server_hello(uint8_t *b, const char *alpn)
{
    size_t n = 0, ext_at, hs_at, rec_at;
    size_t alen = alpn ? strlen(alpn) : 0;

    b[n++] = 22, b[n++] = 3, b[n++] = 3; /* handshake record, TLS 1.2 */
    rec_at = n;
    n += 2;
    b[n++] = 2; /* ServerHello */
    hs_at = n;
    n += 3;
    b[n++] = 3, b[n++] = 3;
    memset(b + n, 0x5a, 32), n += 32;        /* random */
    b[n++] = 4, memset(b + n, 1, 4), n += 4; /* session id */
    b[n++] = 0xc0, b[n++] = 0x2f;            /* cipher */
    b[n++] = 0;                              /* compression */
    ext_at = n;
    n += 2;
    b[n++] = 0xff, b[n++] = 0x01, b[n++] = 0, b[n++] = 1, b[n++] = 0; /* renegotiation_info */
    if (alpn) {
        b[n++] = 0, b[n++] = 16;
        b[n++] = 0, b[n++] = (uint8_t)(alen + 3);
        b[n++] = 0, b[n++] = (uint8_t)(alen + 1);
        b[n++] = (uint8_t)alen;
        memcpy(b + n, alpn, alen), n += alen;
    }
    b[ext_at] = (uint8_t)((n - ext_at - 2) >> 8), b[ext_at + 1] = (uint8_t)(n - ext_at - 2);
    b[hs_at] = 0, b[hs_at + 1] = (uint8_t)((n - hs_at - 3) >> 8),
    b[hs_at + 2] = (uint8_t)(n - hs_at - 3);
    b[rec_at] = (uint8_t)((n - rec_at - 2) >> 8), b[rec_at + 1] = (uint8_t)(n - rec_at - 2);
    return n;
}

static void test_tls_alpn(void **state)
{
    uint8_t b[256];
    size_t full = server_hello(b, "h2"), n;
    char out[16];

    (void)state;
    assert_int_equal(tls_server_alpn(b, full, out, sizeof(out)), 1);
    assert_string_equal(out, "h2");
    for (n = 0; n < full; n++) { /* every cut loses the extension */
        uint8_t *d = dup_n(b, n);

        assert_int_equal(tls_server_alpn(d, n, out, sizeof(out)), 0);
        free(d);
    }
    full = server_hello(b, NULL);
    assert_int_equal(tls_server_alpn(b, full, out, sizeof(out)), 0);
    full = server_hello(b, "http/1.1");
    assert_int_equal(tls_server_alpn(b, full, out, 5), 1); /* cut to fit */
    assert_string_equal(out, "http");
    b[5] = 1; /* a ClientHello */
    assert_int_equal(tls_server_alpn(b, full, out, sizeof(out)), 0);
}

/* ---- QUIC ---- */

static void test_quic_version(void **state)
{
    static const uint8_t v1[] = {0xc3, 0, 0, 0, 1, 8};
    static const uint8_t draft29[] = {0xc0, 0xff, 0, 0, 29};
    static const uint8_t q046[] = {0xc3, 'Q', '0', '4', '6'};
    static const uint8_t q043[] = {0x0d, 1, 2, 3, 4, 5, 6, 7, 8, 'Q', '0', '4', '3', 1};
    static const uint8_t short_hdr[] = {0x43, 0, 0, 0, 1};
    char name[16];

    (void)state;
    assert_int_equal(quic_version(v1, sizeof(v1)), 1);
    assert_string_equal(quic_version_name(1, name, sizeof(name)), "v1");
    assert_int_equal(quic_version(draft29, sizeof(draft29)), 0xff00001d);
    assert_string_equal(quic_version_name(0xff00001d, name, sizeof(name)), "draft-29");
    assert_string_equal(quic_version_name(quic_version(q046, sizeof(q046)), name, sizeof(name)),
                        "Q046");
    assert_string_equal(quic_version_name(quic_version(q043, sizeof(q043)), name, sizeof(name)),
                        "Q043");
    assert_int_equal(quic_version(short_hdr, sizeof(short_hdr)), 0);
    assert_int_equal(quic_version(v1, 4), 0); /* cut */
    assert_string_equal(quic_version_name(0x6b3343cf, name, sizeof(name)), "v2");
    assert_string_equal(quic_version_name(0x12345678, name, sizeof(name)), "0x12345678");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_request),
        cmocka_unit_test(test_http_response),
        cmocka_unit_test(test_http_refused),
        cmocka_unit_test(test_http_truncations),
        cmocka_unit_test(test_http_long_values_cut),
        cmocka_unit_test(test_dhcp_message),
        cmocka_unit_test(test_dhcp_truncations),
        cmocka_unit_test(test_dhcp_option_overrun),
        cmocka_unit_test(test_tls_alpn),
        cmocka_unit_test(test_quic_version),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
