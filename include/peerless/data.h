/* data.h — datasets, transforms, splits and the batch loader.
 *
 * A dataset is held in memory as uint8 images [n, c, h, w] plus uint8 labels
 * [n] (CIFAR-10 train stays 150 MB). Everything random (shuffle, split,
 * augmentation) is drawn from pl_rng with an explicit seed, so a run is
 * reproducible from its seed. Batches come out as float32 NCHW after the
 * configured transform pipeline:
 *
 *   uint8/255 -> [gray->3ch] -> [bilinear resize] -> [crop+flip] -> [normalize]
 */
#ifndef PEERLESS_DATA_H
#define PEERLESS_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "peerless/rng.h"
#include "peerless/status.h"

/* ---- datasets ---- */

typedef struct pl_dataset pl_dataset;

typedef enum pl_split { PL_SPLIT_TRAIN = 0, PL_SPLIT_TEST = 1 } pl_split;

typedef struct pl_dataset_info {
    const char *name;   /* borrowed; lives as long as the dataset */
    int64_t n;          /* number of images */
    int c, h, w;        /* image shape */
    int num_classes;    /* labels are in [0, num_classes) */
} pl_dataset_info;

/* Load a named dataset into memory. `name`: "fashion-mnist", "mnist",
 * "cifar10" or "synthetic". `dir` may be NULL for the default location
 * (/usr/share/datasets/<name>); IDX files may be gzipped or raw; cifar10
 * accepts DIR or DIR/cifar-10-batches-bin. "synthetic" ignores `dir` and uses
 * pl_synth_config_default(). On success *out is a new dataset owned by the
 * caller (pl_dataset_destroy). A missing dataset gives PL_ERR_NOTFOUND with a
 * message saying what was looked for where and how to get it. */
int pl_dataset_load(const char *name, const char *dir, pl_split split, pl_dataset **out,
                    pl_err *err);

/* A deterministic, learnable problem: each class is a smooth sinusoidal
 * pattern (class-dependent frequency, orientation and phase) plus Gaussian
 * noise. Class patterns depend on `seed` only; samples on (seed, split), so
 * train and test share the classes but not the images. */
typedef struct pl_synth_config {
    int64_t n;
    int c, h, w;
    int num_classes;    /* 2..256 */
    uint64_t seed;
    float noise;        /* noise std in [0,1] pixel units */
    pl_split split;
} pl_synth_config;

/* Defaults: n=2048 (train) / 512 (test), 1x28x28, 10 classes, seed 1, noise 0.2. */
void pl_synth_config_default(pl_synth_config *cfg, pl_split split);
int pl_dataset_synthetic(const pl_synth_config *cfg, pl_dataset **out, pl_err *err);

/* A dataset from caller arrays, which are COPIED (images [n,c,h,w], labels
 * [n], each label < num_classes <= 256). */
int pl_dataset_from_arrays(const char *name, int64_t n, int c, int h, int w, int num_classes,
                           const uint8_t *images, const uint8_t *labels, pl_dataset **out,
                           pl_err *err);

/* NULL is a no-op. */
void pl_dataset_destroy(pl_dataset *ds);

pl_dataset_info pl_dataset_get_info(const pl_dataset *ds);
/* Borrowed views, valid until pl_dataset_destroy: images [n,c,h,w], labels [n]. */
const uint8_t *pl_dataset_images(const pl_dataset *ds);
const uint8_t *pl_dataset_labels(const pl_dataset *ds);

/* ---- transforms (float32 kernels; also usable on their own) ---- */

typedef struct pl_transform {
    int gray_to_rgb;            /* repeat a 1-channel image to 3 channels */
    int resize_h, resize_w;     /* 0, 0: keep the size */
    int antialias;              /* resize: 0 = torchvision 0.14 tensor default */
    int augment;                /* random crop (zero pad crop_pad) + h-flip p=0.5 */
    int crop_pad;
    int normalize;              /* (x - mean[c]) / std[c] */
    float mean[3], std[3];
} pl_transform;

/* Defaults for a dataset name: normalize with its mean/std (fashion-mnist
 * 0.2860/0.3530, mnist 0.1307/0.3081, cifar10 (0.4914,0.4822,0.4465)/
 * (0.2470,0.2435,0.2616), synthetic 0.5/0.5), no resize, no gray->3ch, and
 * augmentation (pad 4) only for cifar10 with split TRAIN. A 1-channel mean/std
 * is repeated in all three slots so gray->3ch normalizes every channel.
 * PL_ERR_ARG for an unknown name. */
int pl_transform_defaults(pl_transform *t, const char *dataset, pl_split split, pl_err *err);

/* dst[i] = src[i] / 255 over n values. */
void pl_tf_to_float(const uint8_t *src, size_t n, float *dst);
/* In place: x [n, c, hw]; x = (x - mean[c]) / std[c] (torchvision Normalize). */
void pl_tf_normalize(float *x, int n, int c, int hw, const float *mean, const float *std);
/* x [n, 1, hw] -> y [n, 3, hw]: the plane repeated. */
void pl_tf_gray_to_rgb(const float *x, int n, int hw, float *y);

/* Bilinear resize with precomputed per-axis taps, created once per shape.
 * antialias=0 equals F.interpolate(bilinear, align_corners=False) (what
 * torchvision 0.14 resize() does on tensors by default); antialias=1 equals
 * its antialias=True path (a triangle filter widened by the scale when
 * downsampling). */
typedef struct pl_resize_plan pl_resize_plan;
int pl_resize_plan_create(int in_h, int in_w, int out_h, int out_w, int antialias,
                          pl_resize_plan **out, pl_err *err);
void pl_resize_plan_destroy(pl_resize_plan *p);
/* Floats of scratch pl_resize_apply needs per plane (in_h * out_w). */
size_t pl_resize_scratch(const pl_resize_plan *p);
/* x [planes, in_h, in_w] -> y [planes, out_h, out_w]; scratch holds
 * planes * pl_resize_scratch(p) floats. Thread-safe for distinct buffers. */
void pl_resize_apply(const pl_resize_plan *p, const float *x, int planes, float *y,
                     float *scratch);
/* One-shot convenience: plan + scratch + apply. */
int pl_tf_resize(const float *x, int planes, int in_h, int in_w, float *y, int out_h, int out_w,
                 int antialias, pl_err *err);

/* x [c, h, w] -> y [c, h, w]: crop an h x w window at (top, left) of x padded
 * with `pad` zeros on every side (0 <= top, left <= 2*pad), then mirror
 * left-right if flip. */
void pl_tf_crop_flip(const float *x, int c, int h, int w, int pad, int top, int left, int flip,
                     float *y);
/* RandomCrop((h, w), padding=pad) then RandomHorizontalFlip(0.5): draws top,
 * then left, uniform in [0, 2*pad], then flip = uniform < 0.5. */
void pl_tf_augment(const float *x, int c, int h, int w, int pad, pl_rng *r, float *y);

/* ---- shuffle, split, partition ---- */

/* idx[0..n) = a permutation of 0..n-1 drawn from seed (n < 2^32). */
int pl_data_permutation(uint32_t *idx, size_t n, uint64_t seed, pl_err *err);
/* Sizes of random_split(n, [1 - val_frac, val_frac]) in PyTorch 1.13:
 * n_val = floor(val_frac * n), n_train = n - n_val (the remainder goes to
 * train). val_frac in [0, 1). */
int pl_data_split_sizes(size_t n, double val_frac, size_t *n_train, size_t *n_val, pl_err *err);
/* Fill idx[0..n) with a seeded permutation; train is idx[0..*n_train),
 * validation is idx[*n_train..n). */
int pl_data_split(uint32_t *idx, size_t n, double val_frac, uint64_t seed, size_t *n_train,
                  size_t *n_val, pl_err *err);
/* Equal shard of a list of n indices for peer `rank` of `size`: every shard
 * has n / size entries (the n % size at the end are dropped so all peers run
 * the same number of steps); shard r is [r * count, (r + 1) * count). */
int pl_data_partition(size_t n, int rank, int size, size_t *offset, size_t *count, pl_err *err);

/* ---- batch loader ---- */

typedef struct pl_loader pl_loader;

typedef struct pl_loader_config {
    int batch_size;
    int shuffle;        /* reshuffle the index list each epoch from (seed, epoch) */
    int drop_last;      /* skip a final partial batch */
    uint64_t seed;      /* also seeds augmentation, per (epoch, position) */
    pl_transform tf;
} pl_loader_config;

/* A loader over dataset images idx[0..n). `ds` is borrowed and must outlive
 * the loader; `idx` is copied. The loader starts at epoch 0. */
int pl_loader_create(const pl_dataset *ds, const uint32_t *idx, size_t n,
                     const pl_loader_config *cfg, pl_loader **out, pl_err *err);
/* NULL is a no-op. */
void pl_loader_destroy(pl_loader *l);
/* Output image shape after the transforms. */
void pl_loader_out_shape(const pl_loader *l, int *c, int *h, int *w);
/* Batches per epoch (counting a partial last batch unless drop_last). */
size_t pl_loader_num_batches(const pl_loader *l);
/* Rewind to the start of `epoch` (>= 0); its order is a function of (seed, epoch). */
void pl_loader_set_epoch(pl_loader *l, int64_t epoch);
/* Fill the next batch: x [batch_size, c, h, w] (out shape), targets y32
 * and/or y64 [batch_size] (either may be NULL). *count gets the number of
 * images written (< batch_size for a partial last batch); 0 means the epoch
 * is over (call pl_loader_set_epoch for the next). */
int pl_loader_next(pl_loader *l, float *x, int32_t *y32, int64_t *y64, int *count);

#endif
