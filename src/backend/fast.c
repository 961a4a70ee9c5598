/* fast.c — the "fast" backend: oneDNN convolution and sgemm (fast_conv.c)
 * plus OpenMP-parallel loops for batch norm, pooling, activations and
 * log-softmax. Semantics are exactly those of the reference backend and
 * PyTorch (see backend.h); only the speed differs.
 *
 * Parallelisation: over channels (batch norm), over (n, c) planes (pooling),
 * over rows (log-softmax) and over elements (activations). Each output or
 * gradient element is written by exactly one thread, so backward kernels can
 * add into their gradients without atomics.
 */
#include <math.h>
#include <stddef.h>

#include "backend/fast_conv.h"
#include "peerless/backend.h"

/* Below this many elements, thread start-up costs more than it saves. */
#define FAST_PAR_MIN 32768

/* ---- batch norm: x, y [n, c, hw] ---- */

/* Sum of x[i, c, :] over i, and of (x - mean)^2 once mean is known. */
static double bn_sum(const pl_bn_desc *d, const float *x, int c)
{
    double s = 0;
    size_t hw = (size_t)d->hw;
    for (int i = 0; i < d->n; i++) {
        const float *p = x + ((size_t)i * d->c + c) * hw;
        float t = 0;
#pragma omp simd reduction(+ : t)
        for (size_t j = 0; j < hw; j++)
            t += p[j];
        s += t;
    }
    return s;
}

static double bn_sqdev(const pl_bn_desc *d, const float *x, int c, float mean)
{
    double s = 0;
    size_t hw = (size_t)d->hw;
    for (int i = 0; i < d->n; i++) {
        const float *p = x + ((size_t)i * d->c + c) * hw;
        float t = 0;
#pragma omp simd reduction(+ : t)
        for (size_t j = 0; j < hw; j++)
            t += (p[j] - mean) * (p[j] - mean);
        s += t;
    }
    return s;
}

/* y[i, c, :] = x[i, c, :] * scale + shift */
static void bn_affine(const pl_bn_desc *d, const float *x, float *y, int c, float scale, float shift)
{
    size_t hw = (size_t)d->hw;
    for (int i = 0; i < d->n; i++) {
        size_t o = ((size_t)i * d->c + c) * hw;
#pragma omp simd
        for (size_t j = 0; j < hw; j++)
            y[o + j] = x[o + j] * scale + shift;
    }
}

static void fast_bn_fwd_train(const pl_bn_desc *d, const float *x, const float *gamma, const float *beta,
                              float *y, float *mean, float *var, float *invstd)
{
    double m = (double)d->n * d->hw;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < d->c; c++) {
        float mu = (float)(bn_sum(d, x, c) / m);
        float v = (float)(bn_sqdev(d, x, c, mu) / m);
        float is = 1.0f / sqrtf(v + d->eps);
        float g = gamma ? gamma[c] : 1.0f, b = beta ? beta[c] : 0.0f;
        mean[c] = mu;
        var[c] = v;
        invstd[c] = is;
        bn_affine(d, x, y, c, g * is, b - mu * g * is);
    }
}

static void fast_bn_fwd_eval(const pl_bn_desc *d, const float *x, const float *gamma, const float *beta,
                             const float *rmean, const float *rvar, float *y)
{
#pragma omp parallel for schedule(static)
    for (int c = 0; c < d->c; c++) {
        float is = 1.0f / sqrtf(rvar[c] + d->eps);
        float g = gamma ? gamma[c] : 1.0f, b = beta ? beta[c] : 0.0f;
        bn_affine(d, x, y, c, g * is, b - rmean[c] * g * is);
    }
}

/* Per channel c: sum(dy) and sum(dy * (x - mean)). */
static void bn_dsums(const pl_bn_desc *d, const float *x, const float *dy, int c, float mean, double *sdy,
                     double *sdyx)
{
    size_t hw = (size_t)d->hw;
    *sdy = 0;
    *sdyx = 0;
    for (int i = 0; i < d->n; i++) {
        size_t o = ((size_t)i * d->c + c) * hw;
        float a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
        for (size_t j = 0; j < hw; j++) {
            a += dy[o + j];
            b += dy[o + j] * (x[o + j] - mean);
        }
        *sdy += a;
        *sdyx += b;
    }
}

/* dx[i, c, :] += k * dy + kx * (x - mean) + k0 */
static void bn_dx_add(const pl_bn_desc *d, const float *x, const float *dy, float *dx, int c, float mean,
                      float k, float kx, float k0)
{
    size_t hw = (size_t)d->hw;
    for (int i = 0; i < d->n; i++) {
        size_t o = ((size_t)i * d->c + c) * hw;
#pragma omp simd
        for (size_t j = 0; j < hw; j++)
            dx[o + j] += k * dy[o + j] + kx * (x[o + j] - mean) + k0;
    }
}

/* With xhat = (x - mean) * invstd and M = n * hw:
 * dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)). */
static void fast_bn_bwd_train(const pl_bn_desc *d, const float *x, const float *gamma, const float *mean,
                              const float *invstd, const float *dy, float *dx, float *dgamma, float *dbeta)
{
    double m = (double)d->n * d->hw;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < d->c; c++) {
        double sdy, sdyx;
        bn_dsums(d, x, dy, c, mean[c], &sdy, &sdyx);
        float is = invstd[c], g = gamma ? gamma[c] : 1.0f;
        if (dbeta)
            dbeta[c] += (float)sdy;
        if (dgamma)
            dgamma[c] += (float)(sdyx * is);
        if (dx) {
            float k = g * is;
            float kx = (float)(-(double)k * is * is * sdyx / m);
            float k0 = (float)(-(double)k * sdy / m);
            bn_dx_add(d, x, dy, dx, c, mean[c], k, kx, k0);
        }
    }
}

static void fast_bn_bwd_eval(const pl_bn_desc *d, const float *x, const float *gamma, const float *rmean,
                             const float *rvar, const float *dy, float *dx, float *dgamma, float *dbeta)
{
#pragma omp parallel for schedule(static)
    for (int c = 0; c < d->c; c++) {
        float is = 1.0f / sqrtf(rvar[c] + d->eps), g = gamma ? gamma[c] : 1.0f;
        if (dgamma || dbeta) {
            double sdy, sdyx;
            bn_dsums(d, x, dy, c, rmean[c], &sdy, &sdyx);
            if (dbeta)
                dbeta[c] += (float)sdy;
            if (dgamma)
                dgamma[c] += (float)(sdyx * is);
        }
        if (dx)
            bn_dx_add(d, x, dy, dx, c, rmean[c], g * is, 0.0f, 0.0f);
    }
}

int pl_fast_conv2d_check(const pl_conv2d_desc *d, pl_err *err)
{
    if (d->h_out <= 0 || d->w_out <= 0 || d->groups <= 0)
        return pl_err_set(err, PL_ERR_ARG,
                          "fast conv2d plan: descriptor has h_out=%d w_out=%d groups=%d; "
                          "call pl_conv2d_desc_init first",
                          d->h_out, d->w_out, d->groups);
    return PL_OK;
}

/* Convolution bias gradient (fast_conv.h): per channel, float sums over
 * each plane, double across the batch. */
void pl_fast_conv_bias_bwd(const pl_conv2d_desc *d, const float *dy, float *db)
{
    size_t hw = (size_t)d->h_out * d->w_out;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < d->c_out; c++) {
        double s = 0;
        for (int i = 0; i < d->n; i++) {
            const float *p = dy + ((size_t)i * d->c_out + c) * hw;
            float t = 0;
#pragma omp simd reduction(+ : t)
            for (size_t j = 0; j < hw; j++)
                t += p[j];
            s += t;
        }
        db[c] += (float)s;
    }
}

/* ---- pooling: x [n, c, h_in, w_in], y [n, c, h_out, w_out] ---- */

/* One max-pool plane, PyTorch's CPU kernel: window clipped to the input,
 * first maximum wins, a NaN is taken (and propagates). */
/* One output of max pool: window clipped to the input, first max wins,
 * NaN propagates (the select is branch-free: ties and signs are data). */
static void maxpool_one(const pl_pool_desc *d, const float *x, int h0, int h1, int ow, float *y, int32_t *am)
{
    int w0 = ow * d->stride_w - d->pad_w, w1 = w0 + d->kw < d->w_in ? w0 + d->kw : d->w_in;
    w0 = w0 < 0 ? 0 : w0;
    int best = h0 * d->w_in + w0;
    float m = -INFINITY;
    for (int h = h0; h < h1; h++)
        for (int w = w0; w < w1; w++) {
            float v = x[h * d->w_in + w];
            int take = (v > m) | (v != v);
            m = take ? v : m;
            best = take ? h * d->w_in + w : best;
        }
    *y = m;
    *am = best;
}

/* x [h_in, w_in] -> y, am [h_out, w_out]. On wide rows, the columns whose
 * window lies inside the input are done together, one kernel tap at a time
 * across the row (the same visiting order per output as maxpool_one, so
 * identical results); the rest one output at a time. */
static void maxpool_plane(const pl_pool_desc *d, const float *x, float *y, int32_t *am)
{
    int win = d->w_in, s = d->stride_w, p = d->pad_w, k = d->kw;
    int lo = (p + s - 1) / s;                                  /* first ow with w0 >= 0 */
    int hi = win + p - k < 0 ? 0 : (win + p - k) / s + 1;     /* ow < hi: w0 + k <= w_in */
    hi = hi < d->w_out ? hi : d->w_out;
    lo = lo < hi ? lo : hi;
    if (hi - lo < 16) /* short rows: the per-output loop is faster */
        lo = hi = 0;
    for (int oh = 0; oh < d->h_out; oh++) {
        int h0 = oh * d->stride_h - d->pad_h, h1 = h0 + d->kh < d->h_in ? h0 + d->kh : d->h_in;
        h0 = h0 < 0 ? 0 : h0;
        float *yr = y + (size_t)oh * d->w_out;
        int32_t *ar = am + (size_t)oh * d->w_out;
        for (int ow = 0; ow < lo; ow++)
            maxpool_one(d, x, h0, h1, ow, yr + ow, ar + ow);
        for (int ow = hi; ow < d->w_out; ow++)
            maxpool_one(d, x, h0, h1, ow, yr + ow, ar + ow);
        for (int ow = lo; ow < hi; ow++) {
            yr[ow] = -INFINITY;
            ar[ow] = h0 * win + ow * s - p;
        }
        for (int h = h0; h < h1; h++)
            for (int kw = 0; kw < k; kw++) {
                const float *xr = x + (size_t)h * win + kw - p;
                int base = h * win + kw - p;
#pragma omp simd
                for (int ow = lo; ow < hi; ow++) {
                    float v = xr[ow * s];
                    int take = (v > yr[ow]) | (v != v);
                    yr[ow] = take ? v : yr[ow];
                    ar[ow] = take ? base + ow * s : ar[ow];
                }
            }
    }
}

/* MP_GROUP planes at once, for short rows: one output position across the
 * group's planes at a time. Each plane's visiting order and selects are
 * maxpool_one's (identical results); the planes are independent chains, so
 * the compare-select latency of one window is overlapped with the others'
 * (one plane at a time is latency-bound: ~11 cycles per tap). */
#define MP_GROUP 8
static void maxpool_group(const pl_pool_desc *d, const float *x, size_t in, float *y, int32_t *am, size_t out)
{
    for (int oh = 0; oh < d->h_out; oh++) {
        int h0 = oh * d->stride_h - d->pad_h, h1 = h0 + d->kh < d->h_in ? h0 + d->kh : d->h_in;
        h0 = h0 < 0 ? 0 : h0;
        for (int ow = 0; ow < d->w_out; ow++) {
            int w0 = ow * d->stride_w - d->pad_w, w1 = w0 + d->kw < d->w_in ? w0 + d->kw : d->w_in;
            w0 = w0 < 0 ? 0 : w0;
            float m[MP_GROUP];
            int32_t best[MP_GROUP];
            for (int j = 0; j < MP_GROUP; j++) {
                m[j] = -INFINITY;
                best[j] = h0 * d->w_in + w0;
            }
            for (int h = h0; h < h1; h++)
                for (int w = w0; w < w1; w++) {
                    int32_t at = h * d->w_in + w;
#pragma omp simd
                    for (int j = 0; j < MP_GROUP; j++) {
                        float v = x[(size_t)j * in + (size_t)at];
                        int take = (v > m[j]) | (v != v);
                        m[j] = take ? v : m[j];
                        best[j] = take ? at : best[j];
                    }
                }
            size_t o = (size_t)oh * d->w_out + (size_t)ow;
            for (int j = 0; j < MP_GROUP; j++) {
                y[(size_t)j * out + o] = m[j];
                am[(size_t)j * out + o] = best[j];
            }
        }
    }
}

static void fast_maxpool_fwd(const pl_pool_desc *d, const float *x, float *y, int32_t *argmax)
{
    int planes = d->n * d->c;
    size_t in = (size_t)d->h_in * d->w_in, out = (size_t)d->h_out * d->w_out;
    /* Narrow outputs (< 16 wide: the row-vectorised path does not apply):
     * groups of planes; the rest one plane at a time. */
    int groups = d->w_out < 16 ? planes / MP_GROUP : 0;
#pragma omp parallel for schedule(static) if (planes * in >= FAST_PAR_MIN)
    for (int g = 0; g < groups; g++) {
        size_t p = (size_t)g * MP_GROUP;
        maxpool_group(d, x + p * in, in, y + p * out, argmax + p * out, out);
    }
#pragma omp parallel for schedule(static) if ((planes - groups * MP_GROUP) * in >= FAST_PAR_MIN)
    for (int p = groups * MP_GROUP; p < planes; p++)
        maxpool_plane(d, x + p * in, y + p * out, argmax + p * out);
}

static void fast_maxpool_bwd(const pl_pool_desc *d, const int32_t *argmax, const float *dy, float *dx)
{
    int planes = d->n * d->c;
    size_t in = (size_t)d->h_in * d->w_in, out = (size_t)d->h_out * d->w_out;
#pragma omp parallel for schedule(static) if (planes * in >= FAST_PAR_MIN)
    for (int p = 0; p < planes; p++) {
        const int32_t *a = argmax + p * out;
        const float *g = dy + p * out;
        float *gx = dx + p * in;
        for (size_t o = 0; o < out; o++)
            gx[a[o]] += g[o];
    }
}

/* Window [h0,h1) x [w0,w1) of output (oh, ow) clipped to the input, and
 * PyTorch's divisor; returns 0 for a window entirely in padding. */
static int avg_window(const pl_pool_desc *d, int oh, int ow, int *h0, int *h1, int *w0, int *w1)
{
    int a0 = oh * d->stride_h - d->pad_h, b0 = ow * d->stride_w - d->pad_w;
    int a1 = a0 + d->kh < d->h_in + d->pad_h ? a0 + d->kh : d->h_in + d->pad_h;
    int b1 = b0 + d->kw < d->w_in + d->pad_w ? b0 + d->kw : d->w_in + d->pad_w;
    int padded = (a1 - a0) * (b1 - b0);
    *h0 = a0 < 0 ? 0 : a0;
    *w0 = b0 < 0 ? 0 : b0;
    *h1 = a1 < d->h_in ? a1 : d->h_in;
    *w1 = b1 < d->w_in ? b1 : d->w_in;
    if (*h0 >= *h1 || *w0 >= *w1)
        return 0;
    return d->count_include_pad ? padded : (*h1 - *h0) * (*w1 - *w0);
}

static void avgpool_plane(const pl_pool_desc *d, const float *x, float *y)
{
    for (int oh = 0; oh < d->h_out; oh++)
        for (int ow = 0; ow < d->w_out; ow++) {
            int h0, h1, w0, w1, div = avg_window(d, oh, ow, &h0, &h1, &w0, &w1);
            float s = 0;
            for (int h = h0; h < h1; h++)
                for (int w = w0; w < w1; w++)
                    s += x[h * d->w_in + w];
            y[oh * d->w_out + ow] = div ? s / (float)div : 0.0f;
        }
}

static void avgpool_plane_bwd(const pl_pool_desc *d, const float *dy, float *dx)
{
    for (int oh = 0; oh < d->h_out; oh++)
        for (int ow = 0; ow < d->w_out; ow++) {
            int h0, h1, w0, w1, div = avg_window(d, oh, ow, &h0, &h1, &w0, &w1);
            if (!div)
                continue;
            float g = dy[oh * d->w_out + ow] / (float)div;
            for (int h = h0; h < h1; h++)
                for (int w = w0; w < w1; w++)
                    dx[h * d->w_in + w] += g;
        }
}

static void fast_avgpool_fwd(const pl_pool_desc *d, const float *x, float *y)
{
    int planes = d->n * d->c;
    size_t in = (size_t)d->h_in * d->w_in, out = (size_t)d->h_out * d->w_out;
#pragma omp parallel for schedule(static) if (planes * in >= FAST_PAR_MIN)
    for (int p = 0; p < planes; p++)
        avgpool_plane(d, x + p * in, y + p * out);
}

static void fast_avgpool_bwd(const pl_pool_desc *d, const float *dy, float *dx)
{
    int planes = d->n * d->c;
    size_t in = (size_t)d->h_in * d->w_in, out = (size_t)d->h_out * d->w_out;
#pragma omp parallel for schedule(static) if (planes * in >= FAST_PAR_MIN)
    for (int p = 0; p < planes; p++)
        avgpool_plane_bwd(d, dy + p * out, dx + p * in);
}

/* ---- adaptive average pool: bin i covers [floor(i*H/Ho), ceil((i+1)*H/Ho)) ---- */

static int bin_start(int i, int in, int out) { return (int)(((int64_t)i * in) / out); }
static int bin_end(int i, int in, int out) { return (int)(((int64_t)(i + 1) * in + out - 1) / out); }

static void adapool_plane(const pl_adapool_desc *d, const float *x, float *y)
{
    for (int oh = 0; oh < d->h_out; oh++) {
        int h0 = bin_start(oh, d->h_in, d->h_out), h1 = bin_end(oh, d->h_in, d->h_out);
        for (int ow = 0; ow < d->w_out; ow++) {
            int w0 = bin_start(ow, d->w_in, d->w_out), w1 = bin_end(ow, d->w_in, d->w_out);
            float s = 0;
            for (int h = h0; h < h1; h++)
                for (int w = w0; w < w1; w++)
                    s += x[h * d->w_in + w];
            y[oh * d->w_out + ow] = s / (float)((h1 - h0) * (w1 - w0));
        }
    }
}

static void adapool_plane_bwd(const pl_adapool_desc *d, const float *dy, float *dx)
{
    for (int oh = 0; oh < d->h_out; oh++) {
        int h0 = bin_start(oh, d->h_in, d->h_out), h1 = bin_end(oh, d->h_in, d->h_out);
        for (int ow = 0; ow < d->w_out; ow++) {
            int w0 = bin_start(ow, d->w_in, d->w_out), w1 = bin_end(ow, d->w_in, d->w_out);
            float g = dy[oh * d->w_out + ow] / (float)((h1 - h0) * (w1 - w0));
            for (int h = h0; h < h1; h++)
                for (int w = w0; w < w1; w++)
                    dx[h * d->w_in + w] += g;
        }
    }
}

static void fast_adapool_fwd(const pl_adapool_desc *d, const float *x, float *y)
{
    int planes = d->n * d->c;
    size_t in = (size_t)d->h_in * d->w_in, out = (size_t)d->h_out * d->w_out;
#pragma omp parallel for schedule(static) if (planes * in >= FAST_PAR_MIN)
    for (int p = 0; p < planes; p++)
        adapool_plane(d, x + p * in, y + p * out);
}

static void fast_adapool_bwd(const pl_adapool_desc *d, const float *dy, float *dx)
{
    int planes = d->n * d->c;
    size_t in = (size_t)d->h_in * d->w_in, out = (size_t)d->h_out * d->w_out;
#pragma omp parallel for schedule(static) if (planes * in >= FAST_PAR_MIN)
    for (int p = 0; p < planes; p++)
        adapool_plane_bwd(d, dy + p * out, dx + p * in);
}

/* ---- activations: x, y, dy, dx [n] ---- */

static void fast_act_fwd(pl_act kind, size_t n, const float *x, float *y)
{
    switch (kind) {
    case PL_ACT_RELU:
#pragma omp parallel for simd schedule(static) if (n >= FAST_PAR_MIN)
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] < 0.0f ? 0.0f : x[i]; /* NaN propagates, as in PyTorch */
        break;
    case PL_ACT_RELU6:
#pragma omp parallel for simd schedule(static) if (n >= FAST_PAR_MIN)
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] < 0.0f ? 0.0f : x[i] > 6.0f ? 6.0f : x[i];
        break;
    case PL_ACT_HARDSIGMOID:
#pragma omp parallel for simd schedule(static) if (n >= FAST_PAR_MIN)
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] <= -3.0f ? 0.0f : x[i] >= 3.0f ? 1.0f : x[i] / 6.0f + 0.5f;
        break;
    case PL_ACT_HARDSWISH:
#pragma omp parallel for simd schedule(static) if (n >= FAST_PAR_MIN)
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] <= -3.0f ? 0.0f : x[i] >= 3.0f ? x[i] : x[i] * (x[i] + 3.0f) / 6.0f;
        break;
    default:
        break;
    }
}

static void fast_act_bwd(pl_act kind, size_t n, const float *x, const float *dy, float *dx)
{
    switch (kind) {
    case PL_ACT_RELU:
#pragma omp parallel for simd schedule(static) if (n >= FAST_PAR_MIN)
        for (size_t i = 0; i < n; i++)
            dx[i] += x[i] > 0.0f ? dy[i] : 0.0f;
        break;
    case PL_ACT_RELU6:
#pragma omp parallel for simd schedule(static) if (n >= FAST_PAR_MIN)
        for (size_t i = 0; i < n; i++)
            dx[i] += x[i] > 0.0f && x[i] < 6.0f ? dy[i] : 0.0f;
        break;
    case PL_ACT_HARDSIGMOID:
#pragma omp parallel for simd schedule(static) if (n >= FAST_PAR_MIN)
        for (size_t i = 0; i < n; i++)
            dx[i] += x[i] > -3.0f && x[i] < 3.0f ? dy[i] / 6.0f : 0.0f;
        break;
    case PL_ACT_HARDSWISH:
#pragma omp parallel for simd schedule(static) if (n >= FAST_PAR_MIN)
        for (size_t i = 0; i < n; i++)
            dx[i] += x[i] < -3.0f ? 0.0f : x[i] <= 3.0f ? dy[i] * (x[i] / 3.0f + 0.5f) : dy[i];
        break;
    default:
        break;
    }
}

/* ---- log-softmax: x, y, dy, dx [rows, cols] ---- */

static void logsoftmax_row(int cols, const float *x, float *y)
{
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int j = 0; j < cols; j++)
        m = x[j] > m ? x[j] : m;
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int j = 0; j < cols; j++)
        s += expf(x[j] - m);
    float lse = m + logf(s);
#pragma omp simd
    for (int j = 0; j < cols; j++)
        y[j] = x[j] - lse;
}

static void fast_logsoftmax_fwd(int rows, int cols, const float *x, float *y)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * cols >= FAST_PAR_MIN)
    for (int r = 0; r < rows; r++)
        logsoftmax_row(cols, x + (size_t)r * cols, y + (size_t)r * cols);
}

/* dx += dy - exp(y) * sum(dy), row by row */
static void fast_logsoftmax_bwd(int rows, int cols, const float *y, const float *dy, float *dx)
{
#pragma omp parallel for schedule(static) if ((size_t)rows * cols >= FAST_PAR_MIN)
    for (int r = 0; r < rows; r++) {
        const float *yr = y + (size_t)r * cols, *gr = dy + (size_t)r * cols;
        float *xr = dx + (size_t)r * cols;
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int j = 0; j < cols; j++)
            s += gr[j];
#pragma omp simd
        for (int j = 0; j < cols; j++)
            xr[j] += gr[j] - expf(yr[j]) * s;
    }
}

static const pl_backend g_fast = {
    .name = "fast",
    .gemm = pl_fast_gemm,
    .conv2d_plan = pl_fast_conv2d_plan,
    .conv2d_plan_free = pl_fast_conv2d_plan_free,
    .conv2d_fwd = pl_fast_conv2d_fwd,
    .conv2d_bwd = pl_fast_conv2d_bwd,
    .bn_fwd_train = fast_bn_fwd_train,
    .bn_fwd_eval = fast_bn_fwd_eval,
    .bn_bwd_train = fast_bn_bwd_train,
    .bn_bwd_eval = fast_bn_bwd_eval,
    .maxpool_fwd = fast_maxpool_fwd,
    .maxpool_bwd = fast_maxpool_bwd,
    .avgpool_fwd = fast_avgpool_fwd,
    .avgpool_bwd = fast_avgpool_bwd,
    .adapool_fwd = fast_adapool_fwd,
    .adapool_bwd = fast_adapool_bwd,
    .act_fwd = fast_act_fwd,
    .act_bwd = fast_act_bwd,
    .logsoftmax_fwd = fast_logsoftmax_fwd,
    .logsoftmax_bwd = fast_logsoftmax_bwd,
};

const pl_backend *pl_backend_fast(void) { return &g_fast; }
