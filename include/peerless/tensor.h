/* tensor.h — float32 tensors (NCHW) and flat vectors with named views.
 *
 * A pl_tensor is a borrowed view: it never owns `data`. Parameters, gradients
 * and buffers of a model each live in ONE contiguous float vector (pl_flat);
 * every named tensor ("features.0.weight") is a view at an offset into it.
 * This flat vector is the unit that peers compress, exchange and average and
 * that functions return.
 */
#ifndef PEERLESS_TENSOR_H
#define PEERLESS_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "peerless/status.h"

#define PL_MAX_DIMS 4

typedef struct pl_shape {
    int ndim;
    int64_t dim[PL_MAX_DIMS];
} pl_shape;

/* Borrowed float32 tensor, row-major (NCHW for 4-D). */
typedef struct pl_tensor {
    float *data;
    pl_shape shape;
} pl_tensor;

pl_shape pl_shape_make(int ndim, const int64_t *dims);
pl_shape pl_shape4(int64_t n, int64_t c, int64_t h, int64_t w);
pl_shape pl_shape2(int64_t n, int64_t c);
pl_shape pl_shape1(int64_t n);
int64_t pl_shape_numel(const pl_shape *s);
int pl_shape_eq(const pl_shape *a, const pl_shape *b);
/* "[64, 3, 32, 32]" into buf; returns buf. */
char *pl_shape_str(const pl_shape *s, char *buf, size_t len);

/* Kind of element a view holds. Every view stores floats in the flat vector;
 * the kind says how it is exported (num_batches_tracked is int64 in PyTorch). */
typedef enum pl_view_kind { PL_VIEW_F32 = 0, PL_VIEW_I64 = 1 } pl_view_kind;

typedef struct pl_view {
    char *name;       /* owned */
    size_t offset;    /* in floats, into pl_flat.data */
    pl_shape shape;
    pl_view_kind kind;
} pl_view;

/* A flat float vector with named views. Create empty, add views, then
 * pl_flat_alloc() allocates `data` (64-byte aligned, zeroed). */
typedef struct pl_flat {
    float *data;      /* owned; NULL until pl_flat_alloc */
    size_t count;     /* total floats */
    pl_view *views;   /* owned */
    int nviews;
    int cap;
} pl_flat;

void pl_flat_init(pl_flat *f);
void pl_flat_free(pl_flat *f);
/* Append a view of `shape`; returns its index (>=0) or a negative status. */
int pl_flat_add(pl_flat *f, const char *name, pl_shape shape, pl_view_kind kind, pl_err *err);
int pl_flat_alloc(pl_flat *f, pl_err *err);
/* Index of the view called `name`, or -1. */
int pl_flat_find(const pl_flat *f, const char *name);
/* Pointer to the floats of view i (valid after alloc). */
float *pl_flat_ptr(const pl_flat *f, int i);
void pl_flat_zero(pl_flat *f);
/* FNV-1a 64-bit checksum of the raw bytes of data: identical vectors give
 * identical checksums (used to prove peers hold the same model). */
uint64_t pl_flat_checksum(const pl_flat *f);
/* Continue an FNV-1a 64-bit hash `h` over n bytes (start with
 * PL_FNV_OFFSET); pl_flat_checksum(f) == pl_hash_bytes(PL_FNV_OFFSET, f->data, bytes). */
#define PL_FNV_OFFSET 1469598103934665603ULL
uint64_t pl_hash_bytes(uint64_t h, const void *data, size_t n);

/* 64-byte aligned allocation for tensors; NULL on failure. Free with pl_free. */
void *pl_alloc(size_t bytes);
void *pl_calloc(size_t bytes);
void pl_free(void *p);

#endif
