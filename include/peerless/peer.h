/* peer.h — P2P data-parallel training: data partitions in the object store,
 * and one peer's training loop.
 *
 * Store layout of a run (keys relative to the store URL):
 *   RUN/data/train-R.safetensors    peer R's training shard
 *   RUN/data/val-R.safetensors      peer R's validation shard
 *   RUN/data/test.safetensors       the whole test set
 *   RUN/data/batches/R/B.safetensors   batch B of peer R (with --batches)
 *   RUN/checkpoints/peer-R.safetensors final parameters + buffers of peer R
 * Every data object is safetensors with `input` (U8 [n, c, h, w], raw
 * pixels; peers apply the model's transforms) and `target` (I64 [n]), and
 * metadata format=peerless-shard-1, dataset, num_classes, split, rank, size.
 *
 * Synchronisation (pl_peer_run): a step averages the gradients of
 * `accumulate` local batches (0 = the whole epoch, the original's schedule)
 * over all peers, weighted by sample counts; batch-norm buffers are averaged
 * the same way. The transport sums in a fixed order and returns identical
 * bytes on every peer, so after every step all peers hold bit-identical
 * parameters and buffers; each step logs a checksum of the parameters.
 */
#ifndef PEERLESS_PEER_H
#define PEERLESS_PEER_H

#include <stdint.h>
#include <stdio.h>

#include "peerless/status.h"
#include "peerless/store.h"

/* ---- partitioning (peerless split) ---- */

typedef struct pl_split_config {
    const char *dataset;   /* fashion-mnist, mnist, cifar10, synthetic */
    const char *data_dir;  /* NULL: the dataset's default place */
    const char *run;       /* run name: the key prefix */
    int size;              /* number of peers */
    int batches;           /* >0: also write this many batch objects per peer */
    uint64_t seed;         /* shuffle before partitioning */
    double val_fraction;   /* per peer, like the original's 90/10 split */
} pl_split_config;

/* Shuffle the training set (seed), cut it into `size` equal shards (the
 * remainder is dropped so all peers run the same number of steps), split
 * each 90/10 into train/validation, and write the objects listed above.
 * Prints nothing; *report (may be NULL) receives a one-line summary. */
int pl_split_write(pl_store *store, const pl_split_config *cfg, char *report, size_t report_len,
                   pl_err *err);

/* Key of an object of the layout above, into buf. kind: "train", "val",
 * "test", "batch", "checkpoint". Returns buf. */
const char *pl_peer_key(char *buf, size_t len, const char *run, const char *kind, int rank, int batch);

/* ---- one peer ---- */

typedef struct pl_peer_config {
    int rank, size;
    const char *run;             /* run name (store prefix, message tag) */
    const char *store_url;       /* file://DIR or s3://BUCKET/PREFIX */
    const char *s3_endpoint;     /* optional */
    const char *transport_url;   /* tcp://h:p,... (entry i = rank i) */
    const char *model;
    const char *dataset;         /* for its transform defaults */
    int input_size;              /* 0: the model's default */
    int batch_size;
    int epochs;
    int accumulate;              /* local batches per step; 0 = whole epoch */
    int batches;                 /* >0: train on the split's B batch objects
                                    (in order, no augmentation) instead of the
                                    shard — the serverless data layout */
    const char *optimizer;
    double lr, momentum, weight_decay; /* lr <= 0: optimizer default; momentum/wd < 0: default */
    const char *loss;
    const char *compression;     /* none, fp16, qsgd8, qsgd4 */
    uint64_t seed;
    int threads;
    const char *backend;         /* fast | ref */
    int peer_timeout_ms;
    const char *lr_schedule;   /* plateau (default), constant, cosine, onecycle */
    int lr_patience, es_patience;
    double lr_factor, min_lr, min_delta;
    const char *metrics_path;    /* JSON lines per step (NULL: none) */
    const char *csv_path;        /* CSV export of the same rows (NULL: none) */
    int progress;                /* print "progress" lines on stderr */
    /* Serverless architecture (docs/serverless.md): each step's batches are
     * computed by functions driven by the generated state machine. */
    int serverless;
    const char *faas_url;        /* local platform http://HOST:PORT */
    const char *function_name;   /* default compute_gradient */
    int max_concurrency;         /* Map MaxConcurrency; 0 = unlimited */
    int function_timeout_s;      /* Task TimeoutSeconds; default 300 */
    int functions_aws;           /* 1: AWS Lambda (SigV4 Invoke API) instead of the local platform */
    const char *aws_endpoint;    /* Lambda and Step Functions endpoint override (NULL: AWS's) */
    const char *state_machine_arn; /* with functions_aws: run the step on AWS Step Functions
                                      (StartExecution + DescribeExecution) */
} pl_peer_config;

void pl_peer_config_init(pl_peer_config *c);

typedef struct pl_peer_result {
    int epochs, steps;
    int early_stopped;
    double test_accuracy, test_loss, val_loss;
    double seconds, compute_s, sync_s; /* compute_s: local gradients, or the
                                          functions' state-machine executions */
    uint64_t bytes_sent, bytes_recv;
    uint64_t model_checksum;  /* parameters + buffers, see pl_model_checksum */
} pl_peer_result;

/* Run one peer to completion: load its shards from the store, connect to
 * the other peers, train, evaluate, write its checkpoint to the store. */
int pl_peer_run(const pl_peer_config *cfg, pl_peer_result *res, pl_err *err);

#endif
