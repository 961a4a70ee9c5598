/* shard.c — load a data object written by pl_split_write back into a
 * pl_dataset, validating every field. */
#include <stdlib.h>
#include <string.h>

#include "peer/peer_internal.h"
#include "peerless/safetensors.h"

static int parse_classes(const pl_st_reader *r, const char *key, int *out, pl_err *err)
{
    const char *fmt = pl_st_metadata_get(r, "format");
    const char *nc = pl_st_metadata_get(r, "num_classes");
    if (!fmt || strcmp(fmt, "peerless-shard-1") != 0)
        return pl_err_set(err, PL_ERR_FORMAT, "%s: not a peerless data object (metadata format=%s, expected peerless-shard-1)",
                          key, fmt ? fmt : "missing");
    char *end = NULL;
    long v = nc ? strtol(nc, &end, 10) : 0;
    if (!nc || *end || v < 2 || v > 256)
        return pl_err_set(err, PL_ERR_FORMAT, "%s: metadata num_classes '%s' must be an integer in [2, 256]", key,
                          nc ? nc : "missing");
    *out = (int)v;
    return PL_OK;
}

int pl_shard_load(pl_store *st, const char *key, pl_dataset **out, pl_err *err)
{
    void *blob = NULL;
    size_t len = 0;
    pl_st_reader *r = NULL;
    uint8_t *labels = NULL;
    *out = NULL;
    int status = pl_store_get(st, key, &blob, &len, err);
    if (!status)
        status = pl_st_open_memory(&r, blob, len, key, err);
    int classes = 0;
    if (!status)
        status = parse_classes(r, key, &classes, err);
    const pl_st_tensor *x = status ? NULL : pl_st_find(r, "input");
    const pl_st_tensor *y = status ? NULL : pl_st_find(r, "target");
    if (!status && (!x || !y))
        status = pl_err_set(err, PL_ERR_FORMAT, "%s: tensor '%s' missing", key, x ? "target" : "input");
    if (!status && (x->dtype != PL_ST_U8 || x->ndim != 4 || x->shape[0] < 1))
        status = pl_err_set(err, PL_ERR_FORMAT, "%s: 'input' must be U8 [n, c, h, w] with n >= 1, got %s with %d dims",
                            key, pl_st_dtype_name(x->dtype), x->ndim);
    if (!status && (y->dtype != PL_ST_I64 || y->ndim != 1 || y->shape[0] != x->shape[0]))
        status = pl_err_set(err, PL_ERR_FORMAT, "%s: 'target' must be I64 [%lld]", key, (long long)x->shape[0]);
    if (!status && !(labels = malloc((size_t)y->numel)))
        status = pl_err_set(err, PL_ERR_NOMEM, "%s: out of memory", key);
    for (int64_t i = 0; !status && i < y->numel; i++) {
        int64_t t;
        memcpy(&t, (const char *)y->data + i * 8, 8);
        if (t < 0 || t >= classes)
            status = pl_err_set(err, PL_ERR_FORMAT, "%s: target %lld of sample %lld outside [0, %d)", key, (long long)t,
                                (long long)i, classes);
        else
            labels[i] = (uint8_t)t;
    }
    const char *name = status ? NULL : pl_st_metadata_get(r, "dataset");
    if (!status)
        status = pl_dataset_from_arrays(name ? name : "shard", x->shape[0], (int)x->shape[1], (int)x->shape[2],
                                        (int)x->shape[3], classes, x->data, labels, out, err);
    free(labels);
    pl_st_close(r);
    free(blob);
    return status;
}
