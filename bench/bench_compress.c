/* bench_compress.c — encode / decode throughput and compression ratio of
 * every codec at the gradient sizes of the study's models.
 *
 *   bench_compress [--threads N] [--reps R] [--max-n N]
 *
 * Throughput is float32 input bytes (4n) per second; decode is decode_add
 * (what a reducer does). The VGG11 row is one 16M-element chunk of its
 * 128.8M parameters, as a transport would send it. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "peerless/compress.h"
#include "peerless/rng.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct size_case {
    const char *name;
    size_t n;
} size_case;

static const size_case sizes[] = {
    {"squeezenet1_1", 735000},   {"mobilenet_v3_small", 1530000},
    {"resnet18", 11180000},      {"vgg11 (16M chunk)", 16u << 20},
};
static const char *const specs[] = {"none", "fp16", "qsgd8", "qsgd4", "topk:0.01"};

/* Best-of-reps seconds for encode and decode_add of x[0..n) with spec. */
static int bench_one(const char *spec, const float *x, float *y, size_t n, int reps,
                     double *enc_s, double *dec_s, size_t *bytes)
{
    pl_err err = {0};
    pl_codec_cfg cfg;
    pl_codec *c = NULL;
    int rc = pl_codec_parse(spec, &cfg, &err);
    if (rc == PL_OK)
        rc = pl_codec_create(&cfg, n, 1, &c, &err);
    size_t cap = pl_codec_max_bytes(&cfg, n);
    void *buf = rc == PL_OK ? malloc(cap) : NULL;
    if (rc == PL_OK && !buf)
        rc = pl_err_set(&err, PL_ERR_NOMEM, "no memory for %zu bytes", cap);
    *enc_s = *dec_s = 1e30;
    for (int r = 0; r < reps && rc == PL_OK; r++) {
        double t0 = now();
        rc = pl_codec_encode(c, x, n, 0, buf, cap, bytes, &err);
        double t1 = now();
        if (rc == PL_OK)
            rc = pl_codec_decode_add(&cfg, buf, *bytes, y, n, &err);
        double t2 = now();
        *enc_s = t1 - t0 < *enc_s ? t1 - t0 : *enc_s;
        *dec_s = t2 - t1 < *dec_s ? t2 - t1 : *dec_s;
    }
    if (rc != PL_OK)
        fprintf(stderr, "bench_compress: %s: %s\n", spec, err.msg);
    free(buf);
    pl_codec_destroy(c);
    return rc;
}

int main(int argc, char **argv)
{
    int threads = omp_get_max_threads(), reps = 3;
    size_t max_n = (size_t)-1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--max-n") == 0 && i + 1 < argc)
            max_n = strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: bench_compress [--threads N] [--reps R] [--max-n N]\n");
            return 2;
        }
    }
    if (threads < 1 || reps < 1) {
        fprintf(stderr, "bench_compress: --threads and --reps must be >= 1\n");
        return 2;
    }
    omp_set_num_threads(threads);
    size_t nmax = 16u << 20;
    float *x = malloc(nmax * sizeof *x), *y = calloc(nmax, sizeof *y);
    if (!x || !y) {
        fprintf(stderr, "bench_compress: out of memory\n");
        return 1;
    }
    pl_rng rng;
    pl_rng_seed(&rng, 42, 0);
    for (size_t i = 0; i < nmax; i++)
        x[i] = 1e-3f * pl_rng_normal(&rng);
    printf("threads %d, best of %d\n", threads, reps);
    printf("%-20s %10s %-10s %9s %10s %10s\n", "model", "elements", "codec", "ratio",
           "enc GB/s", "dec GB/s");
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s].n;
        if (n > max_n)
            continue;
        for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
            double enc, dec;
            size_t bytes = 0;
            if (bench_one(specs[k], x, y, n, reps, &enc, &dec, &bytes) != PL_OK)
                return 1;
            printf("%-20s %10zu %-10s %9.2f %10.2f %10.2f\n", sizes[s].name, n, specs[k],
                   4.0 * (double)n / (double)bytes, 4e-9 * (double)n / enc,
                   4e-9 * (double)n / dec);
        }
    }
    free(x);
    free(y);
    return 0;
}
