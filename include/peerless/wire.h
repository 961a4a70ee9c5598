/* wire.h — the header of every message between peers (TCP and AMQP alike).
 *
 * A message is a fixed PL_WIRE_HEADER_SIZE-byte header followed by
 * payload_len bytes of payload (for gradient messages, a pl_codec payload,
 * see compress.h). Header layout, little-endian:
 *
 *   off size field
 *     0   4  magic "PLG1"
 *     4   1  version (PL_WIRE_VERSION)
 *     5   1  type (pl_wire_type)
 *     6   1  codec (pl_codec_id of the payload; PL_CODEC_NONE if not a vector)
 *     7   1  reserved, 0
 *     8   4  flags (PL_WIRE_F_*; unknown bits are rejected)
 *    12   4  sender rank
 *    16   8  run id (pl_wire_run_id of the run name)
 *    24   8  step
 *    32   4  receiver rank, or PL_WIRE_BROADCAST
 *    36   4  chunk index   (< chunk count)
 *    40   4  chunk count   (>= 1)
 *    44   4  payload CRC-32C (Castagnoli, the one of iSCSI/ext4/SSE4.2;
 *            check value 0xE3069283 for "123456789")
 *    48   8  element offset of this chunk within the whole vector
 *    56   8  element count of this chunk (offset + count must not overflow)
 *    64   8  payload length in bytes (<= PL_WIRE_MAX_PAYLOAD)
 *    72  32  HMAC-SHA256 tag; all zero unless PL_WIRE_F_HMAC (reserved: not
 *            computed yet, messages with the flag are rejected as unsupported)
 *   104   4  reserved, 0
 *   108   4  header CRC-32C of bytes [0, 108)
 *
 * Receiving: read 112 bytes, pl_wire_decode_header (validates everything
 * the header alone can tell), read payload_len bytes, then pl_wire_check
 * classifies the message for this peer and step: accept, or a reason to
 * drop it (stale, early, foreign run, misdirected, duplicate, corrupt).
 *
 * Version 2 replaced version 1's zlib CRC-32 by CRC-32C (hardware
 * instruction on x86: ~10x faster), so a version-1 peer is refused as
 * unsupported instead of failing every checksum.
 */
#ifndef PEERLESS_WIRE_H
#define PEERLESS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "peerless/status.h"

#define PL_WIRE_HEADER_SIZE 112
#define PL_WIRE_VERSION 2
#define PL_WIRE_MAGIC "PLG1"
#define PL_WIRE_BROADCAST UINT32_MAX
#define PL_WIRE_MAX_PAYLOAD ((uint64_t)1 << 31) /* 2 GiB: 512M float32 */
#define PL_WIRE_TAG_SIZE 32

typedef enum pl_wire_type {
    PL_WIRE_GRAD = 1,      /* a peer's gradient chunk for a step */
    PL_WIRE_REDUCED = 2,   /* an averaged (reduced) chunk for a step */
    PL_WIRE_HELLO = 3,     /* join: payload is free-form (e.g. JSON) */
    PL_WIRE_BARRIER = 4,   /* reached a synchronisation point at step */
    PL_WIRE_MODEL = 5,     /* model parameters/buffers broadcast at step */
    PL_WIRE_HEARTBEAT = 6, /* liveness; empty payload allowed */
    PL_WIRE_BYE = 7,       /* orderly leave */
    PL_WIRE_CHECK = 8,     /* late payload CRCs of the sender's GRAD segments (tcp) */
    PL_WIRE_VERIFIED = 9,  /* every late CRC of the sender's chunk matched (tcp) */
    PL_WIRE_TYPE_COUNT_ = 10
} pl_wire_type;

enum {
    PL_WIRE_F_HMAC = 1u << 0, /* tag holds an HMAC (reserved, not yet supported) */
    PL_WIRE_F_LAST = 1u << 1, /* sender's last message of this step (a hint) */
    /* GRAD: payload CRC not in the header (0); the sender computes it after
     * the receiver has read the payload and sends it in a CHECK message */
    PL_WIRE_F_LATE_CRC = 1u << 2,
    /* REDUCED: late CRCs of this chunk are still being checked; its owner
     * sends VERIFIED when they all matched */
    PL_WIRE_F_VERIFY = 1u << 3,
    PL_WIRE_F_KNOWN_ = PL_WIRE_F_HMAC | PL_WIRE_F_LAST | PL_WIRE_F_LATE_CRC | PL_WIRE_F_VERIFY
};

/* A decoded header. Plain value. */
typedef struct pl_wire_header {
    uint8_t type;  /* pl_wire_type */
    uint8_t codec; /* pl_codec_id */
    uint32_t flags;
    uint32_t sender;
    uint64_t run_id;
    uint64_t step;
    uint32_t receiver; /* rank or PL_WIRE_BROADCAST */
    uint32_t chunk_index, chunk_count;
    uint64_t elem_offset, elem_count;
    uint64_t payload_len;  /* set by pl_wire_encode_header */
    uint32_t payload_crc;  /* set by pl_wire_encode_header */
    uint8_t tag[PL_WIRE_TAG_SIZE];
} pl_wire_header;

/* 64-bit FNV-1a of the run name: the run id every peer of a run shares. */
uint64_t pl_wire_run_id(const char *run_name);
/* "grad", "reduced", "hello", ...; "unknown" for other values. */
const char *pl_wire_type_name(int type);
/* CRC-32C of data[0..len) continuing from crc (0 to start), so a payload
 * sent or received in parts is checksummed part by part:
 * crc32c(crc32c(0, a, n), b, m) is the CRC of a followed by b. Uses the
 * SSE4.2 instruction when the CPU has it (checked at run time), else a
 * table; both give the same values (data may be NULL if len is 0). */
uint32_t pl_wire_crc32c(uint32_t crc, const void *data, size_t len);
/* The table implementation alone (for tests comparing the two). */
uint32_t pl_wire_crc32c_portable(uint32_t crc, const void *data, size_t len);

/* Fill h->payload_len and h->payload_crc from payload[0..len) (payload may be
 * NULL if len == 0), validate h as pl_wire_decode_header would, and write
 * the PL_WIRE_HEADER_SIZE-byte header into out[0..cap). PL_ERR_ARG names
 * the bad field. */
int pl_wire_encode_header(pl_wire_header *h, const void *payload, size_t len, void *out,
                          size_t cap, pl_err *err);
/* The same for a payload the caller holds in parts (e.g. a codec header and
 * a slice of a gradient, sent with one writev): len is its total length and
 * crc its pl_wire_crc32c over the parts in order. */
int pl_wire_encode_header_crc(pl_wire_header *h, uint64_t len, uint32_t crc, void *out,
                              size_t cap, pl_err *err);

/* Decode and validate the header in buf[0..len) (len >= PL_WIRE_HEADER_SIZE;
 * bytes after the header are ignored). Checks magic, version, header CRC,
 * type, codec, flags, reserved bytes, chunk index < count, offset + count
 * overflow, payload length bound, zero tag without PL_WIRE_F_HMAC.
 * PL_ERR_FORMAT (PL_ERR_UNSUPPORTED for a newer version or the HMAC flag)
 * with a message naming the field, its byte offset and what was expected;
 * *h is written only on success. */
int pl_wire_decode_header(const void *buf, size_t len, pl_wire_header *h, pl_err *err);

/* What a receiver should do with a message. */
typedef enum pl_wire_verdict {
    PL_WIRE_ACCEPT = 0,      /* use it */
    PL_WIRE_STALE = 1,       /* older step: drop */
    PL_WIRE_EARLY = 2,       /* newer step: keep for later or drop */
    PL_WIRE_FOREIGN = 3,     /* another run: drop */
    PL_WIRE_MISDIRECTED = 4, /* for another receiver, or sender not in the world */
    PL_WIRE_DUPLICATE = 5,   /* (sender, chunk) already accepted this step: drop */
    PL_WIRE_CORRUPT = 6      /* payload length or CRC mismatch: reject */
} pl_wire_verdict;

const char *pl_wire_verdict_name(int verdict);

/* Which (sender, chunk) pairs were accepted at the current step: a bitmap
 * of world_size x max_chunks bits. One per message stream kind (e.g. one for
 * GRAD, one for REDUCED). */
typedef struct pl_wire_dedup pl_wire_dedup;

/* *out is owned by the caller: free with pl_wire_dedup_destroy. */
int pl_wire_dedup_create(uint32_t world_size, uint32_t max_chunks, pl_wire_dedup **out,
                         pl_err *err);
void pl_wire_dedup_destroy(pl_wire_dedup *d); /* NULL is a no-op */
/* Clear all bits (call when the step advances). */
void pl_wire_dedup_reset(pl_wire_dedup *d);
/* Mark (sender, chunk): returns 1 if newly marked, 0 if it was already
 * marked, -1 (PL_ERR_ARG) if out of range. */
int pl_wire_dedup_mark(pl_wire_dedup *d, uint32_t sender, uint32_t chunk);
/* Number of chunks of `sender` marked so far. */
uint32_t pl_wire_dedup_count(const pl_wire_dedup *d, uint32_t sender);

/* What this receiver expects. */
typedef struct pl_wire_expect {
    uint64_t run_id;
    uint64_t step;       /* current step */
    uint32_t rank;       /* this peer */
    uint32_t world_size; /* senders must be < world_size */
} pl_wire_expect;

/* Classify a decoded header h with its payload[0..len) for receiver e, in
 * this order: foreign run, misdirected (receiver is neither e->rank nor
 * broadcast, or sender >= world_size or == e->rank), stale / early step,
 * corrupt (len != payload_len or CRC mismatch), duplicate (only if dedup is
 * non-NULL; an accepted message is marked in dedup; a chunk index beyond
 * the dedup's max_chunks is MISDIRECTED). Returns the verdict;
 * for every verdict but ACCEPT writes a message into err naming the sender,
 * step and chunk (err->status is PL_ERR_FORMAT for CORRUPT, PL_OK for the
 * others: they are normal events to log and drop). */
pl_wire_verdict pl_wire_check(const pl_wire_header *h, const void *payload, size_t len,
                              const pl_wire_expect *e, pl_wire_dedup *dedup, pl_err *err);
/* The same with the payload's length and pl_wire_crc32c computed by the
 * caller (payload received in parts, CRC computed as it arrived). Passing
 * the header's own payload_len and payload_crc classifies the header alone
 * (before its payload is read). */
pl_wire_verdict pl_wire_check_crc(const pl_wire_header *h, uint64_t len, uint32_t crc,
                                  const pl_wire_expect *e, pl_wire_dedup *dedup, pl_err *err);

#endif
