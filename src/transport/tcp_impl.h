/* tcp_impl.h — state of the TCP transport shared by tcp.c (mesh set-up) and
 * tcp_coll.c (collectives). Every message is a wire.h header followed by
 * its payload; all-reduce payloads are compress.h codec payloads. */
#ifndef PEERLESS_TCP_IMPL_H
#define PEERLESS_TCP_IMPL_H

#include <stdint.h>

#include "peerless/compress.h"
#include "peerless/wire.h"
#include "transport/transport_impl.h"

#define TCP_ADDR_MAX 96
#define TCP_RUN_MAX 128
#define TCP_WINDOW 8   /* GRAD segments buffered per peer (8 x 256 KiB: the slots
                          * stay in cache; 16 was 5-8 % slower at VGG11 N=4) */
#define TCP_CODEC_SETS 4 /* vector lengths whose codec state is kept */
/* wire header, then (raw float32 payloads) the codec header sent in front
 * of the caller's floats */
#define TCP_PREFIX_MAX (PL_WIRE_HEADER_SIZE + PL_CODEC_HEADER_SIZE)
#define TCP_SPLICE_MIN (64 << 10) /* raw GRAD bodies at least this long are spliced */
#define TCP_PIPE_BYTES (1 << 20)  /* requested capacity of a peer's splice pipe */
#define TCP_LATE_MIN (2u << 20)   /* spliced GRADs to owners of chunks this large
                                   * send their CRC late (tcp_coll.c) */

/* One queued outgoing message: prefix (header [+ codec header]), then body
 * bytes borrowed from the caller's vector or a codec buffer. */
typedef struct tcp_tx {
    pl_wire_header h;     /* filled when queued; CRC/length set by prepare */
    const void *src;      /* GRAD: the floats this message encodes */
    const uint8_t *body;
    size_t blen, plen;    /* body bytes; prefix bytes */
    size_t sent;          /* bytes of prefix + body already sent */
    size_t piped;         /* spliced body: bytes handed to the peer's pipe */
    uint32_t crc;         /* REDUCED: payload CRC computed by the owner */
    int ready;            /* prefix encoded, body final */
    uint8_t prefix[TCP_PREFIX_MAX];
} tcp_tx;

typedef struct tcp_peer {
    int fd;               /* -1 for self */
    int pipe[2];          /* for splicing raw GRAD bodies; -1: not available */
    size_t in_pipe;       /* bytes in the pipe not yet moved to the socket */
    char addr[TCP_ADDR_MAX];
    tcp_tx *q;            /* FIFO: q[qhead .. qn) pending */
    size_t qhead, qn, qcap;
    /* receive state: header bytes, then pre_len payload bytes into pre and
     * the rest into dst, CRC-32C computed as bytes arrive */
    uint8_t hbuf[PL_WIRE_HEADER_SIZE];
    size_t hgot;
    int have_hdr, blocked, draining;
    int defer_crc;        /* raw GRAD: the CRC is checked when the segment is reduced */
    uint32_t slot_crc[TCP_WINDOW]; /* payload CRCs of the raw GRAD segments in its slots */
    pl_wire_header h;
    uint8_t *pre, *dst;
    size_t pre_len, pgot;
    uint32_t crc;
    uint8_t cbuf[PL_CODEC_HEADER_SIZE]; /* codec header of a raw REDUCED */
    double last;          /* time of the last byte moved to/from this peer */
    /* what the current collective still expects from this peer */
    uint32_t exp_rs, exp_ag, exp_bc, exp_bar, exp_check, exp_ver;
    uint32_t next_rs, next_ag, next_bc;
    /* late CRCs: GRAD segments sent to / received from this peer with
     * PL_WIRE_F_LATE_CRC in this all-reduce; its CHECK matched */
    uint32_t late_out, late_in;
    int checked;
    uint8_t *enc;         /* codec: encoded GRAD segment being sent to this peer */
    uint8_t *rxenc;       /* encoded REDUCED segment being received (not raw) */
} tcp_peer;

/* Codec state of the all-reduce of vectors of n elements. */
typedef struct tcp_codecs {
    size_t n;             /* 0: unused */
    uint64_t used;        /* call counter at last use (least recently used goes) */
    pl_codec **to;        /* [size]: encoder of my contributions to each owner */
    pl_codec *ag;         /* all-gather encoder (NULL: raw float32) */
} tcp_codecs;

typedef struct tcp_state {
    int rank, size;
    char run[TCP_RUN_MAX];
    uint64_t run_id, seed, calls;
    int timeout_ms;
    int broken;           /* a collective failed: streams may be mid-message */
    size_t seg_bytes;
    pl_codec_cfg codec;   /* of GRAD messages */
    pl_codec_cfg ag_codec; /* of REDUCED messages: the codec; none for top-k */
    tcp_codecs sets[TCP_CODEC_SETS];
    pl_transport_log_fn log;
    void *log_ctx;
    tcp_peer *peers;      /* [size]; peers[rank] is self */
    /* all-reduce workspace, grown on demand */
    uint8_t *slots;       /* [size][TCP_WINDOW][slot_bytes] */
    size_t slots_cap, enc_cap;
    uint8_t *agenc;       /* encoded reduced segments of my chunk (not raw) */
    size_t agenc_cap;
    uint32_t *arrived, *first_seg;
    size_t arrived_cap, first_cap;
    float *acc;           /* one segment */
    size_t acc_cap;
    /* late CRCs (tcp_coll.c): mine of the GRAD segments I sent late, by
     * segment index, little-endian (CHECK payloads); those I computed of
     * the late segments I received, [sender][my segment], and the CRCs
     * the senders' CHECKs brought, [sender][my segment] */
    uint32_t *lcrc, *rcrc, *ckin;
    uint8_t *lflag, *rflag;
    size_t lcrc_cap, rcrc_cap, ckin_cap, lflag_cap, rflag_cap;
} tcp_state;

/* exact: codec none on the wire whatever the handle's codec. */
int tcp_allreduce(void *impl, float *data, size_t n, uint64_t step, int exact, pl_xfer_stats *st,
                  pl_err *err);
int tcp_broadcast(void *impl, void *buf, size_t len, int root, uint64_t step, pl_xfer_stats *st,
                  pl_err *err);
int tcp_barrier(void *impl, uint64_t step, pl_xfer_stats *st, pl_err *err);
void tcp_free_workspace(tcp_state *s);

#endif
