/* fuzz_safetensors.c — libFuzzer harness for the safetensors reader.
 *
 * Build and run with scripts/fuzz-safetensors.sh. For every input:
 *   - pl_st_open_memory either fails with a message and no reader, or
 *     succeeds with tensors that lie inside the input and whose byte counts
 *     equal numel * dtype size;
 *   - every tensor converts to float and is found by name;
 *   - an accepted file re-serialised by the writer is accepted again with
 *     identical tensors and metadata.
 * A broken property aborts (this is a test harness, not library code). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peerless/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                      \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz property failed: %s (line %d)\n", #cond,     \
                    __LINE__);                                                 \
            abort();                                                           \
        }                                                                      \
    } while (0)

static void check_tensor(const pl_st_reader *r, const pl_st_tensor *t, const uint8_t *data,
                         size_t size)
{
    const uint8_t *p = t->data;
    FUZZ_ASSERT(p >= data && p <= data + size && t->nbytes <= (size_t)(data + size - p));
    FUZZ_ASSERT(t->numel >= 0 && (size_t)t->numel * pl_st_dtype_size(t->dtype) == t->nbytes);
    FUZZ_ASSERT(pl_st_find(r, t->name) == t);
    float *out = malloc((size_t)t->numel * sizeof(float) + 1);
    FUZZ_ASSERT(out != NULL);
    pl_st_tensor_to_f32(t, out);
    free(out);
}

/* Writer copy of r: same tensors (borrowed from r) and metadata. */
static int rewrite(const pl_st_reader *r, void **buf, size_t *len)
{
    pl_err err = {0};
    pl_st_writer *w = NULL;
    int rc = pl_st_writer_create(&w, &err);
    for (int i = 0; i < pl_st_count(r) && rc == PL_OK; i++) {
        const pl_st_tensor *t = pl_st_tensor_at(r, i);
        rc = pl_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data, &err);
    }
    for (int i = 0; i < pl_st_metadata_count(r) && rc == PL_OK; i++) {
        const char *k, *v;
        pl_st_metadata_at(r, i, &k, &v);
        rc = pl_st_writer_set_metadata(w, k, v, &err);
    }
    if (rc == PL_OK)
        rc = pl_st_writer_to_memory(w, buf, len, &err);
    pl_st_writer_destroy(w);
    return rc;
}

static void check_roundtrip(const pl_st_reader *r)
{
    void *buf = NULL;
    size_t len = 0;
    /* The writer refuses some names the format allows (e.g. ""): skip those. */
    if (rewrite(r, &buf, &len) != PL_OK)
        return;
    pl_err err = {0};
    pl_st_reader *r2 = NULL;
    int rc = pl_st_open_memory(&r2, buf, len, "rewrite", &err);
    if (rc != PL_OK)
        fprintf(stderr, "re-read failed: %s\n", err.msg);
    FUZZ_ASSERT(rc == PL_OK);
    FUZZ_ASSERT(pl_st_count(r2) == pl_st_count(r));
    for (int i = 0; i < pl_st_count(r); i++) {
        const pl_st_tensor *a = pl_st_tensor_at(r, i), *b = pl_st_find(r2, a->name);
        FUZZ_ASSERT(b && a->dtype == b->dtype && a->ndim == b->ndim && a->nbytes == b->nbytes);
        FUZZ_ASSERT(memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof a->shape[0]) == 0);
        FUZZ_ASSERT(a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0);
    }
    FUZZ_ASSERT(pl_st_metadata_count(r2) <= pl_st_metadata_count(r));
    pl_st_close(r2);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pl_err err = {0};
    pl_st_reader *r = NULL;
    int rc = pl_st_open_memory(&r, data, size, "fuzz", &err);
    if (rc != PL_OK) {
        FUZZ_ASSERT(rc < 0 && r == NULL && err.status == rc && err.msg[0] != '\0');
        return 0;
    }
    for (int i = 0; i < pl_st_count(r); i++)
        check_tensor(r, pl_st_tensor_at(r, i), data, size);
    for (int i = 0; i < pl_st_metadata_count(r); i++) {
        const char *k = NULL, *v = NULL;
        FUZZ_ASSERT(pl_st_metadata_at(r, i, &k, &v) == PL_OK && k && v);
        FUZZ_ASSERT(pl_st_metadata_get(r, k) != NULL);
    }
    check_roundtrip(r);
    pl_st_close(r);
    return 0;
}
