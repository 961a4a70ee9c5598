/* compress.h — gradient compression codecs for float32 chunks.
 *
 * A codec turns n float32 gradient values into a self-describing byte
 * payload and back. Codecs are chosen by a spec string:
 *
 *   none         raw float32                       4n bytes
 *   fp16         IEEE half, round to nearest even  2n bytes
 *                (|x| that rounds past 65504 is rejected as non-finite)
 *   qsgd8        QSGD, 8-bit codes per element     n bytes   + 4 per bucket
 *   qsgd4        QSGD, 4-bit codes per element     n/2 bytes + 4 per bucket
 *   qsgd8:B      (and qsgd4:B) bucket of B elements (default 512; qsgd4: even)
 *   topk:R       the ceil(R*n) largest magnitudes as (index, value) pairs,
 *                with error feedback; 0 < R <= 1          8k bytes
 *
 * Payload layout (all little-endian), PL_CODEC_HEADER_SIZE = 12 bytes, then body:
 *   u8  codec id (pl_codec_id)
 *   u8  version (1)
 *   u16 reserved, 0
 *   u32 n        number of elements
 *   u32 param    qsgd: bucket size; topk: k (entries sent); else 0
 * Bodies:
 *   none   n x f32
 *   fp16   n x u16 (binary16 bits)
 *   qsgdB  ceil(n/bucket) x f32 bucket L2 norms, then n codes of B bits packed
 *          LSB-first (qsgd4: element 2j in the low nibble of byte j); unused
 *          bits of the last byte are 0. A code is sign (top bit) + magnitude
 *          level l in [0, s], s = 2^(B-1)-1 (qsgd8: 127, qsgd4: 7). Element i
 *          of bucket b decodes to sign * norm[b] * (l / s) in float32. The encoder picks
 *          l = floor(r) or floor(r)+1 with P(floor(r)+1) = r - floor(r),
 *          r = s*|x|/norm, so the decoded value is an unbiased estimate of x
 *          (Alistarh et al., QSGD, with s levels per sign).
 *   topk   k x (u32 index, f32 value), indices strictly increasing, < n.
 *
 * Every codec's payload size depends only on (cfg, n): see pl_codec_max_bytes.
 * Encoders reject non-finite input (PL_ERR_NUMERIC) and decoders reject
 * payloads that would produce non-finite values, so a NaN never reaches a
 * model through a codec.
 *
 * Threads: encode/decode split QSGD buckets (and element ranges) over OpenMP
 * threads; results are bit-identical for any thread count because every
 * bucket draws from its own RNG stream derived from (seed, encode call
 * number, element offset of the bucket).
 */
#ifndef PEERLESS_COMPRESS_H
#define PEERLESS_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "peerless/status.h"

typedef enum pl_codec_id {
    PL_CODEC_NONE = 0,
    PL_CODEC_FP16 = 1,
    PL_CODEC_QSGD8 = 2,
    PL_CODEC_QSGD4 = 3,
    PL_CODEC_TOPK = 4,
    PL_CODEC_COUNT_ = 5 /* sentinel: ids below this are valid */
} pl_codec_id;

#define PL_CODEC_HEADER_SIZE 12
#define PL_CODEC_DEFAULT_BUCKET 512
/* Largest n one payload can carry (n and indices are u32). */
#define PL_CODEC_MAX_N ((size_t)UINT32_MAX)

/* A parsed codec spec. Plain value; copy freely. */
typedef struct pl_codec_cfg {
    pl_codec_id id;
    uint32_t bucket; /* qsgd: elements per norm (>= 1); else 0 */
    double ratio;    /* topk: fraction of elements sent, in (0, 1]; else 0 */
} pl_codec_cfg;

/* Parse "none", "fp16", "qsgd8[:B]", "qsgd4[:B]", "topk:R" (also "qsgd" =
 * "qsgd8"). On error returns PL_ERR_ARG naming the spec and what was
 * expected; *cfg is untouched. */
int pl_codec_parse(const char *spec, pl_codec_cfg *cfg, pl_err *err);

/* Canonical spec string of cfg into buf (e.g. "qsgd4:512"); returns buf. */
char *pl_codec_spec(const pl_codec_cfg *cfg, char *buf, size_t len);

/* "none", "fp16", "qsgd8", "qsgd4", "topk"; "unknown" for other ids. */
const char *pl_codec_name(int id);

/* Elements kept by topk for n elements: ceil(ratio * n) computed in double,
 * at least 1 if n > 0, at most n. */
size_t pl_codec_topk_k(const pl_codec_cfg *cfg, size_t n);

/* Exact payload size in bytes for n elements (header included); 0 if n >
 * PL_CODEC_MAX_N or cfg is invalid. */
size_t pl_codec_max_bytes(const pl_codec_cfg *cfg, size_t n);

/* An encoder with state, one per outgoing stream (e.g. per peer and tensor
 * vector): the top-k error-feedback residual over n_max elements, the seed
 * and a count of encode calls for QSGD's stochastic rounding, and scratch
 * space. Not thread-safe: one stream, one caller at a time. */
typedef struct pl_codec pl_codec;

/* Create a codec for vectors of up to n_max elements (chunks of a vector of
 * n_max elements are encoded with their element offset). *out is owned by
 * the caller: free with pl_codec_destroy. */
int pl_codec_create(const pl_codec_cfg *cfg, size_t n_max, uint64_t seed, pl_codec **out,
                    pl_err *err);
/* Free; NULL is a no-op. */
void pl_codec_destroy(pl_codec *c);
/* The codec's configuration (borrowed, lives as long as c). */
const pl_codec_cfg *pl_codec_config(const pl_codec *c);

/* Encode x[0..n), the elements [offset, offset+n) of the stream's vector
 * (offset + n <= n_max), into out[0..cap). Writes exactly
 * pl_codec_max_bytes(cfg, n) bytes and sets *written to that.
 *   topk: adds the residual for [offset, offset+n) to x before selecting,
 *         then stores what was not sent as the new residual; x is not
 *         modified. Ties in magnitude go to the lower index.
 *   qsgd: deterministic given (seed, number of earlier encode calls on c,
 *         offset, x); each call advances the call number.
 * Errors: PL_ERR_ARG (cap too small, range outside n_max), PL_ERR_NUMERIC
 * (non-finite x, naming the element); on error the residual is unchanged. */
int pl_codec_encode(pl_codec *c, const float *x, size_t n, size_t offset, void *out, size_t cap,
                    size_t *written, pl_err *err);

/* Write the PL_CODEC_HEADER_SIZE-byte payload header that pl_codec_encode
 * would write for n elements (n <= PL_CODEC_MAX_N, cfg valid). For codec
 * none it lets a sender put the header in front of float32 data it sends
 * without copying (on little-endian hosts the body is the floats' bytes). */
void pl_codec_write_header(const pl_codec_cfg *cfg, size_t n, void *out);

/* Forget the top-k residual (e.g. after the model was reset). */
void pl_codec_reset(pl_codec *c);
/* Residual of elements [0, n_max) (borrowed; NULL for codecs without one). */
const float *pl_codec_residual(const pl_codec *c);

/* Read a payload's header: its codec (id and bucket; topk ratio is 0 since
 * only k is sent), element count and, for topk, k. Validates the header only. */
int pl_codec_peek(const void *in, size_t len, pl_codec_cfg *cfg, size_t *n, pl_err *err);

/* Decode a payload of exactly len bytes into x[0..n) (decode) or add it into
 * x (decode_add: what a reducer needs). `expect` may be NULL (any codec);
 * otherwise the payload's codec id, and for qsgd its bucket, must match.
 * The whole payload is validated before x is touched (codec id, version,
 * reserved bits, n == payload's n, exact length, topk index order and range,
 * finite norms and values, zero padding bits), so on error x is unchanged.
 * Returns PL_ERR_FORMAT (or PL_ERR_NUMERIC for non-finite values) with a
 * message naming the field and byte offset. */
int pl_codec_decode(const pl_codec_cfg *expect, const void *in, size_t len, float *x, size_t n,
                    pl_err *err);
int pl_codec_decode_add(const pl_codec_cfg *expect, const void *in, size_t len, float *x,
                        size_t n, pl_err *err);

/* The exact sparse form of x[0..n): a topk payload holding every element
 * whose magnitude is not zero (k = their count, indices ascending; -0.0
 * counts as zero and decodes as +0.0). For sums of top-k contributions,
 * which have at most N*k nonzeros: all-gathered this way they stay exact.
 * pl_codec_sparse_bytes is its size in bytes (header included; 0 if n >
 * PL_CODEC_MAX_N); pl_codec_encode_sparse writes it. Errors: PL_ERR_ARG
 * (n too large, cap too small), PL_ERR_NUMERIC (a non-finite element,
 * named). Decode with expect = {.id = PL_CODEC_TOPK} (ratio 0: any k). */
size_t pl_codec_sparse_bytes(const float *x, size_t n);
int pl_codec_encode_sparse(const float *x, size_t n, void *out, size_t cap, size_t *written,
                           pl_err *err);

/* IEEE binary16 conversions used by fp16: round to nearest even, overflow to
 * infinity, subnormals kept, NaN stays NaN. */
uint16_t pl_fp16_from_f32(float f);
float pl_fp16_to_f32(uint16_t h);

#endif
