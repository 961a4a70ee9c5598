/* test_data.c — dataset readers, splits, partition, loader, augmentation. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "peerless/data.h"
#include "test.h"

/* ---- helpers that write test files ---- */

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Write an IDX file: magic, dims, then `len` payload bytes; gzip if gz. */
static void write_idx(const char *path, uint32_t magic, const uint32_t *dims, int ndim,
                      const uint8_t *payload, size_t len, int gz)
{
    unsigned char hdr[16];
    put_be32(hdr, magic);
    for (int i = 0; i < ndim; i++)
        put_be32(hdr + 4 + 4 * i, dims[i]);
    size_t hlen = 4 + 4 * (size_t)ndim;
    if (gz) {
        gzFile f = gzopen(path, "wb");
        PL_CHECK(f != NULL, "gzopen %s", path);
        if (!f)
            return;
        gzwrite(f, hdr, (unsigned)hlen);
        if (len)
            gzwrite(f, payload, (unsigned)len);
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        PL_CHECK(f != NULL, "fopen %s", path);
        if (!f)
            return;
        fwrite(hdr, 1, hlen, f);
        fwrite(payload, 1, len, f);
        fclose(f);
    }
}

static void make_dir(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/data_%s", pl_test_tmpdir(), name);
    mkdir(out, 0755);
}

enum { IMG_N = 7, IMG_H = 5, IMG_W = 4 };

/* A small IDX train pair in dir. label_n / bad_label / cut / extra / magic
 * perturb it. */
typedef struct idx_case {
    int gz;
    uint32_t image_magic;
    uint32_t label_n;
    int bad_label;     /* write label 10 at item 3 */
    int cut;           /* bytes removed from the image payload */
    int extra;         /* trailing bytes after the image payload */
} idx_case;

static uint8_t g_pixels[IMG_N * IMG_H * IMG_W + 8];
static uint8_t g_labels[IMG_N];

static void write_idx_pair(const char *dir, const idx_case *c)
{
    for (size_t i = 0; i < sizeof g_pixels; i++)
        g_pixels[i] = (uint8_t)(i * 37 + 11);
    for (int i = 0; i < IMG_N; i++)
        g_labels[i] = (uint8_t)((i * 3) % 10);
    uint8_t labels[IMG_N];
    memcpy(labels, g_labels, sizeof labels);
    if (c->bad_label)
        labels[3] = 10;
    char img[600], lab[600];
    snprintf(img, sizeof img, "%s/train-images-idx3-ubyte%s", dir, c->gz ? ".gz" : "");
    snprintf(lab, sizeof lab, "%s/train-labels-idx1-ubyte%s", dir, c->gz ? ".gz" : "");
    uint32_t d3[3] = {IMG_N, IMG_H, IMG_W};
    size_t len = IMG_N * IMG_H * IMG_W - (size_t)c->cut + (size_t)c->extra;
    write_idx(img, c->image_magic, d3, 3, g_pixels, len, c->gz);
    write_idx(lab, 0x801, &c->label_n, 1, labels, c->label_n < IMG_N ? c->label_n : IMG_N, c->gz);
}

/* Write the case into a fresh directory and load it as mnist. */
static int load_case(const char *name, const idx_case *c, pl_dataset **ds, pl_err *err)
{
    char dir[512];
    make_dir(dir, sizeof dir, name);
    write_idx_pair(dir, c);
    memset(err, 0, sizeof *err);
    return pl_dataset_load("mnist", dir, PL_SPLIT_TRAIN, ds, err);
}

static void test_idx_roundtrip(int gz)
{
    idx_case c = {gz, 0x803, IMG_N, 0, 0, 0};
    pl_dataset *ds = NULL;
    pl_err err;
    int rc = load_case(gz ? "idx_gz" : "idx_raw", &c, &ds, &err);
    PL_CHECK(rc == PL_OK, "idx round trip (gz=%d): %s", gz, err.msg);
    if (rc != PL_OK)
        return;
    pl_dataset_info info = pl_dataset_get_info(ds);
    PL_CHECK(info.n == IMG_N && info.c == 1 && info.h == IMG_H && info.w == IMG_W,
             "shape %lld %d %d %d", (long long)info.n, info.c, info.h, info.w);
    PL_CHECK(info.num_classes == 10 && strcmp(info.name, "mnist") == 0, "info");
    PL_CHECK(memcmp(pl_dataset_images(ds), g_pixels, IMG_N * IMG_H * IMG_W) == 0, "pixels");
    PL_CHECK(memcmp(pl_dataset_labels(ds), g_labels, IMG_N) == 0, "labels");
    pl_dataset_destroy(ds);
}

/* A broken case must fail with `status` and a message holding each needle. */
static void expect_fail(const char *name, const idx_case *c, int status, const char *n1,
                        const char *n2)
{
    pl_dataset *ds = NULL;
    pl_err err;
    int rc = load_case(name, c, &ds, &err);
    PL_CHECK(rc == status && ds == NULL, "%s: rc %d want %d", name, rc, status);
    PL_CHECK(strstr(err.msg, n1) != NULL, "%s: message lacks '%s': %s", name, n1, err.msg);
    PL_CHECK(!n2 || strstr(err.msg, n2) != NULL, "%s: message lacks '%s': %s", name, n2, err.msg);
}

static void test_idx_errors(void)
{
    for (int gz = 0; gz < 2; gz++) {
        idx_case trunc = {gz, 0x803, IMG_N, 0, 3, 0};
        expect_fail("idx_trunc", &trunc, PL_ERR_FORMAT, "train-images-idx3-ubyte",
                    "expected 140 data bytes");
        idx_case extra = {gz, 0x803, IMG_N, 0, 0, 5};
        expect_fail("idx_extra", &extra, PL_ERR_FORMAT, "5 bytes of trailing data", "got 161");
        idx_case magic = {gz, 0x802, IMG_N, 0, 0, 0};
        expect_fail("idx_magic", &magic, PL_ERR_FORMAT, "bad IDX magic 0x00000802",
                    "expected 0x00000803");
        idx_case count = {gz, 0x803, IMG_N - 1, 0, 0, 0};
        expect_fail("idx_count", &count, PL_ERR_FORMAT, "6 labels", "7 images");
        idx_case label = {gz, 0x803, IMG_N, 1, 0, 0};
        expect_fail("idx_label", &label, PL_ERR_FORMAT, "label 10 at offset 11", "[0, 10)");
    }
}

/* ---- CIFAR ---- */

static void write_cifar(const char *path, int records, int extra, int bad_label, uint8_t *rec)
{
    FILE *f = fopen(path, "wb");
    PL_CHECK(f != NULL, "fopen %s", path);
    if (!f)
        return;
    for (int r = 0; r < records; r++) {
        rec[r * 3073] = (uint8_t)(bad_label && r == 1 ? 10 : (r * 7) % 10);
        for (int i = 1; i < 3073; i++)
            rec[r * 3073 + i] = (uint8_t)(r * 31 + i * 13);
        fwrite(rec + r * 3073, 1, 3073, f);
    }
    for (int i = 0; i < extra; i++)
        fputc(0, f);
    fclose(f);
}

static void test_cifar(void)
{
    static uint8_t rec[3 * 3073];
    char dir[512], sub[600], path[700];
    make_dir(dir, sizeof dir, "cifar");
    snprintf(sub, sizeof sub, "%s/cifar-10-batches-bin", dir);
    mkdir(sub, 0755);
    snprintf(path, sizeof path, "%s/test_batch.bin", sub);
    write_cifar(path, 3, 0, 0, rec);
    pl_dataset *ds = NULL;
    pl_err err = {0};
    int rc = pl_dataset_load("cifar10", dir, PL_SPLIT_TEST, &ds, &err);
    PL_CHECK(rc == PL_OK, "cifar load: %s", err.msg);
    if (rc == PL_OK) {
        pl_dataset_info info = pl_dataset_get_info(ds);
        PL_CHECK(info.n == 3 && info.c == 3 && info.h == 32 && info.w == 32, "cifar shape");
        int ok = 1;
        for (int r = 0; r < 3; r++) {
            ok &= pl_dataset_labels(ds)[r] == rec[r * 3073];
            ok &= memcmp(pl_dataset_images(ds) + r * 3072, rec + r * 3073 + 1, 3072) == 0;
        }
        PL_CHECK(ok, "cifar records differ from the file");
        pl_dataset_destroy(ds);
    }
    write_cifar(path, 3, 5, 0, rec);
    rc = pl_dataset_load("cifar10", sub, PL_SPLIT_TEST, &ds, &err);
    PL_CHECK(rc == PL_ERR_FORMAT && strstr(err.msg, "test_batch.bin") &&
                 strstr(err.msg, "9224 bytes") && strstr(err.msg, "multiple of 3073"),
             "cifar wrong size: %s", err.msg);
    write_cifar(path, 3, 0, 1, rec);
    rc = pl_dataset_load("cifar10", sub, PL_SPLIT_TEST, &ds, &err);
    PL_CHECK(rc == PL_ERR_FORMAT && strstr(err.msg, "label 10 of record 1"), "cifar label: %s",
             err.msg);
}

static void test_missing(void)
{
    static const struct {
        const char *name, *needle;
    } cases[] = {
        {"fashion-mnist", "apt-get install dataset-fashion-mnist"},
        {"mnist", "t10k-images-idx3-ubyte.gz"},
        {"cifar10", "cifar-10-binary.tar.gz"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pl_dataset *ds = NULL;
        pl_err err = {0};
        int rc = pl_dataset_load(cases[i].name, "/nonexistent/peerless", PL_SPLIT_TRAIN, &ds, &err);
        PL_CHECK(rc == PL_ERR_NOTFOUND && ds == NULL, "%s: rc %d", cases[i].name, rc);
        PL_CHECK(strstr(err.msg, cases[i].needle) && strstr(err.msg, "/nonexistent/peerless") &&
                     strstr(err.msg, "--data-dir"),
                 "%s message: %s", cases[i].name, err.msg);
    }
    pl_dataset *ds = NULL;
    pl_err err = {0};
    PL_CHECK(pl_dataset_load("imagenet", NULL, PL_SPLIT_TRAIN, &ds, &err) == PL_ERR_NOTFOUND &&
                 strstr(err.msg, "imagenet"),
             "unknown dataset: %s", err.msg);
}

/* ---- shuffle, split, partition ---- */

static int is_permutation(const uint32_t *idx, size_t n)
{
    char *seen = calloc(n, 1);
    int ok = seen != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        ok = idx[i] < n && !seen[idx[i]];
        if (ok)
            seen[idx[i]] = 1;
    }
    free(seen);
    return ok;
}

static void test_shuffle_split_partition(void)
{
    enum { N = 1000 };
    static uint32_t a[N], b[N], c[N];
    pl_err err = {0};
    PL_CHECK(pl_data_permutation(a, N, 42, &err) == PL_OK, "perm");
    pl_data_permutation(b, N, 42, &err);
    pl_data_permutation(c, N, 43, &err);
    PL_CHECK(is_permutation(a, N), "permutation");
    PL_CHECK(memcmp(a, b, sizeof a) == 0, "same seed, same order");
    PL_CHECK(memcmp(a, c, sizeof a) != 0, "different seed, different order");
    size_t fixed = 0;
    for (size_t i = 0; i < N; i++)
        fixed += a[i] == i;
    PL_CHECK(fixed < 20, "shuffle leaves %zu of %d in place", fixed, N);

    /* Reference sizes: torch.utils.data.random_split(range(n), [0.9, 0.1]). */
    static const size_t ns[][3] = {{60000, 54000, 6000}, {50000, 45000, 5000}, {55, 50, 5},
                                   {9, 9, 0}, {1000, 900, 100}};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        size_t tr, va;
        pl_data_split_sizes(ns[i][0], 0.1, &tr, &va, &err);
        PL_CHECK(tr == ns[i][1] && va == ns[i][2], "split %zu -> %zu/%zu", ns[i][0], tr, va);
    }
    size_t tr, va;
    PL_CHECK(pl_data_split(a, N, 0.1, 7, &tr, &va, &err) == PL_OK && tr == 900 && va == 100,
             "split");
    PL_CHECK(is_permutation(a, N), "train and val are disjoint and cover everything");
    PL_CHECK(pl_data_split_sizes(10, 1.0, &tr, &va, &err) == PL_ERR_ARG, "fraction 1 rejected");

    size_t off[4], cnt[4];
    for (int r = 0; r < 4; r++)
        PL_CHECK(pl_data_partition(103, r, 4, &off[r], &cnt[r], &err) == PL_OK, "partition");
    for (int r = 0; r < 4; r++)
        PL_CHECK(cnt[r] == 25 && off[r] == (size_t)r * 25, "shard %d: %zu at %zu", r, cnt[r],
                 off[r]);
    PL_CHECK(pl_data_partition(103, 4, 4, &off[0], &cnt[0], &err) == PL_ERR_ARG, "bad rank");
}

/* ---- loader ---- */

/* n images of 1x2x2 whose first two pixels encode their index. */
static pl_dataset *index_dataset(int n)
{
    uint8_t *img = calloc((size_t)n * 4, 1), *lab = calloc((size_t)n, 1);
    pl_dataset *ds = NULL;
    pl_err err = {0};
    if (img && lab) {
        for (int i = 0; i < n; i++) {
            img[i * 4] = (uint8_t)(i & 255);
            img[i * 4 + 1] = (uint8_t)(i >> 8);
            lab[i] = (uint8_t)(i % 10);
        }
        pl_dataset_from_arrays("index", n, 1, 2, 2, 10, img, lab, &ds, &err);
    }
    free(img);
    free(lab);
    PL_CHECK(ds != NULL, "index dataset: %s", err.msg);
    return ds;
}

/* Run one epoch; record decoded item ids in order. Returns the count. */
static size_t run_epoch(pl_loader *l, int64_t epoch, int bs, uint32_t *ids, int *last)
{
    float x[64 * 4];
    int32_t y[64];
    int64_t y64[64];
    size_t total = 0;
    int count;
    pl_loader_set_epoch(l, epoch);
    while (pl_loader_next(l, x, y, y64, &count) == PL_OK && count > 0) {
        PL_CHECK(count <= bs, "batch of %d > %d", count, bs);
        for (int i = 0; i < count; i++) {
            uint32_t id = (uint32_t)(x[i * 4] * 255.0f + 0.5f) +
                          256u * (uint32_t)(x[i * 4 + 1] * 255.0f + 0.5f);
            PL_CHECK(y[i] == (int32_t)(id % 10) && y64[i] == y[i], "label of %u", id);
            ids[total++] = id;
        }
        *last = count;
    }
    return total;
}

static void test_loader(void)
{
    enum { N = 1000, M = 997, BS = 64 };
    pl_dataset *ds = index_dataset(N);
    if (!ds)
        return;
    static uint32_t idx[N], e0[N], e1[N], e0b[N];
    pl_err err = {0};
    pl_data_permutation(idx, N, 3, &err);
    pl_loader_config cfg = {BS, 1, 0, 11, {0}};
    pl_loader *l = NULL;
    PL_CHECK(pl_loader_create(ds, idx, M, &cfg, &l, &err) == PL_OK, "loader: %s", err.msg);
    if (l) {
        PL_CHECK(pl_loader_num_batches(l) == (M + BS - 1) / BS, "num batches");
        int last = 0;
        PL_CHECK(run_epoch(l, 0, BS, e0, &last) == M && last == M % BS, "epoch 0 size/last %d",
                 last);
        PL_CHECK(run_epoch(l, 1, BS, e1, &last) == M, "epoch 1 size");
        run_epoch(l, 0, BS, e0b, &last);
        /* Every listed index exactly once: sort-free check via a seen map. */
        static char seen0[N], seen1[N];
        int ok = 1;
        for (int i = 0; i < M; i++) {
            ok &= !seen0[e0[i]] && !seen1[e1[i]];
            seen0[e0[i]] = 1;
            seen1[e1[i]] = 1;
        }
        for (int i = 0; i < M; i++)
            ok &= seen0[idx[i]] && seen1[idx[i]];
        PL_CHECK(ok, "each listed index exactly once per epoch");
        PL_CHECK(memcmp(e0, e1, sizeof e0) != 0, "epochs differ in order");
        PL_CHECK(memcmp(e0, e0b, sizeof e0) == 0, "same epoch, same order");
        pl_loader_destroy(l);
    }
    cfg.drop_last = 1;
    cfg.shuffle = 0;
    PL_CHECK(pl_loader_create(ds, idx, M, &cfg, &l, &err) == PL_OK, "loader: %s", err.msg);
    if (l) {
        int last = 0;
        PL_CHECK(run_epoch(l, 0, BS, e0, &last) == (M / BS) * BS && last == BS, "drop_last");
        PL_CHECK(memcmp(e0, idx, (M / BS) * BS * sizeof *e0) == 0, "no shuffle keeps order");
        pl_loader_destroy(l);
    }
    idx[5] = N;
    PL_CHECK(pl_loader_create(ds, idx, M, &cfg, &l, &err) == PL_ERR_ARG && l == NULL,
             "out-of-range index rejected");
    pl_dataset_destroy(ds);
}

/* Loader with augmentation: same seed -> same batch; another seed or epoch
 * -> different; without augmentation the batch is the plain image. */
static void aug_batch(const pl_dataset *ds, uint64_t seed, int64_t epoch, int augment, float *x)
{
    uint32_t idx[16];
    for (int i = 0; i < 16; i++)
        idx[i] = (uint32_t)i;
    pl_loader_config cfg = {16, 0, 0, seed, {0}};
    pl_err err = {0};
    pl_transform_defaults(&cfg.tf, "cifar10", PL_SPLIT_TRAIN, &err);
    cfg.tf.augment = augment;
    pl_loader *l = NULL;
    int count = 0;
    PL_CHECK(pl_loader_create(ds, idx, 16, &cfg, &l, &err) == PL_OK, "aug loader: %s", err.msg);
    if (!l)
        return;
    pl_loader_set_epoch(l, epoch);
    pl_loader_next(l, x, NULL, NULL, &count);
    PL_CHECK(count == 16, "aug batch count %d", count);
    pl_loader_destroy(l);
}

static void test_augment(void)
{
    pl_synth_config sc;
    pl_synth_config_default(&sc, PL_SPLIT_TRAIN);
    sc.n = 16;
    sc.c = 3;
    sc.h = sc.w = 32;
    pl_dataset *ds = NULL;
    pl_err err = {0};
    PL_CHECK(pl_dataset_synthetic(&sc, &ds, &err) == PL_OK, "synthetic: %s", err.msg);
    if (!ds)
        return;
    enum { SZ = 16 * 3 * 32 * 32 };
    float *a = malloc(5 * SZ * sizeof *a);
    if (a) {
        aug_batch(ds, 5, 0, 1, a);
        aug_batch(ds, 5, 0, 1, a + SZ);
        aug_batch(ds, 6, 0, 1, a + 2 * SZ);
        aug_batch(ds, 5, 1, 1, a + 3 * SZ);
        aug_batch(ds, 5, 0, 0, a + 4 * SZ);
        PL_CHECK(memcmp(a, a + SZ, SZ * sizeof *a) == 0, "augmentation is deterministic");
        PL_CHECK(memcmp(a, a + 2 * SZ, SZ * sizeof *a) != 0, "seed changes augmentation");
        PL_CHECK(memcmp(a, a + 3 * SZ, SZ * sizeof *a) != 0, "epoch changes augmentation");
        PL_CHECK(memcmp(a, a + 4 * SZ, SZ * sizeof *a) != 0, "augmentation changes images");
        /* Reference for the un-augmented path: (p/255 - mean) / std by hand. */
        const uint8_t *px = pl_dataset_images(ds);
        static const float mean[3] = {0.4914f, 0.4822f, 0.4465f}, sd[3] = {0.2470f, 0.2435f, 0.2616f};
        double maxd = 0;
        for (int i = 0; i < SZ; i++) {
            int ch = (i / 1024) % 3;
            double want = ((double)px[i] / 255.0 - mean[ch]) / sd[ch];
            double d = fabs(a[4 * SZ + i] - want);
            maxd = d > maxd ? d : maxd;
        }
        PL_CHECK(maxd < 1e-5, "plain batch differs from normalized pixels by %g", maxd);
    }
    free(a);
    pl_dataset_destroy(ds);
}

/* The synthetic problem is learnable: nearest class mean, fit on train,
 * classifies test well above chance. */
static void test_synthetic_learnable(void)
{
    pl_dataset *tr = NULL, *te = NULL;
    pl_err err = {0};
    PL_CHECK(pl_dataset_load("synthetic", NULL, PL_SPLIT_TRAIN, &tr, &err) == PL_OK, "%s", err.msg);
    PL_CHECK(pl_dataset_load("synthetic", NULL, PL_SPLIT_TEST, &te, &err) == PL_OK, "%s", err.msg);
    if (!tr || !te) {
        pl_dataset_destroy(tr);
        pl_dataset_destroy(te);
        return;
    }
    pl_dataset_info it = pl_dataset_get_info(tr), ie = pl_dataset_get_info(te);
    int px = it.c * it.h * it.w;
    double *mean = calloc((size_t)10 * px, sizeof *mean);
    int cnt[10] = {0}, correct = 0;
    for (int64_t i = 0; mean && i < it.n; i++) {
        int k = pl_dataset_labels(tr)[i];
        cnt[k]++;
        for (int p = 0; p < px; p++)
            mean[k * px + p] += pl_dataset_images(tr)[i * px + p];
    }
    for (int k = 0; mean && k < 10; k++)
        for (int p = 0; p < px; p++)
            mean[k * px + p] /= cnt[k] ? cnt[k] : 1;
    for (int64_t i = 0; mean && i < ie.n; i++) {
        int best = 0;
        double bestd = INFINITY;
        for (int k = 0; k < 10; k++) {
            double d = 0;
            for (int p = 0; p < px; p++) {
                double e = pl_dataset_images(te)[i * px + p] - mean[k * px + p];
                d += e * e;
            }
            if (d < bestd) {
                bestd = d;
                best = k;
            }
        }
        correct += best == pl_dataset_labels(te)[i];
    }
    PL_CHECK(correct > ie.n * 9 / 10, "nearest-mean accuracy %d / %lld", correct, (long long)ie.n);
    PL_CHECK(memcmp(pl_dataset_images(tr), pl_dataset_images(te), 784) != 0, "train != test");
    free(mean);
    pl_dataset_destroy(tr);
    pl_dataset_destroy(te);
}

static void test_fashion_mnist(void)
{
    struct stat st;
    if (stat("/usr/share/datasets/fashion-mnist", &st) != 0) {
        printf("skip: /usr/share/datasets/fashion-mnist not installed\n");
        return;
    }
    for (int s = 0; s < 2; s++) {
        pl_dataset *ds = NULL;
        pl_err err = {0};
        int rc = pl_dataset_load("fashion-mnist", NULL, (pl_split)s, &ds, &err);
        PL_CHECK(rc == PL_OK, "fashion-mnist: %s", err.msg);
        if (rc != PL_OK)
            continue;
        pl_dataset_info info = pl_dataset_get_info(ds);
        int64_t want = s ? 10000 : 60000;
        PL_CHECK(info.n == want && info.c == 1 && info.h == 28 && info.w == 28, "size %lld",
                 (long long)info.n);
        int64_t hist[10] = {0};
        for (int64_t i = 0; i < info.n; i++)
            hist[pl_dataset_labels(ds)[i]]++;
        for (int k = 0; k < 10; k++)
            PL_CHECK(hist[k] == want / 10, "class %d has %lld", k, (long long)hist[k]);
        pl_dataset_destroy(ds);
    }
}

/* Resize invariants (the exact values are checked against torchvision in
 * torch_transforms.py): same size is the identity, a constant stays constant;
 * and the gray->3ch + resize loader path runs clean under the sanitizers. */
static void test_resize_and_gray_loader(void)
{
    float x[2 * 9 * 7], y[2 * 31 * 5];
    pl_test_fill(x, 2 * 9 * 7, 3, 0.0f, 1.0f);
    pl_err err = {0};
    for (int aa = 0; aa < 2; aa++) {
        float id[2 * 9 * 7];
        PL_CHECK(pl_tf_resize(x, 2, 9, 7, id, 9, 7, aa, &err) == PL_OK, "%s", err.msg);
        PL_CHECK(memcmp(id, x, sizeof x) == 0, "same-size resize (aa=%d) is the identity", aa);
        float k[2 * 9 * 7];
        for (int i = 0; i < 2 * 9 * 7; i++)
            k[i] = 5.0f;
        PL_CHECK(pl_tf_resize(k, 2, 9, 7, y, 31, 5, aa, &err) == PL_OK, "%s", err.msg);
        double maxd = 0;
        for (int i = 0; i < 2 * 31 * 5; i++)
            maxd = fmax(maxd, fabs(y[i] - 5.0));
        PL_CHECK(maxd < 1e-5, "constant image changes by %g (aa=%d)", maxd, aa);
    }
    PL_CHECK(pl_tf_resize(x, 1, 9, 7, y, 0, 5, 0, &err) == PL_ERR_ARG, "zero size rejected");

    pl_synth_config sc;
    pl_synth_config_default(&sc, PL_SPLIT_TEST);
    sc.n = 20;
    pl_dataset *ds = NULL;
    pl_dataset_synthetic(&sc, &ds, &err);
    uint32_t idx[20];
    for (int i = 0; i < 20; i++)
        idx[i] = (uint32_t)i;
    pl_loader_config cfg = {8, 1, 0, 3, {0}};
    pl_transform_defaults(&cfg.tf, "synthetic", PL_SPLIT_TRAIN, &err);
    cfg.tf.gray_to_rgb = 1;
    cfg.tf.resize_h = 20;
    cfg.tf.resize_w = 24;
    pl_loader *l = NULL;
    PL_CHECK(ds && pl_loader_create(ds, idx, 20, &cfg, &l, &err) == PL_OK, "loader: %s", err.msg);
    if (l) {
        int c, h, w, count, same = 1;
        pl_loader_out_shape(l, &c, &h, &w);
        PL_CHECK(c == 3 && h == 20 && w == 24, "out shape %d %d %d", c, h, w);
        static float b[8 * 3 * 20 * 24];
        pl_loader_next(l, b, NULL, NULL, &count);
        for (int i = 0; i < count; i++)
            same &= memcmp(b + i * 1440, b + i * 1440 + 480, 480 * sizeof *b) == 0 &&
                    memcmp(b + i * 1440, b + i * 1440 + 960, 480 * sizeof *b) == 0;
        PL_CHECK(count == 8 && same, "gray->3ch gives three equal planes");
        pl_loader_destroy(l);
    }
    cfg.tf.resize_w = 0;
    PL_CHECK(pl_loader_create(ds, idx, 20, &cfg, &l, &err) == PL_ERR_ARG, "half a resize rejected");
    pl_dataset_destroy(ds);
}

int main(void)
{
    test_idx_roundtrip(0);
    test_idx_roundtrip(1);
    test_idx_errors();
    test_cifar();
    test_missing();
    test_shuffle_split_partition();
    test_loader();
    test_augment();
    test_resize_and_gray_loader();
    test_synthetic_learnable();
    test_fashion_mnist();
    PL_TEST_MAIN();
}
