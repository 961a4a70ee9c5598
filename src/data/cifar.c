/* cifar.c — CIFAR-10 binary batches: records of 1 label byte + 3072 pixel
 * bytes (1024 R, 1024 G, 1024 B, each 32x32 row-major), i.e. [3, 32, 32]. */
#include "data_internal.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define CIFAR_PIXELS 3072
#define CIFAR_RECORD (1 + CIFAR_PIXELS)
#define CIFAR_CLASSES 10

/* Number of records in `path`: its size must be a nonzero multiple of 3073. */
static int cifar_count(const char *path, int64_t *count, pl_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return pl_err_set(err, PL_ERR_IO, "%s: cannot stat CIFAR-10 batch file", path);
    if (st.st_size <= 0 || st.st_size % CIFAR_RECORD != 0)
        return pl_err_set(err, PL_ERR_FORMAT,
                          "%s: size %lld bytes is not a positive multiple of %d (one CIFAR-10 "
                          "record = 1 label + 3072 pixel bytes; a standard batch file is "
                          "10000 records = 30730000 bytes)",
                          path, (long long)st.st_size, CIFAR_RECORD);
    *count = st.st_size / CIFAR_RECORD;
    return PL_OK;
}

/* Read `count` records of one file into images/labels starting at item `at`. */
static int cifar_read(const char *path, int64_t count, pl_dataset *ds, int64_t at, pl_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return pl_err_set(err, PL_ERR_IO, "%s: cannot open for reading", path);
    unsigned char rec[CIFAR_RECORD];
    int rc = PL_OK;
    for (int64_t i = 0; i < count && rc == PL_OK; i++) {
        if (fread(rec, 1, CIFAR_RECORD, f) != CIFAR_RECORD) {
            rc = pl_err_set(err, PL_ERR_IO, "%s: short read in record %lld (offset %lld)", path,
                            (long long)i, (long long)(i * CIFAR_RECORD));
        } else if (rec[0] >= CIFAR_CLASSES) {
            rc = pl_err_set(err, PL_ERR_FORMAT,
                            "%s: label %d of record %lld (offset %lld) is not in [0, %d)", path,
                            rec[0], (long long)i, (long long)(i * CIFAR_RECORD), CIFAR_CLASSES);
        } else {
            ds->labels[at + i] = rec[0];
            memcpy(ds->images + (size_t)(at + i) * CIFAR_PIXELS, rec + 1, CIFAR_PIXELS);
        }
    }
    fclose(f);
    return rc;
}

int pl_cifar_load_files_(const char *const *paths, int nfiles, pl_dataset **out, pl_err *err)
{
    *out = NULL;
    int64_t counts[16], total = 0;
    if (nfiles < 1 || nfiles > 16)
        return pl_err_set(err, PL_ERR_ARG, "cifar10: %d batch files (expected 1..16)", nfiles);
    for (int i = 0; i < nfiles; i++) {
        int rc = cifar_count(paths[i], &counts[i], err);
        if (rc != PL_OK)
            return pl_err_wrap(err, rc, "loading dataset cifar10");
        total += counts[i];
    }
    int rc = pl_dataset_alloc_("cifar10", total, 3, 32, 32, CIFAR_CLASSES, out, err);
    int64_t at = 0;
    for (int i = 0; rc == PL_OK && i < nfiles; i++) {
        rc = cifar_read(paths[i], counts[i], *out, at, err);
        at += counts[i];
    }
    if (rc != PL_OK) {
        pl_dataset_destroy(*out);
        *out = NULL;
        return pl_err_wrap(err, rc, "loading dataset cifar10");
    }
    return PL_OK;
}
