/*
 * detection.c - build the Detection message of a flow event; see detection.h.
 *
 * Sub-messages are set only when they have something to say (a flow with
 * no TLS has no ssl), so JSON and protobuf consumers can test for presence.
 */
#include <string.h>

#include "detection.h"
#include "dpi/dpi.h"
#include "dpi/quic.h"
#include "emit.h"

/* The CN of a distinguished name as nDPI writes it ("C=US, O=x, CN=name"). */
static void dn_cn(char *out, size_t size, const char *dn)
{
    const char *p = dn, *end;
    size_t n;

    out[0] = '\0';
    for (; (p = strstr(p, "CN=")) != NULL; p += 3) {
        if (p == dn || p[-1] == ' ' || p[-1] == ',' || p[-1] == '/')
            break;
    }
    if (p == NULL)
        return;
    p += 3;
    end = strchr(p, ',');
    n = end ? (size_t)(end - p) : strlen(p);
    if (n >= size)
        n = size - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

static void fill_risks(struct ev_detection *x, const struct flow_app *a)
{
    int r;

    sonde__v1__risks__init(&x->risks);
    for (r = 0; r < EV_DETECTION_RISKS; r++) {
        if (!(a->risk & (1ULL << r)))
            continue;
        x->risk_names[x->risks.n_risks++] = (char *)dpi_risk_name(r);
        x->risk_ids[x->risks.n_risk_ids++] = (uint32_t)r;
    }
    x->risks.risks = x->risk_names;
    x->risks.risk_ids = x->risk_ids;
    x->risks.ndpi_risk_score = a->risk_score;
    x->risks.ndpi_risk_score_client = a->risk_client;
    x->risks.ndpi_risk_score_server = a->risk_server;
    x->d.risks = &x->risks;
}

static void fill_ssl(struct ev_detection *x, const struct flow_app *a)
{
    sonde__v1__ssl__init(&x->ssl);
    x->ssl.version = a->tls.version;
    x->ssl.version_name = (char *)app_text(a, a->tls.version_name);
    x->ssl.cipher_suite = a->tls.cipher;
    x->ssl.client_sni = (char *)app_text(a, a->host);
    dn_cn(x->server_cn, sizeof(x->server_cn), app_text(a, a->tls.subject));
    x->ssl.server_cn = x->server_cn;
    x->ssl.server_names = (char *)app_text(a, a->tls.server_names);
    x->ssl.issuer_dn = (char *)app_text(a, a->tls.issuer);
    x->ssl.subject_dn = (char *)app_text(a, a->tls.subject);
    x->ssl.client_ja3 = (char *)app_text(a, a->tls.ja3c);
    x->ssl.server_ja3 = (char *)app_text(a, a->tls.ja3s);
    x->ssl.alpn = (char *)app_text(a, a->tls.alpn);
    x->ssl.tls_supported_versions = (char *)app_text(a, a->tls.versions);
    x->fingerprint[0] = '\0';
    if (a->tls.has_fingerprint)
        ev_fmt_hex(x->fingerprint, a->tls.fingerprint, sizeof(a->tls.fingerprint));
    x->ssl.cert_fingerprint = x->fingerprint;
    x->ssl.not_before = a->tls.not_before;
    x->ssl.not_after = a->tls.not_after;
    x->d.ssl = &x->ssl;
}

Sonde__V1__Detection *ev_detection_fill(struct ev_detection *x, const struct flow_app *a)
{
    sonde__v1__detection__init(&x->d);
    x->d.detected_protocol = a->master;
    x->d.detected_protocol_name = (char *)app_text(a, a->master_name);
    x->d.detected_application = a->app;
    x->d.detected_application_name = (char *)app_text(a, a->app_name);
    x->d.name = (char *)app_text(a, a->name);
    x->d.detection_guessed = a->guessed;
    x->d.detection_complete = a->complete;
    x->d.packets_inspected = a->packets;
    sonde__v1__category__init(&x->cat);
    x->cat.application = (char *)app_text(a, a->cat_app);
    x->cat.protocol = (char *)app_text(a, a->cat_proto);
    x->d.category = &x->cat;
    x->d.host_server_name = (char *)app_text(a, a->host);
    if (a->risk)
        fill_risks(x, a);
    if (a->has_tls)
        fill_ssl(x, a);
    if (a->has_http) {
        sonde__v1__http_info__init(&x->http);
        x->http.method = (char *)app_text(a, a->http.method);
        x->http.url = (char *)app_text(a, a->http.url);
        x->http.user_agent = (char *)app_text(a, a->http.user_agent);
        x->http.status_code = a->http.status;
        x->http.content_type = (char *)app_text(a, a->http.content_type);
        x->d.http = &x->http;
    }
    if (a->dhcp.fingerprint || a->dhcp.class_ident) {
        sonde__v1__dhcp_info__init(&x->dhcp);
        x->dhcp.fingerprint = (char *)app_text(a, a->dhcp.fingerprint);
        x->dhcp.class_ident = (char *)app_text(a, a->dhcp.class_ident);
        x->dhcp.hostname = (char *)app_text(a, a->host); /* nDPI puts option 12 there */
        x->d.dhcp = &x->dhcp;
    }
    if (a->is_quic) {
        sonde__v1__quic__init(&x->quic);
        x->quic.sni = (char *)app_text(a, a->host);
        x->quic.version = a->quic_version;
        x->quic.version_name =
            (char *)quic_version_name(a->quic_version, x->quic_version, sizeof(x->quic_version));
        x->d.quic = &x->quic;
    }
    x->d.mdns_answer = (char *)app_text(a, a->mdns_answer);
    if (a->ssh.client || a->ssh.server) {
        sonde__v1__ssh__init(&x->ssh);
        x->ssh.client_banner = (char *)app_text(a, a->ssh.client);
        x->ssh.server_banner = (char *)app_text(a, a->ssh.server);
        x->ssh.hassh_client = (char *)app_text(a, a->ssh.hassh_client);
        x->ssh.hassh_server = (char *)app_text(a, a->ssh.hassh_server);
        x->d.ssh = &x->ssh;
    }
    return &x->d;
}
