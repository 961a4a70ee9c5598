/* data_internal.h — private contract between the dataset readers. */
#ifndef PEERLESS_DATA_INTERNAL_H
#define PEERLESS_DATA_INTERNAL_H

#include <stdint.h>

#include "peerless/data.h"

struct pl_dataset {
    char name[32];
    int64_t n;
    int c, h, w;
    int num_classes;
    uint8_t *images;   /* owned: [n, c, h, w] */
    uint8_t *labels;   /* owned: [n] */
};

/* An empty dataset with uninitialised image/label buffers of the given shape;
 * NOMEM or ARG (overflow) on failure. Free with pl_dataset_destroy. */
int pl_dataset_alloc_(const char *name, int64_t n, int c, int h, int w, int num_classes,
                      pl_dataset **out, pl_err *err);

/* Read an IDX image file (magic 0x00000803) and label file (0x00000801),
 * gzipped or raw, into a new dataset. Checks dims, exact payload sizes,
 * count agreement and labels < num_classes. */
int pl_idx_load_pair_(const char *name, const char *images_path, const char *labels_path,
                      int num_classes, pl_dataset **out, pl_err *err);

/* Read CIFAR-10 binary batch files (records of 1 label + 3072 pixels). */
int pl_cifar_load_files_(const char *const *paths, int nfiles, pl_dataset **out, pl_err *err);

/* 1 if path names an existing regular file. */
int pl_file_exists_(const char *path);

#endif
