/* transport.h — collective communication between the N peers of a run.
 *
 * A pl_transport connects one peer (rank R of N) to the other peers of a run
 * and offers the three collectives data-parallel training needs: an in-place
 * SUM all-reduce of a float vector (gradients), a broadcast (the model from
 * rank 0 at start) and a barrier. The backend is selected by URL:
 *
 *   tcp://HOST:PORT,HOST:PORT,...   direct TCP mesh; peer i listens on entry i
 *   amqp:// , amqps://              a RabbitMQ broker (docs/rabbitmq.md)
 *
 * Guarantees of every backend:
 *   - all-reduce results are BIT-IDENTICAL on every peer: each chunk of the
 *     vector is reduced by one owner peer, which adds the N contributions in
 *     rank order 0, 1, ..., N-1 ((x0 + x1) + x2) + ...; every peer then
 *     receives the owner's result bytes unchanged;
 *   - messages use the wire format of wire.h (CRC-32C on every header and
 *     payload) and codec payloads of compress.h;
 *   - every wait is bounded by peer_timeout_ms of silence from the peer
 *     waited on; a peer that is silent, closes its connection or sends a
 *     malformed or corrupted (CRC) message makes the call fail with an error
 *     naming its rank and address — never a hang, never applied data;
 *   - messages of another run or of an older step are discarded and logged.
 *
 * After a failed collective the handle refuses further collectives (its
 * streams may be mid-message): close it and open a new one.
 *
 * A handle is used by one thread at a time. Collectives must be called by
 * all peers in the same order with the same arguments (n, len, root, step).
 */
#ifndef PEERLESS_TRANSPORT_H
#define PEERLESS_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "peerless/status.h"

typedef struct pl_transport pl_transport;

/* Traffic of one call (or of the handle's lifetime, see _stats_total).
 * Bytes are actual bytes on the wire, message headers included. */
typedef struct pl_xfer_stats {
    uint64_t bytes_sent;
    uint64_t bytes_recv;
    uint64_t msgs_sent;
    uint64_t msgs_recv;
    uint64_t bytes_spliced; /* of bytes_sent: handed to the kernel by reference, not
                               copied (tcp:// splicing, see PEERLESS_TCP_SPLICE) */
    double send_s;   /* seconds inside send calls */
    double recv_s;   /* seconds inside receive calls (incl. CRC, decode) */
    double wait_s;   /* seconds blocked waiting for peers (poll) */
} pl_xfer_stats;

/* Receives each log line (discarded messages, rejected peers); no newline.
 * Called from the thread that calls into the transport. */
typedef void (*pl_transport_log_fn)(void *ctx, const char *line);

typedef struct pl_transport_opts {
    const char *url;          /* borrowed; "tcp://h:p,h:p,..." */
    int rank;                 /* 0 <= rank < size */
    int size;                 /* number of peers; must match the URL's list */
    const char *run;          /* run name; peers of another run are rejected */
    int peer_timeout_ms;      /* max silence of a peer inside a collective */
    int connect_timeout_ms;   /* deadline for open() to reach every peer */
    const char *codec;        /* all-reduce codec spec (compress.h): "none" (or
                                 NULL), "fp16", "qsgd8[:B]", "qsgd4[:B]",
                                 "topk:R" — see pl_transport_allreduce_sum */
    uint64_t seed;            /* seeds stochastic codecs (qsgd) */
    size_t segment_bytes;     /* pipelining unit of large messages; 0 = 256 KiB */
    pl_transport_log_fn log;  /* NULL: lines go to stderr */
    void *log_ctx;
} pl_transport_opts;

/* Defaults: rank 0, size 1, run "peerless", peer timeout 30 s, connect
 * timeout 60 s, codec none, 256 KiB segments, log to stderr. */
void pl_transport_opts_init(pl_transport_opts *o);

/* Comma-separated names of the codecs the all-reduce accepts. */
const char *pl_transport_codecs(void);

/* Connect to every peer of the run (retrying until connect_timeout_ms while
 * peers start) and check that they agree on run, rank and size.
 * On success *out is a new handle the caller owns (pl_transport_close).
 * `o` and its strings are copied; they need not outlive the call. */
int pl_transport_open(const pl_transport_opts *o, pl_transport **out, pl_err *err);

/* In-place SUM of data[0..n) over all peers: on success every peer holds the
 * same bytes. With a codec, every peer's contribution to a chunk travels
 * encoded, its own included (one codec state per (vector length,
 * destination): top-k keeps its error-feedback residual there, QSGD its
 * deterministic call count), and the owner adds the decoded contributions
 * in rank order. The owner then encodes the reduced chunk once more with the
 * same codec (fp16, qsgd) and keeps the decoded values itself, so every peer
 * ends with the owner's exact bytes; with top-k the reduced chunk (at most
 * N*k nonzeros) is all-gathered exactly, as a sparse topk payload or raw
 * float32, whichever is shorter (pl_codec_encode_sparse).
 * `step` tags the messages (older steps' leftovers are discarded).
 * `stats` (may be NULL) receives this call's traffic. On failure the contents
 * of data are unspecified and the step must be discarded. */
int pl_transport_allreduce_sum(pl_transport *t, float *data, size_t n, uint64_t step,
                               pl_xfer_stats *stats, pl_err *err);

/* The same SUM, never compressed: whatever the handle's codec, every
 * contribution and every result travels as raw float32 (codec none on the
 * wire), so data ends as the rank-order float sum ((x0 + x1) + x2) + ...
 * bit-identical on every peer, with the same bounded waits and message
 * checks. For small exact values that share the handle with compressed
 * gradients: sample counts, loss sums, evaluation counts, batch-norm
 * buffers. Calls of both kinds may be interleaved on one handle (each with
 * its own, increasing step); an exact call leaves the codec state of the
 * compressed one (top-k residuals, QSGD call counts) untouched. */
int pl_transport_allreduce_sum_exact(pl_transport *t, float *data, size_t n, uint64_t step,
                                     pl_xfer_stats *stats, pl_err *err);

/* Copy buf[0..len) of peer `root` into buf on every peer (exact bytes). */
int pl_transport_broadcast(pl_transport *t, void *buf, size_t len, int root, uint64_t step,
                           pl_err *err);

/* Returns once every peer has entered the barrier of this step. */
int pl_transport_barrier(pl_transport *t, uint64_t step, pl_err *err);

/* Traffic since open (all calls). */
void pl_transport_stats_total(const pl_transport *t, pl_xfer_stats *out);

int pl_transport_rank(const pl_transport *t);
int pl_transport_size(const pl_transport *t);

/* Close connections and free the handle. NULL is a no-op. */
void pl_transport_close(pl_transport *t);

#endif
