/* split.c — partition a dataset into per-peer (and per-batch) objects in the
 * object store, like the original's split_worker[_batches]_send_to_s3.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peerless/data.h"
#include "peerless/peer.h"
#include "peerless/safetensors.h"

const char *pl_peer_key(char *buf, size_t len, const char *run, const char *kind, int rank, int batch)
{
    if (!strcmp(kind, "test"))
        snprintf(buf, len, "%s/data/test.safetensors", run);
    else if (!strcmp(kind, "batch"))
        snprintf(buf, len, "%s/data/batches/%d/%d.safetensors", run, rank, batch);
    else if (!strcmp(kind, "checkpoint"))
        snprintf(buf, len, "%s/checkpoints/peer-%d.safetensors", run, rank);
    else
        snprintf(buf, len, "%s/data/%s-%d.safetensors", run, kind, rank);
    return buf;
}

/* Write images ds[idx[0..n)] as one shard object under `key`. */
static int put_subset(pl_store *st, const char *key, const pl_dataset *ds, const uint32_t *idx, size_t n,
                      const char *split, int rank, int size, pl_err *err)
{
    pl_dataset_info di = pl_dataset_get_info(ds);
    size_t img = (size_t)di.c * (size_t)di.h * (size_t)di.w;
    uint8_t *x = malloc(n * img + 1);
    int64_t *y = malloc(n * sizeof *y + 1);
    pl_st_writer *w = NULL;
    void *blob = NULL;
    size_t blob_len = 0;
    int status = (!x || !y) ? pl_err_set(err, PL_ERR_NOMEM, "split: out of memory for %zu images", n) : PL_OK;
    const uint8_t *src = pl_dataset_images(ds), *lab = pl_dataset_labels(ds);
    for (size_t i = 0; !status && i < n; i++) {
        memcpy(x + i * img, src + (size_t)idx[i] * img, img);
        y[i] = lab[idx[i]];
    }
    int64_t xs[4] = {(int64_t)n, di.c, di.h, di.w}, ys[1] = {(int64_t)n};
    char num[32], rk[16], sz[16];
    snprintf(num, sizeof num, "%d", di.num_classes);
    snprintf(rk, sizeof rk, "%d", rank);
    snprintf(sz, sizeof sz, "%d", size);
    if (!status)
        status = pl_st_writer_create(&w, err);
    if (!status)
        status = pl_st_writer_add(w, "input", PL_ST_U8, 4, xs, x, err);
    if (!status)
        status = pl_st_writer_add(w, "target", PL_ST_I64, 1, ys, y, err);
    const char *meta[][2] = {{"format", "peerless-shard-1"}, {"dataset", di.name}, {"num_classes", num},
                             {"split", split}, {"rank", rk}, {"size", sz}};
    for (size_t i = 0; !status && i < sizeof meta / sizeof meta[0]; i++)
        status = pl_st_writer_set_metadata(w, meta[i][0], meta[i][1], err);
    if (!status)
        status = pl_st_writer_to_memory(w, &blob, &blob_len, err);
    if (!status)
        status = pl_store_put(st, key, blob, blob_len, err);
    free(blob);
    pl_st_writer_destroy(w);
    free(x);
    free(y);
    return status;
}

static int write_peer(pl_store *st, const pl_split_config *cfg, const pl_dataset *ds, const uint32_t *perm,
                      size_t n_total, int rank, pl_err *err)
{
    size_t off, cnt, n_train, n_val;
    char key[PL_STORE_KEY_MAX];
    int status = pl_data_partition(n_total, rank, cfg->size, &off, &cnt, err);
    if (!status)
        status = pl_data_split_sizes(cnt, cfg->val_fraction, &n_train, &n_val, err);
    if (status)
        return status;
    const uint32_t *shard = perm + off;
    status = put_subset(st, pl_peer_key(key, sizeof key, cfg->run, "train", rank, 0), ds, shard, n_train, "train",
                        rank, cfg->size, err);
    if (!status && n_val)
        status = put_subset(st, pl_peer_key(key, sizeof key, cfg->run, "val", rank, 0), ds, shard + n_train, n_val,
                            "val", rank, cfg->size, err);
    /* Batch objects: the training shard cut into `batches` contiguous pieces
     * whose sizes differ by at most one (the first n % B get one more). */
    for (int b = 0; !status && b < cfg->batches; b++) {
        size_t base = n_train / (size_t)cfg->batches, extra = n_train % (size_t)cfg->batches;
        size_t start = (size_t)b * base + ((size_t)b < extra ? (size_t)b : extra);
        size_t len = base + ((size_t)b < extra);
        status = put_subset(st, pl_peer_key(key, sizeof key, cfg->run, "batch", rank, b), ds, shard + start, len,
                            "batch", rank, cfg->size, err);
    }
    return status;
}

int pl_split_write(pl_store *st, const pl_split_config *cfg, char *report, size_t report_len, pl_err *err)
{
    if (cfg->size < 1 || cfg->size > 4096)
        return pl_err_set(err, PL_ERR_ARG, "split: --size %d must be in [1, 4096]", cfg->size);
    if (cfg->batches < 0)
        return pl_err_set(err, PL_ERR_ARG, "split: --batches %d must not be negative", cfg->batches);
    pl_dataset *train = NULL, *test = NULL;
    uint32_t *perm = NULL, *all = NULL;
    int status = pl_dataset_load(cfg->dataset, cfg->data_dir, PL_SPLIT_TRAIN, &train, err);
    if (!status)
        status = pl_dataset_load(cfg->dataset, cfg->data_dir, PL_SPLIT_TEST, &test, err);
    size_t n = status ? 0 : (size_t)pl_dataset_get_info(train).n;
    size_t nt = status ? 0 : (size_t)pl_dataset_get_info(test).n;
    if (!status && n / (size_t)cfg->size == 0)
        status = pl_err_set(err, PL_ERR_ARG, "split: %zu training images cannot be shared by %d peers", n, cfg->size);
    if (!status && cfg->batches > 0 && n / (size_t)cfg->size < (size_t)cfg->batches * 2)
        status = pl_err_set(err, PL_ERR_ARG, "split: %zu images per peer are too few for %d batches", n / (size_t)cfg->size,
                            cfg->batches);
    if (!status && (!(perm = malloc(n * sizeof *perm)) || !(all = malloc(nt * sizeof *all))))
        status = pl_err_set(err, PL_ERR_NOMEM, "split: out of memory");
    if (!status)
        status = pl_data_permutation(perm, n, cfg->seed, err);
    for (int r = 0; !status && r < cfg->size; r++)
        status = write_peer(st, cfg, train, perm, n, r, err);
    for (size_t i = 0; !status && i < nt; i++)
        all[i] = (uint32_t)i;
    char key[PL_STORE_KEY_MAX];
    if (!status)
        status = put_subset(st, pl_peer_key(key, sizeof key, cfg->run, "test", 0, 0), test, all, nt, "test", 0,
                            cfg->size, err);
    if (!status && report) {
        size_t shard = n / (size_t)cfg->size, ntr, nv;
        pl_data_split_sizes(shard, cfg->val_fraction, &ntr, &nv, NULL);
        snprintf(report, report_len, "%s: %d peers x (%zu train + %zu val)%s%.0d%s, %zu test -> %s/%s/data/", cfg->dataset,
                 cfg->size, ntr, nv, cfg->batches ? ", " : "", cfg->batches, cfg->batches ? " batches each" : "", nt,
                 pl_store_url(st), cfg->run);
    }
    free(perm);
    free(all);
    pl_dataset_destroy(train);
    pl_dataset_destroy(test);
    return status;
}
