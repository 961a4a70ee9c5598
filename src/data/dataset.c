/* dataset.c — the in-memory dataset, name lookup and the synthetic problem. */
#include "data_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PATH_MAX_ 4096

int pl_file_exists_(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int pl_dataset_alloc_(const char *name, int64_t n, int c, int h, int w, int num_classes,
                      pl_dataset **out, pl_err *err)
{
    *out = NULL;
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0 || num_classes < 1 || num_classes > 256)
        return pl_err_set(err, PL_ERR_ARG,
                          "dataset %s: invalid shape n=%lld c=%d h=%d w=%d classes=%d "
                          "(expected all positive, classes <= 256)",
                          name, (long long)n, c, h, w, num_classes);
    size_t per = (size_t)c * (size_t)h * (size_t)w;
    if ((uint64_t)n > SIZE_MAX / per)
        return pl_err_set(err, PL_ERR_ARG, "dataset %s: %lld images of %zu bytes overflow size_t",
                          name, (long long)n, per);
    pl_dataset *ds = calloc(1, sizeof *ds);
    if (!ds)
        return pl_err_set(err, PL_ERR_NOMEM, "dataset %s: out of memory", name);
    snprintf(ds->name, sizeof ds->name, "%s", name);
    ds->n = n;
    ds->c = c;
    ds->h = h;
    ds->w = w;
    ds->num_classes = num_classes;
    ds->images = malloc((size_t)n * per);
    ds->labels = malloc((size_t)n);
    if (!ds->images || !ds->labels) {
        pl_dataset_destroy(ds);
        return pl_err_set(err, PL_ERR_NOMEM, "dataset %s: cannot allocate %lld images of %zu bytes",
                          name, (long long)n, per);
    }
    *out = ds;
    return PL_OK;
}

void pl_dataset_destroy(pl_dataset *ds)
{
    if (!ds)
        return;
    free(ds->images);
    free(ds->labels);
    free(ds);
}

int pl_dataset_from_arrays(const char *name, int64_t n, int c, int h, int w, int num_classes,
                           const uint8_t *images, const uint8_t *labels, pl_dataset **out,
                           pl_err *err)
{
    int rc = pl_dataset_alloc_(name, n, c, h, w, num_classes, out, err);
    if (rc != PL_OK)
        return rc;
    pl_dataset *ds = *out;
    for (int64_t i = 0; i < n; i++) {
        if (labels[i] >= num_classes) {
            pl_dataset_destroy(ds);
            *out = NULL;
            return pl_err_set(err, PL_ERR_ARG, "dataset %s: label %d of image %lld is not in [0, %d)",
                              name, labels[i], (long long)i, num_classes);
        }
    }
    memcpy(ds->images, images, (size_t)n * (size_t)c * (size_t)h * (size_t)w);
    memcpy(ds->labels, labels, (size_t)n);
    return PL_OK;
}

pl_dataset_info pl_dataset_get_info(const pl_dataset *ds)
{
    pl_dataset_info i = {ds->name, ds->n, ds->c, ds->h, ds->w, ds->num_classes};
    return i;
}

const uint8_t *pl_dataset_images(const pl_dataset *ds) { return ds->images; }
const uint8_t *pl_dataset_labels(const pl_dataset *ds) { return ds->labels; }

/* ---- synthetic ---- */

void pl_synth_config_default(pl_synth_config *cfg, pl_split split)
{
    cfg->n = split == PL_SPLIT_TRAIN ? 2048 : 512;
    cfg->c = 1;
    cfg->h = 28;
    cfg->w = 28;
    cfg->num_classes = 10;
    cfg->seed = 1;
    cfg->noise = 0.2f;
    cfg->split = split;
}

/* Per class: frequencies (fy, fx) and a phase, drawn from the pattern seed. */
typedef struct synth_class {
    float fy, fx, phase;
} synth_class;

static float synth_pixel(const synth_class *k, int ch, int y, int x, int h, int w)
{
    float arg = 6.2831853f * (k->fy * (float)y / (float)h + k->fx * (float)x / (float)w) +
                k->phase + 1.3f * (float)ch;
    return 0.5f + 0.35f * sinf(arg);
}

static void synth_fill_image(const pl_synth_config *cfg, const synth_class *k, pl_rng *r,
                             uint8_t *img)
{
    size_t p = 0;
    for (int ch = 0; ch < cfg->c; ch++)
        for (int y = 0; y < cfg->h; y++)
            for (int x = 0; x < cfg->w; x++) {
                float v = synth_pixel(k, ch, y, x, cfg->h, cfg->w) + cfg->noise * pl_rng_normal(r);
                v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
                img[p++] = (uint8_t)lrintf(v * 255.0f);
            }
}

int pl_dataset_synthetic(const pl_synth_config *cfg, pl_dataset **out, pl_err *err)
{
    if (cfg->noise < 0.0f || cfg->noise > 1.0f || cfg->num_classes < 2)
        return pl_err_set(err, PL_ERR_ARG,
                          "synthetic dataset: noise %g must be in [0,1] and classes %d >= 2",
                          (double)cfg->noise, cfg->num_classes);
    int rc = pl_dataset_alloc_("synthetic", cfg->n, cfg->c, cfg->h, cfg->w, cfg->num_classes, out,
                               err);
    if (rc != PL_OK)
        return rc;
    synth_class classes[256];
    pl_rng r;
    pl_rng_seed(&r, cfg->seed, 0);
    for (int k = 0; k < cfg->num_classes; k++) {
        classes[k].fy = pl_rng_uniform_range(&r, -3.0f, 3.0f);
        classes[k].fx = pl_rng_uniform_range(&r, -3.0f, 3.0f);
        classes[k].phase = pl_rng_uniform_range(&r, 0.0f, 6.2831853f);
    }
    pl_dataset *ds = *out;
    size_t per = (size_t)cfg->c * (size_t)cfg->h * (size_t)cfg->w;
    pl_rng_seed(&r, cfg->seed, 1 + (uint64_t)cfg->split);
    for (int64_t i = 0; i < cfg->n; i++) {
        int label = (int)pl_rng_below(&r, (uint32_t)cfg->num_classes);
        ds->labels[i] = (uint8_t)label;
        synth_fill_image(cfg, &classes[label], &r, ds->images + (size_t)i * per);
    }
    return PL_OK;
}

/* ---- loading by name ---- */

typedef int (*load_fn)(const char *dir, pl_split split, pl_dataset **out, pl_err *err);

typedef struct idx_files {
    const char *images, *labels;
} idx_files;

static const idx_files idx_names[2] = {
    {"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
    {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"},
};

/* dir/base.gz if it exists, else dir/base if it exists; 0 if neither. */
static int find_idx(const char *dir, const char *base, char *path, size_t len)
{
    snprintf(path, len, "%s/%s.gz", dir, base);
    if (pl_file_exists_(path))
        return 1;
    snprintf(path, len, "%s/%s", dir, base);
    return pl_file_exists_(path);
}

static int load_idx_dataset(const char *name, const char *dir, pl_split split, const char *howto,
                            pl_dataset **out, pl_err *err)
{
    const idx_files *f = &idx_names[split == PL_SPLIT_TEST];
    char img[PATH_MAX_], lab[PATH_MAX_];
    if (!find_idx(dir, f->images, img, sizeof img) || !find_idx(dir, f->labels, lab, sizeof lab))
        return pl_err_set(err, PL_ERR_NOTFOUND,
                          "dataset %s (%s split) not found: looked for %s[.gz] and %s[.gz] in "
                          "directory %s; %s",
                          name, split == PL_SPLIT_TEST ? "test" : "train", f->images, f->labels,
                          dir, howto);
    return pl_idx_load_pair_(name, img, lab, 10, out, err);
}

static int load_fashion(const char *dir, pl_split split, pl_dataset **out, pl_err *err)
{
    return load_idx_dataset("fashion-mnist", dir ? dir : "/usr/share/datasets/fashion-mnist", split,
                            "install it with `apt-get install dataset-fashion-mnist` or pass "
                            "--data-dir DIR holding those files",
                            out, err);
}

static int load_mnist(const char *dir, pl_split split, pl_dataset **out, pl_err *err)
{
    return load_idx_dataset("mnist", dir ? dir : "/usr/share/datasets/mnist", split,
                            "download the four IDX files (train-images-idx3-ubyte.gz, "
                            "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
                            "t10k-labels-idx1-ubyte.gz) from http://yann.lecun.com/exdb/mnist/ "
                            "(or a mirror such as https://ossci-datasets.s3.amazonaws.com/mnist/) "
                            "into one directory and pass --data-dir DIR",
                            out, err);
}

static int load_cifar10(const char *dir, pl_split split, pl_dataset **out, pl_err *err)
{
    static const char *const train[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                        "data_batch_4.bin", "data_batch_5.bin"};
    static const char *const test[] = {"test_batch.bin"};
    const char *const *names = split == PL_SPLIT_TEST ? test : train;
    int nfiles = split == PL_SPLIT_TEST ? 1 : 5;
    const char *base = dir ? dir : "/usr/share/datasets/cifar10";
    char paths[5][PATH_MAX_];
    const char *ptrs[5];
    for (int sub = 0; sub < 2; sub++) {
        int found = 1;
        for (int i = 0; i < nfiles; i++) {
            snprintf(paths[i], PATH_MAX_, "%s%s/%s", base, sub ? "/cifar-10-batches-bin" : "",
                     names[i]);
            ptrs[i] = paths[i];
            found = found && pl_file_exists_(paths[i]);
        }
        if (found)
            return pl_cifar_load_files_(ptrs, nfiles, out, err);
    }
    return pl_err_set(err, PL_ERR_NOTFOUND,
                      "dataset cifar10 (%s split) not found: looked for %s in %s and "
                      "%s/cifar-10-batches-bin; download the binary version "
                      "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz, extract it "
                      "(tar xzf) and pass --data-dir DIR (the directory holding "
                      "cifar-10-batches-bin, or that folder itself)",
                      split == PL_SPLIT_TEST ? "test" : "train",
                      split == PL_SPLIT_TEST ? "test_batch.bin" : "data_batch_1..5.bin", base, base);
}

static int load_synthetic(const char *dir, pl_split split, pl_dataset **out, pl_err *err)
{
    (void)dir;
    pl_synth_config cfg;
    pl_synth_config_default(&cfg, split);
    return pl_dataset_synthetic(&cfg, out, err);
}

static const struct {
    const char *name;
    load_fn load;
} loaders[] = {
    {"fashion-mnist", load_fashion},
    {"mnist", load_mnist},
    {"cifar10", load_cifar10},
    {"synthetic", load_synthetic},
};

int pl_dataset_load(const char *name, const char *dir, pl_split split, pl_dataset **out,
                    pl_err *err)
{
    *out = NULL;
    if (split != PL_SPLIT_TRAIN && split != PL_SPLIT_TEST)
        return pl_err_set(err, PL_ERR_ARG, "dataset %s: split %d is neither train nor test", name,
                          (int)split);
    for (size_t i = 0; i < sizeof loaders / sizeof loaders[0]; i++)
        if (strcmp(name, loaders[i].name) == 0)
            return loaders[i].load(dir, split, out, err);
    return pl_err_set(err, PL_ERR_NOTFOUND,
                      "unknown dataset '%s' (expected fashion-mnist, mnist, cifar10 or synthetic)",
                      name);
}
