/* fast_conv_gemm.c — the fast backend's convolution and GEMM without oneDNN
 * (built with -DPL_DNNL=OFF, e.g. the Lambda function): im2col / col2im
 * around an SGEMM (Eigen, gemm_eigen.cc), and a direct kernel for depthwise
 * convolutions (one input and one output channel per group).
 *
 * Shapes, per group gi of g: cig = c_in/g input and cog = c_out/g output
 * channels, K = cig*kh*kw rows of a column matrix, P = h_out*w_out output
 * positions. The weights of group gi are the row-major matrix W [cog, K]
 * (OIHW order). The batch is cut into blocks of nb images whose columns form
 * one GEMM (col [K, nb*P], column b*P + p for image b of the block): on
 * small maps nb grows so that a GEMM has >= MIN_COLS columns.
 *
 *   forward        Y [cog, nb*P] = W x col, then + bias
 *   backward-data  dcol [K, nb*P] = W^T x dY, col2im adds into dx
 *   backward-wts   dW [cog, K] += dY x col^T
 *
 * Kernel taps that only ever see padding (a 3x3 kernel on a 1x1 map: 8 of
 * 9) are cropped away, as in the oneDNN path: the GEMMs use the cropped
 * kernel (a plan copy of the weights, and of their gradient).
 *
 * Threads: forward and backward-data run blocks in parallel (each thread
 * with its own buffers and a single-threaded GEMM) when there are at least
 * as many blocks as threads, else blocks in turn with a GEMM split over the
 * threads (gemm_par). Backward-weights sums every block into dw, so blocks
 * run in turn with a split GEMM. A plan owns one set of buffers per thread.
 */
#include "backend/fast_conv.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/gemm_eigen.h"
#include "peerless/tensor.h"

const char pl_fast_conv_impl[] = "im2col+Eigen";

/* A GEMM gets at least this many columns when the batch allows. */
#define MIN_COLS 256
/* Cap of one thread's column buffer (bytes), bounding nb. */
#define MAX_COL_BYTES ((size_t)64 << 20)
/* Largest depthwise kernel (kh*kw) of the direct path; larger ones use GEMMs. */
#define DW_MAX_TAPS 64

/* Below this many multiply-adds a GEMM stays on one thread. */
#define PAR_MIN_FLOPS 200000.0
/* Column / row chunks of a split GEMM are multiples of this (vector width). */
#define PAR_ALIGN 16

/* C = alpha op(A) op(B) + beta C (as pl_eigen_sgemm), split into
 * independent slices of C's columns (or rows, when taller than wide) over
 * the OpenMP threads; on one thread inside a parallel region. */
static void gemm_par(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                     int ldb, float beta, float *c, int ldc)
{
    int t = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (t > 1 && (double)m * n * k < PAR_MIN_FLOPS * t)
        t = 1;
    int by_cols = n >= m, len = by_cols ? n : m;
    int chunk = (len + t - 1) / t;
    chunk = (chunk + PAR_ALIGN - 1) / PAR_ALIGN * PAR_ALIGN;
    int parts = chunk > 0 ? (len + chunk - 1) / chunk : 1;
    if (t <= 1 || parts <= 1) {
        pl_eigen_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
#pragma omp parallel for num_threads(parts) schedule(static)
    for (int q = 0; q < parts; q++) {
        int lo = q * chunk, cnt = lo + chunk <= len ? chunk : len - lo;
        if (by_cols) /* columns [lo, lo+cnt) of C and op(B) */
            pl_eigen_sgemm(ta, tb, m, cnt, k, alpha, a, lda, tb ? b + (size_t)lo * ldb : b + lo, ldb, beta, c + lo,
                           ldc);
        else /* rows [lo, lo+cnt) of C and op(A) */
            pl_eigen_sgemm(ta, tb, cnt, n, k, alpha, ta ? a + lo : a + (size_t)lo * lda, lda, b, ldb, beta,
                           c + (size_t)lo * ldc, ldc);
    }
}

void pl_fast_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                  const float *b, int ldb, float beta, float *c, int ldc)
{
    gemm_par(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

typedef struct gemm_plan {
    pl_conv2d_desc d;
    pl_conv2d_desc e; /* d with the kernel cropped to the taps in use (kh, kw, pad) */
    int crop;         /* e differs from d: weights go through wbuf */
    int t0h, t0w;     /* first tap in use along each axis */
    int g, cig, cog, K, P, nb;
    int depthwise;  /* cig == cog == 1: direct kernel, no buffers */
    int pointwise;  /* 1x1, stride 1, no padding: col is x itself */
    int nbuf;       /* threads with buffers */
    size_t col_n;   /* floats per thread: col [K, nb*P] */
    size_t tmp_n;   /* floats per thread: Y / dY of one group [cog, nb*P] */
    float *col, *tmp; /* nbuf * col_n, nbuf * tmp_n */
    float *wbuf;      /* crop: cropped weights or their gradient [c_out, K] */
} gemm_plan;

void pl_fast_conv2d_plan_free(void *plan)
{
    gemm_plan *p = plan;
    if (!p)
        return;
    pl_free(p->col);
    pl_free(p->tmp);
    pl_free(p->wbuf);
    free(p);
}

static void valid_range(int in, int out, int s, int pad, int off, int *lo, int *hi);

/* Taps [*t0, *t0 + *k) of a kernel of k0 taps that ever touch the input
 * along one axis, and the padding that keeps every index the same; the
 * whole kernel when nothing can be cropped without negative padding. */
static void crop_taps(int in, int k0, int dil, int stride, int pad, int out, int *t0, int *k, int *pad_e)
{
    int lo = k0, hi = -1;
    for (int i = 0; i < k0; i++) {
        int a, b;
        valid_range(in, out, stride, pad, i * dil, &a, &b);
        if (a < b) {
            lo = i < lo ? i : lo;
            hi = i;
        }
    }
    if (hi < lo || lo * dil > pad) {
        lo = 0;
        hi = k0 - 1;
    }
    *t0 = lo;
    *k = hi - lo + 1;
    *pad_e = pad - lo * dil;
}

/* The cropped weights [c_out, cig, e.kh, e.kw] of w [c_out, cig, kh, kw] into wbuf. */
static void crop_weights(const gemm_plan *p, const float *w)
{
    const pl_conv2d_desc *d = &p->d;
    int rows = d->c_out * p->cig;
#pragma omp parallel for schedule(static) if (rows * p->e.kh * p->e.kw > 65536)
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < p->e.kh; i++)
            for (int j = 0; j < p->e.kw; j++)
                p->wbuf[((size_t)r * p->e.kh + i) * p->e.kw + j] =
                    w[((size_t)r * d->kh + p->t0h + i) * d->kw + p->t0w + j];
}

/* dw [c_out, cig, kh, kw] += the cropped gradient in wbuf. */
static void uncrop_add(const gemm_plan *p, float *dw)
{
    const pl_conv2d_desc *d = &p->d;
    int rows = d->c_out * p->cig;
#pragma omp parallel for schedule(static) if (rows * p->e.kh * p->e.kw > 65536)
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < p->e.kh; i++)
            for (int j = 0; j < p->e.kw; j++)
                dw[((size_t)r * d->kh + p->t0h + i) * d->kw + p->t0w + j] +=
                    p->wbuf[((size_t)r * p->e.kh + i) * p->e.kw + j];
}

int pl_fast_conv2d_plan(const pl_conv2d_desc *d, void **plan, pl_err *err)
{
    *plan = NULL;
    int bad = pl_fast_conv2d_check(d, err);
    if (bad)
        return bad;
    gemm_plan *p = calloc(1, sizeof *p);
    if (!p)
        return pl_err_set(err, PL_ERR_NOMEM, "fast conv2d plan: out of memory");
    p->d = *d;
    p->g = d->groups;
    p->cig = d->c_in / d->groups;
    p->cog = d->c_out / d->groups;
    p->e = *d;
    crop_taps(d->h_in, d->kh, d->dil_h, d->stride_h, d->pad_h, d->h_out, &p->t0h, &p->e.kh, &p->e.pad_h);
    crop_taps(d->w_in, d->kw, d->dil_w, d->stride_w, d->pad_w, d->w_out, &p->t0w, &p->e.kw, &p->e.pad_w);
    p->K = p->cig * p->e.kh * p->e.kw;
    p->P = d->h_out * d->w_out;
    p->depthwise = p->cig == 1 && p->cog == 1 && d->kh * d->kw <= DW_MAX_TAPS;
    p->pointwise = d->kh == 1 && d->kw == 1 && d->stride_h == 1 && d->stride_w == 1 && d->pad_h == 0 &&
                   d->pad_w == 0;
    int nb = (MIN_COLS + p->P - 1) / p->P;
    nb = nb < d->n ? nb : d->n;
    while (nb > 1 && (size_t)p->K * nb * p->P * sizeof(float) > MAX_COL_BYTES)
        nb--;
    p->nb = nb;
    if (!p->depthwise) {
        p->nbuf = pl_backend_threads();
        p->col_n = (size_t)p->K * nb * p->P;
        p->tmp_n = (size_t)p->cog * nb * p->P;
        p->col = pl_alloc((size_t)p->nbuf * p->col_n * sizeof(float));
        p->tmp = pl_alloc((size_t)p->nbuf * p->tmp_n * sizeof(float));
        p->crop = p->e.kh != d->kh || p->e.kw != d->kw;
        if (p->crop)
            p->wbuf = pl_alloc((size_t)d->c_out * p->K * sizeof(float));
        if (!p->col || !p->tmp || (p->crop && !p->wbuf)) {
            int rc = pl_err_set(err, PL_ERR_NOMEM,
                                "fast conv2d plan: out of memory for %d column buffers of %zu floats", p->nbuf,
                                p->col_n + p->tmp_n);
            pl_fast_conv2d_plan_free(p);
            return rc;
        }
    }
    *plan = p;
    return PL_OK;
}

/* ---- im2col / col2im: one image's group slice <-> columns [b*P, (b+1)*P) of col [K, ld] ---- */

/* Rows here are short (a few to a few dozen floats on small maps): plain
 * loops, which this file is compiled not to turn into memcpy/memset calls
 * (cmake/conv_backend.cmake: -fno-tree-loop-distribute-patterns). */
static inline void copy_f(float *restrict dst, const float *restrict src, int n)
{
    for (int i = 0; i < n; i++)
        dst[i] = src[i];
}

static inline void zero_f(float *dst, int n)
{
    for (int i = 0; i < n; i++)
        dst[i] = 0.0f;
}

/* Output positions [*lo, *hi) along one axis whose input index o*s - pad + t*dil is in [0, in). */
static void valid_range(int in, int out, int s, int pad, int off, int *lo, int *hi)
{
    int a = pad - off; /* need o*s >= a */
    int l = a <= 0 ? 0 : (a + s - 1) / s;
    int b = in - 1 + pad - off; /* need o*s <= b */
    int h = b < 0 ? 0 : b / s + 1;
    *lo = l < out ? l : out;
    *hi = h < out ? h : out;
    if (*hi < *lo)
        *hi = *lo;
}

/* x: [cig, h_in, w_in] of one image and group; col rows r = (ci*kh + i)*kw + j. */
static void im2col(const gemm_plan *p, const float *x, float *col, size_t ld)
{
    const pl_conv2d_desc *d = &p->e;
    int ho = d->h_out, wo = d->w_out;
    for (int r = 0; r < p->K; r++) {
        int j = r % d->kw, i = (r / d->kw) % d->kh, ci = r / (d->kw * d->kh);
        const float *xc = x + (size_t)ci * d->h_in * d->w_in;
        float *row = col + (size_t)r * ld;
        int h0, h1, w0, w1;
        valid_range(d->h_in, ho, d->stride_h, d->pad_h, i * d->dil_h, &h0, &h1);
        valid_range(d->w_in, wo, d->stride_w, d->pad_w, j * d->dil_w, &w0, &w1);
        zero_f(row, h0 * wo);
        for (int oh = h0; oh < h1; oh++) {
            float *o = row + (size_t)oh * wo;
            const float *xr = xc + (size_t)(oh * d->stride_h - d->pad_h + i * d->dil_h) * d->w_in;
            int ix = w0 * d->stride_w - d->pad_w + j * d->dil_w;
            zero_f(o, w0);
            if (d->stride_w == 1)
                copy_f(o + w0, xr + ix, w1 - w0);
            else
                for (int ow = w0; ow < w1; ow++, ix += d->stride_w)
                    o[ow] = xr[ix];
            zero_f(o + w1, wo - w1);
        }
        zero_f(row + (size_t)h1 * wo, (ho - h1) * wo);
    }
}

/* dx [cig, h_in, w_in] += col2im(dcol). */
static void col2im_add(const gemm_plan *p, const float *col, size_t ld, float *dx)
{
    const pl_conv2d_desc *d = &p->e;
    int wo = d->w_out;
    for (int r = 0; r < p->K; r++) {
        int j = r % d->kw, i = (r / d->kw) % d->kh, ci = r / (d->kw * d->kh);
        float *xc = dx + (size_t)ci * d->h_in * d->w_in;
        const float *row = col + (size_t)r * ld;
        int h0, h1, w0, w1;
        valid_range(d->h_in, d->h_out, d->stride_h, d->pad_h, i * d->dil_h, &h0, &h1);
        valid_range(d->w_in, wo, d->stride_w, d->pad_w, j * d->dil_w, &w0, &w1);
        for (int oh = h0; oh < h1; oh++) {
            const float *o = row + (size_t)oh * wo;
            float *xr = xc + (size_t)(oh * d->stride_h - d->pad_h + i * d->dil_h) * d->w_in;
            int ix = w0 * d->stride_w - d->pad_w + j * d->dil_w;
            if (d->stride_w == 1) {
#pragma omp simd
                for (int ow = w0; ow < w1; ow++)
                    xr[ix + ow - w0] += o[ow];
            } else {
                for (int ow = w0; ow < w1; ow++, ix += d->stride_w)
                    xr[ix] += o[ow];
            }
        }
    }
}

/* ---- depthwise: one input and one output channel per group, direct loops ---- */

/* y [h_out, w_out] = conv(x [h_in, w_in], w [kh, kw]) + bias, one plane. */
static void dw_fwd_plane(const pl_conv2d_desc *d, const float *x, const float *w, float bias, float *y)
{
    int wo = d->w_out;
    for (size_t q = 0; q < (size_t)d->h_out * wo; q++)
        y[q] = bias;
    for (int i = 0; i < d->kh; i++) {
        int h0, h1;
        valid_range(d->h_in, d->h_out, d->stride_h, d->pad_h, i * d->dil_h, &h0, &h1);
        for (int j = 0; j < d->kw; j++) {
            int w0, w1;
            float wv = w[i * d->kw + j];
            valid_range(d->w_in, wo, d->stride_w, d->pad_w, j * d->dil_w, &w0, &w1);
            for (int oh = h0; oh < h1; oh++) {
                float *o = y + (size_t)oh * wo;
                const float *xr = x + (size_t)(oh * d->stride_h - d->pad_h + i * d->dil_h) * d->w_in +
                                  (w0 * d->stride_w - d->pad_w + j * d->dil_w);
                if (d->stride_w == 1) {
#pragma omp simd
                    for (int ow = w0; ow < w1; ow++)
                        o[ow] += wv * xr[ow - w0];
                } else {
                    for (int ow = w0; ow < w1; ow++)
                        o[ow] += wv * xr[(size_t)(ow - w0) * d->stride_w];
                }
            }
        }
    }
}

/* dx [h_in, w_in] += conv^T(dy), one plane. */
static void dw_bwd_data_plane(const pl_conv2d_desc *d, const float *dy, const float *w, float *dx)
{
    int wo = d->w_out;
    for (int i = 0; i < d->kh; i++) {
        int h0, h1;
        valid_range(d->h_in, d->h_out, d->stride_h, d->pad_h, i * d->dil_h, &h0, &h1);
        for (int j = 0; j < d->kw; j++) {
            int w0, w1;
            float wv = w[i * d->kw + j];
            valid_range(d->w_in, wo, d->stride_w, d->pad_w, j * d->dil_w, &w0, &w1);
            for (int oh = h0; oh < h1; oh++) {
                const float *o = dy + (size_t)oh * wo;
                float *xr = dx + (size_t)(oh * d->stride_h - d->pad_h + i * d->dil_h) * d->w_in +
                            (w0 * d->stride_w - d->pad_w + j * d->dil_w);
                if (d->stride_w == 1) {
#pragma omp simd
                    for (int ow = w0; ow < w1; ow++)
                        xr[ow - w0] += wv * o[ow];
                } else {
                    for (int ow = w0; ow < w1; ow++)
                        xr[(size_t)(ow - w0) * d->stride_w] += wv * o[ow];
                }
            }
        }
    }
}

/* dw [kh, kw] += correlation of x and dy over one plane (float sums per tap). */
static void dw_bwd_wts_plane(const pl_conv2d_desc *d, const float *x, const float *dy, double *acc)
{
    int wo = d->w_out;
    for (int i = 0; i < d->kh; i++) {
        int h0, h1;
        valid_range(d->h_in, d->h_out, d->stride_h, d->pad_h, i * d->dil_h, &h0, &h1);
        for (int j = 0; j < d->kw; j++) {
            int w0, w1;
            valid_range(d->w_in, wo, d->stride_w, d->pad_w, j * d->dil_w, &w0, &w1);
            float s = 0;
            for (int oh = h0; oh < h1; oh++) {
                const float *o = dy + (size_t)oh * wo;
                const float *xr = x + (size_t)(oh * d->stride_h - d->pad_h + i * d->dil_h) * d->w_in +
                                  (w0 * d->stride_w - d->pad_w + j * d->dil_w);
                if (d->stride_w == 1) {
#pragma omp simd reduction(+ : s)
                    for (int ow = w0; ow < w1; ow++)
                        s += xr[ow - w0] * o[ow];
                } else {
                    for (int ow = w0; ow < w1; ow++)
                        s += xr[(size_t)(ow - w0) * d->stride_w] * o[ow];
                }
            }
            acc[i * d->kw + j] += s;
        }
    }
}

static void dw_fwd(const gemm_plan *p, const float *x, const float *w, const float *b, float *y)
{
    const pl_conv2d_desc *d = &p->d;
    int c = d->c_out;
    size_t in = (size_t)d->h_in * d->w_in, taps = (size_t)d->kh * d->kw;
#pragma omp parallel for schedule(static)
    for (int q = 0; q < d->n * c; q++)
        dw_fwd_plane(d, x + (size_t)q * in, w + (size_t)(q % c) * taps, b ? b[q % c] : 0.0f, y + (size_t)q * p->P);
}

static void dw_bwd(const gemm_plan *p, const float *x, const float *w, const float *dy, float *dx, float *dwt)
{
    const pl_conv2d_desc *d = &p->d;
    int c = d->c_out;
    size_t in = (size_t)d->h_in * d->w_in, taps = (size_t)d->kh * d->kw;
    if (dx) {
#pragma omp parallel for schedule(static)
        for (int q = 0; q < d->n * c; q++)
            dw_bwd_data_plane(d, dy + (size_t)q * p->P, w + (size_t)(q % c) * taps, dx + (size_t)q * in);
    }
    if (dwt) {
#pragma omp parallel for schedule(static)
        for (int ch = 0; ch < c; ch++) {
            double acc[DW_MAX_TAPS] = {0};
            for (int i = 0; i < d->n; i++) {
                size_t q = (size_t)i * c + (size_t)ch;
                dw_bwd_wts_plane(d, x + q * in, dy + q * p->P, acc);
            }
            for (size_t t = 0; t < taps; t++)
                dwt[(size_t)ch * taps + t] += (float)acc[t];
        }
    }
}

/* ---- GEMM path ---- */

/* Images in the block [b0, b0+nb), clipped to the batch. */
static int block_len(const gemm_plan *p, int b0, int nb) { return b0 + nb <= p->d.n ? nb : p->d.n - b0; }

/* Columns [b*P, (b+1)*P) of col [K, ld] from image b of the batch, group gi
 * (a pointwise convolution's columns are the input planes themselves). */
static void image_im2col(const gemm_plan *p, const float *x, int b, int gi, float *col, size_t ld)
{
    const float *xb = x + ((size_t)b * p->d.c_in + (size_t)gi * p->cig) * p->d.h_in * p->d.w_in;
    if (!p->pointwise) {
        im2col(p, xb, col, ld);
        return;
    }
    for (int ci = 0; ci < p->cig; ci++)
        copy_f(col + (size_t)ci * ld, xb + (size_t)ci * p->P, p->P);
}

/* col [K, nb*P] for group gi of the images [b0, b0+nb). */
static void block_im2col(const gemm_plan *p, const float *x, int b0, int nb, int gi, float *col)
{
    size_t ld = (size_t)nb * p->P;
    for (int b = 0; b < nb; b++)
        image_im2col(p, x, b0 + b, gi, col + (size_t)b * p->P, ld);
}

/* Forward of one block (all groups), buffers col/tmp. */
static void fwd_block(const gemm_plan *p, const float *x, const float *w, float *y, int b0, float *col, float *tmp)
{
    const pl_conv2d_desc *d = &p->d;
    int nb = block_len(p, b0, p->nb), P = p->P;
    size_t img_in = (size_t)d->c_in * d->h_in * d->w_in, img_out = (size_t)d->c_out * P;
    for (int gi = 0; gi < p->g; gi++) {
        const float *wg = w + (size_t)gi * p->cog * p->K;
        if (nb == 1) {
            float *yg = y + (size_t)b0 * img_out + (size_t)gi * p->cog * P;
            const float *src = col;
            if (p->pointwise)
                src = x + (size_t)b0 * img_in + (size_t)gi * p->cig * P;
            else
                block_im2col(p, x, b0, 1, gi, col);
            gemm_par(0, 0, p->cog, P, p->K, 1.0f, wg, p->K, src, P, 0.0f, yg, P);
            continue;
        }
        size_t ld = (size_t)nb * P;
        block_im2col(p, x, b0, nb, gi, col);
        gemm_par(0, 0, p->cog, (int)ld, p->K, 1.0f, wg, p->K, col, (int)ld, 0.0f, tmp, (int)ld);
        for (int b = 0; b < nb; b++)
            for (int o = 0; o < p->cog; o++)
                copy_f(y + (size_t)(b0 + b) * img_out + (size_t)(gi * p->cog + o) * P, tmp + (size_t)o * ld + (size_t)b * P,
                       P);
    }
}

/* dY [cog, nb*P] of group gi for the block (a view of dy when nb == 1). */
static const float *block_dy(const gemm_plan *p, const float *dy, int b0, int nb, int gi, float *tmp, size_t *ld)
{
    size_t P = (size_t)p->P, img_out = (size_t)p->d.c_out * P;
    if (nb == 1) {
        *ld = P;
        return dy + (size_t)b0 * img_out + (size_t)gi * p->cog * P;
    }
    *ld = (size_t)nb * P;
    for (int b = 0; b < nb; b++)
        for (int o = 0; o < p->cog; o++)
            copy_f(tmp + (size_t)o * *ld + (size_t)b * P, dy + (size_t)(b0 + b) * img_out + (size_t)(gi * p->cog + o) * P,
                   (int)P);
    return tmp;
}

/* Backward-data of one block: dx += col2im(W^T dY). */
static void bwd_data_block(const gemm_plan *p, const float *w, const float *dy, float *dx, int b0, float *col,
                           float *tmp)
{
    const pl_conv2d_desc *d = &p->d;
    int nb = block_len(p, b0, p->nb);
    size_t img_in = (size_t)d->c_in * d->h_in * d->w_in, ld;
    for (int gi = 0; gi < p->g; gi++) {
        const float *wg = w + (size_t)gi * p->cog * p->K;
        const float *dyg = block_dy(p, dy, b0, nb, gi, tmp, &ld);
        float *dxg = dx + (size_t)b0 * img_in + (size_t)gi * p->cig * d->h_in * d->w_in;
        if (nb == 1 && p->pointwise) {
            gemm_par(1, 0, p->K, p->P, p->cog, 1.0f, wg, p->K, dyg, (int)ld, 1.0f, dxg, p->P);
            continue;
        }
        gemm_par(1, 0, p->K, (int)ld, p->cog, 1.0f, wg, p->K, dyg, (int)ld, 0.0f, col, (int)ld);
        for (int b = 0; b < nb; b++)
            col2im_add(p, col + (size_t)b * p->P, ld, dxg + (size_t)b * img_in);
    }
}

/* Backward-weights of the block [b0, b0+nbw): dW += dY col^T (multi-threaded
 * GEMM; col and tmp are every thread's buffers together, nbw <= nb*nbuf). */
static void bwd_wts_block(const gemm_plan *p, const float *x, const float *dy, float *dw, int b0, int nbw,
                          float *col, float *tmp)
{
    int nb = block_len(p, b0, nbw);
    size_t img_in = (size_t)p->d.c_in * p->d.h_in * p->d.w_in, ld;
    for (int gi = 0; gi < p->g; gi++) {
        const float *dyg = block_dy(p, dy, b0, nb, gi, tmp, &ld);
        const float *src = col;
        if (nb == 1 && p->pointwise) {
            src = x + (size_t)b0 * img_in + (size_t)gi * p->cig * p->P;
        } else {
            int K = p->K;
            size_t lds = (size_t)nb * p->P;
            /* im2col of the block, images split over threads */
#pragma omp parallel for schedule(static) if (K * lds > 65536)
            for (int b = 0; b < nb; b++)
                image_im2col(p, x, b0 + b, gi, col + (size_t)b * p->P, lds);
        }
        gemm_par(0, 1, p->cog, p->K, (int)ld, 1.0f, dyg, (int)ld, src, (int)ld, 1.0f,
                       dw + (size_t)gi * p->cog * p->K, p->K);
    }
}

/* Threads that run blocks in parallel (0: run blocks in turn, GEMM threaded). */
static int block_threads(const gemm_plan *p, int nblocks)
{
    int t = omp_get_max_threads();
    t = t < p->nbuf ? t : p->nbuf;
    return t > 1 && nblocks >= t ? t : 0;
}

/* x [n,c_in,h_in,w_in], w [c_out,c_in/g,kh,kw], b [c_out] or NULL -> y [n,c_out,h_out,w_out] */
int pl_fast_conv2d_fwd(void *plan, const float *x, const float *w, const float *b, float *y)
{
    const gemm_plan *p = plan;
    const pl_conv2d_desc *d = &p->d;
    if (p->depthwise) {
        dw_fwd(p, x, w, d->has_bias ? b : NULL, y);
        return PL_OK;
    }
    if (p->crop) {
        crop_weights(p, w);
        w = p->wbuf;
    }
    int nblocks = (d->n + p->nb - 1) / p->nb, t = block_threads(p, nblocks);
    if (t) {
#pragma omp parallel for num_threads(t) schedule(static)
        for (int k = 0; k < nblocks; k++) {
            int me = omp_get_thread_num();
            fwd_block(p, x, w, y, k * p->nb, p->col + (size_t)me * p->col_n, p->tmp + (size_t)me * p->tmp_n);
        }
    } else {
        for (int k = 0; k < nblocks; k++)
            fwd_block(p, x, w, y, k * p->nb, p->col, p->tmp);
    }
    if (d->has_bias && b) {
        size_t P = (size_t)p->P;
#pragma omp parallel for schedule(static) if ((size_t)d->n * d->c_out * P > 32768)
        for (int q = 0; q < d->n * d->c_out; q++) {
            float bv = b[q % d->c_out], *o = y + (size_t)q * P;
#pragma omp simd
            for (size_t j = 0; j < P; j++)
                o[j] += bv;
        }
    }
    return PL_OK;
}

int pl_fast_conv2d_bwd(void *plan, const float *x, const float *w, const float *dy, float *dx, float *dw, float *db)
{
    const gemm_plan *p = plan;
    const pl_conv2d_desc *d = &p->d;
    if (p->depthwise) {
        dw_bwd(p, x, w, dy, dx, dw);
    } else {
        int nblocks = (d->n + p->nb - 1) / p->nb, t = block_threads(p, nblocks);
        if (dx && p->crop) {
            crop_weights(p, w);
            w = p->wbuf;
        }
        if (dx && t) {
#pragma omp parallel for num_threads(t) schedule(static)
            for (int k = 0; k < nblocks; k++) {
                int me = omp_get_thread_num();
                bwd_data_block(p, w, dy, dx, k * p->nb, p->col + (size_t)me * p->col_n, p->tmp + (size_t)me * p->tmp_n);
            }
        } else if (dx) {
            for (int k = 0; k < nblocks; k++)
                bwd_data_block(p, w, dy, dx, k * p->nb, p->col, p->tmp);
        }
        /* cropped: the gradient of the cropped kernel gathers in wbuf first */
        float *dwk = p->crop ? p->wbuf : dw;
        if (dw && p->crop)
            memset(dwk, 0, (size_t)d->c_out * p->K * sizeof(float));
        int nbw = p->nb * p->nbuf;
        for (int b0 = 0; dw && b0 < d->n; b0 += nbw)
            bwd_wts_block(p, x, dy, dwk, b0, nbw, p->col, p->tmp);
        if (dw && p->crop)
            uncrop_add(p, dw);
    }
    if (db)
        pl_fast_conv_bias_bwd(d, dy, db);
    return PL_OK;
}
