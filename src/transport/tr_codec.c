/* tr_codec.c — codecs the all-reduce applies to its segments.
 *
 * Adapter until the project's compress module (include/peerless/compress.h)
 * is built: the same formats in a minimal form — none (raw float32), fp16
 * (IEEE binary16, round to nearest even) and qsgd8 (per 512-element bucket
 * an f32 L2 norm, then one signed 8-bit level in [-127, 127] per element,
 * stochastically rounded so the decoded value is unbiased).
 */
#include <math.h>
#include <string.h>

#include "peerless/rng.h"
#include "transport/transport_impl.h"

#define QSGD_BUCKET 512
#define QSGD_LEVELS 127

const char pl_tr_codec_names[] = "none, fp16, qsgd8";

static size_t none_max(size_t n) { return 4 * n; }
static size_t none_encode(const float *x, size_t n, uint8_t *out, uint64_t seed)
{
    (void)seed;
    memcpy(out, x, 4 * n);
    return 4 * n;
}
static int none_decode(const uint8_t *in, size_t len, float *out, size_t n, pl_err *err)
{
    if (len != 4 * n)
        return pl_err_set(err, PL_ERR_FORMAT, "raw payload of %zu bytes (expected %zu)", len, 4 * n);
    memcpy(out, in, len);
    return PL_OK;
}

static uint16_t half_from(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0));
    if (absx >= 0x477ff000u) /* rounds past 65504 */
        return (uint16_t)(sign | 0x7c00u);
    if (absx < 0x38800000u) { /* subnormal half: scale by 2^24 and round */
        float a;
        memcpy(&a, &absx, 4);
        return (uint16_t)(sign | (uint32_t)lrintf(a * 16777216.0f));
    }
    uint32_t m = absx - 0x38000000u; /* rebias exponent 127 -> 15 */
    uint32_t h = (m + 0xfffu + ((m >> 13) & 1u)) >> 13;
    return (uint16_t)(sign | h);
}

static float half_to(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, x;
    if (e == 0) {
        float v = (float)m / 16777216.0f;
        return sign ? -v : v;
    }
    x = e == 31 ? sign | 0x7f800000u | (m << 13) : sign | ((e + 112) << 23) | (m << 13);
    float f;
    memcpy(&f, &x, 4);
    return f;
}

static size_t fp16_max(size_t n) { return 2 * n; }
static size_t fp16_encode(const float *x, size_t n, uint8_t *out, uint64_t seed)
{
    (void)seed;
    for (size_t i = 0; i < n; i++) {
        uint16_t h = half_from(x[i]);
        out[2 * i] = (uint8_t)h;
        out[2 * i + 1] = (uint8_t)(h >> 8);
    }
    return 2 * n;
}
static int fp16_decode(const uint8_t *in, size_t len, float *out, size_t n, pl_err *err)
{
    if (len != 2 * n)
        return pl_err_set(err, PL_ERR_FORMAT, "fp16 payload of %zu bytes (expected %zu)", len, 2 * n);
    for (size_t i = 0; i < n; i++)
        out[i] = half_to((uint16_t)(in[2 * i] | in[2 * i + 1] << 8));
    return PL_OK;
}

static size_t qsgd_max(size_t n) { return n + 4 * ((n + QSGD_BUCKET - 1) / QSGD_BUCKET); }

/* Layout: all bucket norms (f32) first, then one int8 level per element. */
static size_t qsgd_encode(const float *x, size_t n, uint8_t *out, uint64_t seed)
{
    size_t nb = (n + QSGD_BUCKET - 1) / QSGD_BUCKET;
    pl_rng r;
    pl_rng_seed(&r, seed, 0x9d5);
    for (size_t b = 0; b < nb; b++) {
        size_t lo = b * QSGD_BUCKET, hi = lo + QSGD_BUCKET < n ? lo + QSGD_BUCKET : n;
        double ss = 0;
        for (size_t i = lo; i < hi; i++)
            ss += (double)x[i] * x[i];
        float norm = (float)sqrt(ss);
        memcpy(out + 4 * b, &norm, 4);
        for (size_t i = lo; i < hi; i++) {
            float v = norm > 0 ? QSGD_LEVELS * fabsf(x[i]) / norm : 0;
            int l = (int)v;
            l += pl_rng_uniform(&r) < v - (float)l;
            l = l > QSGD_LEVELS ? QSGD_LEVELS : l;
            out[4 * nb + i] = (uint8_t)(int8_t)(x[i] < 0 ? -l : l);
        }
    }
    return qsgd_max(n);
}

static int qsgd_decode(const uint8_t *in, size_t len, float *out, size_t n, pl_err *err)
{
    size_t nb = (n + QSGD_BUCKET - 1) / QSGD_BUCKET;
    if (len != qsgd_max(n))
        return pl_err_set(err, PL_ERR_FORMAT, "qsgd8 payload of %zu bytes (expected %zu)", len,
                          qsgd_max(n));
    for (size_t b = 0; b < nb; b++) {
        float norm;
        memcpy(&norm, in + 4 * b, 4);
        if (!isfinite(norm) || norm < 0)
            return pl_err_set(err, PL_ERR_FORMAT, "qsgd8 bucket %zu norm %g at byte %zu", b,
                              (double)norm, 4 * b);
        size_t lo = b * QSGD_BUCKET, hi = lo + QSGD_BUCKET < n ? lo + QSGD_BUCKET : n;
        for (size_t i = lo; i < hi; i++) {
            int l = (int8_t)in[4 * nb + i];
            if (l < -QSGD_LEVELS)
                return pl_err_set(err, PL_ERR_FORMAT, "qsgd8 level %d at byte %zu", l, 4 * nb + i);
            out[i] = norm * ((float)l / QSGD_LEVELS);
        }
    }
    return PL_OK;
}

static const pl_tr_codec codecs[] = {
    {"none", 0, none_max, none_encode, none_decode},
    {"fp16", 1, fp16_max, fp16_encode, fp16_decode},
    {"qsgd8", 2, qsgd_max, qsgd_encode, qsgd_decode},
};

const pl_tr_codec *pl_tr_codec_find(const char *name)
{
    if (!name || !*name)
        return &codecs[0];
    for (size_t i = 0; i < sizeof codecs / sizeof *codecs; i++)
        if (!strcmp(codecs[i].name, name))
            return &codecs[i];
    return NULL;
}
