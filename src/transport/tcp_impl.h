/* tcp_impl.h — state of the TCP transport shared by tcp.c (mesh set-up) and
 * tcp_coll.c (collectives). */
#ifndef PEERLESS_TCP_IMPL_H
#define PEERLESS_TCP_IMPL_H

#include <stdint.h>

#include "transport/tcp_wire.h"
#include "transport/transport_impl.h"

#define TCP_ADDR_MAX 96
#define TCP_RUN_MAX 128

/* One queued outgoing message: header then payload (borrowed). */
typedef struct tcp_tx {
    tcp_hdr h;
    const void *src;      /* raw data the payload is made of (prepared lazily) */
    const uint8_t *payload;
    size_t plen;
    size_t sent;          /* bytes of header + payload already sent */
    int ready;            /* header encoded, payload final */
    uint8_t hdr[TCP_HDR_BYTES];
} tcp_tx;

typedef struct tcp_peer {
    int fd;               /* -1 for self */
    char addr[TCP_ADDR_MAX];
    tcp_tx *q;            /* FIFO: q[qhead .. qn) pending */
    size_t qhead, qn, qcap;
    /* receive state: header bytes, then payload into dst */
    uint8_t hbuf[TCP_HDR_BYTES];
    size_t hgot;
    int have_hdr, blocked, draining;
    tcp_hdr h;
    uint8_t *dst;
    size_t pgot;
    double last;          /* time of the last byte moved to/from this peer */
    /* what the current collective still expects from this peer */
    uint32_t exp_rs, exp_ag, exp_bc, exp_bar;
    uint32_t next_rs, next_ag, next_bc;
    uint8_t *enc;         /* codec: encoded RS segment being sent to this peer */
    uint8_t *rxenc;       /* codec: encoded AG segment being received from it */
} tcp_peer;

typedef struct tcp_state {
    int rank, size;
    char run[TCP_RUN_MAX];
    uint64_t run_id, seed;
    int timeout_ms;
    int broken;           /* a collective failed: streams may be mid-message */
    size_t seg_bytes;
    const pl_tr_codec *codec;
    pl_transport_log_fn log;
    void *log_ctx;
    tcp_peer *peers;      /* [size]; peers[rank] is self */
    /* all-reduce workspace, grown on demand */
    uint8_t *slots;       /* [size][TCP_WINDOW][slot_bytes] */
    size_t slots_cap, enc_cap;
    uint8_t *agenc;       /* codec: encoded reduced segments of my chunk */
    size_t agenc_cap;
    uint32_t *arrived;
    size_t arrived_cap;
    float *acc, *tmp;     /* one segment each */
    size_t acc_cap;
} tcp_state;

#define TCP_WINDOW 16 /* reduce-scatter segments buffered per peer */

int tcp_allreduce(void *impl, float *data, size_t n, uint64_t step, pl_xfer_stats *st,
                  pl_err *err);
int tcp_broadcast(void *impl, void *buf, size_t len, int root, uint64_t step, pl_xfer_stats *st,
                  pl_err *err);
int tcp_barrier(void *impl, uint64_t step, pl_xfer_stats *st, pl_err *err);
void tcp_free_workspace(tcp_state *s);

#endif
