/*
 * app.h - what application detection learned about one flow.
 *
 * Filled once, when a flow's detection ends (dpi.c), in the worker's one
 * scratch record, and copied into the flow event at once: the flow itself
 * keeps nothing of it. Strings are fixed-size and NUL-terminated,
 * cut to fit; names are copied because only the worker's nDPI module can
 * resolve them.
 */
#ifndef SONDE_APP_H
#define SONDE_APP_H

#include <stdint.h>

#define APP_NAME_MAX   64
#define APP_HOST_MAX   256
#define APP_TEXT_MAX   256
#define APP_HASH_MAX   33 /* MD5 hex + NUL */
#define APP_BANNER_MAX 48

struct flow_app {
    uint8_t detected;            /* the detection fields below are set (dpi.c) */
    char dns_host[APP_HOST_MAX]; /* from the DNS hint cache, "" if none */
    uint16_t master, app;        /* nDPI protocol ids */
    uint8_t guessed, complete;
    uint16_t packets; /* packets inspected */
    char name[APP_NAME_MAX], master_name[APP_NAME_MAX], app_name[APP_NAME_MAX];
    char cat_app[APP_NAME_MAX], cat_proto[APP_NAME_MAX];
    char host[APP_HOST_MAX];
    uint64_t risk; /* nDPI risk bitmap */
    uint16_t risk_score, risk_client, risk_server;
    struct {
        uint16_t version, cipher;
        uint32_t not_before, not_after;
        uint8_t fingerprint[20];
        uint8_t has_fingerprint;
        char version_name[APP_NAME_MAX];
        char ja3c[APP_HASH_MAX], ja3s[APP_HASH_MAX];
        char alpn[APP_TEXT_MAX], versions[APP_NAME_MAX];
        char issuer[APP_TEXT_MAX], subject[APP_TEXT_MAX], server_names[APP_TEXT_MAX];
        char alpn_server[APP_NAME_MAX]; /* read by sonde: nDPI 4.2 keeps only the client's */
    } tls;
    uint8_t has_tls;
    struct {
        uint16_t status;
        char method[16];
        char url[APP_TEXT_MAX], user_agent[APP_TEXT_MAX], content_type[APP_NAME_MAX];
    } http;
    uint8_t has_http;
    struct {
        char fingerprint[APP_BANNER_MAX], class_ident[APP_BANNER_MAX];
    } dhcp;
    uint32_t quic_version; /* long-header version of a QUIC flow, 0 if none seen */
    uint8_t is_quic;
    char mdns_answer[APP_HOST_MAX];
    struct {
        char client[APP_BANNER_MAX], server[APP_BANNER_MAX];
        char hassh_client[APP_HASH_MAX], hassh_server[APP_HASH_MAX];
    } ssh;
};

#endif
