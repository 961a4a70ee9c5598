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
    /* exact != 0: codec none on the wire for this call, whatever the
     * handle's codec (pl_transport_allreduce_sum_exact) */
    int (*allreduce_sum)(void *impl, float *data, size_t n, uint64_t step, int exact,
                         pl_xfer_stats *st, pl_err *err);
    int (*broadcast)(void *impl, void *buf, size_t len, int root, uint64_t step,
                     pl_xfer_stats *st, pl_err *err);
    int (*barrier)(void *impl, uint64_t step, pl_xfer_stats *st, pl_err *err);
    void (*close)(void *impl);
} pl_transport_vt;

extern const pl_transport_vt pl_transport_tcp_vt;
extern const pl_transport_vt pl_transport_amqp_vt, pl_transport_amqps_vt; /* amqp.c */

/* --- helpers shared by backends (transport.c) --- */

/* Monotonic clock in seconds. */
double pl_tr_now(void);
/* Format a line and pass it to the configured log function (or stderr). */
void pl_tr_log(pl_transport_log_fn fn, void *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void pl_tr_stats_add(pl_xfer_stats *acc, const pl_xfer_stats *s);

#endif
