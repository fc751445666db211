/*
 * options.h - every setting of sonde-agent, from flags or the config file.
 */
#ifndef SONDE_OPTIONS_H
#define SONDE_OPTIONS_H

#include "common/config.h"

struct agent_settings {
    struct config_list interfaces, files, outputs, local_nets, dns_ports, push;
    char *config, *events, *filter, *agent_id, *user;
    char *listen, *tls_cert, *tls_key, *tls_ca, *spool_dir;
    long push_queue_mb, spool_mb, push_drain, subscriber_queue;
    int cleartext, cleartext_anywhere;
    long threads, snaplen, buffer_mb, max_flows, sample, packet_sample, cid_seed, queue_size;
    long dpi_packets;
    long tcp_timeout, udp_timeout, closed_timeout;
    long flow_stats_interval, stats_interval, status_interval;
    int no_promisc, immediate, no_dpi, no_default_local_nets, verbose, quiet, help, version;
};

extern const struct config_opt agent_options[];
#define AGENT_SYNOPSIS "sonde-agent (-i IFACE | -r FILE)... [-o TYPE:PATH]... [options]"

void agent_settings_defaults(struct agent_settings *s);

#endif
