/* test_wire.c — peer message header: byte layout against the documented
 * offsets (read back here by hand, CRC-32C from a bit-at-a-time reference
 * checked against the standard check value), the hardware and table CRC
 * paths against that reference, round trips, every
 * malformed field rejected with a message naming it, payload corruption,
 * and the receiver's classification (stale, early, foreign, misdirected,
 * duplicate). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "peerless/compress.h"
#include "peerless/wire.h"
#include "test.h"

static uint64_t rd(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void wr(uint8_t *p, int n, uint64_t v)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* CRC-32C one bit at a time, straight from the definition (reflected
 * polynomial 0x82F63B78, initial and final inversion). */
static uint32_t ref_crc32c(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < len; i++) {
        c ^= p[i];
        for (int b = 0; b < 8; b++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    }
    return ~c;
}

/* Recompute the header CRC (bytes 108-111) after a deliberate edit. */
static void reseal(uint8_t *b) { wr(b + 108, 4, ref_crc32c(b, 108)); }

/* The standard check value, then both implementations against the
 * reference over lengths and alignments that reach every block path
 * (3 x 8192-byte and 3 x 256-byte stream groups, 8-byte words, tails), and
 * continuation: the CRC of a+b from the CRC of a. */
static void test_crc32c(void)
{
    PL_CHECK(ref_crc32c("123456789", 9) == 0xe3069283u, "reference check value");
    PL_CHECK(pl_wire_crc32c(0, "123456789", 9) == 0xe3069283u, "check value: %08x",
             (unsigned)pl_wire_crc32c(0, "123456789", 9));
    PL_CHECK(pl_wire_crc32c_portable(0, "123456789", 9) == 0xe3069283u, "portable check value");
    PL_CHECK(pl_wire_crc32c(0, NULL, 0) == 0 && pl_wire_crc32c(7, NULL, 0) == 7, "empty");
    size_t cap = 3 * 8192 * 2 + 3 * 256 + 100;
    uint8_t *buf = malloc(cap + 8);
    for (size_t i = 0; i < cap + 8; i++)
        buf[i] = (uint8_t)(i * 7 + (i >> 9) + (i >> 13));
    const size_t lens[] = {1, 7, 8, 9, 255, 768, 769, 3 * 256 + 13, 24575, 24576, 24577,
                           3 * 8192 + 3 * 256 + 5, cap};
    int bad = 0;
    for (size_t k = 0; k < sizeof lens / sizeof *lens; k++)
        for (size_t a = 0; a < 8; a += 3) {
            uint32_t want = ref_crc32c(buf + a, lens[k]);
            bad += pl_wire_crc32c(0, buf + a, lens[k]) != want;
            bad += pl_wire_crc32c_portable(0, buf + a, lens[k]) != want;
            size_t h = lens[k] / 3;
            bad += pl_wire_crc32c(pl_wire_crc32c(0, buf + a, h), buf + a + h, lens[k] - h) != want;
        }
    PL_CHECK(bad == 0, "%d CRC-32C mismatches against the bitwise reference", bad);
    free(buf);
}

static pl_wire_header sample(void)
{
    pl_wire_header h;
    memset(&h, 0, sizeof h);
    h.type = PL_WIRE_GRAD;
    h.codec = PL_CODEC_QSGD4;
    h.flags = PL_WIRE_F_LAST;
    h.sender = 3;
    h.run_id = pl_wire_run_id("exp-1");
    h.step = 0x0102030405060708ULL;
    h.receiver = 1;
    h.chunk_index = 2;
    h.chunk_count = 5;
    h.elem_offset = 1u << 20;
    h.elem_count = 12345;
    return h;
}

static const char payload[] = "a gradient chunk, pretend";

static void test_layout_and_roundtrip(void)
{
    pl_wire_header h = sample(), g;
    uint8_t b[PL_WIRE_HEADER_SIZE + 8];
    pl_err err = {0};
    int rc = pl_wire_encode_header(&h, payload, sizeof payload, b, sizeof b, &err);
    PL_CHECK(rc == PL_OK, "encode: %s", err.msg);
    PL_CHECK(memcmp(b, "PLG1", 4) == 0 && b[4] == 2 && b[5] == 1 && b[6] == 3 && b[7] == 0,
             "bytes 0-7");
    PL_CHECK(rd(b + 8, 4) == 2 && rd(b + 12, 4) == 3, "flags, sender");
    PL_CHECK(rd(b + 16, 8) == h.run_id && rd(b + 24, 8) == 0x0102030405060708ULL, "run, step");
    PL_CHECK(rd(b + 32, 4) == 1 && rd(b + 36, 4) == 2 && rd(b + 40, 4) == 5, "receiver, chunk");
    PL_CHECK(rd(b + 44, 4) == ref_crc32c(payload, sizeof payload), "payload crc");
    PL_CHECK(rd(b + 48, 8) == (1u << 20) && rd(b + 56, 8) == 12345 &&
                 rd(b + 64, 8) == sizeof payload, "offset, count, length");
    PL_CHECK(rd(b + 108, 4) == ref_crc32c(b, 108), "header crc");
    /* FNV-1a 64 of "a" (published test vector). */
    PL_CHECK(pl_wire_run_id("a") == 0xaf63dc4c8601ec8cULL, "fnv1a(a) = %llx",
             (unsigned long long)pl_wire_run_id("a"));
    rc = pl_wire_decode_header(b, sizeof b, &g, &err);
    PL_CHECK(rc == PL_OK, "decode: %s", err.msg);
    PL_CHECK(g.type == h.type && g.codec == h.codec && g.flags == h.flags &&
                 g.sender == h.sender && g.run_id == h.run_id && g.step == h.step &&
                 g.receiver == h.receiver && g.chunk_index == h.chunk_index &&
                 g.chunk_count == h.chunk_count && g.elem_offset == h.elem_offset &&
                 g.elem_count == h.elem_count && g.payload_len == sizeof payload &&
                 g.payload_crc == h.payload_crc, "round trip differs");
    /* A payload in two parts: header from the parts' CRC equals the one
     * from the contiguous payload, and classifies the same. */
    uint8_t b2[PL_WIRE_HEADER_SIZE];
    pl_wire_header h2 = sample();
    uint32_t crc = pl_wire_crc32c(pl_wire_crc32c(0, payload, 10), payload + 10, sizeof payload - 10);
    PL_CHECK(pl_wire_encode_header_crc(&h2, sizeof payload, crc, b2, sizeof b2, &err) == PL_OK &&
                 memcmp(b, b2, PL_WIRE_HEADER_SIZE) == 0, "header from parts differs: %s", err.msg);
    pl_wire_expect ex = {.run_id = h.run_id, .step = h.step, .rank = 1, .world_size = 4};
    PL_CHECK(pl_wire_check_crc(&g, sizeof payload, crc, &ex, NULL, &err) == PL_WIRE_ACCEPT &&
                 pl_wire_check_crc(&g, sizeof payload, crc ^ 1, &ex, NULL, &err) == PL_WIRE_CORRUPT,
             "check with a caller's CRC: %s", err.msg);
    pl_wire_header e = sample();
    e.type = PL_WIRE_HEARTBEAT;
    PL_CHECK(pl_wire_encode_header(&e, NULL, 0, b, sizeof b, &err) == PL_OK &&
                 pl_wire_decode_header(b, PL_WIRE_HEADER_SIZE, &g, &err) == PL_OK &&
                 g.payload_len == 0, "empty payload: %s", err.msg);
}

/* Decoding b must fail with `want` and a message containing `frag`. */
static void expect_bad(const uint8_t *b, size_t len, int want, const char *frag, const char *what)
{
    pl_wire_header g;
    memset(&g, 0x5a, sizeof g);
    pl_err err = {0};
    int rc = pl_wire_decode_header(b, len, &g, &err);
    PL_CHECK(rc == want && strstr(err.msg, frag), "%s: got %d '%s', want %d '%s'", what, rc,
             err.msg, want, frag);
    PL_CHECK(g.sender == 0x5a5a5a5au, "%s: header written on failure", what);
}

static void test_malformed(void)
{
    pl_wire_header h = sample();
    uint8_t good[PL_WIRE_HEADER_SIZE], b[PL_WIRE_HEADER_SIZE];
    pl_wire_encode_header(&h, payload, sizeof payload, good, sizeof good, NULL);
    int bad = 0;
    for (size_t cut = 0; cut < PL_WIRE_HEADER_SIZE; cut++) {
        uint8_t *t = malloc(cut ? cut : 1);
        memcpy(t, good, cut);
        pl_wire_header g;
        bad += pl_wire_decode_header(t, cut, &g, NULL) != PL_ERR_FORMAT;
        free(t);
    }
    PL_CHECK(bad == 0, "%d truncated headers accepted", bad);
    /* Flipping any single bit is caught (by the CRC or a field check). */
    bad = 0;
    for (size_t bit = 0; bit < 8 * PL_WIRE_HEADER_SIZE; bit++) {
        memcpy(b, good, sizeof b);
        b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        pl_wire_header g;
        bad += pl_wire_decode_header(b, sizeof b, &g, NULL) == PL_OK;
    }
    PL_CHECK(bad == 0, "%d single-bit flips accepted", bad);
#define BAD(stmt, seal, want, frag, what) \
    do { memcpy(b, good, sizeof b); stmt; if (seal) reseal(b); \
         expect_bad(b, sizeof b, want, frag, what); } while (0)
    BAD(b[0] = 'X', 0, PL_ERR_FORMAT, "bad magic", "magic");
    BAD(b[4] = 3, 1, PL_ERR_UNSUPPORTED, "version 3", "newer version");
    BAD(b[4] = 1, 1, PL_ERR_FORMAT, "version 1", "version 1 (zlib CRC)");
    BAD(b[4] = 0, 1, PL_ERR_FORMAT, "version 0", "version 0");
    BAD(b[24] ^= 1, 0, PL_ERR_FORMAT, "header CRC", "step bit without reseal");
    BAD(b[5] = 0, 1, PL_ERR_FORMAT, "message type 0", "type 0");
    BAD(b[5] = 99, 1, PL_ERR_FORMAT, "message type 99", "type 99");
    BAD(b[6] = 7, 1, PL_ERR_FORMAT, "codec id 7", "codec");
    BAD(b[7] = 1, 1, PL_ERR_FORMAT, "reserved byte 7", "reserved 7");
    BAD(b[105] = 1, 1, PL_ERR_FORMAT, "reserved", "reserved 104");
    BAD(wr(b + 8, 4, 0x80), 1, PL_ERR_FORMAT, "unknown flags 0x80", "flags");
    BAD(wr(b + 8, 4, PL_WIRE_F_HMAC), 1, PL_ERR_UNSUPPORTED, "HMAC", "hmac flag");
    BAD(b[80] = 1, 1, PL_ERR_FORMAT, "tag is not zero", "tag");
    /* late CRC: GRAD with payload CRC 0 only; verify: REDUCED only */
    BAD(wr(b + 8, 4, PL_WIRE_F_LATE_CRC), 1, PL_ERR_FORMAT, "late-CRC flag on a grad message with "
        "payload CRC", "late CRC with a CRC");
    BAD((wr(b + 8, 4, PL_WIRE_F_LATE_CRC), wr(b + 44, 4, 0), b[5] = PL_WIRE_REDUCED), 1, PL_ERR_FORMAT,
        "late-CRC flag on a reduced message", "late CRC on reduced");
    BAD(wr(b + 8, 4, PL_WIRE_F_VERIFY), 1, PL_ERR_FORMAT, "verify flag on a grad message", "verify on grad");
    BAD(wr(b + 36, 4, 5), 1, PL_ERR_FORMAT, "chunk 5 of 5", "chunk index");
    BAD((wr(b + 36, 4, 0), wr(b + 40, 4, 0)), 1, PL_ERR_FORMAT, "chunk 0 of 0", "chunk count");
    BAD(wr(b + 48, 8, UINT64_MAX - 10), 1, PL_ERR_FORMAT, "overflows", "offset overflow");
    BAD(wr(b + 64, 8, PL_WIRE_MAX_PAYLOAD + 1), 1, PL_ERR_FORMAT, "exceeds the limit",
        "payload length");
#undef BAD
    /* A late-CRC grad and a reduced message announcing VERIFIED decode. */
    memcpy(b, good, sizeof b);
    wr(b + 8, 4, PL_WIRE_F_LATE_CRC);
    wr(b + 44, 4, 0);
    reseal(b);
    pl_wire_header late;
    PL_CHECK(pl_wire_decode_header(b, sizeof b, &late, NULL) == PL_OK && late.flags == PL_WIRE_F_LATE_CRC &&
                 late.payload_crc == 0, "late-CRC grad header refused");
    b[5] = PL_WIRE_REDUCED;
    wr(b + 8, 4, PL_WIRE_F_VERIFY);
    reseal(b);
    PL_CHECK(pl_wire_decode_header(b, sizeof b, &late, NULL) == PL_OK && late.flags == PL_WIRE_F_VERIFY,
             "reduced header with the verify flag refused");
    PL_CHECK(!strcmp(pl_wire_type_name(PL_WIRE_CHECK), "check") &&
                 !strcmp(pl_wire_type_name(PL_WIRE_VERIFIED), "verified"), "names of the new types");
    /* The encoder refuses what the decoder would. */
    pl_err err = {0};
    h.chunk_index = 5;
    PL_CHECK(pl_wire_encode_header(&h, NULL, 0, b, sizeof b, &err) == PL_ERR_ARG &&
                 strstr(err.msg, "chunk 5 of 5"), "encode chunk: %s", err.msg);
    h = sample();
    h.type = 0;
    PL_CHECK(pl_wire_encode_header(&h, NULL, 0, b, sizeof b, &err) == PL_ERR_ARG,
             "encode type 0");
    h = sample();
    PL_CHECK(pl_wire_encode_header(&h, NULL, 0, b, 100, &err) == PL_ERR_ARG &&
                 strstr(err.msg, "100 bytes"), "encode cap: %s", err.msg);
}

/* Classify a message built from h (payload may be tampered after encoding). */
static pl_wire_verdict classify(pl_wire_header h, const char *body, size_t len, uint64_t step,
                                pl_wire_dedup *d, pl_err *err)
{
    uint8_t b[PL_WIRE_HEADER_SIZE];
    pl_wire_header g;
    pl_wire_encode_header(&h, payload, sizeof payload, b, sizeof b, NULL);
    if (pl_wire_decode_header(b, sizeof b, &g, err) != PL_OK)
        return (pl_wire_verdict)-1;
    pl_wire_expect e = {.run_id = pl_wire_run_id("exp-1"), .step = step, .rank = 1,
                        .world_size = 4};
    return pl_wire_check(&g, body, len, &e, d, err);
}

static void test_classify(void)
{
    pl_wire_dedup *d = NULL;
    pl_err err = {0};
    PL_CHECK(pl_wire_dedup_create(4, 5, &d, &err) == PL_OK, "%s", err.msg);
    uint64_t step = sample().step;
    pl_wire_header h = sample();
    PL_CHECK(classify(h, payload, sizeof payload, step, d, &err) == PL_WIRE_ACCEPT, "accept: %s",
             err.msg);
    PL_CHECK(classify(h, payload, sizeof payload, step, d, &err) == PL_WIRE_DUPLICATE &&
                 strstr(err.msg, "rank 3") && strstr(err.msg, "chunk 2/5") && err.status == PL_OK,
             "duplicate: %s", err.msg);
    PL_CHECK(pl_wire_dedup_count(d, 3) == 1, "count");
    h.chunk_index = 3;
    PL_CHECK(classify(h, payload, sizeof payload, step, d, &err) == PL_WIRE_ACCEPT,
             "another chunk");
    PL_CHECK(pl_wire_dedup_count(d, 3) == 2, "count 2");
    pl_wire_dedup_reset(d);
    PL_CHECK(classify(h, payload, sizeof payload, step, d, &err) == PL_WIRE_ACCEPT,
             "after reset");
    PL_CHECK(classify(h, payload, sizeof payload, step + 1, d, &err) == PL_WIRE_STALE &&
                 strstr(err.msg, "stale"), "stale: %s", err.msg);
    PL_CHECK(classify(h, payload, sizeof payload, step - 1, d, &err) == PL_WIRE_EARLY, "early");
    h.run_id = pl_wire_run_id("exp-2");
    PL_CHECK(classify(h, payload, sizeof payload, step, d, &err) == PL_WIRE_FOREIGN &&
                 strstr(err.msg, "run"), "foreign: %s", err.msg);
    h = sample();
    h.receiver = 2;
    PL_CHECK(classify(h, payload, sizeof payload, step, d, &err) == PL_WIRE_MISDIRECTED,
             "other receiver");
    h.receiver = PL_WIRE_BROADCAST;
    h.chunk_index = 4;
    PL_CHECK(classify(h, payload, sizeof payload, step, d, &err) == PL_WIRE_ACCEPT, "broadcast");
    h.sender = 4;
    PL_CHECK(classify(h, payload, sizeof payload, step, d, &err) == PL_WIRE_MISDIRECTED,
             "sender outside the world");
    h.sender = 1;
    PL_CHECK(classify(h, payload, sizeof payload, step, d, &err) == PL_WIRE_MISDIRECTED,
             "own message");
    /* Corruption: one flipped payload bit, or a short payload. */
    h = sample();
    h.chunk_index = 0;
    char bent[sizeof payload];
    memcpy(bent, payload, sizeof payload);
    bent[7] ^= 0x10;
    PL_CHECK(classify(h, bent, sizeof bent, step, d, &err) == PL_WIRE_CORRUPT &&
                 err.status == PL_ERR_FORMAT && strstr(err.msg, "CRC"), "corrupt: %s", err.msg);
    PL_CHECK(classify(h, payload, sizeof payload - 1, step, d, &err) == PL_WIRE_CORRUPT &&
                 strstr(err.msg, "length"), "short: %s", err.msg);
    /* A corrupt message must not mark the chunk as received. */
    PL_CHECK(classify(h, payload, sizeof payload, step, d, &err) == PL_WIRE_ACCEPT,
             "good copy after a corrupt one: %s", err.msg);
    PL_CHECK(pl_wire_dedup_mark(d, 4, 0) == PL_ERR_ARG && pl_wire_dedup_mark(d, 0, 5) == PL_ERR_ARG,
             "dedup bounds");
    pl_wire_dedup_destroy(d);
    pl_wire_dedup_destroy(NULL);
    PL_CHECK(strcmp(pl_wire_type_name(PL_WIRE_MODEL), "model") == 0 &&
                 strcmp(pl_wire_type_name(0), "unknown") == 0 &&
                 strcmp(pl_wire_verdict_name(PL_WIRE_CORRUPT), "corrupt") == 0, "names");
}

int main(void)
{
    test_crc32c();
    test_layout_and_roundtrip();
    test_malformed();
    test_classify();
    PL_TEST_MAIN();
}
