/*
 * app.h - what application detection learned about one flow.
 *
 * Filled once, when a flow's detection ends (dpi.c), in the worker's one
 * scratch record, and copied into the flow event at once: the flow itself
 * keeps nothing of it. Strings are packed in text[], NUL-terminated and
 * cut to their field's limit; names are copied because only the worker's
 * nDPI module can resolve them.
 */
#ifndef SONDE_APP_H
#define SONDE_APP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define APP_NAME_MAX   64
#define APP_HOST_MAX   256
#define APP_TEXT_MAX   256
#define APP_HASH_MAX   33 /* MD5 hex + NUL */
#define APP_BANNER_MAX 48
#define APP_METHOD_MAX 16

/* Room for every string at its largest, so app_put never runs out. */
#define APP_TEXT_SIZE                                                                              \
    (1 + 3 * APP_HOST_MAX + 5 * APP_NAME_MAX +                                                     \
     (4 * APP_NAME_MAX + 2 * APP_HASH_MAX + 4 * APP_TEXT_MAX) + /* tls */                          \
     (APP_METHOD_MAX + 2 * APP_TEXT_MAX + APP_NAME_MAX) +       /* http */                         \
     2 * APP_BANNER_MAX + 2 * APP_BANNER_MAX + 2 * APP_HASH_MAX /* dhcp, ssh */)

/*
 * A string of the result: its offset in text[]; 0 is "" (text[0] is NUL).
 * The strings are packed one after another, so a result is copied into
 * its flow event at the length it has (app_size), not at the few
 * kilobytes every string at its largest would take.
 */
typedef uint16_t app_str;

struct flow_app {
    uint8_t detected;     /* the detection fields below are set (dpi.c) */
    app_str dns_host;     /* from the DNS hint cache, "" if none */
    uint16_t master, app; /* nDPI protocol ids */
    uint8_t guessed, complete;
    uint16_t packets; /* packets inspected */
    app_str name, master_name, app_name;
    app_str cat_app, cat_proto;
    app_str host;
    uint64_t risk; /* nDPI risk bitmap */
    uint16_t risk_score, risk_client, risk_server;
    struct {
        uint16_t version, cipher;
        uint32_t not_before, not_after;
        uint8_t fingerprint[20];
        uint8_t has_fingerprint;
        app_str version_name;
        app_str ja3c, ja3s;
        app_str alpn, versions;
        app_str issuer, subject, server_names;
        app_str alpn_server; /* read by sonde: nDPI 4.2 keeps only the client's */
    } tls;
    uint8_t has_tls;
    struct {
        uint16_t status;
        app_str method;
        app_str url, user_agent, content_type;
    } http;
    uint8_t has_http;
    struct {
        app_str fingerprint, class_ident;
    } dhcp;
    uint32_t quic_version; /* long-header version of a QUIC flow, 0 if none seen */
    uint8_t is_quic;
    app_str mdns_answer;
    struct {
        app_str client, server;
        app_str hassh_client, hassh_server;
    } ssh;
    uint16_t used; /* bytes of text[] in use */
    char text[APP_TEXT_SIZE];
};

static inline const char *app_text(const struct flow_app *a, app_str s)
{
    return a->text + s;
}

/* Empty: no detection, every string "". */
static inline void app_reset(struct flow_app *a)
{
    memset(a, 0, offsetof(struct flow_app, text));
    a->text[0] = '\0';
    a->used = 1;
}

/* Add a string, cut to max - 1 bytes; NULL and "" give 0. */
static inline app_str app_put(struct flow_app *a, const char *s, size_t max)
{
    size_t n = s ? strnlen(s, max - 1) : 0;
    app_str at = a->used;

    if (n == 0 || a->used + n + 1 > sizeof(a->text))
        return 0;
    memcpy(a->text + at, s, n);
    a->text[at + n] = '\0';
    a->used = (uint16_t)(a->used + n + 1);
    return at;
}

/* The bytes of a that are in use: what a copy of it needs. */
static inline size_t app_size(const struct flow_app *a)
{
    return offsetof(struct flow_app, text) + a->used;
}

#endif
