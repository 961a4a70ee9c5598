/* ref.c — the reference compute backend.
 *
 * Plain, single-threaded loops written to be obviously correct: this is the
 * oracle that the fast backend and every gradient are checked against. Every
 * reduction (dot products, convolution sums, batch-norm statistics, softmax
 * sums) accumulates in double. Conventions are those of backend.h: forward
 * overwrites, backward adds, NULL gradient pointers are skipped.
 */
#include "peerless/backend.h"

#include <math.h>
#include <stdlib.h>

/* ---- gemm ---- */

/* Element (i, j) of op(M) for a row-major matrix with row stride ld. */
static float mat_at(const float *m, int ld, int trans, int i, int j)
{
    return trans ? m[(size_t)j * ld + i] : m[(size_t)i * ld + j];
}

/* C[m,n] = alpha * op(A)[m,k] op(B)[k,n] + beta * C[m,n] */
static void ref_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                     int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++)
                s += (double)mat_at(a, lda, trans_a, i, p) * mat_at(b, ldb, trans_b, p, j);
            float *cij = &c[(size_t)i * ldc + j];
            /* beta == 0 must not read C: it may hold NaN garbage (BLAS rule). */
            double old = beta == 0.0f ? 0.0 : (double)beta * *cij;
            *cij = (float)(alpha * s + old);
        }
    }
}

/* ---- convolution ---- */

/* The plan is a private copy of the descriptor; no workspace is needed. */
static int ref_conv2d_plan(const pl_conv2d_desc *d, void **plan, pl_err *err)
{
    *plan = NULL;
    if (d->h_out <= 0 || d->w_out <= 0 || d->groups <= 0)
        return pl_err_set(err, PL_ERR_ARG,
                          "ref conv2d plan: descriptor has h_out=%d w_out=%d groups=%d; "
                          "call pl_conv2d_desc_init first",
                          d->h_out, d->w_out, d->groups);
    pl_conv2d_desc *copy = malloc(sizeof *copy);
    if (!copy)
        return pl_err_set(err, PL_ERR_NOMEM, "ref conv2d plan: allocating %zu bytes", sizeof *copy);
    *copy = *d;
    *plan = copy;
    return PL_OK;
}

static void ref_conv2d_plan_free(void *plan) { free(plan); }

/* Dot product of one output pixel's receptive field with filter oc.
 * x [n,c_in,h_in,w_in], w [c_out,c_in/g,kh,kw]; returns sum without bias. */
static double conv_pixel(const pl_conv2d_desc *d, const float *x, const float *w, int n, int oc,
                         int oh, int ow)
{
    int cig = d->c_in / d->groups, cog = d->c_out / d->groups;
    int c0 = (oc / cog) * cig;
    double s = 0;
    for (int ic = 0; ic < cig; ic++) {
        const float *xp = x + ((size_t)n * d->c_in + c0 + ic) * d->h_in * d->w_in;
        const float *wp = w + ((size_t)oc * cig + ic) * d->kh * d->kw;
        for (int i = 0; i < d->kh; i++) {
            int ih = oh * d->stride_h - d->pad_h + i * d->dil_h;
            if (ih < 0 || ih >= d->h_in)
                continue;
            for (int j = 0; j < d->kw; j++) {
                int iw = ow * d->stride_w - d->pad_w + j * d->dil_w;
                if (iw >= 0 && iw < d->w_in)
                    s += (double)xp[(size_t)ih * d->w_in + iw] * wp[i * d->kw + j];
            }
        }
    }
    return s;
}

/* y [n,c_out,h_out,w_out] = conv(x, w) + b */
static int ref_conv2d_fwd(void *plan, const float *x, const float *w, const float *b, float *y)
{
    const pl_conv2d_desc *d = plan;
    if (!d)
        return PL_ERR_ARG;
    for (int n = 0; n < d->n; n++)
        for (int oc = 0; oc < d->c_out; oc++)
            for (int oh = 0; oh < d->h_out; oh++)
                for (int ow = 0; ow < d->w_out; ow++) {
                    double s = conv_pixel(d, x, w, n, oc, oh, ow);
                    if (b && d->has_bias)
                        s += b[oc];
                    *y++ = (float)s;
                }
    return PL_OK;
}

/* dL/dx at one input pixel (n, ci, ih, iw): gather over every output pixel
 * and filter tap that reads it. dy [n,c_out,h_out,w_out]. */
static double conv_dx_pixel(const pl_conv2d_desc *d, const float *w, const float *dy, int n, int ci,
                            int ih, int iw)
{
    int cig = d->c_in / d->groups, cog = d->c_out / d->groups;
    int g = ci / cig, ic = ci % cig;
    double s = 0;
    for (int oc = g * cog; oc < (g + 1) * cog; oc++) {
        const float *dyp = dy + ((size_t)n * d->c_out + oc) * d->h_out * d->w_out;
        const float *wp = w + ((size_t)oc * cig + ic) * d->kh * d->kw;
        for (int i = 0; i < d->kh; i++) {
            int th = ih + d->pad_h - i * d->dil_h;
            if (th < 0 || th % d->stride_h || th / d->stride_h >= d->h_out)
                continue;
            for (int j = 0; j < d->kw; j++) {
                int tw = iw + d->pad_w - j * d->dil_w;
                if (tw < 0 || tw % d->stride_w || tw / d->stride_w >= d->w_out)
                    continue;
                s += (double)dyp[(size_t)(th / d->stride_h) * d->w_out + tw / d->stride_w] *
                     wp[i * d->kw + j];
            }
        }
    }
    return s;
}

/* dL/dw[oc, ic, i, j]: sum over batch and output pixels. */
static double conv_dw_tap(const pl_conv2d_desc *d, const float *x, const float *dy, int oc, int ic,
                          int i, int j)
{
    int cig = d->c_in / d->groups, cog = d->c_out / d->groups;
    int ci = (oc / cog) * cig + ic;
    double s = 0;
    for (int n = 0; n < d->n; n++) {
        const float *xp = x + ((size_t)n * d->c_in + ci) * d->h_in * d->w_in;
        const float *dyp = dy + ((size_t)n * d->c_out + oc) * d->h_out * d->w_out;
        for (int oh = 0; oh < d->h_out; oh++) {
            int ih = oh * d->stride_h - d->pad_h + i * d->dil_h;
            if (ih < 0 || ih >= d->h_in)
                continue;
            for (int ow = 0; ow < d->w_out; ow++) {
                int iw = ow * d->stride_w - d->pad_w + j * d->dil_w;
                if (iw >= 0 && iw < d->w_in)
                    s += (double)dyp[(size_t)oh * d->w_out + ow] * xp[(size_t)ih * d->w_in + iw];
            }
        }
    }
    return s;
}

static void conv_bwd_dx(const pl_conv2d_desc *d, const float *w, const float *dy, float *dx)
{
    for (int n = 0; n < d->n; n++)
        for (int ci = 0; ci < d->c_in; ci++)
            for (int ih = 0; ih < d->h_in; ih++)
                for (int iw = 0; iw < d->w_in; iw++)
                    *dx++ += (float)conv_dx_pixel(d, w, dy, n, ci, ih, iw);
}

static void conv_bwd_dw(const pl_conv2d_desc *d, const float *x, const float *dy, float *dw)
{
    int cig = d->c_in / d->groups;
    for (int oc = 0; oc < d->c_out; oc++)
        for (int ic = 0; ic < cig; ic++)
            for (int i = 0; i < d->kh; i++)
                for (int j = 0; j < d->kw; j++)
                    *dw++ += (float)conv_dw_tap(d, x, dy, oc, ic, i, j);
}

static void conv_bwd_db(const pl_conv2d_desc *d, const float *dy, float *db)
{
    size_t hw = (size_t)d->h_out * d->w_out;
    for (int oc = 0; oc < d->c_out; oc++) {
        double s = 0;
        for (int n = 0; n < d->n; n++) {
            const float *dyp = dy + ((size_t)n * d->c_out + oc) * hw;
            for (size_t p = 0; p < hw; p++)
                s += dyp[p];
        }
        db[oc] += (float)s;
    }
}

/* dx [n,c_in,h_in,w_in] +=, dw [c_out,c_in/g,kh,kw] +=, db [c_out] += */
static int ref_conv2d_bwd(void *plan, const float *x, const float *w, const float *dy, float *dx,
                          float *dw, float *db)
{
    const pl_conv2d_desc *d = plan;
    if (!d)
        return PL_ERR_ARG;
    if (dx)
        conv_bwd_dx(d, w, dy, dx);
    if (dw)
        conv_bwd_dw(d, x, dy, dw);
    if (db && d->has_bias)
        conv_bwd_db(d, dy, db);
    return PL_OK;
}

/* ---- batch norm ---- */

/* Pointer to channel c of sample n in a [n, c, hw] tensor. */
static const float *bn_plane(const pl_bn_desc *d, const float *x, int n, int c)
{
    return x + ((size_t)n * d->c + c) * d->hw;
}

static float *bn_plane_mut(const pl_bn_desc *d, float *x, int n, int c)
{
    return x + ((size_t)n * d->c + c) * d->hw;
}

/* Sums of dy and dy * (x - mean) over (n, hw) of channel c. */
static void bn_dy_sums(const pl_bn_desc *d, const float *x, const float *dy, int c, double mean,
                       double *sum_dy, double *sum_dy_xc)
{
    double s = 0, sx = 0;
    for (int n = 0; n < d->n; n++) {
        const float *xp = bn_plane(d, x, n, c), *gp = bn_plane(d, dy, n, c);
        for (int p = 0; p < d->hw; p++) {
            s += gp[p];
            sx += (double)gp[p] * (xp[p] - mean);
        }
    }
    *sum_dy = s;
    *sum_dy_xc = sx;
}

/* x, y [n,c,hw]; gamma, beta, mean, var, invstd [c] */
static void ref_bn_fwd_train(const pl_bn_desc *d, const float *x, const float *gamma,
                             const float *beta, float *y, float *mean, float *var, float *invstd)
{
    double count = (double)d->n * d->hw;
    for (int c = 0; c < d->c; c++) {
        double s = 0, sq = 0;
        for (int n = 0; n < d->n; n++)
            for (int p = 0; p < d->hw; p++)
                s += bn_plane(d, x, n, c)[p];
        double mu = s / count;
        /* Two passes: the variance of centred values does not cancel. */
        for (int n = 0; n < d->n; n++)
            for (int p = 0; p < d->hw; p++) {
                double t = bn_plane(d, x, n, c)[p] - mu;
                sq += t * t;
            }
        double v = sq / count, is = 1.0 / sqrt(v + d->eps);
        mean[c] = (float)mu;
        var[c] = (float)v;
        invstd[c] = (float)is;
        for (int n = 0; n < d->n; n++) {
            const float *xp = bn_plane(d, x, n, c);
            float *yp = bn_plane_mut(d, y, n, c);
            for (int p = 0; p < d->hw; p++)
                yp[p] = (float)((xp[p] - mu) * is * gamma[c] + beta[c]);
        }
    }
}

/* x, y [n,c,hw]; gamma, beta, rmean, rvar [c] */
static void ref_bn_fwd_eval(const pl_bn_desc *d, const float *x, const float *gamma,
                            const float *beta, const float *rmean, const float *rvar, float *y)
{
    for (int c = 0; c < d->c; c++) {
        double is = 1.0 / sqrt((double)rvar[c] + d->eps);
        for (int n = 0; n < d->n; n++) {
            const float *xp = bn_plane(d, x, n, c);
            float *yp = bn_plane_mut(d, y, n, c);
            for (int p = 0; p < d->hw; p++)
                yp[p] = (float)((xp[p] - (double)rmean[c]) * is * gamma[c] + beta[c]);
        }
    }
}

/* x, dy, dx [n,c,hw]; gamma, mean, invstd, dgamma, dbeta [c].
 * dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)). */
static void ref_bn_bwd_train(const pl_bn_desc *d, const float *x, const float *gamma,
                             const float *mean, const float *invstd, const float *dy, float *dx,
                             float *dgamma, float *dbeta)
{
    double count = (double)d->n * d->hw;
    for (int c = 0; c < d->c; c++) {
        double sum_dy, sum_dy_xc, is = invstd[c];
        bn_dy_sums(d, x, dy, c, mean[c], &sum_dy, &sum_dy_xc);
        if (dgamma)
            dgamma[c] += (float)(sum_dy_xc * is);
        if (dbeta)
            dbeta[c] += (float)sum_dy;
        if (!dx)
            continue;
        double mdy = sum_dy / count, mdyxh = sum_dy_xc * is / count;
        for (int n = 0; n < d->n; n++) {
            const float *xp = bn_plane(d, x, n, c), *gp = bn_plane(d, dy, n, c);
            float *dp = bn_plane_mut(d, dx, n, c);
            for (int p = 0; p < d->hw; p++) {
                double xhat = (xp[p] - (double)mean[c]) * is;
                dp[p] += (float)(gamma[c] * is * (gp[p] - mdy - xhat * mdyxh));
            }
        }
    }
}

/* x, dy, dx [n,c,hw]; gamma, rmean, rvar, dgamma, dbeta [c] */
static void ref_bn_bwd_eval(const pl_bn_desc *d, const float *x, const float *gamma,
                            const float *rmean, const float *rvar, const float *dy, float *dx,
                            float *dgamma, float *dbeta)
{
    for (int c = 0; c < d->c; c++) {
        double is = 1.0 / sqrt((double)rvar[c] + d->eps);
        double sum_dy, sum_dy_xc;
        bn_dy_sums(d, x, dy, c, rmean[c], &sum_dy, &sum_dy_xc);
        if (dgamma)
            dgamma[c] += (float)(sum_dy_xc * is);
        if (dbeta)
            dbeta[c] += (float)sum_dy;
        if (!dx)
            continue;
        for (int n = 0; n < d->n; n++) {
            const float *gp = bn_plane(d, dy, n, c);
            float *dp = bn_plane_mut(d, dx, n, c);
            for (int p = 0; p < d->hw; p++)
                dp[p] += (float)(gp[p] * gamma[c] * is);
        }
    }
}

/* ---- pooling ---- */

/* One pooling window along one axis: [lo, hi) clipped to the real input,
 * and the PyTorch count_include_pad extent (clipped to input + pad). */
typedef struct pool_span {
    int lo, hi, padded;
} pool_span;

static pool_span pool_window(int o, int k, int s, int p, int in)
{
    int start = o * s - p;
    int end = start + k < in + p ? start + k : in + p;
    pool_span w = {start < 0 ? 0 : start, end < in ? end : in, end - start};
    return w;
}

/* x [n,c,h_in,w_in] -> y, argmax [n,c,h_out,w_out] */
static void ref_maxpool_fwd(const pl_pool_desc *d, const float *x, float *y, int32_t *argmax)
{
    size_t planes = (size_t)d->n * d->c, in_hw = (size_t)d->h_in * d->w_in;
    for (size_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * in_hw;
        for (int oh = 0; oh < d->h_out; oh++) {
            pool_span hs = pool_window(oh, d->kh, d->stride_h, d->pad_h, d->h_in);
            for (int ow = 0; ow < d->w_out; ow++) {
                pool_span ws = pool_window(ow, d->kw, d->stride_w, d->pad_w, d->w_in);
                /* Padding is -inf; strict > keeps the first max; NaN wins as in PyTorch. */
                int32_t best_i = hs.lo * d->w_in + ws.lo;
                float best = -INFINITY;
                for (int h = hs.lo; h < hs.hi; h++)
                    for (int w = ws.lo; w < ws.hi; w++) {
                        float v = xp[h * d->w_in + w];
                        if (v > best || isnan(v)) {
                            best = v;
                            best_i = h * d->w_in + w;
                        }
                    }
                *y++ = best;
                *argmax++ = best_i;
            }
        }
    }
}

/* dy, argmax [n,c,h_out,w_out] -> dx [n,c,h_in,w_in] += */
static void ref_maxpool_bwd(const pl_pool_desc *d, const int32_t *argmax, const float *dy, float *dx)
{
    size_t planes = (size_t)d->n * d->c, in_hw = (size_t)d->h_in * d->w_in;
    size_t out_hw = (size_t)d->h_out * d->w_out;
    for (size_t pl = 0; pl < planes; pl++)
        for (size_t o = 0; o < out_hw; o++)
            dx[pl * in_hw + argmax[pl * out_hw + o]] += dy[pl * out_hw + o];
}

/* PyTorch's avg-pool divisor for a window. */
static int avg_divisor(const pl_pool_desc *d, pool_span hs, pool_span ws)
{
    if (d->count_include_pad)
        return hs.padded * ws.padded;
    return (hs.hi - hs.lo) * (ws.hi - ws.lo);
}

/* x [n,c,h_in,w_in] -> y [n,c,h_out,w_out] */
static void ref_avgpool_fwd(const pl_pool_desc *d, const float *x, float *y)
{
    size_t planes = (size_t)d->n * d->c, in_hw = (size_t)d->h_in * d->w_in;
    for (size_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * in_hw;
        for (int oh = 0; oh < d->h_out; oh++) {
            pool_span hs = pool_window(oh, d->kh, d->stride_h, d->pad_h, d->h_in);
            for (int ow = 0; ow < d->w_out; ow++) {
                pool_span ws = pool_window(ow, d->kw, d->stride_w, d->pad_w, d->w_in);
                double s = 0;
                for (int h = hs.lo; h < hs.hi; h++)
                    for (int w = ws.lo; w < ws.hi; w++)
                        s += xp[h * d->w_in + w];
                *y++ = (float)(s / avg_divisor(d, hs, ws));
            }
        }
    }
}

/* dy [n,c,h_out,w_out] -> dx [n,c,h_in,w_in] += */
static void ref_avgpool_bwd(const pl_pool_desc *d, const float *dy, float *dx)
{
    size_t planes = (size_t)d->n * d->c, in_hw = (size_t)d->h_in * d->w_in;
    for (size_t pl = 0; pl < planes; pl++) {
        float *dp = dx + pl * in_hw;
        for (int oh = 0; oh < d->h_out; oh++) {
            pool_span hs = pool_window(oh, d->kh, d->stride_h, d->pad_h, d->h_in);
            for (int ow = 0; ow < d->w_out; ow++) {
                pool_span ws = pool_window(ow, d->kw, d->stride_w, d->pad_w, d->w_in);
                float g = (float)((double)*dy++ / avg_divisor(d, hs, ws));
                for (int h = hs.lo; h < hs.hi; h++)
                    for (int w = ws.lo; w < ws.hi; w++)
                        dp[h * d->w_in + w] += g;
            }
        }
    }
}

/* Adaptive bin i of `out` over `in`: [floor(i*in/out), ceil((i+1)*in/out)). */
static pool_span ada_bin(int i, int in, int out)
{
    pool_span b;
    b.lo = (int)(((int64_t)i * in) / out);
    b.hi = (int)(((int64_t)(i + 1) * in + out - 1) / out);
    b.padded = b.hi - b.lo;
    return b;
}

/* x [n,c,h_in,w_in] -> y [n,c,h_out,w_out] */
static void ref_adapool_fwd(const pl_adapool_desc *d, const float *x, float *y)
{
    size_t planes = (size_t)d->n * d->c, in_hw = (size_t)d->h_in * d->w_in;
    for (size_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * in_hw;
        for (int oh = 0; oh < d->h_out; oh++) {
            pool_span hb = ada_bin(oh, d->h_in, d->h_out);
            for (int ow = 0; ow < d->w_out; ow++) {
                pool_span wb = ada_bin(ow, d->w_in, d->w_out);
                double s = 0;
                for (int h = hb.lo; h < hb.hi; h++)
                    for (int w = wb.lo; w < wb.hi; w++)
                        s += xp[h * d->w_in + w];
                *y++ = (float)(s / ((double)hb.padded * wb.padded));
            }
        }
    }
}

/* dy [n,c,h_out,w_out] -> dx [n,c,h_in,w_in] += */
static void ref_adapool_bwd(const pl_adapool_desc *d, const float *dy, float *dx)
{
    size_t planes = (size_t)d->n * d->c, in_hw = (size_t)d->h_in * d->w_in;
    for (size_t pl = 0; pl < planes; pl++) {
        float *dp = dx + pl * in_hw;
        for (int oh = 0; oh < d->h_out; oh++) {
            pool_span hb = ada_bin(oh, d->h_in, d->h_out);
            for (int ow = 0; ow < d->w_out; ow++) {
                pool_span wb = ada_bin(ow, d->w_in, d->w_out);
                float g = (float)((double)*dy++ / ((double)hb.padded * wb.padded));
                for (int h = hb.lo; h < hb.hi; h++)
                    for (int w = wb.lo; w < wb.hi; w++)
                        dp[h * d->w_in + w] += g;
            }
        }
    }
}

/* ---- activations: one forward and one derivative function per kind ---- */

static float relu_f(float x) { return x > 0.0f ? x : (isnan(x) ? x : 0.0f); }
static float relu_d(float x) { return x > 0.0f ? 1.0f : 0.0f; }
static float relu6_f(float x) { return isnan(x) ? x : fminf(fmaxf(x, 0.0f), 6.0f); }
static float relu6_d(float x) { return x > 0.0f && x < 6.0f ? 1.0f : 0.0f; }
static float hsig_f(float x) { return isnan(x) ? x : fminf(fmaxf(x + 3.0f, 0.0f), 6.0f) / 6.0f; }
static float hsig_d(float x) { return x > -3.0f && x < 3.0f ? 1.0f / 6.0f : 0.0f; }
static float hswish_f(float x) { return x * fminf(fmaxf(x + 3.0f, 0.0f), 6.0f) / 6.0f; }
static float hswish_d(float x) { return x < -3.0f ? 0.0f : (x <= 3.0f ? x / 3.0f + 0.5f : 1.0f); }

typedef struct act_fns {
    float (*f)(float);
    float (*df)(float);
} act_fns;

static const act_fns act_table[PL_ACT_COUNT_] = {
    [PL_ACT_RELU] = {relu_f, relu_d},
    [PL_ACT_RELU6] = {relu6_f, relu6_d},
    [PL_ACT_HARDSWISH] = {hswish_f, hswish_d},
    [PL_ACT_HARDSIGMOID] = {hsig_f, hsig_d},
};

/* x, y [n]; y may alias x. An unknown kind leaves y untouched. */
static void ref_act_fwd(pl_act kind, size_t n, const float *x, float *y)
{
    if ((unsigned)kind >= PL_ACT_COUNT_)
        return;
    float (*f)(float) = act_table[kind].f;
    for (size_t i = 0; i < n; i++)
        y[i] = f(x[i]);
}

/* x, dy, dx [n]; dx += dy * f'(x) */
static void ref_act_bwd(pl_act kind, size_t n, const float *x, const float *dy, float *dx)
{
    if ((unsigned)kind >= PL_ACT_COUNT_)
        return;
    float (*df)(float) = act_table[kind].df;
    for (size_t i = 0; i < n; i++)
        dx[i] += dy[i] * df(x[i]);
}

/* ---- log-softmax ---- */

/* x, y [rows, cols] */
static void ref_logsoftmax_fwd(int rows, int cols, const float *x, float *y)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * cols;
        float *yr = y + (size_t)r * cols;
        float mx = -INFINITY;
        for (int j = 0; j < cols; j++)
            mx = xr[j] > mx ? xr[j] : mx;
        /* Subtracting the max keeps exp() from overflowing. */
        double s = 0;
        for (int j = 0; j < cols; j++)
            s += exp((double)xr[j] - mx);
        double lse = mx + log(s);
        for (int j = 0; j < cols; j++)
            yr[j] = (float)(xr[j] - lse);
    }
}

/* y, dy, dx [rows, cols]; dx += dy - exp(y) * sum(dy) */
static void ref_logsoftmax_bwd(int rows, int cols, const float *y, const float *dy, float *dx)
{
    for (int r = 0; r < rows; r++) {
        const float *yr = y + (size_t)r * cols, *gr = dy + (size_t)r * cols;
        float *dr = dx + (size_t)r * cols;
        double s = 0;
        for (int j = 0; j < cols; j++)
            s += gr[j];
        for (int j = 0; j < cols; j++)
            dr[j] += (float)(gr[j] - exp((double)yr[j]) * s);
    }
}

static const pl_backend ref_backend = {
    .name = "ref",
    .gemm = ref_gemm,
    .conv2d_plan = ref_conv2d_plan,
    .conv2d_plan_free = ref_conv2d_plan_free,
    .conv2d_fwd = ref_conv2d_fwd,
    .conv2d_bwd = ref_conv2d_bwd,
    .bn_fwd_train = ref_bn_fwd_train,
    .bn_fwd_eval = ref_bn_fwd_eval,
    .bn_bwd_train = ref_bn_bwd_train,
    .bn_bwd_eval = ref_bn_bwd_eval,
    .maxpool_fwd = ref_maxpool_fwd,
    .maxpool_bwd = ref_maxpool_bwd,
    .avgpool_fwd = ref_avgpool_fwd,
    .avgpool_bwd = ref_avgpool_bwd,
    .adapool_fwd = ref_adapool_fwd,
    .adapool_bwd = ref_adapool_bwd,
    .act_fwd = ref_act_fwd,
    .act_bwd = ref_act_bwd,
    .logsoftmax_fwd = ref_logsoftmax_fwd,
    .logsoftmax_bwd = ref_logsoftmax_bwd,
};

const pl_backend *pl_backend_ref(void) { return &ref_backend; }
