/* bench.c — `peerless bench step`: time full training steps (zero grad,
 * forward, loss, backward, SGD-momentum update) of a model on a random
 * batch, after warm-up; one JSON line with the median and peak memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "peerless/backend.h"
#include "peerless/models.h"
#include "peerless/optim.h"
#include "peer/peer_internal.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int parse_input(const char *s, int *c, int *h, int *w, pl_err *err)
{
    char tail;
    if (sscanf(s, "%dx%dx%d%c", c, h, w, &tail) != 3 || *c < 1 || *h < 1 || *w < 1 || *c > 4096 || *h > 4096 ||
        *w > 4096)
        return pl_err_set(err, PL_ERR_ARG, "--input expects CxHxW (e.g. 3x32x32), got '%s'", s);
    return PL_OK;
}

static int bench_step(const char *model, const char *backend, int batch, int c, int h, int w, int classes,
                      int steps, int warmup, pl_err *err)
{
    const pl_backend *be = pl_backend_by_name(backend);
    if (!be)
        return pl_err_set(err, PL_ERR_ARG, "unknown backend '%s' (expected fast or ref)", backend);
    pl_model *m = NULL;
    pl_optim *opt = NULL;
    int st = pl_models_build(model, be, c, h, w, classes, 1, &m, err);
    if (st)
        return st;
    pl_optim_config oc = pl_optim_defaults(PL_OPTIM_SGD);
    oc.momentum = 0.9;
    st = pl_optim_create(&opt, &oc, pl_model_params(m)->count, err);
    size_t n = (size_t)batch * (size_t)c * (size_t)h * (size_t)w;
    float *x = pl_alloc(n * sizeof(float));
    int32_t *y = malloc((size_t)batch * sizeof *y);
    double *times = malloc((size_t)steps * sizeof *times);
    if (!st && (!x || !y || !times))
        st = pl_err_set(err, PL_ERR_NOMEM, "bench: out of memory");
    pl_rng r;
    pl_rng_seed(&r, 7, 1);
    for (size_t i = 0; !st && i < n; i++)
        x[i] = pl_rng_normal(&r);
    for (int i = 0; !st && i < batch; i++)
        y[i] = (int32_t)pl_rng_below(&r, (uint32_t)classes);
    pl_flat *pa = pl_model_params(m), *gr = pl_model_grads(m);
    for (int s = 0; !st && s < warmup + steps; s++) {
        double t0 = pl_clock_s();
        float l;
        pl_model_zero_grad(m);
        st = pl_model_forward(m, x, batch, h, w, PL_MODE_TRAIN, err);
        if (!st)
            st = pl_model_loss(m, y, PL_LOSS_CROSS_ENTROPY, &l, err);
        if (!st)
            st = pl_model_backward(m, err);
        if (!st)
            st = pl_optim_step(opt, pa->data, gr->data, pa->count, err);
        if (s >= warmup)
            times[s - warmup] = pl_clock_s() - t0;
    }
    if (!st) {
        double mean = 0;
        for (int i = 0; i < steps; i++)
            mean += times[i] / steps;
        qsort(times, (size_t)steps, sizeof *times, cmp_double);
        double median = steps % 2 ? times[steps / 2] : 0.5 * (times[steps / 2 - 1] + times[steps / 2]);
        printf("{\"model\":\"%s\",\"backend\":\"%s\",\"batch\":%d,\"input\":\"%dx%dx%d\",\"threads\":%d,"
               "\"steps\":%d,\"median_s\":%.6f,\"mean_s\":%.6f,\"min_s\":%.6f,\"params\":%zu,\"peak_rss_mb\":%.1f}\n",
               model, be->name, batch, c, h, w, pl_backend_threads(), steps, median, mean, times[0], pa->count,
               pl_proc_peak_rss_mb());
    }
    free(times);
    free(y);
    pl_free(x);
    pl_optim_destroy(opt);
    pl_model_destroy(m);
    return st;
}

int pl_cmd_bench(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "step")) {
        fprintf(stderr, "peerless bench: expected 'step' (usage: peerless bench step --model M ...)\n");
        return 2;
    }
    const char *model = "resnet18", *input = "3x32x32", *backend = "fast";
    int batch = 64, threads = 0, steps = 10, warmup = 3, classes = 10;
    pl_flag flags[] = {
        {"model", PL_FLAG_STR, &model, 0, -1, "NAME", "model (default resnet18)", 0},
        {"batch", PL_FLAG_INT, &batch, 1, 65536, "N", "batch size (default 64)", 0},
        {"input", PL_FLAG_STR, &input, 0, -1, "CxHxW", "input shape (default 3x32x32)", 0},
        {"num-classes", PL_FLAG_INT, &classes, 2, 100000, "K", "classes (default 10)", 0},
        {"threads", PL_FLAG_INT, &threads, 0, 1024, "N", "threads (default: all cores)", 0},
        {"steps", PL_FLAG_INT, &steps, 1, 100000, "N", "timed steps (default 10)", 0},
        {"warmup", PL_FLAG_INT, &warmup, 0, 100000, "N", "untimed steps first (default 3)", 0},
        {"backend", PL_FLAG_STR, &backend, 0, -1, "NAME", "fast (default) or ref", 0},
    };
    int n = (int)(sizeof flags / sizeof flags[0]), help = 0, c, h, w;
    pl_err err = {0, ""};
    int st = pl_args_parse("bench step", flags, n, argc - 1, argv + 1, &help, &err);
    if (!st && help) {
        pl_args_usage("bench step", "Time training steps; prints one JSON line (median_s, peak_rss_mb).", flags, n);
        return 0;
    }
    if (!st)
        st = parse_input(input, &c, &h, &w, &err);
    if (!st) {
        pl_backend_set_threads(threads);
        st = bench_step(model, backend, batch, c, h, w, classes, steps, warmup, &err);
    }
    if (st) {
        fprintf(stderr, "peerless bench: %s\n", err.msg);
        return 1;
    }
    return 0;
}
