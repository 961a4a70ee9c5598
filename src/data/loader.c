/* loader.c — epoch iteration over an index list, assembling float batches. */
#include "peerless/data.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"

/* Streams of the loader's rngs (the split uses its own). */
#define SHUFFLE_STREAM_BASE 0x100000000ULL
#define AUGMENT_STREAM_BASE 0x200000000ULL

struct pl_loader {
    const pl_dataset *ds;   /* borrowed */
    uint32_t *idx;          /* owned copy of the index list [n] */
    uint32_t *order;        /* owned: this epoch's order [n] */
    size_t n, pos;
    int64_t epoch;
    pl_loader_config cfg;
    int c, h, w;            /* output shape */
    pl_resize_plan *resize; /* owned; NULL without resize */
    int nthreads;
    size_t stage;           /* floats per stage buffer */
    float *work;            /* owned: nthreads * 3 stage buffers */
};

static int loader_check(const pl_dataset *ds, const uint32_t *idx, size_t n,
                        const pl_loader_config *cfg, pl_err *err)
{
    const pl_transform *t = &cfg->tf;
    if (cfg->batch_size < 1 || n == 0)
        return pl_err_set(err, PL_ERR_ARG, "loader: batch size %d and index count %zu must be >= 1",
                          cfg->batch_size, n);
    for (size_t i = 0; i < n; i++)
        if (idx[i] >= ds->n)
            return pl_err_set(err, PL_ERR_ARG, "loader: index %u at position %zu is outside "
                              "dataset %s of %lld images", idx[i], i, ds->name, (long long)ds->n);
    if (t->gray_to_rgb && ds->c != 1)
        return pl_err_set(err, PL_ERR_ARG, "loader: gray->3ch needs 1-channel images, %s has %d",
                          ds->name, ds->c);
    if ((t->resize_h > 0) != (t->resize_w > 0) || t->resize_h < 0 || t->resize_w < 0)
        return pl_err_set(err, PL_ERR_ARG, "loader: resize %dx%d must give both sizes or neither",
                          t->resize_h, t->resize_w);
    if (t->augment && (t->crop_pad < 0 || t->crop_pad > 1024))
        return pl_err_set(err, PL_ERR_ARG, "loader: crop padding %d not in [0, 1024]",
                          t->crop_pad);
    int c_out = t->gray_to_rgb ? 3 : ds->c;
    if (t->normalize && c_out > 3)
        return pl_err_set(err, PL_ERR_ARG, "loader: normalize supports up to 3 channels, got %d",
                          c_out);
    for (int ch = 0; t->normalize && ch < c_out; ch++)
        if (!(t->std[ch] > 0.0f))
            return pl_err_set(err, PL_ERR_ARG, "loader: normalize std[%d] = %g must be > 0", ch,
                              (double)t->std[ch]);
    return PL_OK;
}

static int loader_buffers(pl_loader *l, pl_err *err)
{
    const pl_transform *t = &l->cfg.tf;
    if (t->resize_h > 0) {
        int rc = pl_resize_plan_create(l->ds->h, l->ds->w, l->h, l->w, t->antialias, &l->resize,
                                       err);
        if (rc != PL_OK)
            return rc;
    }
    int hmax = l->h > l->ds->h ? l->h : l->ds->h, wmax = l->w > l->ds->w ? l->w : l->ds->w;
    l->stage = (size_t)l->c * (size_t)hmax * (size_t)wmax;
    l->nthreads = omp_get_max_threads();
    l->work = malloc((size_t)l->nthreads * 3 * l->stage * sizeof *l->work);
    l->idx = malloc(l->n * sizeof *l->idx);
    l->order = malloc(l->n * sizeof *l->order);
    if (!l->work || !l->idx || !l->order)
        return pl_err_set(err, PL_ERR_NOMEM, "loader: cannot allocate %d x 3 x %zu float buffers",
                          l->nthreads, l->stage);
    return PL_OK;
}

int pl_loader_create(const pl_dataset *ds, const uint32_t *idx, size_t n,
                     const pl_loader_config *cfg, pl_loader **out, pl_err *err)
{
    *out = NULL;
    int rc = loader_check(ds, idx, n, cfg, err);
    if (rc != PL_OK)
        return rc;
    pl_loader *l = calloc(1, sizeof *l);
    if (!l)
        return pl_err_set(err, PL_ERR_NOMEM, "loader: out of memory");
    l->ds = ds;
    l->n = n;
    l->cfg = *cfg;
    l->c = cfg->tf.gray_to_rgb ? 3 : ds->c;
    l->h = cfg->tf.resize_h > 0 ? cfg->tf.resize_h : ds->h;
    l->w = cfg->tf.resize_w > 0 ? cfg->tf.resize_w : ds->w;
    rc = loader_buffers(l, err);
    if (rc != PL_OK) {
        pl_loader_destroy(l);
        return rc;
    }
    memcpy(l->idx, idx, n * sizeof *idx);
    pl_loader_set_epoch(l, 0);
    *out = l;
    return PL_OK;
}

void pl_loader_destroy(pl_loader *l)
{
    if (!l)
        return;
    pl_resize_plan_destroy(l->resize);
    free(l->work);
    free(l->idx);
    free(l->order);
    free(l);
}

void pl_loader_out_shape(const pl_loader *l, int *c, int *h, int *w)
{
    *c = l->c;
    *h = l->h;
    *w = l->w;
}

size_t pl_loader_num_batches(const pl_loader *l)
{
    size_t b = (size_t)l->cfg.batch_size;
    return l->cfg.drop_last ? l->n / b : (l->n + b - 1) / b;
}

void pl_loader_set_epoch(pl_loader *l, int64_t epoch)
{
    l->epoch = epoch;
    l->pos = 0;
    memcpy(l->order, l->idx, l->n * sizeof *l->idx);
    if (l->cfg.shuffle) {
        pl_rng r;
        pl_rng_seed(&r, l->cfg.seed, SHUFFLE_STREAM_BASE + (uint64_t)epoch);
        pl_rng_shuffle_u32(&r, l->order, (uint32_t)l->n);
    }
}

static void swap(float **a, float **b)
{
    float *t = *a;
    *a = *b;
    *b = t;
}

/* The transform pipeline for one image into dst [c, h, w]; `work` holds 3
 * stage buffers. `pos` is the position in the epoch (seeds augmentation, so
 * the result does not depend on which thread runs it). */
static void load_one(const pl_loader *l, uint32_t item, size_t pos, float *work, float *dst)
{
    const pl_dataset *ds = l->ds;
    const pl_transform *t = &l->cfg.tf;
    size_t in_px = (size_t)ds->c * ds->h * ds->w;
    float *cur = work, *next = work + l->stage, *tmp = work + 2 * l->stage;
    pl_tf_to_float(ds->images + (size_t)item * in_px, in_px, cur);
    /* Resize works plane by plane, so resizing before the gray->3ch repeat
     * gives the same floats at a third of the cost. */
    if (l->resize) {
        pl_resize_apply(l->resize, cur, ds->c, next, tmp);
        swap(&cur, &next);
    }
    if (t->gray_to_rgb) {
        pl_tf_gray_to_rgb(cur, 1, l->h * l->w, next);
        swap(&cur, &next);
    }
    if (t->augment) {
        pl_rng r;
        pl_rng_seed(&r, l->cfg.seed ^ ((uint64_t)l->epoch * 0x9E3779B97F4A7C15ULL),
                    AUGMENT_STREAM_BASE + pos);
        pl_tf_augment(cur, l->c, l->h, l->w, t->crop_pad, &r, next);
        swap(&cur, &next);
    }
    memcpy(dst, cur, (size_t)l->c * l->h * l->w * sizeof *dst);
    if (t->normalize)
        pl_tf_normalize(dst, 1, l->c, l->h * l->w, t->mean, t->std);
}

int pl_loader_next(pl_loader *l, float *x, int32_t *y32, int64_t *y64, int *count)
{
    size_t left = l->n - l->pos, bs = (size_t)l->cfg.batch_size;
    size_t nb = left < bs ? left : bs;
    if (nb == 0 || (nb < bs && l->cfg.drop_last)) {
        *count = 0;
        return PL_OK;
    }
    size_t out_px = (size_t)l->c * l->h * l->w;
    const uint32_t *items = l->order + l->pos;
#pragma omp parallel for num_threads(l->nthreads) schedule(static)
    for (long i = 0; i < (long)nb; i++) {
        float *work = l->work + (size_t)omp_get_thread_num() * 3 * l->stage;
        load_one(l, items[i], l->pos + (size_t)i, work, x + (size_t)i * out_px);
    }
    for (size_t i = 0; i < nb; i++) {
        int label = l->ds->labels[items[i]];
        if (y32)
            y32[i] = label;
        if (y64)
            y64[i] = label;
    }
    l->pos += nb;
    *count = (int)nb;
    return PL_OK;
}
