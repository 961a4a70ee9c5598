/* safetensors.h — read and write the safetensors tensor file format.
 *
 * Layout: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON
 *   {"__metadata__": {"key": "value", ...},
 *    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
 * then the data buffer; offsets are relative to the start of that buffer.
 * Supported dtypes: F32, F16, BF16, I64, I32, U8 (others are rejected with a
 * message naming the tensor and dtype). Functions are prefixed pl_st_.
 *
 * The reader validates everything before returning a handle: a header longer
 * than the file or than PL_ST_MAX_HEADER, invalid UTF-8/JSON, missing or
 * wrongly typed fields, non-integer or negative dims, begin > end, data past
 * the end of the buffer, (end - begin) != numel * dtype size, overlapping
 * tensors, duplicate names, non-string metadata. Gaps between tensors and
 * trailing bytes after the last tensor are accepted (they are never read).
 * Integers are JSON numbers; like every JSON reader built on doubles, cJSON
 * cannot tell 3 from 3.0, so "3.0" is accepted as 3; values above 2^53 are
 * rejected.
 *
 * All data is little-endian; this module requires a little-endian host.
 */
#ifndef PEERLESS_SAFETENSORS_H
#define PEERLESS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "peerless/status.h"
#include "peerless/tensor.h"

#define PL_ST_MAX_DIMS 8
#define PL_ST_MAX_HEADER ((uint64_t)100 * 1024 * 1024)

typedef enum pl_st_dtype {
    PL_ST_F32 = 0,
    PL_ST_F16 = 1,
    PL_ST_BF16 = 2,
    PL_ST_I64 = 3,
    PL_ST_I32 = 4,
    PL_ST_U8 = 5,
    PL_ST_NDTYPES = 6
} pl_st_dtype;

/* "F32", "BF16", ...; "?" for an invalid value. Never NULL. */
const char *pl_st_dtype_name(pl_st_dtype dt);
/* Bytes per element (4, 2, 2, 8, 4, 1); 0 for an invalid value. */
size_t pl_st_dtype_size(pl_st_dtype dt);

/* One tensor of an open file. Every pointer is borrowed from the reader and
 * lives until pl_st_close. `data` is NOT aligned in general: copy with memcpy
 * or use pl_st_tensor_to_f32. */
typedef struct pl_st_tensor {
    const char *name;
    pl_st_dtype dtype;
    int ndim;                      /* 0 for a scalar */
    int64_t shape[PL_ST_MAX_DIMS];
    const void *data;              /* nbytes bytes, little-endian */
    size_t nbytes;                 /* numel * dtype size */
    int64_t numel;                 /* product of shape (1 for a scalar) */
} pl_st_tensor;

typedef struct pl_st_reader pl_st_reader;

/* Read and validate the whole file at `path`. On success *out owns a copy of
 * the file; free it with pl_st_close. Errors name the path. */
int pl_st_open(pl_st_reader **out, const char *path, pl_err *err);

/* Validate `len` bytes at `buf` without copying: `buf` is BORROWED and must
 * stay valid and unchanged until pl_st_close. `label` (copied) names the
 * input in error messages (NULL gives "<memory>"). */
int pl_st_open_memory(pl_st_reader **out, const void *buf, size_t len,
                      const char *label, pl_err *err);

/* Free the reader; NULL is a no-op. Invalidates every borrowed pointer. */
void pl_st_close(pl_st_reader *r);

/* Tensors in data order (ascending begin offset, then size, then name). */
int pl_st_count(const pl_st_reader *r);
/* Tensor i in [0, count); NULL if out of range. */
const pl_st_tensor *pl_st_tensor_at(const pl_st_reader *r, int i);
/* Tensor called `name`, or NULL. */
const pl_st_tensor *pl_st_find(const pl_st_reader *r, const char *name);

/* Metadata entries in header order; key/value borrowed from the reader. */
int pl_st_metadata_count(const pl_st_reader *r);
/* Entry i; returns PL_ERR_ARG if i is out of range. */
int pl_st_metadata_at(const pl_st_reader *r, int i, const char **key, const char **value);
/* Value for `key`, or NULL. */
const char *pl_st_metadata_get(const pl_st_reader *r, const char *key);

/* Convert all t->numel elements of t to float32 into dst (caller-owned,
 * t->numel floats). F16/BF16 exactly; I64/I32 round to nearest float. */
void pl_st_tensor_to_f32(const pl_st_tensor *t, float *dst);

/* Find `name`, check that its shape equals *expect (else PL_ERR_SHAPE naming
 * the tensor, expected and actual shape; PL_ERR_NOTFOUND if absent), and
 * convert it into dst (caller-owned, numel(expect) floats). */
int pl_st_read_f32(const pl_st_reader *r, const char *name, const pl_shape *expect,
                   float *dst, pl_err *err);

/* ---- writer ----
 * Collects tensors and metadata, then writes them in the order added with a
 * header padded by spaces to a multiple of 8 bytes (as the reference
 * implementation does). Tensors are packed back to back without padding. */
typedef struct pl_st_writer pl_st_writer;

int pl_st_writer_create(pl_st_writer **out, pl_err *err);
/* NULL is a no-op. */
void pl_st_writer_destroy(pl_st_writer *w);

/* Add a tensor. `name` and `shape` are copied; `data` (numel * dtype size
 * bytes, host = little-endian order) is BORROWED and must stay valid until
 * the last pl_st_writer_write / _to_memory call. Rejects empty, duplicate or
 * "__metadata__" names, invalid UTF-8, ndim outside [0, PL_ST_MAX_DIMS] and
 * negative dims. */
int pl_st_writer_add(pl_st_writer *w, const char *name, pl_st_dtype dtype, int ndim,
                     const int64_t *shape, const void *data, pl_err *err);

/* Set metadata key -> value (both copied; a repeated key replaces the old
 * value). */
int pl_st_writer_set_metadata(pl_st_writer *w, const char *key, const char *value,
                              pl_err *err);

/* Add every view of `f` (allocated) as a tensor with the view's name and
 * shape: PL_VIEW_F32 views as F32 (data borrowed from f->data, so f must
 * outlive the write), PL_VIEW_I64 views as I64 (converted now, owned by the
 * writer; a non-finite or out-of-range value is PL_ERR_NUMERIC). */
int pl_st_writer_add_flat(pl_st_writer *w, const pl_flat *f, pl_err *err);

/* Write atomically: to "<path>.tmp.<pid>", fsync, rename over `path`, fsync
 * the directory. On failure `path` is untouched and the temp file removed. */
int pl_st_writer_write(const pl_st_writer *w, const char *path, pl_err *err);

/* Serialise into a new buffer: *out (free with free()) of *len bytes. */
int pl_st_writer_to_memory(const pl_st_writer *w, void **out, size_t *len, pl_err *err);

/* ---- flat vectors (model checkpoints) ---- */

/* Save every view of flats[0..n) (e.g. params and buffers) to one file;
 * view names must be unique across the flats. */
int pl_st_save_flats(const char *path, const pl_flat *const *flats, int n, pl_err *err);

/* Load tensors of `r` into the views of flats[0..n) by name, converting any
 * supported dtype to float (I64 views read back from I64 files exactly up to
 * 2^24). A tensor present under a view's name must have the view's exact
 * shape (PL_ERR_SHAPE) in either mode.
 *   strict != 0: every view must be present (PL_ERR_NOTFOUND naming the first
 *                missing view) and every tensor must match a view (PL_ERR_FORMAT
 *                naming the first unexpected tensor). Nothing is written unless
 *                all checks pass.
 *   strict == 0: missing views keep their values; extra tensors are ignored.
 * *loaded (may be NULL) receives the number of views filled. */
int pl_st_load_flats(const pl_st_reader *r, pl_flat *const *flats, int n, int strict,
                     int *loaded, pl_err *err);

/* pl_st_open + pl_st_load_flats + pl_st_close. */
int pl_st_load_flats_file(const char *path, pl_flat *const *flats, int n, int strict,
                          int *loaded, pl_err *err);

#endif
