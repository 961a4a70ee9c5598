/* compress.c — gradient codecs: none, fp16, qsgd8/qsgd4, topk with error
 * feedback. Payload layout and contracts are in include/peerless/compress.h. */
#include "peerless/compress.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/le.h"
#include "peerless/rng.h"

_Static_assert(sizeof(size_t) >= 8, "payload sizes of u32 element counts need 64-bit size_t");

#define CODEC_VERSION 1
/* Below this many elements a loop runs on one thread: forking costs more. */
#define PAR_MIN 65536
#define HIST_BINS 65536

struct pl_codec {
    pl_codec_cfg cfg;
    size_t n_max;
    uint64_t seed;
    uint64_t calls;     /* encode calls so far: feeds QSGD's RNG streams */
    float *residual;    /* topk: n_max, what was not sent yet; else NULL */
    uint32_t *hist;     /* topk: HIST_BINS scratch for the radix select */
};

/* A payload whose header has been read; body points into the caller's buffer. */
typedef struct payload {
    pl_codec_id id;
    size_t n;
    uint32_t param;
    const uint8_t *body;
    size_t body_len;
} payload;

/* One codec: body size, encoder, validator and applier (add = 0: overwrite). */
typedef struct codec_ops {
    const char *name;
    size_t (*body_bytes)(const pl_codec_cfg *cfg, size_t n);
    int (*encode)(pl_codec *c, const float *x, size_t n, size_t offset, uint8_t *body,
                  pl_err *err);
    int (*validate)(const payload *p, pl_err *err);
    void (*apply)(const payload *p, float *x, int add);
} codec_ops;

static const codec_ops *ops_of(int id);

/* ---- fp16 conversions ---------------------------------------------------- */

uint16_t pl_fp16_from_f32(float f)
{
    uint32_t x = le_f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    x &= 0x7fffffffu;
    if (x >= 0x47800000u) /* >= 2^16, inf or NaN */
        return (uint16_t)(sign | (x > 0x7f800000u ? 0x7e00u : 0x7c00u));
    if (x < 0x38800000u) {
        /* Below 2^-14 the result is subnormal: adding 0.5f aligns the
         * binary point so the FPU's round-to-nearest-even does the rounding. */
        float r = le_bits_f32(x) + 0.5f;
        return (uint16_t)(sign | (le_f32_bits(r) - 0x3f000000u));
    }
    uint32_t odd = (x >> 13) & 1u;
    x += ((uint32_t)(15 - 127) << 23) + 0xfffu + odd; /* rebias, round half to even */
    return (uint16_t)(sign | (x >> 13));              /* a mantissa carry may give inf */
}

float pl_fp16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    if (exp == 0) {
        float f = (float)mant * 0x1p-24f; /* exact: subnormal or zero */
        return sign ? -f : f;
    }
    if (exp == 0x1f)
        return le_bits_f32(sign | 0x7f800000u | (mant << 13));
    return le_bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

/* ---- spec parsing -------------------------------------------------------- */

const char *pl_codec_name(int id)
{
    const codec_ops *o = ops_of(id);
    return o ? o->name : "unknown";
}

static int parse_bucket(const char *spec, const char *arg, pl_codec_cfg *c, pl_err *err)
{
    c->bucket = PL_CODEC_DEFAULT_BUCKET;
    if (!arg)
        return PL_OK;
    char *end = NULL;
    unsigned long long b = strtoull(arg, &end, 10);
    if (!*arg || *end || arg[0] == '-' || b < 1 || b > (1u << 24))
        return pl_err_set(err, PL_ERR_ARG,
                          "codec '%s': bucket '%s' must be an integer in [1, 16777216]", spec, arg);
    if (c->id == PL_CODEC_QSGD4 && (b & 1))
        return pl_err_set(err, PL_ERR_ARG,
                          "codec '%s': qsgd4 bucket must be even (two codes per byte)", spec);
    c->bucket = (uint32_t)b;
    return PL_OK;
}

static int parse_ratio(const char *spec, const char *arg, pl_codec_cfg *c, pl_err *err)
{
    char *end = NULL;
    double r = arg ? strtod(arg, &end) : 0.0;
    if (!arg || !*arg || *end || !(r > 0.0 && r <= 1.0))
        return pl_err_set(err, PL_ERR_ARG,
                          "codec '%s': topk needs a ratio in (0, 1], e.g. 'topk:0.01'", spec);
    c->ratio = r;
    return PL_OK;
}

int pl_codec_parse(const char *spec, pl_codec_cfg *cfg, pl_err *err)
{
    if (!spec)
        return pl_err_set(err, PL_ERR_ARG, "codec spec is NULL");
    char name[16];
    const char *colon = strchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    const char *arg = colon ? colon + 1 : NULL;
    if (len >= sizeof name)
        len = sizeof name - 1;
    memcpy(name, spec, len);
    name[len] = '\0';
    pl_codec_cfg c = {0};
    c.id = PL_CODEC_COUNT_;
    for (int i = 0; i < PL_CODEC_COUNT_; i++)
        if (strcmp(name, ops_of(i)->name) == 0)
            c.id = (pl_codec_id)i;
    if (strcmp(name, "qsgd") == 0)
        c.id = PL_CODEC_QSGD8;
    if (c.id == PL_CODEC_COUNT_)
        return pl_err_set(err, PL_ERR_ARG,
                          "unknown codec '%s' (expected none, fp16, qsgd8[:B], qsgd4[:B], topk:R)",
                          spec);
    int rc = PL_OK;
    if (c.id == PL_CODEC_QSGD8 || c.id == PL_CODEC_QSGD4)
        rc = parse_bucket(spec, arg, &c, err);
    else if (c.id == PL_CODEC_TOPK)
        rc = parse_ratio(spec, arg, &c, err);
    else if (arg)
        rc = pl_err_set(err, PL_ERR_ARG, "codec '%s': '%s' takes no parameter", spec, name);
    if (rc == PL_OK)
        *cfg = c;
    return rc;
}

char *pl_codec_spec(const pl_codec_cfg *cfg, char *buf, size_t len)
{
    const char *name = pl_codec_name(cfg->id);
    if (cfg->id == PL_CODEC_QSGD8 || cfg->id == PL_CODEC_QSGD4)
        snprintf(buf, len, "%s:%u", name, (unsigned)cfg->bucket);
    else if (cfg->id == PL_CODEC_TOPK)
        snprintf(buf, len, "%s:%.17g", name, cfg->ratio);
    else
        snprintf(buf, len, "%s", name);
    return buf;
}

/* ---- sizes --------------------------------------------------------------- */

size_t pl_codec_topk_k(const pl_codec_cfg *cfg, size_t n)
{
    if (n == 0)
        return 0;
    double k = ceil(cfg->ratio * (double)n);
    if (!(k >= 1.0))
        return 1;
    return k >= (double)n ? n : (size_t)k;
}

static int cfg_valid(const pl_codec_cfg *cfg)
{
    if (!ops_of(cfg->id))
        return 0;
    if (cfg->id == PL_CODEC_QSGD8 || cfg->id == PL_CODEC_QSGD4)
        return cfg->bucket >= 1 && !(cfg->id == PL_CODEC_QSGD4 && (cfg->bucket & 1));
    if (cfg->id == PL_CODEC_TOPK)
        return cfg->ratio > 0.0 && cfg->ratio <= 1.0;
    return 1;
}

size_t pl_codec_max_bytes(const pl_codec_cfg *cfg, size_t n)
{
    if (!cfg || !cfg_valid(cfg) || n > PL_CODEC_MAX_N)
        return 0;
    return PL_CODEC_HEADER_SIZE + ops_of(cfg->id)->body_bytes(cfg, n);
}

/* ---- codec objects ------------------------------------------------------- */

int pl_codec_create(const pl_codec_cfg *cfg, size_t n_max, uint64_t seed, pl_codec **out,
                    pl_err *err)
{
    *out = NULL;
    char spec[64];
    if (!cfg_valid(cfg))
        return pl_err_set(err, PL_ERR_ARG, "codec create: invalid configuration (id %d)",
                          (int)cfg->id);
    pl_codec *c = calloc(1, sizeof *c);
    if (!c)
        return pl_err_set(err, PL_ERR_NOMEM, "codec create: out of memory");
    c->cfg = *cfg;
    c->n_max = n_max;
    c->seed = seed;
    if (cfg->id == PL_CODEC_TOPK) {
        c->residual = calloc(n_max ? n_max : 1, sizeof *c->residual);
        c->hist = malloc(HIST_BINS * sizeof *c->hist);
        if (!c->residual || !c->hist) {
            pl_codec_destroy(c);
            return pl_err_set(err, PL_ERR_NOMEM, "codec %s: no memory for a %zu-element residual",
                              pl_codec_spec(cfg, spec, sizeof spec), n_max);
        }
    }
    *out = c;
    return PL_OK;
}

void pl_codec_destroy(pl_codec *c)
{
    if (!c)
        return;
    free(c->residual);
    free(c->hist);
    free(c);
}

const pl_codec_cfg *pl_codec_config(const pl_codec *c) { return &c->cfg; }

void pl_codec_reset(pl_codec *c)
{
    if (c->residual)
        memset(c->residual, 0, (c->n_max ? c->n_max : 1) * sizeof *c->residual);
}

const float *pl_codec_residual(const pl_codec *c) { return c->residual; }

/* First non-finite element of x[0..n), or n. */
static size_t first_nonfinite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return i;
    return n;
}

int pl_codec_encode(pl_codec *c, const float *x, size_t n, size_t offset, void *out, size_t cap,
                    size_t *written, pl_err *err)
{
    char spec[64];
    pl_codec_spec(&c->cfg, spec, sizeof spec);
    *written = 0;
    if (n > PL_CODEC_MAX_N || offset > c->n_max || n > c->n_max - offset)
        return pl_err_set(err, PL_ERR_ARG,
                          "codec %s: elements [%zu, %zu) outside the stream's %zu elements", spec,
                          offset, offset + n, c->n_max);
    size_t need = pl_codec_max_bytes(&c->cfg, n);
    if (cap < need)
        return pl_err_set(err, PL_ERR_ARG, "codec %s: output buffer of %zu bytes, need %zu",
                          spec, cap, need);
    const codec_ops *o = ops_of(c->cfg.id);
    uint8_t *p = out;
    pl_codec_write_header(&c->cfg, n, p);
    int rc = o->encode(c, x, n, offset, p + PL_CODEC_HEADER_SIZE, err);
    c->calls++;
    if (rc != PL_OK)
        return pl_err_wrap(err, rc, "codec %s: encoding elements [%zu, %zu)", spec, offset,
                           offset + n);
    *written = need;
    return PL_OK;
}

void pl_codec_write_header(const pl_codec_cfg *cfg, size_t n, void *out)
{
    uint8_t *p = out;
    p[0] = (uint8_t)cfg->id;
    p[1] = CODEC_VERSION;
    le_put_u16(p + 2, 0);
    le_put_u32(p + 4, (uint32_t)n);
    uint32_t param = cfg->id == PL_CODEC_TOPK ? (uint32_t)pl_codec_topk_k(cfg, n) : cfg->bucket;
    le_put_u32(p + 8, param);
}

/* ---- decoding ------------------------------------------------------------ */

static int read_header(const void *in, size_t len, payload *p, pl_err *err)
{
    const uint8_t *b = in;
    if (len < PL_CODEC_HEADER_SIZE)
        return pl_err_set(err, PL_ERR_FORMAT,
                          "codec payload: %zu bytes, shorter than its %d-byte header", len,
                          PL_CODEC_HEADER_SIZE);
    if (!ops_of(b[0]))
        return pl_err_set(err, PL_ERR_FORMAT, "codec payload byte 0: unknown codec id %u",
                          (unsigned)b[0]);
    if (b[1] != CODEC_VERSION)
        return pl_err_set(err, PL_ERR_FORMAT, "codec payload byte 1: version %u, expected %d",
                          (unsigned)b[1], CODEC_VERSION);
    if (le_get_u16(b + 2) != 0)
        return pl_err_set(err, PL_ERR_FORMAT, "codec payload bytes 2-3: reserved field is %u, "
                          "expected 0", (unsigned)le_get_u16(b + 2));
    p->id = (pl_codec_id)b[0];
    p->n = le_get_u32(b + 4);
    p->param = le_get_u32(b + 8);
    p->body = b + PL_CODEC_HEADER_SIZE;
    p->body_len = len - PL_CODEC_HEADER_SIZE;
    return PL_OK;
}

/* The payload's own configuration from its header (param checked here). */
static int header_cfg(const payload *p, pl_codec_cfg *cfg, pl_err *err)
{
    const char *name = pl_codec_name(p->id);
    pl_codec_cfg c = {.id = p->id};
    if (p->id == PL_CODEC_QSGD8 || p->id == PL_CODEC_QSGD4) {
        c.bucket = p->param;
        if (!cfg_valid(&c))
            return pl_err_set(err, PL_ERR_FORMAT, "%s payload bytes 8-11: bucket size %u is "
                              "invalid (>= 1%s)", name, (unsigned)p->param,
                              p->id == PL_CODEC_QSGD4 ? ", even" : "");
    } else if (p->id == PL_CODEC_TOPK) {
        if (p->param > p->n)
            return pl_err_set(err, PL_ERR_FORMAT, "topk payload bytes 8-11: k = %u exceeds "
                              "n = %zu", (unsigned)p->param, p->n);
    } else if (p->param != 0) {
        return pl_err_set(err, PL_ERR_FORMAT, "%s payload bytes 8-11: parameter %u, expected 0",
                          name, (unsigned)p->param);
    }
    *cfg = c;
    return PL_OK;
}

int pl_codec_peek(const void *in, size_t len, pl_codec_cfg *cfg, size_t *n, pl_err *err)
{
    payload p = {0};
    pl_codec_cfg c = {0};
    int rc = read_header(in, len, &p, err);
    if (rc == PL_OK)
        rc = header_cfg(&p, &c, err);
    if (rc != PL_OK)
        return rc;
    *cfg = c;
    *n = p.n;
    return PL_OK;
}

static int check_expect(const pl_codec_cfg *expect, const payload *p, pl_err *err)
{
    if (!expect)
        return PL_OK;
    if (expect->id != p->id)
        return pl_err_set(err, PL_ERR_FORMAT, "codec payload byte 0: codec %s, expected %s",
                          pl_codec_name(p->id), pl_codec_name(expect->id));
    if ((p->id == PL_CODEC_QSGD8 || p->id == PL_CODEC_QSGD4) && expect->bucket != p->param)
        return pl_err_set(err, PL_ERR_FORMAT, "%s payload bytes 8-11: bucket %u, expected %u",
                          pl_codec_name(p->id), (unsigned)p->param, (unsigned)expect->bucket);
    if (p->id == PL_CODEC_TOPK && expect->ratio > 0 && pl_codec_topk_k(expect, p->n) != p->param)
        return pl_err_set(err, PL_ERR_FORMAT, "topk payload bytes 8-11: k = %u, expected %zu "
                          "for ratio %g of %zu elements", (unsigned)p->param,
                          pl_codec_topk_k(expect, p->n), expect->ratio, p->n);
    return PL_OK;
}

static int decode_impl(const pl_codec_cfg *expect, const void *in, size_t len, float *x,
                       size_t n, int add, pl_err *err)
{
    payload p = {0};
    pl_codec_cfg own = {0};
    int rc = read_header(in, len, &p, err);
    if (rc == PL_OK)
        rc = header_cfg(&p, &own, err);
    if (rc == PL_OK)
        rc = check_expect(expect, &p, err);
    if (rc != PL_OK)
        return rc;
    const codec_ops *o = ops_of(p.id);
    if (p.n != n)
        return pl_err_set(err, PL_ERR_FORMAT, "%s payload bytes 4-7: %zu elements, expected %zu",
                          o->name, p.n, n);
    /* topk's size follows from the k it carries; the others' from n alone. */
    size_t body = p.id == PL_CODEC_TOPK ? 8 * (size_t)p.param : o->body_bytes(&own, n);
    if (p.body_len != body)
        return pl_err_set(err, PL_ERR_FORMAT, "%s payload: %zu bytes, expected %zu for %zu "
                          "elements", o->name, len, body + PL_CODEC_HEADER_SIZE, n);
    rc = o->validate(&p, err);
    if (rc != PL_OK)
        return rc;
    o->apply(&p, x, add);
    return PL_OK;
}

int pl_codec_decode(const pl_codec_cfg *expect, const void *in, size_t len, float *x, size_t n,
                    pl_err *err)
{
    return decode_impl(expect, in, len, x, n, 0, err);
}

int pl_codec_decode_add(const pl_codec_cfg *expect, const void *in, size_t len, float *x,
                        size_t n, pl_err *err)
{
    return decode_impl(expect, in, len, x, n, 1, err);
}

/* ---- none ---------------------------------------------------------------- */

static size_t none_bytes(const pl_codec_cfg *cfg, size_t n)
{
    (void)cfg;
    return 4 * n;
}

static int none_encode(pl_codec *c, const float *x, size_t n, size_t offset, uint8_t *body,
                       pl_err *err)
{
    (void)c;
    size_t bad = first_nonfinite(x, n);
    if (bad < n)
        return pl_err_set(err, PL_ERR_NUMERIC, "element %zu is %g", offset + bad, x[bad]);
    int64_t nn = (int64_t)n;
#pragma omp parallel for schedule(static) if (nn >= PAR_MIN)
    for (int64_t i = 0; i < nn; i++)
        le_put_f32(body + 4 * i, x[i]);
    return PL_OK;
}

static int none_validate(const payload *p, pl_err *err)
{
    for (size_t i = 0; i < p->n; i++) {
        float v = le_get_f32(p->body + 4 * i);
        if (!isfinite(v))
            return pl_err_set(err, PL_ERR_NUMERIC, "none payload byte %zu: element %zu is %g",
                              PL_CODEC_HEADER_SIZE + 4 * i, i, v);
    }
    return PL_OK;
}

static void none_apply(const payload *p, float *x, int add)
{
    int64_t nn = (int64_t)p->n;
#pragma omp parallel for schedule(static) if (nn >= PAR_MIN)
    for (int64_t i = 0; i < nn; i++) {
        float v = le_get_f32(p->body + 4 * i);
        x[i] = add ? x[i] + v : v;
    }
}

/* ---- fp16 ---------------------------------------------------------------- */

static size_t fp16_bytes(const pl_codec_cfg *cfg, size_t n)
{
    (void)cfg;
    return 2 * n;
}

static int fp16_encode(pl_codec *c, const float *x, size_t n, size_t offset, uint8_t *body,
                       pl_err *err)
{
    (void)c;
    int64_t nn = (int64_t)n;
    int overflow = 0;
#pragma omp parallel for schedule(static) if (nn >= PAR_MIN) reduction(| : overflow)
    for (int64_t i = 0; i < nn; i++) {
        uint16_t h = pl_fp16_from_f32(x[i]);
        overflow |= (h & 0x7c00u) == 0x7c00u;
        le_put_u16(body + 2 * i, h);
    }
    if (!overflow)
        return PL_OK;
    for (size_t i = 0; i < n; i++)
        if ((pl_fp16_from_f32(x[i]) & 0x7c00u) == 0x7c00u)
            return pl_err_set(err, PL_ERR_NUMERIC, "element %zu is %g: not finite in fp16 "
                              "(|x| < 65520 required)", offset + i, x[i]);
    return PL_OK;
}

static int fp16_validate(const payload *p, pl_err *err)
{
    for (size_t i = 0; i < p->n; i++) {
        uint16_t h = le_get_u16(p->body + 2 * i);
        if ((h & 0x7c00u) == 0x7c00u)
            return pl_err_set(err, PL_ERR_NUMERIC, "fp16 payload byte %zu: element %zu is "
                              "%s (bits 0x%04x)", PL_CODEC_HEADER_SIZE + 2 * i, i,
                              (h & 0x3ffu) ? "NaN" : "infinite", (unsigned)h);
    }
    return PL_OK;
}

static void fp16_apply(const payload *p, float *x, int add)
{
    int64_t nn = (int64_t)p->n;
#pragma omp parallel for schedule(static) if (nn >= PAR_MIN)
    for (int64_t i = 0; i < nn; i++) {
        float v = pl_fp16_to_f32(le_get_u16(p->body + 2 * i));
        x[i] = add ? x[i] + v : v;
    }
}

/* ---- qsgd ---------------------------------------------------------------- */

static int qsgd_bits(pl_codec_id id) { return id == PL_CODEC_QSGD4 ? 4 : 8; }

static size_t qsgd_buckets(size_t n, uint32_t bucket) { return (n + bucket - 1) / bucket; }

static size_t qsgd_bytes(const pl_codec_cfg *cfg, size_t n)
{
    return 4 * qsgd_buckets(n, cfg->bucket) + (n * (size_t)qsgd_bits(cfg->id) + 7) / 8;
}

/* splitmix64 finaliser: decorrelates (seed, call) into one RNG seed. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Level of |v| * scale, rounded up with probability equal to its fraction
 * (24-bit uniform, as pl_rng_uniform), clamped to s: |v| can exceed the
 * float-rounded norm by an ulp. */
static inline uint32_t qsgd_level(float v, float scale, uint32_t s, pl_rng *rng)
{
    float r = fabsf(v) * scale;
    uint32_t l = (uint32_t)r;
    float u = (float)(pl_rng_u32(rng) >> 8) * (1.0f / 16777216.0f);
    l += u < r - (float)l;
    return l > s ? s : l;
}

/* Quantise bucket x[0..m) with norm > 0 into sign+level codes, from its own
 * RNG stream; the inputs were checked finite. */
static void qsgd8_codes(const float *x, size_t m, float norm, pl_rng *rng, uint8_t *codes)
{
    float scale = 127.0f / norm;
    for (size_t i = 0; i < m; i++) {
        uint32_t l = qsgd_level(x[i], scale, 127, rng);
        codes[i] = (uint8_t)(l | (x[i] < 0 && l ? 0x80u : 0u));
    }
}

static void qsgd4_codes(const float *x, size_t m, float norm, pl_rng *rng, uint8_t *codes)
{
    float scale = 7.0f / norm;
    for (size_t i = 0; i < m; i++) {
        uint32_t l = qsgd_level(x[i], scale, 7, rng);
        uint8_t code = (uint8_t)(l | (x[i] < 0 && l ? 0x8u : 0u));
        if (i & 1)
            codes[i / 2] |= (uint8_t)(code << 4);
        else
            codes[i / 2] = code;
    }
}

/* Encode bucket b; returns 0, or 1 if it holds a non-finite value or its
 * norm overflows float32 (the caller reports which). */
static int qsgd_encode_bucket(const pl_codec *c, const float *x, size_t n, size_t offset,
                              size_t b, uint8_t *norms, uint8_t *codes)
{
    uint32_t B = c->cfg.bucket;
    int bits = qsgd_bits(c->cfg.id);
    size_t lo = b * B, m = n - lo < B ? n - lo : B;
    double ss = 0;
    for (size_t i = 0; i < m; i++)
        ss += (double)x[lo + i] * (double)x[lo + i];
    float norm = (float)sqrt(ss);
    if (!isfinite(norm))
        return 1;
    le_put_f32(norms + 4 * b, norm);
    uint8_t *out = codes + lo * (size_t)bits / 8;
    if (norm == 0.0f) {
        memset(out, 0, (m * (size_t)bits + 7) / 8);
        return 0;
    }
    pl_rng rng;
    pl_rng_seed(&rng, mix64(c->seed ^ mix64(c->calls + 1)), offset + lo);
    if (bits == 8)
        qsgd8_codes(x + lo, m, norm, &rng, out);
    else
        qsgd4_codes(x + lo, m, norm, &rng, out);
    return 0;
}

static int qsgd_encode(pl_codec *c, const float *x, size_t n, size_t offset, uint8_t *body,
                       pl_err *err)
{
    size_t nb = qsgd_buckets(n, c->cfg.bucket);
    uint8_t *codes = body + 4 * nb;
    int bad = 0;
    int64_t nbs = (int64_t)nb;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN) reduction(| : bad)
    for (int64_t b = 0; b < nbs; b++)
        bad |= qsgd_encode_bucket(c, x, n, offset, (size_t)b, body, codes);
    if (!bad)
        return PL_OK;
    size_t i = first_nonfinite(x, n);
    if (i < n)
        return pl_err_set(err, PL_ERR_NUMERIC, "element %zu is %g", offset + i, x[i]);
    return pl_err_set(err, PL_ERR_NUMERIC, "a bucket's L2 norm overflows float32");
}

static int qsgd_validate(const payload *p, pl_err *err)
{
    const char *name = pl_codec_name(p->id);
    size_t nb = qsgd_buckets(p->n, p->param);
    for (size_t b = 0; b < nb; b++) {
        float norm = le_get_f32(p->body + 4 * b);
        if (!isfinite(norm) || !(norm >= 0.0f) || signbit(norm))
            return pl_err_set(err, PL_ERR_NUMERIC, "%s payload byte %zu: norm of bucket %zu is "
                              "%g, expected finite and >= 0", name,
                              PL_CODEC_HEADER_SIZE + 4 * b, b, norm);
    }
    if (p->id == PL_CODEC_QSGD4 && (p->n & 1)) {
        size_t last = 4 * nb + p->n / 2;
        if (p->body[last] & 0xf0u)
            return pl_err_set(err, PL_ERR_FORMAT, "qsgd4 payload byte %zu: padding nibble is "
                              "0x%x, expected 0", PL_CODEC_HEADER_SIZE + last,
                              (unsigned)(p->body[last] >> 4));
    }
    return PL_OK;
}

/* lut[code] = sign * l / s for every code of `bits` bits. */
static void qsgd_lut(int bits, float *lut)
{
    uint32_t s = (1u << (bits - 1)) - 1u;
    for (uint32_t code = 0; code < (1u << bits); code++) {
        float v = (float)(code & s) / (float)s;
        lut[code] = (code >> (bits - 1)) ? -v : v;
    }
}

static void qsgd_apply(const payload *p, float *x, int add)
{
    int bits = qsgd_bits(p->id);
    float lut[256];
    qsgd_lut(bits, lut);
    size_t B = p->param, nb = qsgd_buckets(p->n, p->param);
    const uint8_t *codes = p->body + 4 * nb;
    int64_t nbs = (int64_t)nb;
#pragma omp parallel for schedule(static) if (p->n >= PAR_MIN)
    for (int64_t b = 0; b < nbs; b++) {
        float norm = le_get_f32(p->body + 4 * b);
        size_t lo = (size_t)b * B, hi = lo + B < p->n ? lo + B : p->n;
        for (size_t i = lo; i < hi; i++) {
            uint32_t code = bits == 8 ? codes[i] : (codes[i / 2] >> (4 * (i & 1))) & 0xfu;
            float v = norm * lut[code];
            x[i] = add ? x[i] + v : v;
        }
    }
}

/* ---- topk ---------------------------------------------------------------- */

static size_t topk_bytes(const pl_codec_cfg *cfg, size_t n) { return 8 * pl_codec_topk_k(cfg, n); }

/* Bits of |v|: for non-negative finite floats, integer order = value order. */
static uint32_t mag_bits(float v) { return le_f32_bits(v) & 0x7fffffffu; }

/* Radix select: the k-th largest mag_bits over a[0..n) (1 <= k <= n), and
 * how many elements are strictly larger (*above). Two 16-bit passes. */
static uint32_t kth_largest(const float *a, size_t n, size_t k, uint32_t *hist, size_t *above)
{
    uint32_t prefix = 0;
    size_t more = 0;
    for (int pass = 0; pass < 2; pass++) {
        memset(hist, 0, HIST_BINS * sizeof *hist);
        for (size_t i = 0; i < n; i++) {
            uint32_t m = mag_bits(a[i]);
            if (pass == 0)
                hist[m >> 16]++;
            else if ((m >> 16) == prefix)
                hist[m & 0xffffu]++;
        }
        uint32_t bin = HIST_BINS - 1;
        while (more + hist[bin] < k)
            more += hist[bin--];
        prefix = pass == 0 ? bin : (prefix << 16) | bin;
    }
    *above = more;
    return prefix;
}

static int topk_encode(pl_codec *c, const float *x, size_t n, size_t offset, uint8_t *body,
                       pl_err *err)
{
    float *acc = c->residual + offset;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i] + acc[i]))
            return pl_err_set(err, PL_ERR_NUMERIC, "element %zu is %g (residual %g)",
                              offset + i, x[i], acc[i]);
    for (size_t i = 0; i < n; i++)
        acc[i] += x[i];
    size_t k = pl_codec_topk_k(&c->cfg, n), above = 0, j = 0;
    if (k == 0)
        return PL_OK;
    uint32_t thr = kth_largest(acc, n, k, c->hist, &above);
    size_t ties = k - above; /* entries equal to the threshold, lowest index first */
    for (size_t i = 0; i < n && j < k; i++) {
        uint32_t m = mag_bits(acc[i]);
        if (m < thr || (m == thr && ties == 0))
            continue;
        if (m == thr)
            ties--;
        le_put_u32(body + 8 * j, (uint32_t)i);
        le_put_f32(body + 8 * j + 4, acc[i]);
        acc[i] = 0.0f;
        j++;
    }
    return PL_OK;
}

static int topk_validate(const payload *p, pl_err *err)
{
    size_t k = p->param;
    for (size_t j = 0; j < k; j++) {
        size_t at = PL_CODEC_HEADER_SIZE + 8 * j;
        uint32_t idx = le_get_u32(p->body + 8 * j);
        float v = le_get_f32(p->body + 8 * j + 4);
        if (idx >= p->n)
            return pl_err_set(err, PL_ERR_FORMAT, "topk payload byte %zu: entry %zu has index "
                              "%u, expected < n = %zu", at, j, (unsigned)idx, p->n);
        if (j > 0 && idx <= le_get_u32(p->body + 8 * (j - 1)))
            return pl_err_set(err, PL_ERR_FORMAT, "topk payload byte %zu: entry %zu has index "
                              "%u, not above the previous one (%u)", at, j, (unsigned)idx,
                              (unsigned)le_get_u32(p->body + 8 * (j - 1)));
        if (!isfinite(v))
            return pl_err_set(err, PL_ERR_NUMERIC, "topk payload byte %zu: entry %zu (index "
                              "%u) value is %g", at + 4, j, (unsigned)idx, v);
    }
    return PL_OK;
}

static void topk_apply(const payload *p, float *x, int add)
{
    if (!add)
        memset(x, 0, p->n * sizeof *x);
    for (size_t j = 0; j < p->param; j++)
        x[le_get_u32(p->body + 8 * j)] += le_get_f32(p->body + 8 * j + 4);
}

size_t pl_codec_sparse_bytes(const float *x, size_t n)
{
    if (n > PL_CODEC_MAX_N)
        return 0;
    size_t nz = 0;
    for (size_t i = 0; i < n; i++)
        nz += mag_bits(x[i]) != 0;
    return PL_CODEC_HEADER_SIZE + 8 * nz;
}

int pl_codec_encode_sparse(const float *x, size_t n, void *out, size_t cap, size_t *written,
                           pl_err *err)
{
    *written = 0;
    if (n > PL_CODEC_MAX_N || cap < PL_CODEC_HEADER_SIZE)
        return pl_err_set(err, PL_ERR_ARG, "sparse encoding of %zu elements: %s", n,
                          n > PL_CODEC_MAX_N ? "too many elements" : "output buffer too small");
    uint8_t *p = out, *body = p + PL_CODEC_HEADER_SIZE, *end = p + cap;
    for (size_t i = 0; i < n; i++) { /* one pass: check, select, write */
        if (!isfinite(x[i]))
            return pl_err_set(err, PL_ERR_NUMERIC, "sparse encoding: element %zu is %g", i, x[i]);
        if (mag_bits(x[i]) == 0)
            continue;
        if (end - body < 8)
            return pl_err_set(err, PL_ERR_ARG, "sparse encoding of %zu elements: output buffer "
                              "too small", n);
        le_put_u32(body, (uint32_t)i);
        le_put_f32(body + 4, x[i]);
        body += 8;
    }
    size_t k = (size_t)(body - p - PL_CODEC_HEADER_SIZE) / 8;
    pl_codec_write_header(&(pl_codec_cfg){.id = PL_CODEC_NONE}, n, p); /* version, n */
    p[0] = (uint8_t)PL_CODEC_TOPK;
    le_put_u32(p + 8, (uint32_t)k);
    *written = PL_CODEC_HEADER_SIZE + 8 * k;
    return PL_OK;
}

/* ---- the codec table ----------------------------------------------------- */

static const codec_ops codec_table[PL_CODEC_COUNT_] = {
    [PL_CODEC_NONE] = {"none", none_bytes, none_encode, none_validate, none_apply},
    [PL_CODEC_FP16] = {"fp16", fp16_bytes, fp16_encode, fp16_validate, fp16_apply},
    [PL_CODEC_QSGD8] = {"qsgd8", qsgd_bytes, qsgd_encode, qsgd_validate, qsgd_apply},
    [PL_CODEC_QSGD4] = {"qsgd4", qsgd_bytes, qsgd_encode, qsgd_validate, qsgd_apply},
    [PL_CODEC_TOPK] = {"topk", topk_bytes, topk_encode, topk_validate, topk_apply},
};

static const codec_ops *ops_of(int id)
{
    return id >= 0 && id < PL_CODEC_COUNT_ ? &codec_table[id] : NULL;
}
