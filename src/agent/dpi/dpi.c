/*
 * dpi.c - nDPI per worker; see dpi.h.
 *
 * The detection loop follows nDPI's own reader (ndpiReader) so that the
 * two agree on the same capture: every packet goes to
 * ndpi_detection_process_packet until nDPI names an application and has
 * no extra dissection left, or until the packet limit; then, if nothing
 * was found, ndpi_detection_giveup() guesses.
 */
#include <stdlib.h>
#include <string.h>

#include <ndpi/ndpi_api.h>

#include "dns.h"
#include "dpi.h"
#include "quic.h"
#include "tls.h"

#define US_PER_MS 1000

/*
 * nDPI's per-flow state is about 1 KiB and lives only while a flow is under
 * inspection; released states are kept for the next flow (their pointer
 * fields already freed by ndpi_free_flow_data) instead of going back to
 * malloc, up to DPI_POOL_MAX of them.
 */
#define DPI_POOL_MAX 4096

struct dpi_pooled {
    struct dpi_pooled *next;
};

/*
 * What sonde reads itself from the packets under inspection, where nDPI
 * 4.2 keeps nothing: it lives right after nDPI's flow state, in the same
 * allocation, so it costs nothing once detection is over.
 */
struct dpi_extra {
    uint32_t quic_version;
    char alpn_server[APP_NAME_MAX];
    char mdns_answer[APP_HOST_MAX];
};

struct dpi {
    struct ndpi_detection_module_struct *mod;
    unsigned max_packets;
    size_t flow_size; /* sizeof(struct ndpi_flow_struct) of the library we run with */
    size_t extra_off; /* where struct dpi_extra starts: flow_size, aligned */
    struct dpi_pooled *pool;
    unsigned npool;
    struct flow_app app; /* the result being handed to the flow event */
};

struct dpi *dpi_new(unsigned max_packets)
{
    struct dpi *d = calloc(1, sizeof(*d));
    NDPI_PROTOCOL_BITMASK all;

    if (d == NULL)
        return NULL;
    d->mod = ndpi_init_detection_module(ndpi_no_prefs);
    if (d->mod == NULL) {
        free(d);
        return NULL;
    }
    NDPI_BITMASK_SET_ALL(all);
    ndpi_set_protocol_detection_bitmask2(d->mod, &all);
    ndpi_finalize_initialization(d->mod);
    d->max_packets = max_packets ? max_packets : DPI_PACKETS_DEFAULT;
    d->flow_size = ndpi_detection_get_sizeof_ndpi_flow_struct();
    d->extra_off =
        (d->flow_size + _Alignof(struct dpi_extra) - 1) & ~(_Alignof(struct dpi_extra) - 1);
    return d;
}

void dpi_free(struct dpi *d)
{
    if (d == NULL)
        return;
    while (d->pool) {
        struct dpi_pooled *p = d->pool;

        d->pool = p->next;
        free(p);
    }
    ndpi_exit_detection_module(d->mod);
    free(d);
}

const char *dpi_risk_name(int r)
{
    return ndpi_risk2str((ndpi_risk_enum)r);
}

/* Detection is over for f: its nDPI state goes back to the pool. */
static void flow_state_release(struct dpi *d, struct flow *f)
{
    struct dpi_pooled *p = f->dpi;

    if (p == NULL)
        return;
    ndpi_free_flow_data(f->dpi);
    f->dpi = NULL;
    if (d->npool >= DPI_POOL_MAX) {
        free(p);
        return;
    }
    p->next = d->pool;
    d->pool = p;
    d->npool++;
}

static struct ndpi_flow_struct *flow_state_new(struct dpi *d)
{
    struct dpi_pooled *p = d->pool;

    if (p == NULL)
        return calloc(1, d->extra_off + sizeof(struct dpi_extra));
    d->pool = p->next;
    d->npool--;
    memset(p, 0, d->extra_off + sizeof(struct dpi_extra));
    return (struct ndpi_flow_struct *)(void *)p;
}

static struct dpi_extra *extra_of(const struct dpi *d, struct ndpi_flow_struct *nf)
{
    return (struct dpi_extra *)(void *)((char *)nf + d->extra_off);
}

/* Read what nDPI does not keep from one inspected packet. */
static void extra_packet(struct dpi *d, struct ndpi_flow_struct *nf, const struct pkt *p)
{
    struct dpi_extra *x = extra_of(d, nf);
    const uint8_t *data = p->data + p->payload_off;
    size_t len = pkt_payload_captured(p);

    if (len == 0)
        return;
    if (p->ip_proto == 6) {
        if (x->alpn_server[0] == '\0')
            tls_server_alpn(data, len, x->alpn_server, sizeof(x->alpn_server));
        return;
    }
    if (p->ip_proto != 17)
        return;
    if (x->quic_version == 0)
        x->quic_version = quic_version(data, len);
    if (x->mdns_answer[0] == '\0' && (p->sport == MDNS_PORT || p->dport == MDNS_PORT))
        dns_first_answer(data, len, x->mdns_answer, sizeof(x->mdns_answer));
}

static void fill_tls(struct flow_app *a, const struct ndpi_flow_struct *nf)
{
    char buf[APP_NAME_MAX];
    uint8_t known = 0;
    size_t i;

    a->has_tls = 1;
    a->tls.version = nf->protos.tls_quic.ssl_version;
    a->tls.cipher = nf->protos.tls_quic.server_cipher;
    a->tls.not_before = nf->protos.tls_quic.notBefore;
    a->tls.not_after = nf->protos.tls_quic.notAfter;
    if (a->tls.version)
        a->tls.version_name = app_put(
            a, ndpi_ssl_version2str(buf, sizeof(buf), a->tls.version, &known), APP_NAME_MAX);
    a->tls.ja3c = app_put(a, nf->protos.tls_quic.ja3_client, APP_HASH_MAX);
    a->tls.ja3s = app_put(a, nf->protos.tls_quic.ja3_server, APP_HASH_MAX);
    a->tls.alpn = app_put(a, nf->protos.tls_quic.alpn, APP_TEXT_MAX);
    a->tls.versions = app_put(a, nf->protos.tls_quic.tls_supported_versions, APP_NAME_MAX);
    a->tls.issuer = app_put(a, nf->protos.tls_quic.issuerDN, APP_TEXT_MAX);
    a->tls.subject = app_put(a, nf->protos.tls_quic.subjectDN, APP_TEXT_MAX);
    a->tls.server_names = app_put(a, nf->protos.tls_quic.server_names, APP_TEXT_MAX);
    for (i = 0; i < sizeof(a->tls.fingerprint); i++)
        if (nf->protos.tls_quic.sha1_certificate_fingerprint[i])
            a->tls.has_fingerprint = 1;
    memcpy(a->tls.fingerprint, nf->protos.tls_quic.sha1_certificate_fingerprint,
           sizeof(a->tls.fingerprint));
}

static void fill_http(struct flow_app *a, const struct ndpi_flow_struct *nf)
{
    a->has_http = 1;
    a->http.status = nf->http.response_status_code;
    if (nf->http.method != NDPI_HTTP_METHOD_UNKNOWN)
        a->http.method = app_put(a, ndpi_http_method2str(nf->http.method), APP_METHOD_MAX);
    a->http.url = app_put(a, nf->http.url, APP_TEXT_MAX);
    a->http.user_agent = app_put(a, nf->http.user_agent, APP_TEXT_MAX);
    a->http.content_type = app_put(a, nf->http.content_type, APP_NAME_MAX);
}

/* "TLS.Google", or "DNS" alone: what ndpi_protocol2name writes, without its snprintf. */
static app_str full_name(struct flow_app *a)
{
    const char *m = app_text(a, a->master_name), *p = app_text(a, a->app_name);
    char buf[APP_NAME_MAX];
    size_t n = strlen(m), k;

    if (*p == '\0' || n + 2 >= sizeof(buf))
        return a->master_name;
    memcpy(buf, m, n);
    k = strnlen(p, sizeof(buf) - n - 2);
    buf[n] = '.';
    memcpy(buf + n + 1, p, k);
    buf[n + 1 + k] = '\0';
    return app_put(a, buf, sizeof(buf));
}

static int is_proto(const ndpi_protocol *p, uint16_t id)
{
    return p->master_protocol == id || p->app_protocol == id;
}

/* Everything the flow event reports, out of nDPI's flow state. */
static struct flow_app *build(struct dpi *d, struct flow *f, struct ndpi_flow_struct *nf,
                              ndpi_protocol proto, int guessed, int complete)
{
    struct flow_app *a = &d->app;
    const struct dpi_extra *x = extra_of(d, nf);
    ndpi_protocol_category_t pcat;
    ndpi_protocol alone;

    app_reset(a);
    a->detected = 1;
    /* nDPI's pair: master (e.g. TLS) and app (e.g. Google); a lone
     * protocol comes as app with no master. */
    if (proto.master_protocol != NDPI_PROTOCOL_UNKNOWN) {
        a->master = proto.master_protocol;
        a->app = proto.app_protocol == proto.master_protocol ? 0 : proto.app_protocol;
    } else {
        a->master = proto.app_protocol;
        a->app = 0;
    }
    a->guessed = (uint8_t)guessed;
    a->complete = (uint8_t)complete;
    a->packets = f->dpi_packets;
    a->master_name = app_put(a, ndpi_get_proto_name(d->mod, a->master), APP_NAME_MAX);
    if (a->app)
        a->app_name = app_put(a, ndpi_get_proto_name(d->mod, a->app), APP_NAME_MAX);
    a->name = full_name(a);
    a->cat_app = app_put(a, ndpi_category_get_name(d->mod, proto.category), APP_NAME_MAX);
    alone.master_protocol = NDPI_PROTOCOL_UNKNOWN;
    alone.app_protocol = a->master;
    alone.category = NDPI_PROTOCOL_CATEGORY_UNSPECIFIED;
    pcat = ndpi_get_proto_category(d->mod, alone);
    a->cat_proto = app_put(a, ndpi_category_get_name(d->mod, pcat), APP_NAME_MAX);
    a->host = app_put(a, nf->host_server_name, APP_HOST_MAX);
    a->risk = nf->risk;
    if (a->risk) {
        uint16_t c = 0, s = 0;

        a->risk_score = ndpi_risk2score(nf->risk, &c, &s);
        a->risk_client = c;
        a->risk_server = s;
    }
    /* nf->protos is a union: read only the member of the detected protocol. */
    if (is_proto(&proto, NDPI_PROTOCOL_TLS) || is_proto(&proto, NDPI_PROTOCOL_DTLS) ||
        is_proto(&proto, NDPI_PROTOCOL_QUIC) || is_proto(&proto, NDPI_PROTOCOL_MAIL_SMTPS) ||
        is_proto(&proto, NDPI_PROTOCOL_MAIL_IMAPS) || is_proto(&proto, NDPI_PROTOCOL_MAIL_POPS)) {
        fill_tls(a, nf);
        a->tls.alpn_server = app_put(a, x->alpn_server, APP_NAME_MAX);
    }
    if (is_proto(&proto, NDPI_PROTOCOL_QUIC)) {
        a->is_quic = 1;
        a->quic_version = x->quic_version;
    }
    if (is_proto(&proto, NDPI_PROTOCOL_MDNS))
        a->mdns_answer = app_put(a, x->mdns_answer, APP_HOST_MAX);
    /* nf->http is outside the union: QUIC keeps its user agent there too. */
    if (is_proto(&proto, NDPI_PROTOCOL_HTTP) || nf->http.url || nf->http.response_status_code ||
        nf->http.user_agent)
        fill_http(a, nf);
    if (is_proto(&proto, NDPI_PROTOCOL_DHCP)) {
        a->dhcp.fingerprint = app_put(a, nf->protos.dhcp.fingerprint, APP_BANNER_MAX);
        a->dhcp.class_ident = app_put(a, nf->protos.dhcp.class_ident, APP_BANNER_MAX);
    }
    if (is_proto(&proto, NDPI_PROTOCOL_SSH)) {
        a->ssh.client = app_put(a, nf->protos.ssh.client_signature, APP_BANNER_MAX);
        a->ssh.server = app_put(a, nf->protos.ssh.server_signature, APP_BANNER_MAX);
        a->ssh.hassh_client = app_put(a, nf->protos.ssh.hassh_client, APP_HASH_MAX);
        a->ssh.hassh_server = app_put(a, nf->protos.ssh.hassh_server, APP_HASH_MAX);
    }
    return a;
}

/* Detection is over: build the result (guessing if nothing was found), free nDPI's state. */
static void finish(struct dpi *d, struct flow *f, ndpi_protocol proto, int complete,
                   struct flow_app **out)
{
    struct ndpi_flow_struct *nf = f->dpi;
    uint8_t guessed = 0;

    if (proto.app_protocol == NDPI_PROTOCOL_UNKNOWN)
        proto = ndpi_detection_giveup(d->mod, nf, 1, &guessed);
    *out = build(d, f, nf, proto, guessed, complete);
    flow_state_release(d, f);
}

int dpi_packet(struct dpi *d, struct flow *f, const struct pkt *p, struct flow_app **out)
{
    struct ndpi_flow_struct *nf = f->dpi;
    ndpi_protocol proto;
    uint32_t len;

    *out = NULL;
    if (nf == NULL) {
        nf = flow_state_new(d);
        if (nf == NULL) /* no memory: this packet goes uninspected */
            return 0;
        f->dpi = nf;
    }
    len = p->caplen - p->l3_off;
    if (len > 0xffff)
        len = 0xffff;
    proto = ndpi_detection_process_packet(d->mod, nf, p->data + p->l3_off, (unsigned short)len,
                                          p->ts_us / US_PER_MS);
    extra_packet(d, nf, p);
    f->dpi_packets++;
    if (f->dpi_packets < d->max_packets &&
        (proto.app_protocol == NDPI_PROTOCOL_UNKNOWN || ndpi_extra_dissection_possible(d->mod, nf)))
        return 0;
    finish(d, f, proto, 1, out);
    return 1;
}

void dpi_conclude(struct dpi *d, struct flow *f, struct flow_app **out)
{
    ndpi_protocol proto = {NDPI_PROTOCOL_UNKNOWN, NDPI_PROTOCOL_UNKNOWN,
                           NDPI_PROTOCOL_CATEGORY_UNSPECIFIED};

    *out = NULL;
    if (f->dpi == NULL) /* no nDPI state (out of memory): no result */
        return;
    proto.master_protocol = ((struct ndpi_flow_struct *)f->dpi)->detected_protocol_stack[1];
    proto.app_protocol = ((struct ndpi_flow_struct *)f->dpi)->detected_protocol_stack[0];
    finish(d, f, proto, 0, out);
}
