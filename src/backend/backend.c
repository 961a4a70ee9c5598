/* backend.c — backend registry, thread count, descriptor validation. */
#include "peerless/backend.h"

#include <omp.h>
#include <string.h>

static int g_threads = 0;

void pl_backend_set_threads(int n)
{
    g_threads = n > 0 ? n : omp_get_num_procs();
    omp_set_num_threads(g_threads);
}

int pl_backend_threads(void) { return g_threads > 0 ? g_threads : omp_get_num_procs(); }

const pl_backend *pl_backend_by_name(const char *name)
{
    if (!name)
        return NULL;
    if (strcmp(name, "ref") == 0)
        return pl_backend_ref();
    if (strcmp(name, "fast") == 0)
        return pl_backend_fast();
    return NULL;
}

int pl_conv2d_desc_init(pl_conv2d_desc *d, pl_err *err)
{
    if (d->dil_h == 0)
        d->dil_h = 1;
    if (d->dil_w == 0)
        d->dil_w = 1;
    if (d->groups == 0)
        d->groups = 1;
    if (d->n <= 0 || d->c_in <= 0 || d->h_in <= 0 || d->w_in <= 0 || d->c_out <= 0 || d->kh <= 0 ||
        d->kw <= 0 || d->stride_h <= 0 || d->stride_w <= 0 || d->pad_h < 0 || d->pad_w < 0 ||
        d->dil_h <= 0 || d->dil_w <= 0 || d->groups <= 0)
        return pl_err_set(err, PL_ERR_ARG, "conv2d: non-positive size, stride or dilation, or negative padding");
    if (d->c_in % d->groups || d->c_out % d->groups)
        return pl_err_set(err, PL_ERR_ARG, "conv2d: channels in=%d out=%d not divisible by groups=%d",
                          d->c_in, d->c_out, d->groups);
    int eh = d->dil_h * (d->kh - 1) + 1, ew = d->dil_w * (d->kw - 1) + 1;
    int ph = d->h_in + 2 * d->pad_h, pw = d->w_in + 2 * d->pad_w;
    if (ph < eh || pw < ew)
        return pl_err_set(err, PL_ERR_SHAPE, "conv2d: padded input %dx%d smaller than kernel %dx%d", ph, pw, eh, ew);
    d->h_out = (ph - eh) / d->stride_h + 1;
    d->w_out = (pw - ew) / d->stride_w + 1;
    return PL_OK;
}

/* Floor division (C's / truncates toward zero). */
static int div_floor(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* PyTorch's pooling_output_shape (dilation 1). */
static int pool_out(int in, int k, int s, int p, int ceil_mode)
{
    int out = div_floor(in + 2 * p - k + (ceil_mode ? s - 1 : 0), s) + 1;
    /* The last window must start inside the input or left padding. */
    if (ceil_mode && (out - 1) * s >= in + p)
        out--;
    return out;
}

int pl_pool_desc_init(pl_pool_desc *d, pl_err *err)
{
    if (d->stride_h == 0)
        d->stride_h = d->kh;
    if (d->stride_w == 0)
        d->stride_w = d->kw;
    if (d->n <= 0 || d->c <= 0 || d->h_in <= 0 || d->w_in <= 0 || d->kh <= 0 || d->kw <= 0 ||
        d->stride_h <= 0 || d->stride_w <= 0 || d->pad_h < 0 || d->pad_w < 0)
        return pl_err_set(err, PL_ERR_ARG, "pool: non-positive size or stride, or negative padding");
    if (2 * d->pad_h > d->kh || 2 * d->pad_w > d->kw)
        return pl_err_set(err, PL_ERR_ARG, "pool: padding %dx%d exceeds half the kernel %dx%d", d->pad_h,
                          d->pad_w, d->kh, d->kw);
    d->h_out = pool_out(d->h_in, d->kh, d->stride_h, d->pad_h, d->ceil_mode);
    d->w_out = pool_out(d->w_in, d->kw, d->stride_w, d->pad_w, d->ceil_mode);
    if (d->h_out < 1 || d->w_out < 1)
        return pl_err_set(err, PL_ERR_SHAPE, "pool: input %dx%d too small for kernel %dx%d (output %dx%d)", d->h_in,
                          d->w_in, d->kh, d->kw, d->h_out, d->w_out);
    return PL_OK;
}
