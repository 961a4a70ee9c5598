/* test_compress.c — gradient codecs: spec parsing, exact sizes, fp16
 * rounding against the IEEE definition, QSGD unbiasedness and variance
 * against the closed-form values, top-k selection against a sort and error
 * feedback mass conservation, thread-count determinism, and rejection of
 * every malformed payload with x left untouched. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "peerless/compress.h"
#include "test.h"

/* Encode x[0..n) with a fresh codec; returns a malloc'ed payload. */
static uint8_t *encode_once(const char *spec, const float *x, size_t n, uint64_t seed,
                            size_t *len)
{
    pl_err err = {0};
    pl_codec_cfg cfg;
    pl_codec *c = NULL;
    int rc = pl_codec_parse(spec, &cfg, &err);
    if (rc == PL_OK)
        rc = pl_codec_create(&cfg, n, seed, &c, &err);
    size_t cap = pl_codec_max_bytes(&cfg, n);
    uint8_t *buf = malloc(cap ? cap : 1);
    if (rc == PL_OK)
        rc = pl_codec_encode(c, x, n, 0, buf, cap, len, &err);
    PL_CHECK(rc == PL_OK, "encode %s: %s", spec, err.msg);
    pl_codec_destroy(c);
    return buf;
}

static void test_parse(void)
{
    const char *good[][2] = {{"none", "none"},       {"fp16", "fp16"},
                             {"qsgd", "qsgd8:512"},  {"qsgd8", "qsgd8:512"},
                             {"qsgd4:64", "qsgd4:64"}, {"qsgd8:1", "qsgd8:1"},
                             {"topk:0.01", "topk:0.01"}, {"topk:1", "topk:1"}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        pl_err err = {0};
        pl_codec_cfg cfg;
        char buf[64];
        int rc = pl_codec_parse(good[i][0], &cfg, &err);
        PL_CHECK(rc == PL_OK, "parse %s: %s", good[i][0], err.msg);
        PL_CHECK(rc != PL_OK || strcmp(pl_codec_spec(&cfg, buf, sizeof buf), good[i][1]) == 0,
                 "spec of %s is %s, want %s", good[i][0], buf, good[i][1]);
    }
    const char *bad[] = {"", "zstd", "qsgd4:3", "qsgd8:0", "qsgd8:x", "qsgd8:", "topk",
                         "topk:0", "topk:1.5", "topk:-0.1", "topk:nan", "fp16:2", "none:1",
                         "qsgd8:99999999", "qsgd16"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pl_err err = {0};
        pl_codec_cfg cfg = {.id = PL_CODEC_FP16};
        int rc = pl_codec_parse(bad[i], &cfg, &err);
        PL_CHECK(rc == PL_ERR_ARG && strstr(err.msg, "codec") && cfg.id == PL_CODEC_FP16,
                 "parse '%s' gave %d '%s'", bad[i], rc, err.msg);
    }
}

/* Sizes from the documented layout, computed here independently. */
static void test_sizes(void)
{
    size_t ns[] = {0, 1, 2, 511, 512, 513, 1000, 100001};
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
        size_t n = ns[t], nb = (n + 511) / 512;
        struct { const char *spec; size_t want; } cases[] = {
            {"none", 12 + 4 * n},
            {"fp16", 12 + 2 * n},
            {"qsgd8", 12 + 4 * nb + n},
            {"qsgd4", 12 + 4 * nb + (n + 1) / 2},
            {"topk:0.01", 12 + 8 * (n == 0 ? 0 : (n + 99) / 100)},
        };
        float *x = malloc((n ? n : 1) * sizeof *x);
        pl_test_fill(x, n, 3, -1, 1);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            size_t len = 0;
            uint8_t *p = encode_once(cases[i].spec, x, n, 1, &len);
            PL_CHECK(len == cases[i].want, "%s of %zu: %zu bytes, want %zu", cases[i].spec, n,
                     len, cases[i].want);
            free(p);
        }
        free(x);
    }
    pl_codec_cfg cfg;
    pl_codec_parse("qsgd4", &cfg, NULL);
    size_t n = 1u << 20;
    double ratio = (double)pl_codec_max_bytes(&cfg, n) / (4.0 * n);
    PL_CHECK(ratio < 0.127 && ratio > 0.125, "qsgd4 ratio %g, want ~1/8", ratio);
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* fp16 against the IEEE definition: known patterns, every half round trips,
 * midpoints go to the even neighbour, points beside midpoints to the nearer. */
static void test_fp16(void)
{
    struct { float f; uint16_t h; } known[] = {
        {1.0f, 0x3c00}, {-2.0f, 0xc000}, {65504.0f, 0x7bff}, {65519.99f, 0x7bff},
        {65520.0f, 0x7c00}, {0x1p-24f, 0x0001}, {0x1p-25f, 0x0000}, {0x1.8p-24f, 0x0002},
        {1.0f + 0x1p-11f, 0x3c00}, {1.0f + 0x3p-11f, 0x3c02}, {0.1f, 0x2e66},
        {0x1p-14f, 0x0400}, {0x1p-14f - 0x1p-25f, 0x0400}, {-0.0f, 0x8000},
        {INFINITY, 0x7c00}, {1e-10f, 0x0000}, {3.14159265f, 0x4248}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        PL_CHECK(pl_fp16_from_f32(known[i].f) == known[i].h, "fp16(%a) = 0x%04x, want 0x%04x",
                 known[i].f, pl_fp16_from_f32(known[i].f), known[i].h);
    PL_CHECK(isnan(pl_fp16_to_f32(pl_fp16_from_f32(NAN))), "NaN must stay NaN");
    int bad = 0;
    for (uint32_t h = 0; h < 0x7c00; h++) {
        float a = pl_fp16_to_f32((uint16_t)h), na = -a;
        /* Value check by definition: (1 + m/1024) 2^(e-15), or m 2^-24. */
        uint32_t e = h >> 10, m = h & 0x3ff;
        double want = e ? ldexp(1.0 + m / 1024.0, (int)e - 15) : ldexp((double)m, -24);
        bad += (double)a != want || pl_fp16_from_f32(a) != h ||
               pl_fp16_from_f32(na) != (h | 0x8000);
        if (h + 1 < 0x7c00) {
            float b = pl_fp16_to_f32((uint16_t)(h + 1));
            float mid = (float)(((double)a + (double)b) / 2); /* exact in float */
            uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
            bad += pl_fp16_from_f32(mid) != even;
            bad += pl_fp16_from_f32(nextafterf(mid, 0.0f)) != h;
            bad += pl_fp16_from_f32(nextafterf(mid, INFINITY)) != h + 1;
        }
    }
    PL_CHECK(bad == 0, "%d fp16 conversions disagree with round-to-nearest-even", bad);
    PL_CHECK(f32_bits(pl_fp16_to_f32(0x8000)) == 0x80000000u, "-0 must decode to -0");
}

/* Decode payload p into a fresh n-vector (test helper). */
static float *decode_new(const uint8_t *p, size_t len, size_t n)
{
    pl_err err = {0};
    float *y = malloc((n ? n : 1) * sizeof *y);
    int rc = pl_codec_decode(NULL, p, len, y, n, &err);
    PL_CHECK(rc == PL_OK, "decode: %s", err.msg);
    return y;
}

static void test_roundtrips(void)
{
    size_t n = 1001;
    float x[1001], acc[1001];
    pl_test_fill(x, n, 5, -3, 3);
    size_t len;
    uint8_t *p = encode_once("none", x, n, 1, &len);
    float *y = decode_new(p, len, n);
    PL_CHECK(memcmp(x, y, sizeof x) == 0, "none must round trip exactly");
    for (size_t i = 0; i < n; i++)
        acc[i] = 1.0f;
    pl_err err = {0};
    PL_CHECK(pl_codec_decode_add(NULL, p, len, acc, n, &err) == PL_OK, "%s", err.msg);
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += acc[i] != 1.0f + x[i];
    PL_CHECK(bad == 0, "decode_add must add: %d wrong", bad);
    free(p);
    free(y);
    p = encode_once("fp16", x, n, 1, &len);
    y = decode_new(p, len, n);
    bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += y[i] != pl_fp16_to_f32(pl_fp16_from_f32(x[i]));
    PL_CHECK(bad == 0, "fp16 decode must equal the rounded values: %d wrong", bad);
    free(p);
    free(y);
}

/* Every decoded QSGD value is one of the two levels around x (same sign). */
static void test_qsgd_levels(const char *spec, int s, uint32_t bucket)
{
    size_t n = 777; /* odd, with a partial last bucket */
    float x[777];
    pl_test_fill(x, n, 9, -2, 2);
    x[5] = 0.0f;
    size_t len;
    uint8_t *p = encode_once(spec, x, n, 11, &len);
    float *y = decode_new(p, len, n);
    int bad = 0;
    for (size_t b = 0; b * bucket < n; b++) {
        size_t lo = b * bucket, hi = lo + bucket < n ? lo + bucket : n;
        double ss = 0;
        for (size_t i = lo; i < hi; i++)
            ss += (double)x[i] * x[i];
        double norm = sqrt(ss);
        for (size_t i = lo; i < hi; i++) {
            double r = fabs(x[i]) / norm * s, l = floor(r);
            double got = fabs(y[i]) * s / norm;
            int ok = (fabs(got - l) < 1e-3 || fabs(got - l - 1) < 1e-3) &&
                     (y[i] == 0 || (y[i] < 0) == (x[i] < 0));
            bad += !ok;
        }
    }
    PL_CHECK(bad == 0, "%s: %d values not on the levels around x", spec, bad);
    PL_CHECK(y[5] == 0.0f, "%s: zero must stay zero", spec);
    free(p);
    free(y);
}

/* Unbiasedness: the mean of T encodings approaches x like 1/sqrt(T); the
 * mean squared error matches sum_i norm^2/s^2 p_i (1 - p_i) and QSGD's bound
 * min(d/s^2, sqrt(d)/s) ||x||^2. */
static void test_qsgd_unbiased(const char *spec, int s)
{
    enum { N = 256, T = 4000 };
    float x[N], y[N];
    double sum[N] = {0};
    pl_test_fill(x, N, 21, -1, 1);
    pl_err err = {0};
    pl_codec_cfg cfg;
    pl_codec *c = NULL;
    pl_codec_parse(spec, &cfg, &err);
    cfg.bucket = N;
    PL_CHECK(pl_codec_create(&cfg, N, 77, &c, &err) == PL_OK, "%s", err.msg);
    uint8_t buf[4096];
    double ss = 0, want_var = 0, mse = 0, err_at[2] = {0};
    for (int i = 0; i < N; i++)
        ss += (double)x[i] * x[i];
    for (int i = 0; i < N; i++) {
        double r = fabs(x[i]) / sqrt(ss) * s, p = r - floor(r);
        want_var += ss / ((double)s * s) * p * (1 - p);
    }
    for (int t = 1; t <= T; t++) {
        size_t len;
        int rc = pl_codec_encode(c, x, N, 0, buf, sizeof buf, &len, &err);
        rc = rc ? rc : pl_codec_decode(&cfg, buf, len, y, N, &err);
        PL_CHECK(rc == PL_OK, "%s: %s", spec, err.msg);
        for (int i = 0; i < N; i++) {
            sum[i] += y[i];
            mse += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
        }
        if (t == T / 16 || t == T) {
            double e = 0;
            for (int i = 0; i < N; i++)
                e += (sum[i] / t - x[i]) * (sum[i] / t - x[i]);
            err_at[t == T] = sqrt(e / ss);
        }
    }
    mse /= T;
    double ratio = err_at[0] / err_at[1];
    PL_CHECK(ratio > 2.5 && ratio < 6.5, "%s: error shrank %gx over 16x trials, want ~4x", spec,
             ratio);
    PL_CHECK(err_at[1] < 3.0 * sqrt(want_var / ss / T), "%s: mean error %g too large", spec,
             err_at[1]);
    PL_CHECK(fabs(mse / want_var - 1) < 0.1, "%s: variance %g, closed form %g", spec, mse,
             want_var);
    double bound = fmin((double)N / ((double)s * s), sqrt((double)N) / s) * ss;
    PL_CHECK(mse <= bound, "%s: variance %g above QSGD bound %g", spec, mse, bound);
    pl_codec_destroy(c);
}

/* Same seed: same bytes for any thread count; the next call differs. */
static void test_qsgd_determinism(void)
{
    size_t n = 300000;
    float *x = malloc(n * sizeof *x);
    pl_test_fill(x, n, 4, -1, 1);
    size_t la, lb, lc;
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    uint8_t *a = encode_once("qsgd4:128", x, n, 5, &la);
    omp_set_num_threads(2);
    uint8_t *b = encode_once("qsgd4:128", x, n, 5, &lb);
    uint8_t *c = encode_once("qsgd4:128", x, n, 6, &lc);
    omp_set_num_threads(saved);
    PL_CHECK(la == lb && memcmp(a, b, la) == 0, "qsgd4 bytes differ between 1 and 2 threads");
    PL_CHECK(la == lc && memcmp(a, c, la) != 0, "different seeds must give different codes");
    float *ya = decode_new(a, la, n), *yb = malloc(n * sizeof *yb);
    omp_set_num_threads(1);
    pl_codec_decode(NULL, a, la, yb, n, NULL);
    omp_set_num_threads(saved);
    PL_CHECK(memcmp(ya, yb, n * sizeof *ya) == 0, "decode differs between thread counts");
    free(a), free(b), free(c), free(ya), free(yb), free(x);
}

static int by_mag_desc(const void *pa, const void *pb, const float *x)
{
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    float ma = fabsf(x[a]), mb = fabsf(x[b]);
    if (ma != mb)
        return ma < mb ? 1 : -1;
    return a < b ? -1 : a > b;
}

static const float *sort_x;
static int cmp_idx(const void *a, const void *b) { return by_mag_desc(a, b, sort_x); }

/* Top-k sends exactly the k largest magnitudes (ties to the lower index). */
static void test_topk_select(void)
{
    size_t n = 5000, k = 50;
    float x[5000];
    uint32_t idx[5000];
    pl_test_fill(x, n, 8, -0.4f, 0.4f);
    for (size_t i = 0; i < 300; i++) /* ties at the threshold: the lowest indices win */
        x[i * 7] = (i % 3) ? 0.5f : -0.5f;
    for (size_t i = 4000; i < n; i++)
        x[i] = 0.0f;
    x[3999] = 0.9f; /* larger values after the ties must still be sent */
    x[3001] = -0.8f;
    for (uint32_t i = 0; i < n; i++)
        idx[i] = i;
    sort_x = x;
    qsort(idx, n, sizeof *idx, cmp_idx);
    size_t len;
    uint8_t *p = encode_once("topk:0.01", x, n, 1, &len);
    float *y = decode_new(p, len, n);
    int bad = 0;
    for (size_t j = 0; j < n; j++)
        bad += y[idx[j]] != (j < k ? x[idx[j]] : 0.0f);
    PL_CHECK(bad == 0, "topk: %d entries differ from the k largest by sort", bad);
    free(p);
    free(y);
}

/* Error feedback conserves mass: sum of everything sent + residual equals the
 * sum of every input, per element; chunks at offsets use their own residual. */
static void test_topk_feedback(void)
{
    enum { N = 3000, STEPS = 20 };
    static float x[N], y[N];
    static double in_sum[N], sent[N];
    pl_err err = {0};
    pl_codec_cfg cfg;
    pl_codec *c = NULL;
    pl_codec_parse("topk:0.05", &cfg, &err);
    PL_CHECK(pl_codec_create(&cfg, N, 1, &c, &err) == PL_OK, "%s", err.msg);
    uint8_t buf[4096];
    for (int s = 0; s < STEPS; s++) {
        pl_test_fill(x, N, 100 + (unsigned)s, -1, 1);
        for (size_t part = 0; part < 2; part++) { /* two chunks: [0,1000), [1000,3000) */
            size_t off = part ? 1000 : 0, n = part ? 2000 : 1000, len;
            int rc = pl_codec_encode(c, x + off, n, off, buf, sizeof buf, &len, &err);
            rc = rc ? rc : pl_codec_decode(&cfg, buf, len, y + off, n, &err);
            PL_CHECK(rc == PL_OK, "step %d: %s", s, err.msg);
        }
        for (int i = 0; i < N; i++) {
            in_sum[i] += x[i];
            sent[i] += y[i];
        }
    }
    const float *res = pl_codec_residual(c);
    double worst = 0, sent_total = 0;
    for (int i = 0; i < N; i++) {
        worst = fmax(worst, fabs(sent[i] + res[i] - in_sum[i]));
        sent_total += fabs(sent[i]);
    }
    PL_CHECK(worst < 1e-4, "sent + residual differs from inputs by %g", worst);
    PL_CHECK(sent_total > 0, "nothing was sent");
    pl_codec_reset(c);
    PL_CHECK(pl_codec_residual(c)[7] == 0.0f, "reset must clear the residual");
    pl_codec_destroy(c);
}

static void test_encode_errors(void)
{
    float x[100];
    pl_test_fill(x, 100, 2, -1, 1);
    const char *specs[] = {"none", "fp16", "qsgd8", "qsgd4", "topk:0.1"};
    for (size_t i = 0; i < 5; i++) {
        pl_err err = {0};
        pl_codec_cfg cfg;
        pl_codec *c = NULL;
        uint8_t buf[1024];
        size_t len = 99;
        pl_codec_parse(specs[i], &cfg, NULL);
        pl_codec_create(&cfg, 100, 1, &c, NULL);
        x[37] = NAN;
        int rc = pl_codec_encode(c, x, 100, 0, buf, sizeof buf, &len, &err);
        PL_CHECK(rc == PL_ERR_NUMERIC && strstr(err.msg, "element 37") && len == 0,
                 "%s NaN: %d '%s'", specs[i], rc, err.msg);
        x[37] = 0.5f;
        rc = pl_codec_encode(c, x, 100, 0, buf, 10, &len, &err);
        PL_CHECK(rc == PL_ERR_ARG && strstr(err.msg, "buffer"), "%s cap: '%s'", specs[i],
                 err.msg);
        rc = pl_codec_encode(c, x, 60, 50, buf, sizeof buf, &len, &err);
        PL_CHECK(rc == PL_ERR_ARG && strstr(err.msg, "outside"), "%s range: '%s'", specs[i],
                 err.msg);
        pl_codec_destroy(c);
    }
    x[3] = 70000.0f;
    pl_err err = {0};
    pl_codec_cfg cfg;
    pl_codec *c = NULL;
    uint8_t buf[1024];
    size_t len;
    pl_codec_parse("fp16", &cfg, NULL);
    pl_codec_create(&cfg, 100, 1, &c, NULL);
    int rc = pl_codec_encode(c, x, 100, 0, buf, sizeof buf, &len, &err);
    PL_CHECK(rc == PL_ERR_NUMERIC && strstr(err.msg, "element 3"), "fp16 overflow: '%s'",
             err.msg);
    pl_codec_destroy(c);
}

/* Decode must fail with `want` status and a message containing `frag`, and
 * leave x untouched. */
static void expect_reject(const pl_codec_cfg *expect, const uint8_t *p, size_t len, size_t n,
                          int want, const char *frag, const char *what)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = 42.0f;
    pl_err err = {0};
    int rc = pl_codec_decode_add(expect, p, len, x, n, &err);
    PL_CHECK(rc == want && strstr(err.msg, frag), "%s: got %d '%s', want %d '%s'", what, rc,
             err.msg, want, frag);
    int touched = 0;
    for (size_t i = 0; i < n; i++)
        touched += x[i] != 42.0f;
    PL_CHECK(touched == 0, "%s: %d elements written by a rejected decode", what, touched);
    free(x);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_f32(uint8_t *p, float f) { put_u32(p, f32_bits(f)); }

static void test_decode_truncations(void)
{
    const char *specs[] = {"none", "fp16", "qsgd8:64", "qsgd4:64", "topk:0.1"};
    float x[101];
    pl_test_fill(x, 101, 6, -1, 1);
    for (size_t s = 0; s < 5; s++) {
        size_t len;
        uint8_t *p = encode_once(specs[s], x, 101, 1, &len);
        uint8_t *q = malloc(len + 1);
        memcpy(q, p, len);
        q[len] = 0;
        int bad = 0;
        for (size_t cut = 0; cut < len; cut++) {
            pl_err err = {0};
            float y[101];
            uint8_t *t = malloc(cut ? cut : 1); /* exact-size copy so ASan sees overreads */
            memcpy(t, p, cut);
            bad += pl_codec_decode(NULL, t, cut, y, 101, &err) != PL_ERR_FORMAT ||
                   !err.msg[0];
            free(t);
        }
        PL_CHECK(bad == 0, "%s: %d truncations accepted", specs[s], bad);
        expect_reject(NULL, q, len + 1, 101, PL_ERR_FORMAT, "expected", "trailing byte");
        expect_reject(NULL, p, len, 100, PL_ERR_FORMAT, "100", "n mismatch");
        free(p);
        free(q);
    }
}

static void test_decode_fields(void)
{
    float x[101];
    pl_test_fill(x, 101, 6, -1, 1);
    size_t len;
    pl_codec_cfg q8, q4, tk;
    pl_codec_parse("qsgd8:64", &q8, NULL);
    pl_codec_parse("qsgd4:64", &q4, NULL);
    pl_codec_parse("topk:0.1", &tk, NULL);
    uint8_t *p = encode_once("qsgd8:64", x, 101, 1, &len), *q = malloc(len);
    expect_reject(&q4, p, len, 101, PL_ERR_FORMAT, "expected qsgd4", "wrong codec");
    pl_codec_cfg q8b = q8;
    q8b.bucket = 32;
    expect_reject(&q8b, p, len, 101, PL_ERR_FORMAT, "bucket 64, expected 32", "bucket");
#define MUTATE(stmt, want, frag, what) \
    do { memcpy(q, p, len); stmt; expect_reject(NULL, q, len, 101, want, frag, what); } while (0)
    MUTATE(q[0] = 9, PL_ERR_FORMAT, "unknown codec id 9", "codec id");
    MUTATE(q[1] = 2, PL_ERR_FORMAT, "version 2", "version");
    MUTATE(q[3] = 1, PL_ERR_FORMAT, "reserved", "reserved");
    MUTATE(put_u32(q + 8, 0), PL_ERR_FORMAT, "bucket size 0", "zero bucket");
    MUTATE(put_f32(q + 12, NAN), PL_ERR_NUMERIC, "norm of bucket 0", "NaN norm");
    MUTATE(put_f32(q + 16, INFINITY), PL_ERR_NUMERIC, "norm of bucket 1", "inf norm");
    MUTATE(put_f32(q + 12, -1.0f), PL_ERR_NUMERIC, "norm of bucket 0", "negative norm");
    free(p);
    free(q);

    p = encode_once("qsgd4:64", x, 101, 1, &len);
    q = malloc(len);
    MUTATE(q[len - 1] |= 0x80, PL_ERR_FORMAT, "padding", "qsgd4 padding");
    MUTATE(put_u32(q + 8, 63), PL_ERR_FORMAT, "bucket size 63", "odd qsgd4 bucket");
    free(p);
    free(q);

    p = encode_once("topk:0.1", x, 101, 1, &len); /* k = 11 */
    q = malloc(len);
    expect_reject(&(pl_codec_cfg){.id = PL_CODEC_TOPK, .ratio = 0.2}, p, len, 101,
                  PL_ERR_FORMAT, "expected 21", "topk k vs ratio");
    MUTATE(put_u32(q + 12 + 8 * 3, 101), PL_ERR_FORMAT, "index 101, expected < n", "range");
    MUTATE(put_u32(q + 12 + 8 * 10, 0xffffffffu), PL_ERR_FORMAT, "expected < n", "huge index");
    MUTATE(memcpy(q + 12 + 8 * 4, q + 12 + 8 * 3, 4), PL_ERR_FORMAT, "not above", "duplicate");
    MUTATE(put_f32(q + 12 + 8 * 2 + 4, NAN), PL_ERR_NUMERIC, "value is nan", "NaN value");
    MUTATE(put_u32(q + 8, 200), PL_ERR_FORMAT, "exceeds n", "k > n");
    free(p);
    free(q);

    p = encode_once("fp16", x, 101, 1, &len);
    q = malloc(len);
    MUTATE((q[12 + 2 * 7] = 0x00, q[13 + 2 * 7] = 0x7c), PL_ERR_NUMERIC, "element 7 is infinite",
           "fp16 inf");
    MUTATE(put_u32(q + 8, 1), PL_ERR_FORMAT, "expected 0", "fp16 param");
    free(p);
    free(q);

    p = encode_once("none", x, 101, 1, &len);
    q = malloc(len);
    MUTATE(put_f32(q + 12 + 4 * 100, NAN), PL_ERR_NUMERIC, "element 100 is nan", "none NaN");
#undef MUTATE
    free(p);
    free(q);
}

static void test_peek(void)
{
    float x[10] = {1, 2, 3};
    size_t len, n = 0;
    uint8_t *p = encode_once("qsgd4:16", x, 10, 1, &len);
    pl_codec_cfg cfg;
    pl_err err = {0};
    PL_CHECK(pl_codec_peek(p, len, &cfg, &n, &err) == PL_OK && cfg.id == PL_CODEC_QSGD4 &&
                 cfg.bucket == 16 && n == 10, "peek: %s", err.msg);
    PL_CHECK(pl_codec_peek(p, 5, &cfg, &n, &err) == PL_ERR_FORMAT, "peek of 5 bytes");
    free(p);
}

/* The exact sparse form of a top-k sum: only its nonzeros, indices
 * ascending, and it decodes to the same values (-0.0 as +0.0). */
static void test_sparse(void)
{
    float x[10] = {0, 1.5f, 0, -0.0f, -2.25f, 0, 0, 3e-39f, 0, 7};
    uint8_t buf[12 + 80];
    size_t w = 0;
    pl_err err = {0};
    PL_CHECK(pl_codec_sparse_bytes(x, 10) == 12 + 8 * 4, "sparse bytes %zu, expected 44",
             pl_codec_sparse_bytes(x, 10));
    PL_CHECK(pl_codec_encode_sparse(x, 10, buf, sizeof buf, &w, &err) == PL_OK && w == 44,
             "sparse encode: rc/len %zu: %s", w, err.msg);
    PL_CHECK(buf[0] == PL_CODEC_TOPK && buf[8] == 4 && buf[12] == 1 && buf[20] == 4 && buf[28] == 7 &&
                 buf[36] == 9, "sparse layout: id %u k %u indices %u %u %u %u", buf[0], buf[8], buf[12],
             buf[20], buf[28], buf[36]);
    float y[10];
    pl_test_fill(y, 10, 1, -1, 1);
    PL_CHECK(pl_codec_decode(&(pl_codec_cfg){.id = PL_CODEC_TOPK}, buf, w, y, 10, &err) == PL_OK,
             "sparse decode: %s", err.msg);
    x[3] = 0.0f;
    PL_CHECK(!memcmp(x, y, sizeof x), "sparse round trip differs");
    pl_codec_cfg strict = {.id = PL_CODEC_TOPK, .ratio = 0.1}; /* k = 1 expected */
    PL_CHECK(pl_codec_decode(&strict, buf, w, y, 10, &err) == PL_ERR_FORMAT,
             "a ratio-checked decode accepted k = 4");
    PL_CHECK(pl_codec_encode_sparse(x, 10, buf, 43, &w, &err) == PL_ERR_ARG && w == 0,
             "sparse encode into 43 bytes: not refused");
    x[4] = INFINITY;
    PL_CHECK(pl_codec_encode_sparse(x, 10, buf, sizeof buf, &w, &err) == PL_ERR_NUMERIC &&
                 strstr(err.msg, "element 4"), "sparse encode of inf: '%s'", err.msg);
    float z[3] = {0, -0.0f, 0};
    PL_CHECK(pl_codec_encode_sparse(z, 3, buf, sizeof buf, &w, &err) == PL_OK && w == 12 &&
                 pl_codec_decode(&(pl_codec_cfg){.id = PL_CODEC_TOPK}, buf, w, y, 3, &err) == PL_OK &&
                 y[0] == 0 && y[1] == 0 && !signbit(y[1]),
             "all-zero sparse payload: %s", err.msg);
}

int main(void)
{
    test_parse();
    test_sizes();
    test_fp16();
    test_roundtrips();
    test_qsgd_levels("qsgd8:64", 127, 64);
    test_qsgd_levels("qsgd4:64", 7, 64);
    test_qsgd_unbiased("qsgd8", 127);
    test_qsgd_unbiased("qsgd4", 7);
    test_qsgd_determinism();
    test_topk_select();
    test_topk_feedback();
    test_sparse();
    test_encode_errors();
    test_decode_truncations();
    test_decode_fields();
    test_peek();
    PL_TEST_MAIN();
}
