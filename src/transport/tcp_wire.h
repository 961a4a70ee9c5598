/* tcp_wire.h — the message header the TCP transport puts on the wire.
 *
 * Adapter over the project's message format: 64 bytes, little-endian,
 * followed by payload_len bytes of payload.
 *
 *   off size field
 *     0   4  magic "PLTM"
 *     4   2  version (1)
 *     6   1  type (tcp_msg_type)
 *     7   1  codec id (0 = raw float32)
 *     8   8  run id (FNV-1a 64 of the run name)
 *    16   8  step
 *    24   4  sender rank
 *    28   4  chunk index (all-reduce: owner rank of the chunk)
 *    32   4  segment index within the chunk
 *    36   4  reserved (0)
 *    40   8  offset, in elements (floats; bytes for broadcast)
 *    48   4  count, in elements of this segment
 *    52   4  payload length in bytes
 *    56   4  CRC-32C of the payload
 *    60   4  CRC-32C of bytes 0..59
 */
#ifndef PEERLESS_TCP_WIRE_H
#define PEERLESS_TCP_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "peerless/status.h"

#define TCP_HDR_BYTES 64
#define TCP_MAGIC 0x4d544c50u /* "PLTM" little-endian */
#define TCP_VERSION 1

typedef enum tcp_msg_type {
    TCP_MSG_HELLO = 1,   /* payload: tcp_hello text */
    TCP_MSG_REJECT = 2,  /* payload: reason text */
    TCP_MSG_RS = 3,      /* reduce-scatter contribution to the chunk's owner */
    TCP_MSG_AG = 4,      /* all-gather: the owner's reduced segment */
    TCP_MSG_BCAST = 5,   /* broadcast segment */
    TCP_MSG_BARRIER = 6, /* no payload */
} tcp_msg_type;

typedef struct tcp_hdr {
    uint8_t type, codec;
    uint64_t run_id, step;
    uint32_t sender, chunk, seg;
    uint64_t offset;
    uint32_t count, payload_len, payload_crc;
} tcp_hdr;

/* Serialise h into out[TCP_HDR_BYTES] (computes the header CRC). */
void tcp_hdr_encode(const tcp_hdr *h, uint8_t *out);
/* Parse and check magic, version and header CRC; PL_ERR_FORMAT with the
 * reason otherwise. */
int tcp_hdr_decode(const uint8_t *in, tcp_hdr *h, pl_err *err);
const char *tcp_msg_name(int type);

/* CRC-32C (Castagnoli) of p[0..n), continuing from crc (start with 0). */
uint32_t tcp_crc32c(uint32_t crc, const void *p, size_t n);

#endif
