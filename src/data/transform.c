/* transform.c — float image transforms: scaling, normalize, gray->3ch,
 * bilinear resize (torchvision 0.14 semantics), random crop + flip. */
#include "peerless/data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void pl_tf_to_float(const uint8_t *src, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)src[i] / 255.0f;
}

void pl_tf_normalize(float *x, int n, int c, int hw, const float *mean, const float *std)
{
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++) {
            float *p = x + ((size_t)i * c + ch) * hw;
            /* Subtract then divide, as torchvision does, not multiply by 1/std. */
            for (int k = 0; k < hw; k++)
                p[k] = (p[k] - mean[ch]) / std[ch];
        }
}

void pl_tf_gray_to_rgb(const float *x, int n, int hw, float *y)
{
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < 3; ch++)
            memcpy(y + ((size_t)i * 3 + ch) * hw, x + (size_t)i * hw, (size_t)hw * sizeof *y);
}

/* ---- resize ---- */

/* Taps of one axis: output o reads in[idx[o*taps + t]] * w[o*taps + t]. */
typedef struct axis_taps {
    int taps;
    int *idx;     /* [out, taps] */
    float *w;     /* [out, taps] */
} axis_taps;

struct pl_resize_plan {
    int in_h, in_w, out_h, out_w;
    axis_taps ay, ax;
};

/* PyTorch's upsample_bilinear2d (align_corners=False, size given): the
 * source coordinate (o + 0.5) * in/out - 0.5, clamped at 0, split between
 * its floor and the next pixel (the same pixel at the border). */
static void taps_linear(int in, int out, axis_taps *a)
{
    /* The scale is a float, as in PyTorch; the source coordinate and its
     * fraction are then carried in double, which is what reproduces
     * PyTorch's weights to the last bit. */
    float scale = (float)in / (float)out;
    for (int o = 0; o < out; o++) {
        double src = (double)scale * ((double)o + 0.5) - 0.5;
        if (src < 0.0)
            src = 0.0;
        int i0 = (int)floor(src);
        float l1 = (float)(src - (double)i0);
        l1 = l1 < 0.0f ? 0.0f : l1 > 1.0f ? 1.0f : l1;
        if (i0 > in - 1)
            i0 = in - 1;
        a->idx[2 * o] = i0;
        a->idx[2 * o + 1] = i0 + (i0 < in - 1 ? 1 : 0);
        a->w[2 * o] = 1.0f - l1;
        a->w[2 * o + 1] = l1;
    }
}

static float triangle(float x)
{
    x = fabsf(x);
    return x < 1.0f ? 1.0f - x : 0.0f;
}

/* PyTorch's _upsample_bilinear2d_aa weights: a triangle filter whose support
 * grows with the scale when downsampling, normalised to sum 1. Unused taps
 * get weight 0 at a valid index. */
static void taps_aa(int in, int out, axis_taps *a)
{
    float scale = (float)in / (float)out;
    float support = scale >= 1.0f ? scale : 1.0f;
    float invscale = scale >= 1.0f ? 1.0f / scale : 1.0f;
    for (int o = 0; o < out; o++) {
        float center = scale * ((float)o + 0.5f);
        int xmin = (int)(center - support + 0.5f);
        if (xmin < 0)
            xmin = 0;
        int xmax = (int)(center + support + 0.5f);
        if (xmax > in)
            xmax = in;
        int size = xmax - xmin;
        float total = 0.0f;
        int *idx = a->idx + (size_t)o * a->taps;
        float *w = a->w + (size_t)o * a->taps;
        for (int t = 0; t < a->taps; t++) {
            idx[t] = t < size ? xmin + t : xmin;
            w[t] = t < size ? triangle(((float)(t + xmin) - center + 0.5f) * invscale) : 0.0f;
            total += w[t];
        }
        for (int t = 0; t < size && total != 0.0f; t++)
            w[t] /= total;
    }
}

static int taps_init(axis_taps *a, int in, int out, int antialias)
{
    if (antialias) {
        float scale = (float)in / (float)out;
        float support = scale >= 1.0f ? scale : 1.0f;
        a->taps = (int)ceilf(support) * 2 + 1;
    } else {
        a->taps = 2;
    }
    a->idx = malloc((size_t)out * (size_t)a->taps * sizeof *a->idx);
    a->w = malloc((size_t)out * (size_t)a->taps * sizeof *a->w);
    if (!a->idx || !a->w)
        return PL_ERR_NOMEM;
    if (antialias)
        taps_aa(in, out, a);
    else
        taps_linear(in, out, a);
    return PL_OK;
}

int pl_resize_plan_create(int in_h, int in_w, int out_h, int out_w, int antialias,
                          pl_resize_plan **out, pl_err *err)
{
    *out = NULL;
    if (in_h <= 0 || in_w <= 0 || out_h <= 0 || out_w <= 0 || in_h > 65535 || in_w > 65535 ||
        out_h > 65535 || out_w > 65535)
        return pl_err_set(err, PL_ERR_ARG, "resize %dx%d -> %dx%d: sizes must be in 1..65535",
                          in_h, in_w, out_h, out_w);
    pl_resize_plan *p = calloc(1, sizeof *p);
    if (!p)
        return pl_err_set(err, PL_ERR_NOMEM, "resize plan: out of memory");
    p->in_h = in_h;
    p->in_w = in_w;
    p->out_h = out_h;
    p->out_w = out_w;
    if (taps_init(&p->ay, in_h, out_h, antialias) != PL_OK ||
        taps_init(&p->ax, in_w, out_w, antialias) != PL_OK) {
        pl_resize_plan_destroy(p);
        return pl_err_set(err, PL_ERR_NOMEM, "resize plan %dx%d -> %dx%d: out of memory", in_h,
                          in_w, out_h, out_w);
    }
    *out = p;
    return PL_OK;
}

void pl_resize_plan_destroy(pl_resize_plan *p)
{
    if (!p)
        return;
    free(p->ay.idx);
    free(p->ay.w);
    free(p->ax.idx);
    free(p->ax.w);
    free(p);
}

size_t pl_resize_scratch(const pl_resize_plan *p) { return (size_t)p->in_h * (size_t)p->out_w; }

/* One plane: x [in_h, in_w] -> tmp [in_h, out_w] (horizontal) -> y [out_h, out_w]. */
static void resize_plane(const pl_resize_plan *p, const float *x, float *y, float *tmp)
{
    const axis_taps *ax = &p->ax, *ay = &p->ay;
    for (int r = 0; r < p->in_h; r++) {
        const float *row = x + (size_t)r * p->in_w;
        for (int o = 0; o < p->out_w; o++) {
            const int *idx = ax->idx + (size_t)o * ax->taps;
            const float *w = ax->w + (size_t)o * ax->taps;
            float s = w[0] * row[idx[0]];
            for (int t = 1; t < ax->taps; t++)
                s += w[t] * row[idx[t]];
            tmp[(size_t)r * p->out_w + o] = s;
        }
    }
    for (int o = 0; o < p->out_h; o++) {
        const int *idx = ay->idx + (size_t)o * ay->taps;
        const float *w = ay->w + (size_t)o * ay->taps;
        float *dst = y + (size_t)o * p->out_w;
        const float *src0 = tmp + (size_t)idx[0] * p->out_w;
        for (int c = 0; c < p->out_w; c++)
            dst[c] = w[0] * src0[c];
        for (int t = 1; t < ay->taps; t++) {
            const float *src = tmp + (size_t)idx[t] * p->out_w;
            for (int c = 0; c < p->out_w; c++)
                dst[c] += w[t] * src[c];
        }
    }
}

void pl_resize_apply(const pl_resize_plan *p, const float *x, int planes, float *y,
                     float *scratch)
{
    size_t in_plane = (size_t)p->in_h * p->in_w, out_plane = (size_t)p->out_h * p->out_w;
    for (int i = 0; i < planes; i++)
        resize_plane(p, x + i * in_plane, y + i * out_plane, scratch + i * pl_resize_scratch(p));
}

int pl_tf_resize(const float *x, int planes, int in_h, int in_w, float *y, int out_h, int out_w,
                 int antialias, pl_err *err)
{
    pl_resize_plan *p;
    int rc = pl_resize_plan_create(in_h, in_w, out_h, out_w, antialias, &p, err);
    if (rc != PL_OK)
        return rc;
    float *scratch = malloc(pl_resize_scratch(p) * sizeof *scratch);
    if (!scratch) {
        pl_resize_plan_destroy(p);
        return pl_err_set(err, PL_ERR_NOMEM, "resize: cannot allocate scratch");
    }
    /* One plane at a time so the scratch is one plane. */
    size_t in_plane = (size_t)in_h * in_w, out_plane = (size_t)out_h * out_w;
    for (int i = 0; i < planes; i++)
        pl_resize_apply(p, x + i * in_plane, 1, y + i * out_plane, scratch);
    free(scratch);
    pl_resize_plan_destroy(p);
    return PL_OK;
}

/* ---- augmentation ---- */

void pl_tf_crop_flip(const float *x, int c, int h, int w, int pad, int top, int left, int flip,
                     float *y)
{
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < h; i++) {
            int r = top + i - pad; /* row in x */
            float *dst = y + ((size_t)ch * h + i) * w;
            const float *src = x + ((size_t)ch * h + (r < 0 ? 0 : r >= h ? h - 1 : r)) * w;
            for (int j = 0; j < w; j++) {
                int col = left + (flip ? w - 1 - j : j) - pad;
                dst[j] = (r >= 0 && r < h && col >= 0 && col < w) ? src[col] : 0.0f;
            }
        }
}

void pl_tf_augment(const float *x, int c, int h, int w, int pad, pl_rng *r, float *y)
{
    int top = (int)pl_rng_below(r, (uint32_t)(2 * pad + 1));
    int left = (int)pl_rng_below(r, (uint32_t)(2 * pad + 1));
    int flip = pl_rng_uniform(r) < 0.5f;
    pl_tf_crop_flip(x, c, h, w, pad, top, left, flip, y);
}

/* ---- per-dataset defaults ---- */

static const struct {
    const char *name;
    int channels;
    float mean[3], std[3];
    int augment_train;
} tf_defaults[] = {
    {"fashion-mnist", 1, {0.2860f}, {0.3530f}, 0},
    {"mnist", 1, {0.1307f}, {0.3081f}, 0},
    {"cifar10", 3, {0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}, 1},
    {"synthetic", 1, {0.5f}, {0.5f}, 0},
};

int pl_transform_defaults(pl_transform *t, const char *dataset, pl_split split, pl_err *err)
{
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < sizeof tf_defaults / sizeof tf_defaults[0]; i++) {
        if (strcmp(dataset, tf_defaults[i].name) != 0)
            continue;
        for (int ch = 0; ch < 3; ch++) {
            int from = tf_defaults[i].channels == 1 ? 0 : ch;
            t->mean[ch] = tf_defaults[i].mean[from];
            t->std[ch] = tf_defaults[i].std[from];
        }
        t->normalize = 1;
        t->crop_pad = 4;
        t->augment = tf_defaults[i].augment_train && split == PL_SPLIT_TRAIN;
        return PL_OK;
    }
    return pl_err_set(err, PL_ERR_ARG,
                      "no transform defaults for dataset '%s' (expected fashion-mnist, mnist, "
                      "cifar10 or synthetic)",
                      dataset);
}
