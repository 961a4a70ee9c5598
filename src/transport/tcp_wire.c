/* tcp_wire.c — header (de)serialisation and CRC-32C for the TCP transport. */
#include "transport/tcp_wire.h"

#include <pthread.h>
#include <string.h>
#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

#define CRC32C_POLY 0x82f63b78u /* reflected Castagnoli polynomial */

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

void tcp_hdr_encode(const tcp_hdr *h, uint8_t *out)
{
    memset(out, 0, TCP_HDR_BYTES);
    put32(out, TCP_MAGIC);
    put16(out + 4, TCP_VERSION);
    out[6] = h->type;
    out[7] = h->codec;
    put64(out + 8, h->run_id);
    put64(out + 16, h->step);
    put32(out + 24, h->sender);
    put32(out + 28, h->chunk);
    put32(out + 32, h->seg);
    put64(out + 40, h->offset);
    put32(out + 48, h->count);
    put32(out + 52, h->payload_len);
    put32(out + 56, h->payload_crc);
    put32(out + 60, tcp_crc32c(0, out, 60));
}

int tcp_hdr_decode(const uint8_t *in, tcp_hdr *h, pl_err *err)
{
    if (get32(in) != TCP_MAGIC)
        return pl_err_set(err, PL_ERR_FORMAT, "bad magic 0x%08x (expected 0x%08x \"PLTM\")",
                          get32(in), TCP_MAGIC);
    if (get16(in + 4) != TCP_VERSION)
        return pl_err_set(err, PL_ERR_FORMAT, "message version %u (expected %u)",
                          get16(in + 4), TCP_VERSION);
    uint32_t want = tcp_crc32c(0, in, 60);
    if (get32(in + 60) != want)
        return pl_err_set(err, PL_ERR_FORMAT, "header CRC 0x%08x does not match 0x%08x",
                          get32(in + 60), want);
    h->type = in[6];
    h->codec = in[7];
    h->run_id = get64(in + 8);
    h->step = get64(in + 16);
    h->sender = get32(in + 24);
    h->chunk = get32(in + 28);
    h->seg = get32(in + 32);
    h->offset = get64(in + 40);
    h->count = get32(in + 48);
    h->payload_len = get32(in + 52);
    h->payload_crc = get32(in + 56);
    return PL_OK;
}

const char *tcp_msg_name(int type)
{
    static const char *const names[] = {"?", "HELLO", "REJECT", "REDUCE", "GATHER",
                                        "BROADCAST", "BARRIER"};
    return type >= 1 && type <= TCP_MSG_BARRIER ? names[type] : "unknown";
}

/* --- CRC-32C: byte table, and with SSE4.2 three interleaved hardware
 * streams recombined by "shift by N zero bytes" tables (after Mark Adler). */

static uint32_t crc_table[256];
#define CRC_LONG 8192
#define CRC_SHORT 256
static uint32_t crc_long[4][256], crc_short[4][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static uint32_t gf2_times(const uint32_t *mat, uint32_t vec)
{
    uint32_t sum = 0;
    for (; vec; vec >>= 1, mat++)
        if (vec & 1)
            sum ^= *mat;
    return sum;
}

static void gf2_square(uint32_t *sq, const uint32_t *mat)
{
    for (int n = 0; n < 32; n++)
        sq[n] = gf2_times(mat, mat[n]);
}

/* Operator that appends len zero bytes to a CRC. */
static void zeros_op(uint32_t *even, size_t len)
{
    uint32_t odd[32];
    odd[0] = CRC32C_POLY;
    for (int n = 1; n < 32; n++)
        odd[n] = 1u << (n - 1);
    gf2_square(even, odd); /* 2 zero bits */
    gf2_square(odd, even); /* 4 zero bits */
    for (;;) {
        gf2_square(even, odd);
        len >>= 1;
        if (!len)
            return;
        gf2_square(odd, even);
        len >>= 1;
        if (!len)
            break;
    }
    memcpy(even, odd, sizeof odd);
}

static void zeros_table(uint32_t t[4][256], size_t len)
{
    uint32_t op[32];
    zeros_op(op, len);
    for (uint32_t n = 0; n < 256; n++)
        for (int k = 0; k < 4; k++)
            t[k][n] = gf2_times(op, n << (8 * k));
}

static void crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        crc_table[n] = c;
    }
    zeros_table(crc_long, CRC_LONG);
    zeros_table(crc_short, CRC_SHORT);
}

#if defined(__SSE4_2__)
static uint32_t shift(uint32_t t[4][256], uint32_t crc)
{
    return t[0][crc & 0xff] ^ t[1][(crc >> 8) & 0xff] ^ t[2][(crc >> 16) & 0xff] ^ t[3][crc >> 24];
}

static uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Three independent streams of `block` bytes each, then recombined. */
static const uint8_t *crc_blocks(uint64_t *c0, const uint8_t *p, size_t *len, size_t block,
                                 uint32_t t[4][256])
{
    while (*len >= 3 * block) {
        uint64_t a = *c0, b = 0, c = 0;
        for (const uint8_t *end = p + block; p < end; p += 8) {
            a = _mm_crc32_u64(a, load64(p));
            b = _mm_crc32_u64(b, load64(p + block));
            c = _mm_crc32_u64(c, load64(p + 2 * block));
        }
        a = shift(t, (uint32_t)a) ^ b;
        *c0 = shift(t, (uint32_t)a) ^ c;
        p += 2 * block;
        *len -= 3 * block;
    }
    return p;
}

uint32_t tcp_crc32c(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&crc_once, crc_init);
    const uint8_t *p = buf;
    uint64_t c = crc ^ 0xffffffffu;
    for (; len && ((uintptr_t)p & 7); len--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    p = crc_blocks(&c, p, &len, CRC_LONG, crc_long);
    p = crc_blocks(&c, p, &len, CRC_SHORT, crc_short);
    for (; len >= 8; len -= 8, p += 8)
        c = _mm_crc32_u64(c, load64(p));
    for (; len; len--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    return (uint32_t)c ^ 0xffffffffu;
}
#else
uint32_t tcp_crc32c(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&crc_once, crc_init);
    const uint8_t *p = buf;
    crc ^= 0xffffffffu;
    while (len--)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc ^ 0xffffffffu;
}
#endif
