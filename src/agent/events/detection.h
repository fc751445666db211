/*
 * detection.h - the Detection part of a flow event, from a struct flow_app.
 */
#ifndef SONDE_DETECTION_H
#define SONDE_DETECTION_H

#include "dpi/app.h"
#include "sonde/v1/events.pb-c.h"

#define EV_DETECTION_RISKS 64

/* The messages and strings one Detection points into; lives on the stack
 * of the caller while the flow event is packed. */
struct ev_detection {
    Sonde__V1__Detection d;
    Sonde__V1__Category cat;
    Sonde__V1__Risks risks;
    Sonde__V1__Ssl ssl;
    Sonde__V1__HttpInfo http;
    Sonde__V1__DhcpInfo dhcp;
    Sonde__V1__Ssh ssh;
    Sonde__V1__Quic quic;
    char quic_version[16];
    char *risk_names[EV_DETECTION_RISKS];
    uint32_t risk_ids[EV_DETECTION_RISKS];
    char fingerprint[41];
    char server_cn[APP_TEXT_MAX];
};

Sonde__V1__Detection *ev_detection_fill(struct ev_detection *x, const struct flow_app *a);

#endif
