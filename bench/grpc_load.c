/*
 * grpc_load.c - the agent's push path at full speed, for `make bench`.
 *
 * Builds one realistic Flow event (every field a DPI'd TLS flow fills),
 * and for SECONDS hands copies of it to the agent's gRPC exporter (rpcout,
 * the code sonde-agent runs) in batches of 1000, each with its own seq
 * stamped on by the exporter's ev_put_seq, in wait mode: when the
 * collector falls behind, the generator waits, so the rate measured is what the collector sustains
 * and acknowledges. Prints one JSON object: events, seconds, events/s,
 * CPU seconds of this process, bytes per event.
 *
 * usage: grpc_load URL SECONDS [CERT KEY CA]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "events/emit.h"
#include "export/rpcout.h"
#include "sonde/v1/events.pb-c.h"

#define LOAD_MAX_EVENT 2048

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* A flow as the agent reports a detected TLS connection. */
static size_t template_flow(uint8_t *out)
{
    Sonde__V1__Flow f = SONDE__V1__FLOW__INIT;
    Sonde__V1__Detection d = SONDE__V1__DETECTION__INIT;
    Sonde__V1__Ssl ssl = SONDE__V1__SSL__INIT;

    f.agent_id = "bench-agent";
    f.timestamp = 1700000000123ULL;
    f.interface = "eth0";
    f.digest = "4ae490bfcfc978ce634cc11a5a5dfe15d6b96c42";
    f.community_id = "1:R7uRzRAqE89z8bjaMFo13Pj5oqg=";
    f.ip_version = 4;
    f.ip_protocol = 6;
    f.local_mac = "28:37:37:00:6d:c8";
    f.other_mac = "10:13:31:f1:39:76";
    f.local_ip = "192.168.1.84";
    f.other_ip = "142.250.185.78";
    f.local_port = 52973;
    f.other_port = 443;
    f.other_type = SONDE__V1__OTHER_TYPE__OTHER_TYPE_REMOTE;
    f.local_origin = 1;
    f.first_seen_at = 1700000000000ULL;
    f.last_seen_at = 1700000000123ULL;
    f.local_bytes = 1834;
    f.other_bytes = 6235;
    f.local_packets = 9;
    f.other_packets = 8;
    f.total_bytes = 8069;
    f.total_packets = 17;
    f.established = 1;
    f.sampling_rate = 1;
    f.dns_host_name = "www.google.com";
    d.detected_protocol = 91;
    d.detected_protocol_name = "TLS";
    d.detected_application = 126;
    d.detected_application_name = "Google";
    d.host_server_name = "www.google.com";
    ssl.version = 0x0304;
    ssl.cipher_suite = 0x1301;
    ssl.client_sni = "www.google.com";
    ssl.client_ja3 = "cd08e31494f9531f560d64c695473da9";
    ssl.server_ja3 = "eb1d94daa7e0344597e756a1fb6e7054";
    ssl.alpn = "h2";
    d.ssl = &ssl;
    f.detection = &d;
    return sonde__v1__flow__pack(&f, out);
}

int main(int argc, char **argv)
{
    struct rpcout_cfg cfg = {0};
    volatile sig_atomic_t stop = 0;
    struct rpcout *o;
    char err[RPC_ERR_MAX];
    uint8_t ev[LOAD_MAX_EVENT + EV_SEQ_ROOM];
    size_t len;
    uint64_t n = 0, seq = 1;
    double secs, t0, c0, t1;

    if (argc != 3 && argc != 6) {
        fprintf(stderr, "usage: grpc_load URL SECONDS [CERT KEY CA]\n");
        return 2;
    }
    secs = atof(argv[2]);
    cfg.push[cfg.npush++] = argv[1];
    if (argc == 6)
        cfg.tls = (struct rpc_tls){argv[3], argv[4], argv[5], 0};
    cfg.queue_bytes = 64u << 20;
    cfg.drain_ms = 30000;
    cfg.sub_queue_events = 1024;
    cfg.wait = 1;
    cfg.stop = &stop;
    o = rpcout_start(&cfg, err);
    if (o == NULL) {
        fprintf(stderr, "grpc_load: %s\n", err);
        return 1;
    }
    len = template_flow(ev);
    t0 = now_s();
    c0 = cpu_s();
    do {
        int i;

        for (i = 0; i < 1000; i++, n++, seq++)
            rpcout_event(o, EV_FLOW, seq, ev, len + ev_put_seq(ev + len, seq));
        rpcout_flush(o); /* as the agent's exporter does after each batch */
    } while (now_s() - t0 < secs);
    if (rpcout_stop(o) < 0)
        return 1;
    t1 = now_s();
    printf("{\"events\": %llu, \"seconds\": %.3f, \"events_per_s\": %.0f, \"cpu_s\": %.3f, "
           "\"event_bytes\": %zu}\n",
           (unsigned long long)n, t1 - t0, (double)n / (t1 - t0), cpu_s() - c0, len + 6);
    return 0;
}
