/*
 * agent.h - the agent's pipeline: sources -> decode -> flow workers ->
 * event queue -> exporter.
 *
 * Threads: one capture thread (the caller of agent_run) reads every source
 * and decodes; with --threads 1 it also runs the flow engine itself
 * (inline: no copy, no hand-off, deterministic); with N > 1 it hands each
 * packet to one of N workers through an SPSC ring, chosen by a symmetric
 * hash of the addresses so both directions, and every fragment, of a flow
 * reach the same worker. One exporter thread writes the outputs.
 */
#ifndef SONDE_AGENT_H
#define SONDE_AGENT_H

#include <signal.h>

#include "options.h"

/* Runs until end of input or *stop; returns the process exit code. */
int agent_run(const struct agent_settings *cfg, volatile sig_atomic_t *stop);

#endif
