/* amqp_conn.h — one broker connection of the amqp:// transport (private).
 *
 * Topology of a run (exchange and queues are transient; nothing outlives the
 * peers): a direct exchange "peerless.RUN"; one exclusive, auto-delete queue
 * "peerless.RUN.rR" per peer, bound with routing key "rR" (its rank). A
 * message for several peers is published once with routing key "rA" and a
 * BCC header naming the others (RabbitMQ sender-selected distribution), so
 * no peer receives its own messages and a sender uploads each byte once.
 * Every publish is mandatory and confirmed (publisher confirms): a message no
 * queue took comes back and fails the call naming the rank.
 *
 * Received messages are drained into a FIFO of pl_amqp_msg that the
 * collectives consume; one connection, one channel, one thread.
 */
#ifndef PEERLESS_AMQP_CONN_H
#define PEERLESS_AMQP_CONN_H

#include <amqp.h>
#include <stddef.h>
#include <stdint.h>

#include "peerless/status.h"
#include "peerless/transport.h"
#include "transport/amqp_url.h"

/* A received message: body[0..len) is owned (free with pl_amqp_msg_free). */
typedef struct pl_amqp_msg {
    struct pl_amqp_msg *next;
    uint8_t *body;
    size_t len;
} pl_amqp_msg;

typedef struct pl_amqp_conn {
    amqp_connection_state_t conn;
    int connected; /* socket open and logged in */
    int dead;      /* connection lost or channel closed: no more RPCs */
    char where[300]; /* "amqp://host:port/vhost" for messages */
    char exchange[200];
    uint64_t published, acked; /* publisher-confirm delivery tags */
    int returned_rank;         /* rank of the last unroutable message, or -1 */
    unsigned char *returned;   /* borrowed, nranks flags: a message to rank r came back */
    int nranks;
    int nacked;
    pl_amqp_msg *head, *tail; /* received, not yet consumed */
    pl_xfer_stats *st;        /* current call's stats (never NULL inside a call) */
} pl_amqp_conn;

/* Connect, log in (frame_max 131072, heartbeat from u), open channel 1 in
 * confirm mode, declare the run's exchange and this rank's queue, bind and
 * start consuming. Retries the TCP connect until deadline (monotonic s). */
int pl_amqp_conn_open(pl_amqp_conn *c, const pl_amqp_url *u, const char *run, int rank,
                      double deadline, pl_err *err);
/* Close channel and connection (skipping RPCs on a dead one); free queued
 * messages. Safe on a zeroed or failed struct. */
void pl_amqp_conn_close(pl_amqp_conn *c);

/* Publish body[0..len) (mandatory, transient) to ranks dest[0..ndest). */
int pl_amqp_publish(pl_amqp_conn *c, const int *dest, int ndest, const void *body, size_t len,
                    pl_err *err);
/* Wait until `deadline` (monotonic s; <= now: just poll) for one frame and
 * handle it: a delivery is appended to the FIFO, a confirm/return is
 * recorded. Returns 1 if something was handled, 0 on timeout, < 0 when the
 * connection or channel is gone (err names the broker and reason). */
int pl_amqp_pump(pl_amqp_conn *c, double deadline, pl_err *err);
/* Handle everything already readable without blocking. */
int pl_amqp_drain(pl_amqp_conn *c, pl_err *err);
/* Pop the oldest received message (NULL if none); caller owns it. */
pl_amqp_msg *pl_amqp_pop(pl_amqp_conn *c);
void pl_amqp_msg_free(pl_amqp_msg *m);

#endif
