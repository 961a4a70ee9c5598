/* fuzz_wire.c — libFuzzer harness for the peer-message decoders.
 *
 * Build and run with scripts/fuzz-wire.sh. For every input:
 *   - pl_wire_decode_header either fails with a message and leaves the
 *     header untouched, or succeeds with a header that re-encodes (with the
 *     bytes after it as payload) and decodes to the same fields; if the
 *     payload's length and CRC match, the re-encoded bytes equal the input;
 *   - pl_wire_check classifies it without crashing, and accepts it at most
 *     once per (sender, chunk);
 *   - the input, and the bytes after a valid header, are decoded as codec
 *     payloads: a failure leaves x untouched and has a message; a success
 *     gives finite values and decode_add onto zeros gives the same values.
 * A broken property aborts (this is a test harness, not library code). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peerless/compress.h"
#include "peerless/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                      \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz property failed: %s (line %d)\n", #cond,     \
                    __LINE__);                                                 \
            abort();                                                           \
        }                                                                      \
    } while (0)

#define MAX_ELEMS (1u << 14) /* valid payloads under -max_len=4096 hold at most 8184 */

static void fuzz_payload(const uint8_t *data, size_t size)
{
    pl_err err = {0};
    pl_codec_cfg cfg;
    size_t n = 0;
    if (pl_codec_peek(data, size, &cfg, &n, &err) != PL_OK) {
        FUZZ_ASSERT(err.status < 0 && err.msg[0]);
        n = size % 64; /* still exercise decode's own header checks */
    }
    if (n > MAX_ELEMS)
        return;
    float *x = malloc((n + 1) * sizeof *x), *y = calloc(n + 1, sizeof *y);
    FUZZ_ASSERT(x && y);
    for (size_t i = 0; i < n; i++)
        x[i] = 7.0f;
    int rc = pl_codec_decode(NULL, data, size, x, n, &err);
    if (rc != PL_OK) {
        FUZZ_ASSERT(rc < 0 && err.msg[0]);
        for (size_t i = 0; i < n; i++)
            FUZZ_ASSERT(x[i] == 7.0f);
    } else {
        FUZZ_ASSERT(pl_codec_decode_add(NULL, data, size, y, n, &err) == PL_OK);
        for (size_t i = 0; i < n; i++)
            FUZZ_ASSERT(isfinite(x[i]) && (x[i] == y[i] || (x[i] == 0 && y[i] == 0)));
    }
    free(x);
    free(y);
}

static void same_fields(const pl_wire_header *a, const pl_wire_header *b)
{
    FUZZ_ASSERT(a->type == b->type && a->codec == b->codec && a->flags == b->flags);
    FUZZ_ASSERT(a->sender == b->sender && a->run_id == b->run_id && a->step == b->step);
    FUZZ_ASSERT(a->receiver == b->receiver && a->chunk_index == b->chunk_index);
    FUZZ_ASSERT(a->chunk_count == b->chunk_count && a->elem_offset == b->elem_offset);
    FUZZ_ASSERT(a->elem_count == b->elem_count);
}

static void fuzz_classify(const pl_wire_header *h, const uint8_t *body, size_t len)
{
    pl_wire_dedup *d = NULL;
    FUZZ_ASSERT(pl_wire_dedup_create(8, 16, &d, NULL) == PL_OK);
    pl_wire_expect e = {.run_id = h->run_id, .step = h->step, .rank = 0, .world_size = 8};
    pl_err err = {0};
    pl_wire_verdict v1 = pl_wire_check(h, body, len, &e, d, &err);
    pl_wire_verdict v2 = pl_wire_check(h, body, len, &e, d, &err);
    FUZZ_ASSERT(v1 >= PL_WIRE_ACCEPT && v1 <= PL_WIRE_CORRUPT);
    FUZZ_ASSERT(v1 != PL_WIRE_ACCEPT || v2 == PL_WIRE_DUPLICATE);
    FUZZ_ASSERT(v1 == PL_WIRE_ACCEPT || err.msg[0]);
    pl_wire_dedup_destroy(d);
}

static void fuzz_header(const uint8_t *data, size_t size)
{
    pl_err err = {0};
    pl_wire_header h, g;
    memset(&h, 0xa5, sizeof h);
    int rc = pl_wire_decode_header(data, size, &h, &err);
    if (rc != PL_OK) {
        FUZZ_ASSERT(rc < 0 && err.msg[0] && h.sender == 0xa5a5a5a5u);
        return;
    }
    const uint8_t *body = data + PL_WIRE_HEADER_SIZE;
    size_t len = size - PL_WIRE_HEADER_SIZE;
    fuzz_classify(&h, body, len);
    pl_wire_header h2 = h;
    uint8_t out[PL_WIRE_HEADER_SIZE];
    FUZZ_ASSERT(pl_wire_encode_header(&h2, body, len, out, sizeof out, &err) == PL_OK);
    FUZZ_ASSERT(pl_wire_decode_header(out, sizeof out, &g, &err) == PL_OK);
    same_fields(&h, &g);
    if (h.payload_len == len && h.payload_crc == h2.payload_crc)
        FUZZ_ASSERT(memcmp(out, data, PL_WIRE_HEADER_SIZE) == 0);
    fuzz_payload(body, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_header(data, size);
    fuzz_payload(data, size);
    return 0;
}
