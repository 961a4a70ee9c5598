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
 * Two connections per peer: one publishes (this thread: publishes, then
 * reads confirms and returns), one consumes (a receiving thread reads it all
 * the time into a FIFO of pl_amqp_msg that the collectives pop). So the
 * broker can always deliver to a peer, even while the peer is blocked in a
 * large publish (a single connection could not read then, and peers all
 * blocked in publishes under a broker memory alarm would wait for each
 * other) or computes for minutes between collectives (the receiving thread
 * answers the broker's heartbeats; the publishing connection carries none).
 * On plain TCP the data path bypasses rabbitmq-c's copies: large bodies are
 * published with writev from the caller's buffers (pl_amqp_publish2), and
 * the receiving thread parses the consuming connection's frames itself,
 * reading bodies straight into the message (amqp_conn.c, "own reader").
 */
#ifndef PEERLESS_AMQP_CONN_H
#define PEERLESS_AMQP_CONN_H

#include <amqp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "peerless/status.h"
#include "peerless/transport.h"
#include "transport/amqp_url.h"

typedef struct pl_amqp_pool pl_amqp_pool;

/* A received message: body[0..len) (cap bytes allocated) is owned; free
 * with pl_amqp_msg_free, which hands it back to its connection's pool.
 * crc is pl_wire_crc32c of body[PL_WIRE_HEADER_SIZE..len) (0 if shorter),
 * computed by the receiving thread frame by frame as the bytes arrived, so
 * the payload check reads no cold memory on the caller's thread. */
typedef struct pl_amqp_msg {
    struct pl_amqp_msg *next;
    uint8_t *body;
    size_t len, cap;
    uint32_t crc;
    pl_amqp_pool *pool;
} pl_amqp_msg;

/* Message buffers of one connection, reused: a fresh malloc per MiB-sized
 * message costs page faults that showed as a tenth of a peer's CPU time. */
struct pl_amqp_pool {
    pthread_mutex_t mu;
    pl_amqp_msg *free;
    size_t bytes;   /* capacity held in `free` */
    int closed;     /* its connection is closed: free, do not keep */
    size_t out;     /* messages handed out and not yet freed */
};

typedef struct pl_amqp_conn {
    amqp_connection_state_t conn; /* publishing: used by the caller's thread only */
    amqp_connection_state_t sub;  /* consuming: read by the receiving thread only */
    int connected, sub_connected; /* logged in */
    int dead;      /* publishing connection lost or channel closed */
    int tls;       /* amqps: pl_amqp_publish2 is not available */
    char where[300]; /* "amqp://host:port/vhost" for messages */
    char exchange[200];
    uint64_t published, acked; /* publisher-confirm delivery tags */
    int returned_rank;         /* rank of the last unroutable message, or -1 */
    unsigned char *returned;   /* borrowed, nranks flags: a message to rank r came back */
    int nranks;
    int nacked;
    pl_xfer_stats *st;        /* current call's stats (never NULL) */
    pl_xfer_stats idle_st;    /* stats outside calls */
    double frame_s;           /* max wait for the rest of a message once begun */
    pl_amqp_pool *pool;       /* freed by the last of close and pl_amqp_msg_free */
    /* shared with the receiving thread, under mu */
    pthread_mutex_t mu;
    pl_amqp_msg *head, *tail; /* received, not yet consumed */
    pl_err lost;              /* status != 0: the consuming connection is gone */
    int stop;
    pthread_t rx;
    int rx_on, mu_on, rx_done; /* rx_done: the receiver left its loop */
    int sub_fd;
    int wake[2];              /* pipe: the receiver wakes a waiting pump */
    /* receiving thread only: plain TCP reads its socket itself once
     * rabbitmq-c holds no unread bytes (see amqp_conn.c, "own reader") */
    int own_rx;
    uint8_t *rbuf;            /* [RX_BUF] frame headers and small frames */
    size_t rpos, rlen;        /* unread bytes: rbuf[rpos..rlen) */
    double rx_last, tx_last;  /* last byte received / heartbeat sent */
} pl_amqp_conn;

/* Open the publishing connection (frame_max 131072, no heartbeat; channel
 * 1 in confirm mode; declares the run's exchange) and the consuming one
 * (heartbeat from u; declares, binds and consumes this rank's queue), both
 * with 4 MiB socket buffers, and start the receiving thread. Retries the TCP
 * connects until deadline (monotonic s). A message whose body stops
 * arriving for frame_s seconds ends the consuming connection. */
int pl_amqp_conn_open(pl_amqp_conn *c, const pl_amqp_url *u, const char *run, int rank,
                      double frame_s, double deadline, pl_err *err);
/* Stop the receiving thread, close both connections (skipping RPCs on a
 * dead one); free queued messages. Safe on a zeroed or failed struct. */
void pl_amqp_conn_close(pl_amqp_conn *c);

/* Publish body[0..len) (mandatory, transient) to ranks dest[0..ndest). */
int pl_amqp_publish(pl_amqp_conn *c, const int *dest, int ndest, const void *body, size_t len,
                    pl_err *err);
/* The same for a body held in two parts, head[0..hlen) then tail[0..tlen),
 * neither copied: the method and content-header frames go through
 * rabbitmq-c, the body frames are written to the socket with writev straight
 * from the two parts (rabbitmq-c would copy every body frame into its
 * buffer). Plain TCP connections only (c->tls == 0; TLS callers use
 * pl_amqp_publish). Waits for a full socket until `deadline` (monotonic s);
 * the connection is dead after any failure. */
int pl_amqp_publish2(pl_amqp_conn *c, const int *dest, int ndest, const void *head, size_t hlen,
                     const void *tail, size_t tlen, double deadline, pl_err *err);
/* Wait until `deadline` (monotonic s; <= now: just poll) for one event:
 * a confirm/return on the publishing connection is recorded (returns 1);
 * with want_msgs, a received message waiting in the FIFO also returns 1.
 * 0 on timeout, < 0 when a connection or channel is gone (err names the
 * broker and reason). */
int pl_amqp_pump(pl_amqp_conn *c, double deadline, int want_msgs, pl_err *err);
/* Handle the confirms and returns already readable, without blocking. */
int pl_amqp_drain(pl_amqp_conn *c, pl_err *err);
/* Pop the oldest received message (NULL if none; counted in c->st);
 * the caller owns it. */
pl_amqp_msg *pl_amqp_pop(pl_amqp_conn *c);
/* Free m (NULL is a no-op), keeping its buffer in its connection's pool. */
void pl_amqp_msg_free(pl_amqp_msg *m);

#endif
