/* wire.c — peer message header: encode, validate, classify, deduplicate.
 * The byte layout is documented in include/peerless/wire.h. */
#include "peerless/wire.h"

#include <stdlib.h>
#include <string.h>

#include "comm/le.h"
#include "peerless/compress.h"

/* Byte offsets of the header fields. */
enum {
    OFF_MAGIC = 0, OFF_VERSION = 4, OFF_TYPE = 5, OFF_CODEC = 6, OFF_RSV1 = 7, OFF_FLAGS = 8,
    OFF_SENDER = 12, OFF_RUN = 16, OFF_STEP = 24, OFF_RECEIVER = 32, OFF_CHUNK = 36,
    OFF_NCHUNK = 40, OFF_PCRC = 44, OFF_EOFF = 48, OFF_ECOUNT = 56, OFF_PLEN = 64,
    OFF_TAG = 72, OFF_RSV2 = 104, OFF_HCRC = 108
};
_Static_assert(OFF_HCRC + 4 == PL_WIRE_HEADER_SIZE, "header layout and size disagree");

static const char *const type_names[PL_WIRE_TYPE_COUNT_] = {
    [PL_WIRE_GRAD] = "grad",       [PL_WIRE_REDUCED] = "reduced", [PL_WIRE_HELLO] = "hello",
    [PL_WIRE_BARRIER] = "barrier", [PL_WIRE_MODEL] = "model",     [PL_WIRE_HEARTBEAT] = "heartbeat",
    [PL_WIRE_BYE] = "bye",         [PL_WIRE_CHECK] = "check",     [PL_WIRE_VERIFIED] = "verified",
};

static const char *const verdict_names[] = {
    "accept", "stale", "early", "foreign", "misdirected", "duplicate", "corrupt",
};

const char *pl_wire_type_name(int type)
{
    if (type <= 0 || type >= PL_WIRE_TYPE_COUNT_)
        return "unknown";
    return type_names[type];
}

const char *pl_wire_verdict_name(int verdict)
{
    if (verdict < 0 || verdict > PL_WIRE_CORRUPT)
        return "unknown";
    return verdict_names[verdict];
}

uint64_t pl_wire_run_id(const char *run_name)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)run_name; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    return h;
}

static int tag_is_zero(const uint8_t *tag)
{
    for (int i = 0; i < PL_WIRE_TAG_SIZE; i++)
        if (tag[i])
            return 0;
    return 1;
}

/* Checks shared by encode and decode: the fields' values, not their bytes.
 * `what` is "encode" or "decode"; status PL_ERR_ARG for encode. */
static int check_fields(const pl_wire_header *h, int status, const char *what, pl_err *err)
{
    if (h->type == 0 || h->type >= PL_WIRE_TYPE_COUNT_)
        return pl_err_set(err, status, "wire %s: byte %d: message type %u, expected 1..%d",
                          what, OFF_TYPE, (unsigned)h->type, PL_WIRE_TYPE_COUNT_ - 1);
    if (h->codec >= PL_CODEC_COUNT_)
        return pl_err_set(err, status, "wire %s: byte %d: codec id %u, expected 0..%d", what,
                          OFF_CODEC, (unsigned)h->codec, PL_CODEC_COUNT_ - 1);
    if (h->flags & ~(uint32_t)PL_WIRE_F_KNOWN_)
        return pl_err_set(err, status, "wire %s: byte %d: unknown flags 0x%x", what, OFF_FLAGS,
                          (unsigned)(h->flags & ~(uint32_t)PL_WIRE_F_KNOWN_));
    if ((h->flags & PL_WIRE_F_LATE_CRC) && (h->type != PL_WIRE_GRAD || h->payload_crc != 0))
        return pl_err_set(err, status, "wire %s: byte %d: late-CRC flag on a %s message with "
                          "payload CRC 0x%08x, expected a grad message with CRC 0", what, OFF_FLAGS,
                          pl_wire_type_name(h->type), (unsigned)h->payload_crc);
    if ((h->flags & PL_WIRE_F_VERIFY) && h->type != PL_WIRE_REDUCED)
        return pl_err_set(err, status, "wire %s: byte %d: verify flag on a %s message, expected "
                          "a reduced message", what, OFF_FLAGS, pl_wire_type_name(h->type));
    if (h->flags & PL_WIRE_F_HMAC)
        return pl_err_set(err, PL_ERR_UNSUPPORTED, "wire %s: byte %d: HMAC flag set, but "
                          "authenticated messages are not supported yet", what, OFF_FLAGS);
    if (!tag_is_zero(h->tag))
        return pl_err_set(err, status, "wire %s: bytes %d-%d: HMAC tag is not zero although "
                          "the HMAC flag is clear", what, OFF_TAG, OFF_TAG + PL_WIRE_TAG_SIZE - 1);
    if (h->chunk_count == 0 || h->chunk_index >= h->chunk_count)
        return pl_err_set(err, status, "wire %s: bytes %d-%d: chunk %u of %u, expected "
                          "index < count", what, OFF_CHUNK, OFF_NCHUNK + 3,
                          (unsigned)h->chunk_index, (unsigned)h->chunk_count);
    if (h->elem_offset > UINT64_MAX - h->elem_count)
        return pl_err_set(err, status, "wire %s: bytes %d-%d: element offset %llu + count "
                          "%llu overflows", what, OFF_EOFF, OFF_ECOUNT + 7,
                          (unsigned long long)h->elem_offset, (unsigned long long)h->elem_count);
    if (h->payload_len > PL_WIRE_MAX_PAYLOAD)
        return pl_err_set(err, status, "wire %s: bytes %d-%d: payload length %llu exceeds "
                          "the limit of %llu", what, OFF_PLEN, OFF_PLEN + 7,
                          (unsigned long long)h->payload_len,
                          (unsigned long long)PL_WIRE_MAX_PAYLOAD);
    return PL_OK;
}

int pl_wire_encode_header(pl_wire_header *h, const void *payload, size_t len, void *out,
                          size_t cap, pl_err *err)
{
    if (len && !payload)
        return pl_err_set(err, PL_ERR_ARG, "wire encode: NULL payload of %zu bytes", len);
    return pl_wire_encode_header_crc(h, len, pl_wire_crc32c(0, payload, len), out, cap, err);
}

int pl_wire_encode_header_crc(pl_wire_header *h, uint64_t len, uint32_t crc, void *out,
                              size_t cap, pl_err *err)
{
    if (cap < PL_WIRE_HEADER_SIZE)
        return pl_err_set(err, PL_ERR_ARG, "wire encode: output buffer of %zu bytes, need %d",
                          cap, PL_WIRE_HEADER_SIZE);
    h->payload_len = len;
    h->payload_crc = crc;
    int rc = check_fields(h, PL_ERR_ARG, "encode", err);
    if (rc != PL_OK)
        return rc;
    uint8_t *b = out;
    memset(b, 0, PL_WIRE_HEADER_SIZE);
    memcpy(b + OFF_MAGIC, PL_WIRE_MAGIC, 4);
    b[OFF_VERSION] = PL_WIRE_VERSION;
    b[OFF_TYPE] = h->type;
    b[OFF_CODEC] = h->codec;
    le_put_u32(b + OFF_FLAGS, h->flags);
    le_put_u32(b + OFF_SENDER, h->sender);
    le_put_u64(b + OFF_RUN, h->run_id);
    le_put_u64(b + OFF_STEP, h->step);
    le_put_u32(b + OFF_RECEIVER, h->receiver);
    le_put_u32(b + OFF_CHUNK, h->chunk_index);
    le_put_u32(b + OFF_NCHUNK, h->chunk_count);
    le_put_u32(b + OFF_PCRC, h->payload_crc);
    le_put_u64(b + OFF_EOFF, h->elem_offset);
    le_put_u64(b + OFF_ECOUNT, h->elem_count);
    le_put_u64(b + OFF_PLEN, h->payload_len);
    memcpy(b + OFF_TAG, h->tag, PL_WIRE_TAG_SIZE);
    le_put_u32(b + OFF_HCRC, pl_wire_crc32c(0, b, OFF_HCRC));
    return PL_OK;
}

/* Magic, version, reserved bytes and header CRC: is this our header at all? */
static int check_frame(const uint8_t *b, size_t len, pl_err *err)
{
    if (len < PL_WIRE_HEADER_SIZE)
        return pl_err_set(err, PL_ERR_FORMAT, "wire decode: %zu bytes, shorter than the "
                          "%d-byte header", len, PL_WIRE_HEADER_SIZE);
    if (memcmp(b + OFF_MAGIC, PL_WIRE_MAGIC, 4) != 0)
        return pl_err_set(err, PL_ERR_FORMAT, "wire decode: bytes 0-3: bad magic "
                          "%02x %02x %02x %02x, expected \"%s\"", b[0], b[1], b[2], b[3],
                          PL_WIRE_MAGIC);
    if (b[OFF_VERSION] != PL_WIRE_VERSION)
        return pl_err_set(err, b[OFF_VERSION] > PL_WIRE_VERSION ? PL_ERR_UNSUPPORTED
                                                                : PL_ERR_FORMAT,
                          "wire decode: byte %d: version %u, expected %d", OFF_VERSION,
                          (unsigned)b[OFF_VERSION], PL_WIRE_VERSION);
    uint32_t want = le_get_u32(b + OFF_HCRC), got = pl_wire_crc32c(0, b, OFF_HCRC);
    if (want != got)
        return pl_err_set(err, PL_ERR_FORMAT, "wire decode: bytes %d-%d: header CRC 0x%08x, "
                          "computed 0x%08x: header corrupted", OFF_HCRC, OFF_HCRC + 3,
                          (unsigned)want, (unsigned)got);
    if (b[OFF_RSV1] != 0 || le_get_u32(b + OFF_RSV2) != 0)
        return pl_err_set(err, PL_ERR_FORMAT, "wire decode: reserved byte %d or bytes %d-%d "
                          "not zero", OFF_RSV1, OFF_RSV2, OFF_RSV2 + 3);
    return PL_OK;
}

int pl_wire_decode_header(const void *buf, size_t len, pl_wire_header *out, pl_err *err)
{
    const uint8_t *b = buf;
    int rc = check_frame(b, len, err);
    if (rc != PL_OK)
        return rc;
    pl_wire_header h;
    memset(&h, 0, sizeof h);
    h.type = b[OFF_TYPE];
    h.codec = b[OFF_CODEC];
    h.flags = le_get_u32(b + OFF_FLAGS);
    h.sender = le_get_u32(b + OFF_SENDER);
    h.run_id = le_get_u64(b + OFF_RUN);
    h.step = le_get_u64(b + OFF_STEP);
    h.receiver = le_get_u32(b + OFF_RECEIVER);
    h.chunk_index = le_get_u32(b + OFF_CHUNK);
    h.chunk_count = le_get_u32(b + OFF_NCHUNK);
    h.payload_crc = le_get_u32(b + OFF_PCRC);
    h.elem_offset = le_get_u64(b + OFF_EOFF);
    h.elem_count = le_get_u64(b + OFF_ECOUNT);
    h.payload_len = le_get_u64(b + OFF_PLEN);
    memcpy(h.tag, b + OFF_TAG, PL_WIRE_TAG_SIZE);
    rc = check_fields(&h, PL_ERR_FORMAT, "decode", err);
    if (rc != PL_OK)
        return rc;
    *out = h;
    return PL_OK;
}

/* ---- deduplication ------------------------------------------------------- */

struct pl_wire_dedup {
    uint32_t world_size, max_chunks;
    uint64_t *bits; /* world_size * max_chunks bits, row per sender */
    uint32_t *count; /* per sender */
};

static size_t dedup_words(const pl_wire_dedup *d)
{
    return ((size_t)d->world_size * d->max_chunks + 63) / 64;
}

int pl_wire_dedup_create(uint32_t world_size, uint32_t max_chunks, pl_wire_dedup **out,
                         pl_err *err)
{
    *out = NULL;
    if (world_size == 0 || max_chunks == 0)
        return pl_err_set(err, PL_ERR_ARG, "wire dedup: world size %u and chunk count %u "
                          "must be >= 1", (unsigned)world_size, (unsigned)max_chunks);
    pl_wire_dedup *d = calloc(1, sizeof *d);
    if (!d)
        return pl_err_set(err, PL_ERR_NOMEM, "wire dedup: out of memory");
    d->world_size = world_size;
    d->max_chunks = max_chunks;
    d->bits = calloc(dedup_words(d), sizeof *d->bits);
    d->count = calloc(world_size, sizeof *d->count);
    if (!d->bits || !d->count) {
        pl_wire_dedup_destroy(d);
        return pl_err_set(err, PL_ERR_NOMEM, "wire dedup: no memory for %u x %u bits",
                          (unsigned)world_size, (unsigned)max_chunks);
    }
    *out = d;
    return PL_OK;
}

void pl_wire_dedup_destroy(pl_wire_dedup *d)
{
    if (!d)
        return;
    free(d->bits);
    free(d->count);
    free(d);
}

void pl_wire_dedup_reset(pl_wire_dedup *d)
{
    memset(d->bits, 0, dedup_words(d) * sizeof *d->bits);
    memset(d->count, 0, d->world_size * sizeof *d->count);
}

int pl_wire_dedup_mark(pl_wire_dedup *d, uint32_t sender, uint32_t chunk)
{
    if (sender >= d->world_size || chunk >= d->max_chunks)
        return PL_ERR_ARG;
    size_t bit = (size_t)sender * d->max_chunks + chunk;
    uint64_t mask = (uint64_t)1 << (bit % 64);
    if (d->bits[bit / 64] & mask)
        return 0;
    d->bits[bit / 64] |= mask;
    d->count[sender]++;
    return 1;
}

uint32_t pl_wire_dedup_count(const pl_wire_dedup *d, uint32_t sender)
{
    return sender < d->world_size ? d->count[sender] : 0;
}

/* ---- classification ------------------------------------------------------ */

/* Verdict v with a message "<type> from rank S, step T, chunk I/N: <why>". */
static pl_wire_verdict verdict(const pl_wire_header *h, pl_wire_verdict v, pl_err *err,
                               const char *why)
{
    pl_err_set(err, v == PL_WIRE_CORRUPT ? PL_ERR_FORMAT : PL_OK,
               "%s message from rank %u, step %llu, chunk %u/%u: %s: %s",
               pl_wire_type_name(h->type), (unsigned)h->sender, (unsigned long long)h->step,
               (unsigned)h->chunk_index, (unsigned)h->chunk_count, pl_wire_verdict_name(v), why);
    return v;
}

pl_wire_verdict pl_wire_check(const pl_wire_header *h, const void *payload, size_t len,
                              const pl_wire_expect *e, pl_wire_dedup *dedup, pl_err *err)
{
    uint32_t crc = len && !payload ? ~h->payload_crc : pl_wire_crc32c(0, payload, len);
    return pl_wire_check_crc(h, len, crc, e, dedup, err);
}

pl_wire_verdict pl_wire_check_crc(const pl_wire_header *h, uint64_t len, uint32_t crc,
                                  const pl_wire_expect *e, pl_wire_dedup *dedup, pl_err *err)
{
    if (h->run_id != e->run_id)
        return verdict(h, PL_WIRE_FOREIGN, err, "run id differs from this run's");
    if (h->receiver != PL_WIRE_BROADCAST && h->receiver != e->rank)
        return verdict(h, PL_WIRE_MISDIRECTED, err, "addressed to another rank");
    if (h->sender >= e->world_size || h->sender == e->rank)
        return verdict(h, PL_WIRE_MISDIRECTED, err, "sender is not another rank of this world");
    if (h->step < e->step)
        return verdict(h, PL_WIRE_STALE, err, "older than the current step");
    if (h->step > e->step)
        return verdict(h, PL_WIRE_EARLY, err, "newer than the current step");
    if (len != h->payload_len)
        return verdict(h, PL_WIRE_CORRUPT, err, "payload length differs from the header's");
    if (crc != h->payload_crc)
        return verdict(h, PL_WIRE_CORRUPT, err, "payload CRC-32C mismatch");
    if (dedup) {
        int m = pl_wire_dedup_mark(dedup, h->sender, h->chunk_index);
        if (m < 0)
            return verdict(h, PL_WIRE_MISDIRECTED, err, "chunk index beyond the expected count");
        if (m == 0)
            return verdict(h, PL_WIRE_DUPLICATE, err, "already received");
    }
    return PL_WIRE_ACCEPT;
}
