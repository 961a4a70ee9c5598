/* transport_impl.h — private contract between transport.c and its backends.
 *
 * A backend is one pl_transport_vt plus private state. The table is at the
 * level of collectives (not point-to-point sends) so that a broker backend
 * (AMQP: publish to an exchange, consume from a queue, no sockets between
 * peers) implements the same three operations its own way.
 */
#ifndef PEERLESS_TRANSPORT_IMPL_H
#define PEERLESS_TRANSPORT_IMPL_H

#include <stdint.h>

#include "peerless/transport.h"

typedef struct pl_transport_vt {
    const char *scheme; /* "tcp" matches "tcp://..." */
    /* `addr` is the URL after "scheme://"; on success *impl is owned by the
     * backend until close. */
    int (*open)(const pl_transport_opts *o, const char *addr, void **impl, pl_err *err);
    int (*allreduce_sum)(void *impl, float *data, size_t n, uint64_t step,
                         pl_xfer_stats *st, pl_err *err);
    int (*broadcast)(void *impl, void *buf, size_t len, int root, uint64_t step,
                     pl_xfer_stats *st, pl_err *err);
    int (*barrier)(void *impl, uint64_t step, pl_xfer_stats *st, pl_err *err);
    void (*close)(void *impl);
} pl_transport_vt;

extern const pl_transport_vt pl_transport_tcp_vt;

/* --- helpers shared by backends (transport.c) --- */

/* Monotonic clock in seconds. */
double pl_tr_now(void);
/* FNV-1a 64 of a run name: the run id carried in every message. */
uint64_t pl_tr_run_id(const char *run);
/* Format a line and pass it to the configured log function (or stderr). */
void pl_tr_log(pl_transport_log_fn fn, void *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void pl_tr_stats_add(pl_xfer_stats *acc, const pl_xfer_stats *s);

/* --- codec adapter ---
 * Thin interface over the project's compressors; all-reduce segments are
 * encoded before sending and decoded on receipt. encode() is deterministic
 * for a given seed, so an owner can decode its own output and hold exactly
 * what every other peer decodes. */
typedef struct pl_tr_codec {
    const char *name;
    uint8_t id; /* on the wire; 0 = none */
    /* Upper bound of the encoded size of n floats. */
    size_t (*max_bytes)(size_t n);
    /* Encode x[0..n) into out (max_bytes(n) bytes); returns bytes written. */
    size_t (*encode)(const float *x, size_t n, uint8_t *out, uint64_t seed);
    /* Decode exactly n floats from in[0..len) into out; PL_ERR_FORMAT if the
     * length or content does not fit. */
    int (*decode)(const uint8_t *in, size_t len, float *out, size_t n, pl_err *err);
} pl_tr_codec;

/* Codec by name (NULL or "" = none); NULL if unknown. */
const pl_tr_codec *pl_tr_codec_find(const char *name);
extern const char pl_tr_codec_names[];

#endif
