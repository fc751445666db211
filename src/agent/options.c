/*
 * options.c - the option table of sonde-agent. Defaults follow the Netify
 * agent where it has one (timeouts, stats interval).
 */
#include <stddef.h>
#include <string.h>

#include "options.h"
#include "dpi/dpi.h"

#define OPT(n, s, t, f, a, h, lo, hi)                                                              \
    {                                                                                              \
        n, s, t, offsetof(struct agent_settings, f), a, h, lo, hi                                  \
    }
#define DAY (24L * 3600L)

const struct config_opt agent_options[] = {
    OPT("interface", 'i', CONFIG_LIST, interfaces, "IFACE", "capture live on IFACE (repeatable)", 0,
        0),
    OPT("read", 'r', CONFIG_LIST, files, "FILE",
        "read a pcap/pcapng file, - for stdin (repeatable)", 0, 0),
    OPT("output", 'o', CONFIG_LIST, outputs, "TYPE:PATH",
        "json:PATH, pb:PATH (- = stdout) or null (repeatable; default json:-)", 0, 0),
    OPT("push", 0, CONFIG_LIST, push, "URL",
        "push events to a collector: grpcs://HOST:PORT, or grpc:// for cleartext (repeatable)", 0,
        0),
    OPT("listen", 0, CONFIG_STRING, listen, "ADDR",
        "serve Subscribe, GetInfo and health to subscribers on ADDR", 0, 0),
    OPT("tls-cert", 0, CONFIG_STRING, tls_cert, "PEM", "this agent's certificate (docs/certs.md)",
        0, 0),
    OPT("tls-key", 0, CONFIG_STRING, tls_key, "PEM", "its private key", 0, 0),
    OPT("tls-ca", 0, CONFIG_STRING, tls_ca, "PEM", "CA that signs collectors and subscribers", 0,
        0),
    OPT("insecure-cleartext", 0, CONFIG_BOOL, cleartext, NULL,
        "--listen without TLS (HTTP/2 cleartext); only on a loopback address", 0, 0),
    OPT("insecure-cleartext-anywhere", 0, CONFIG_BOOL, cleartext_anywhere, NULL,
        "allow cleartext (--insecure-cleartext, grpc://) on any address", 0, 0),
    OPT("push-queue", 0, CONFIG_INT, push_queue_mb, "MB",
        "unacknowledged events kept in memory per collector (default 64)", 1, 65536),
    OPT("spool-dir", 0, CONFIG_STRING, spool_dir, "DIR",
        "beyond --push-queue, and at exit, keep unacknowledged events here", 0, 0),
    OPT("spool-size", 0, CONFIG_INT, spool_mb, "MB",
        "spool bound per collector; beyond it events are dropped and counted (default 1024)", 1,
        1L << 24),
    OPT("push-drain", 0, CONFIG_INT, push_drain, "SECONDS",
        "at exit, wait this long for collectors to acknowledge (default 10)", 0, 3600),
    OPT("subscriber-queue", 0, CONFIG_INT, subscriber_queue, "EVENTS",
        "events queued per subscriber before it misses some (default 65536)", 16, 1L << 24),
    OPT("events", 'e', CONFIG_STRING, events, "LIST",
        "event types to emit: comma list of names, 'default', 'all' (see docs/events.md)", 0, 0),
    OPT("filter", 'f', CONFIG_STRING, filter, "BPF", "BPF capture filter", 0, 0),
    OPT("snaplen", 's', CONFIG_INT, snaplen, "BYTES", "capture snapshot length (default 65535)", 64,
        262144),
    OPT("no-promisc", 'p', CONFIG_BOOL, no_promisc, NULL,
        "do not put interfaces in promiscuous mode", 0, 0),
    OPT("immediate", 0, CONFIG_BOOL, immediate, NULL,
        "deliver packets as they arrive (no kernel batching)", 0, 0),
    OPT("buffer-size", 'B', CONFIG_INT, buffer_mb, "MB", "kernel capture buffer size in MiB", 0,
        4096),
    OPT("threads", 't', CONFIG_INT, threads, "N",
        "flow worker threads (default: CPU cores; 1 = inline and deterministic)", 1, 64),
    OPT("sample", 0, CONFIG_INT, sample, "N", "account 1 in N packets to flows (default 1)", 1,
        1000000),
    OPT("packet-sample", 0, CONFIG_INT, packet_sample, "N",
        "emit packet-layer records for 1 in N packets (default 1)", 1, 1000000),
    OPT("local-net", 'L', CONFIG_LIST, local_nets, "CIDR", "add a local network (repeatable)", 0,
        0),
    OPT("no-default-local-nets", 0, CONFIG_BOOL, no_default_local_nets, NULL,
        "do not treat RFC 1918, 100.64/10, ULA and link-local as local", 0, 0),
    OPT("max-flows", 0, CONFIG_INT, max_flows, "N",
        "flow table size; when full the oldest idle flow is evicted (default 1048576)", 16,
        1L << 30),
    OPT("tcp-timeout", 0, CONFIG_INT, tcp_timeout, "SECONDS",
        "idle timeout of established TCP flows (default 300)", 1, DAY),
    OPT("udp-timeout", 0, CONFIG_INT, udp_timeout, "SECONDS",
        "idle timeout of UDP, other and unestablished TCP flows (default 30)", 1, DAY),
    OPT("closed-timeout", 0, CONFIG_INT, closed_timeout, "SECONDS",
        "idle timeout of TCP flows after FIN/RST (default 30)", 1, DAY),
    OPT("flow-stats-interval", 0, CONFIG_INT, flow_stats_interval, "SECONDS",
        "flow_stats period in packet time, 0 = off (default 15)", 0, DAY),
    OPT("stats-interval", 0, CONFIG_INT, stats_interval, "SECONDS",
        "interface_stats and endpoint period in packet time, 0 = only at exit (default 15)", 0,
        DAY),
    OPT("status-interval", 0, CONFIG_INT, status_interval, "SECONDS",
        "agent_status period in wall-clock time, 0 = only at exit (default 15)", 0, DAY),
    OPT("queue-size", 0, CONFIG_INT, queue_size, "EVENTS",
        "event queue bound; beyond it live capture drops and counts (default 65536)", 64, 1L << 24),
    OPT("agent-id", 0, CONFIG_STRING, agent_id, "ID", "agent identity (default: hostname)", 0, 0),
    OPT("community-id-seed", 0, CONFIG_INT, cid_seed, "N", "Community ID seed (default 0)", 0,
        65535),
    OPT("no-dpi", 0, CONFIG_BOOL, no_dpi, NULL, "disable deep packet inspection", 0, 0),
    OPT("dpi-packets", 0, CONFIG_INT, dpi_packets, "N",
        "inspect at most the first N packets of a flow (default 32)", 1, DPI_PACKETS_MAX),
    OPT("dns-port", 0, CONFIG_LIST, dns_ports, "PORT",
        "parse DNS on PORT too (repeatable; 53 and 5353 always are)", 0, 0),
    OPT("user", 'u', CONFIG_STRING, user, "USER", "drop privileges to USER once capture is open", 0,
        0),
    OPT("config", 'c', CONFIG_STRING, config, "FILE",
        "JSON config file; keys are these long option names", 0, 0),
    OPT("verbose", 'v', CONFIG_BOOL, verbose, NULL, "log progress and counters to stderr", 0, 0),
    OPT("quiet", 'q', CONFIG_BOOL, quiet, NULL, "log errors only", 0, 0),
    OPT("version", 'V', CONFIG_BOOL, version, NULL, "print the version and exit", 0, 0),
    OPT("help", 'h', CONFIG_BOOL, help, NULL, "show this help and exit", 0, 0),
    {NULL, 0, 0, 0, NULL, NULL, 0, 0},
};

void agent_settings_defaults(struct agent_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->threads = 0; /* resolved to the number of cores */
    s->snaplen = 65535;
    s->max_flows = 1048576;
    s->sample = 1;
    s->packet_sample = 1;
    s->queue_size = 65536;
    s->dpi_packets = DPI_PACKETS_DEFAULT;
    s->tcp_timeout = 300;
    s->udp_timeout = 30;
    s->closed_timeout = 30;
    s->flow_stats_interval = 15;
    s->stats_interval = 15;
    s->status_interval = 15;
    s->push_queue_mb = 64;
    s->spool_mb = 1024;
    s->push_drain = 10;
    s->subscriber_queue = 65536;
}
