/* split.c — seeded permutation, train/validation split, peer partition. */
#include "peerless/data.h"

#include <math.h>

/* Stream of the split/permutation rng, distinct from the loader's streams. */
#define PERM_STREAM 0x5EEDULL

int pl_data_permutation(uint32_t *idx, size_t n, uint64_t seed, pl_err *err)
{
    if (n > UINT32_MAX)
        return pl_err_set(err, PL_ERR_ARG, "permutation of %zu items: at most 2^32-1 supported", n);
    for (size_t i = 0; i < n; i++)
        idx[i] = (uint32_t)i;
    pl_rng r;
    pl_rng_seed(&r, seed, PERM_STREAM);
    pl_rng_shuffle_u32(&r, idx, (uint32_t)n);
    return PL_OK;
}

int pl_data_split_sizes(size_t n, double val_frac, size_t *n_train, size_t *n_val, pl_err *err)
{
    if (!(val_frac >= 0.0 && val_frac < 1.0))
        return pl_err_set(err, PL_ERR_ARG, "validation fraction %g must be in [0, 1)", val_frac);
    /* random_split floors every length, then hands the remainder out
     * round-robin from the first subset (train). */
    *n_val = (size_t)floor((double)n * val_frac);
    *n_train = n - *n_val;
    return PL_OK;
}

int pl_data_split(uint32_t *idx, size_t n, double val_frac, uint64_t seed, size_t *n_train,
                  size_t *n_val, pl_err *err)
{
    int rc = pl_data_split_sizes(n, val_frac, n_train, n_val, err);
    if (rc == PL_OK)
        rc = pl_data_permutation(idx, n, seed, err);
    return rc;
}

int pl_data_partition(size_t n, int rank, int size, size_t *offset, size_t *count, pl_err *err)
{
    if (size < 1 || rank < 0 || rank >= size)
        return pl_err_set(err, PL_ERR_ARG, "partition: rank %d not in [0, %d)", rank, size);
    *count = n / (size_t)size;
    *offset = (size_t)rank * *count;
    if (*count == 0)
        return pl_err_set(err, PL_ERR_ARG, "partition: %zu items cannot give each of %d peers one",
                          n, size);
    return PL_OK;
}
