/* peer_internal.h — helpers shared inside src/peer/ (not public). */
#ifndef PEERLESS_PEER_INTERNAL_H
#define PEERLESS_PEER_INTERNAL_H

#include "peerless/data.h"
#include "peerless/peer.h"

/* Load data object `key` (written by pl_split_write) from the store into a
 * new dataset (*out, owned by the caller). */
int pl_shard_load(pl_store *st, const char *key, pl_dataset **out, pl_err *err);

/* Resident set size in MB and CPU seconds (user + system) of this process. */
double pl_proc_rss_mb(void);
double pl_proc_peak_rss_mb(void);
double pl_proc_cpu_s(void);
double pl_clock_s(void);

#endif
