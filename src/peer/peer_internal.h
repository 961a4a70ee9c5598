/* peer_internal.h — helpers shared inside src/peer/ (not public). */
#ifndef PEERLESS_PEER_INTERNAL_H
#define PEERLESS_PEER_INTERNAL_H

#include "peerless/data.h"
#include "peerless/nn.h"
#include "peerless/peer.h"

/* Load data object `key` (written by pl_split_write) from the store into a
 * new dataset (*out, owned by the caller). */
int pl_shard_load(pl_store *st, const char *key, pl_dataset **out, pl_err *err);

/* Serverless offload of a step's batches (offload.c). */
typedef struct pl_offload pl_offload;
struct pl_model;
int pl_offload_create(const pl_peer_config *cfg, pl_store *store, int per_step, pl_offload **out, pl_err *err);
void pl_offload_destroy(pl_offload *o);
/* Publish the model as version `step`, run the state machine over batch
 * objects [first, first+k), add the results into the model's gradients (in
 * batch order) and sample-weighted buffers into bacc. */
int pl_offload_step(pl_offload *o, struct pl_model *m, int step, int first, int k, float *bacc, int *samples,
                    double *loss_sum, pl_err *err);
double pl_offload_last_seconds(const pl_offload *o);

/* Resident set size in MB and CPU seconds (user + system) of this process. */
double pl_proc_rss_mb(void);
double pl_proc_peak_rss_mb(void);
double pl_proc_cpu_s(void);
double pl_clock_s(void);

#endif
