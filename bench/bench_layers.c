/* bench_layers.c — per-layer forward/backward time of the ref and fast backends.
 *
 *   bench_layers [--threads N] [--reps R] [--batch B] [--only SUBSTRING]
 *
 * For representative layer shapes (LeNet-5, VGG, ResNet, MobileNetV3 convs,
 * linear layers via gemm, batch norm, pooling, activations, log-softmax) it
 * prints the median time in ms of forward and backward on both backends,
 * GFLOP/s for conv and gemm, and the fast/ref speed-up. Times are medians of
 * R repetitions after one warm-up call. The single-threaded ref backend is
 * timed on fewer repetitions and, for heavy layers, on a smaller batch whose
 * time is scaled linearly to B (marked '*'), so the run stays short.
 */
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "peerless/backend.h"
#include "peerless/tensor.h"

/* Ref is timed on at most this much forward work per call (FLOP). */
#define REF_FLOP_BUDGET 2.5e8
/* ... and on batches of this many elements for the memory-bound layers. */
#define REF_ELEM_BUDGET 4e6

enum { K_CONV, K_LINEAR, K_BN, K_MAXPOOL, K_ADAPOOL, K_ACT, K_LOGSM };

typedef struct layer {
    const char *name;
    int kind;
    int c, h, w;              /* input per sample (conv, bn, pools, act); linear: c=in, h=out */
    int co, k, stride, pad, groups; /* conv (square kernel); adaptive pool: k = output size */
    pl_act act;
} layer;

/* Buffers of one layer instance on one backend. */
typedef struct ctx {
    const pl_backend *be;
    const layer *l;
    int batch;
    pl_conv2d_desc cd;
    pl_pool_desc pd;
    pl_adapool_desc ad;
    void *plan;
    size_t nx, ny, nw;
    float *x, *y, *dy, *dx, *w, *dw, *b, *db, *stats;
    int32_t *argmax;
} ctx;

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static float *buf(size_t n, float v)
{
    float *p = pl_alloc((n ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "bench_layers: out of memory for %zu floats\n", n);
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = v * (float)((i * 2654435761u) % 1000) / 1000.0f - v / 2;
    return p;
}

static double layer_flops(const layer *l, int batch)
{
    if (l->kind == K_LINEAR)
        return 2.0 * batch * l->c * l->h;
    if (l->kind != K_CONV)
        return 0;
    int ho = (l->h + 2 * l->pad - l->k) / l->stride + 1, wo = (l->w + 2 * l->pad - l->k) / l->stride + 1;
    return 2.0 * batch * l->co * ho * wo * (double)(l->c / l->groups) * l->k * l->k;
}

static void setup_conv(ctx *c)
{
    const layer *l = c->l;
    pl_conv2d_desc d = {c->batch, l->c, l->h, l->w, l->co, l->k, l->k, l->stride, l->stride,
                        l->pad, l->pad, 1, 1, l->groups, 1, 0, 0};
    pl_err err = {0};
    if (pl_conv2d_desc_init(&d, &err) || c->be->conv2d_plan(&d, &c->plan, &err)) {
        fprintf(stderr, "bench_layers: %s on %s: %s\n", l->name, c->be->name, err.msg);
        exit(1);
    }
    c->cd = d;
    c->nx = (size_t)d.n * d.c_in * d.h_in * d.w_in;
    c->ny = (size_t)d.n * d.c_out * d.h_out * d.w_out;
    c->nw = (size_t)d.c_out * (d.c_in / d.groups) * d.kh * d.kw;
}

static void setup_pool(ctx *c)
{
    const layer *l = c->l;
    pl_pool_desc d = {c->batch, l->c, l->h, l->w, l->k, l->k, l->stride, l->stride, l->pad, l->pad, 0, 1, 0, 0};
    pl_err err = {0};
    if (pl_pool_desc_init(&d, &err)) {
        fprintf(stderr, "bench_layers: %s: %s\n", l->name, err.msg);
        exit(1);
    }
    c->pd = d;
    c->nx = (size_t)d.n * d.c * d.h_in * d.w_in;
    c->ny = (size_t)d.n * d.c * d.h_out * d.w_out;
}

static void ctx_init(ctx *c, const pl_backend *be, const layer *l, int batch)
{
    memset(c, 0, sizeof *c);
    c->be = be;
    c->l = l;
    c->batch = batch;
    size_t plane = (size_t)batch * l->c * l->h * l->w;
    c->nx = c->ny = plane;
    if (l->kind == K_CONV)
        setup_conv(c);
    else if (l->kind == K_MAXPOOL)
        setup_pool(c);
    else if (l->kind == K_LINEAR || l->kind == K_LOGSM) {
        c->nx = (size_t)batch * l->c;
        c->ny = l->kind == K_LINEAR ? (size_t)batch * l->h : c->nx;
        c->nw = l->kind == K_LINEAR ? (size_t)l->c * l->h : 0;
    } else if (l->kind == K_ADAPOOL) {
        c->ad = (pl_adapool_desc){batch, l->c, l->h, l->w, l->k, l->k};
        c->ny = (size_t)batch * l->c * l->k * l->k;
    }
    c->x = buf(c->nx, 4), c->dx = buf(c->nx, 0), c->y = buf(c->ny, 0), c->dy = buf(c->ny, 1);
    c->w = buf(c->nw, 0.2f), c->dw = buf(c->nw, 0);
    c->b = buf((size_t)l->co + 2 * l->c + l->h, 1), c->db = buf((size_t)l->co + 2 * l->c + l->h, 0);
    c->stats = buf(4 * (size_t)l->c, 1);
    c->argmax = calloc(c->ny, sizeof *c->argmax);
    if (!c->argmax)
        exit(1);
}

static void ctx_free(ctx *c)
{
    if (c->plan)
        c->be->conv2d_plan_free(c->plan);
    float *bufs[] = {c->x, c->y, c->dy, c->dx, c->w, c->dw, c->b, c->db, c->stats};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        pl_free(bufs[i]);
    free(c->argmax);
}

static void run_fwd(ctx *c)
{
    const pl_backend *be = c->be;
    const layer *l = c->l;
    pl_bn_desc bd = {c->batch, l->c, l->h * l->w, 1e-5f};
    switch (l->kind) {
    case K_CONV: be->conv2d_fwd(c->plan, c->x, c->w, c->b, c->y); break;
    case K_LINEAR: be->gemm(0, 1, c->batch, l->h, l->c, 1.0f, c->x, l->c, c->w, l->c, 0.0f, c->y, l->h); break;
    case K_BN: be->bn_fwd_train(&bd, c->x, c->b, c->db, c->y, c->stats, c->stats + l->c, c->stats + 2 * l->c); break;
    case K_MAXPOOL: be->maxpool_fwd(&c->pd, c->x, c->y, c->argmax); break;
    case K_ADAPOOL: be->adapool_fwd(&c->ad, c->x, c->y); break;
    case K_ACT: be->act_fwd(l->act, c->nx, c->x, c->y); break;
    case K_LOGSM: be->logsoftmax_fwd(c->batch, l->c, c->x, c->y); break;
    }
}

/* Linear backward: dx[B,in] += dy[B,out] W[out,in]; dW[out,in] += dy^T x. */
static void run_bwd(ctx *c)
{
    const pl_backend *be = c->be;
    const layer *l = c->l;
    pl_bn_desc bd = {c->batch, l->c, l->h * l->w, 1e-5f};
    switch (l->kind) {
    case K_CONV: be->conv2d_bwd(c->plan, c->x, c->w, c->dy, c->dx, c->dw, c->db); break;
    case K_LINEAR:
        be->gemm(0, 0, c->batch, l->c, l->h, 1.0f, c->dy, l->h, c->w, l->c, 1.0f, c->dx, l->c);
        be->gemm(1, 0, l->h, l->c, c->batch, 1.0f, c->dy, l->h, c->x, l->c, 1.0f, c->dw, l->c);
        break;
    case K_BN:
        be->bn_bwd_train(&bd, c->x, c->b, c->stats, c->stats + 2 * l->c, c->dy, c->dx, c->db, c->db + l->c);
        break;
    case K_MAXPOOL: be->maxpool_bwd(&c->pd, c->argmax, c->dy, c->dx); break;
    case K_ADAPOOL: be->adapool_bwd(&c->ad, c->dy, c->dx); break;
    case K_ACT: be->act_bwd(l->act, c->nx, c->x, c->dy, c->dx); break;
    case K_LOGSM: be->logsoftmax_bwd(c->batch, l->c, c->y, c->dy, c->dx); break;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median ms of `reps` calls after one warm-up; forward runs first so backward has its inputs. */
static void time_layer(ctx *c, int reps, double *fwd_ms, double *bwd_ms)
{
    double t[2][64];
    reps = reps > 64 ? 64 : reps;
    run_fwd(c);
    run_bwd(c);
    for (int r = 0; r < reps; r++) {
        double t0 = now_ms();
        run_fwd(c);
        double t1 = now_ms();
        run_bwd(c);
        t[0][r] = t1 - t0;
        t[1][r] = now_ms() - t1;
    }
    qsort(t[0], (size_t)reps, sizeof(double), cmp_double);
    qsort(t[1], (size_t)reps, sizeof(double), cmp_double);
    *fwd_ms = t[0][reps / 2];
    *bwd_ms = t[1][reps / 2];
}

/* Batch on which ref is timed: B, or less for heavy layers. */
static int ref_batch(const layer *l, int batch)
{
    double f = layer_flops(l, batch), e = (double)batch * l->c * l->h * l->w;
    double scale = f > 0 ? REF_FLOP_BUDGET / f : REF_ELEM_BUDGET / (e > 0 ? e : 1);
    int b = scale < 1 ? (int)(batch * scale) : batch;
    return b < 1 ? 1 : b;
}

static const layer g_layers[] = {
    {"lenet conv1 1->6 5x5 32x32", K_CONV, 1, 32, 32, 6, 5, 1, 0, 1, 0},
    {"lenet conv2 6->16 5x5 14x14", K_CONV, 6, 14, 14, 16, 5, 1, 0, 1, 0},
    {"vgg conv 64->64 3x3 32x32", K_CONV, 64, 32, 32, 64, 3, 1, 1, 1, 0},
    {"resnet conv 128->128 3x3 8x8", K_CONV, 128, 8, 8, 128, 3, 1, 1, 1, 0},
    {"resnet conv 64->128 3x3 s2 16x16", K_CONV, 64, 16, 16, 128, 3, 2, 1, 1, 0},
    {"mbv3 dw 96 3x3 16x16", K_CONV, 96, 16, 16, 96, 3, 1, 1, 96, 0},
    {"mbv3 1x1 96->96 16x16", K_CONV, 96, 16, 16, 96, 1, 1, 0, 1, 0},
    {"linear 512->1000", K_LINEAR, 512, 1000, 1, 0, 0, 0, 0, 0, 0},
    {"linear 4096->4096", K_LINEAR, 4096, 4096, 1, 0, 0, 0, 0, 0, 0},
    {"batchnorm 64 32x32 train", K_BN, 64, 32, 32, 0, 0, 0, 0, 0, 0},
    {"maxpool 2x2 64 32x32", K_MAXPOOL, 64, 32, 32, 0, 2, 2, 0, 0, 0},
    {"maxpool 3x3 s2 64 15x15 (squeezenet)", K_MAXPOOL, 64, 15, 15, 0, 3, 2, 0, 0, 0},
    {"maxpool 3x3 s2 p1 64 16x16 (resnet)", K_MAXPOOL, 64, 16, 16, 0, 3, 2, 1, 0, 0},
    {"adaptive avg 512 7x7->1", K_ADAPOOL, 512, 7, 7, 0, 1, 0, 0, 0, 0},
    {"relu 64 32x32", K_ACT, 64, 32, 32, 0, 0, 0, 0, 0, PL_ACT_RELU},
    {"hardswish 64 32x32", K_ACT, 64, 32, 32, 0, 0, 0, 0, 0, PL_ACT_HARDSWISH},
    {"log_softmax 1000", K_LOGSM, 1000, 1, 1, 0, 0, 0, 0, 0, 0},
};

static int parse_int(const char *flag, const char *v)
{
    char *end;
    errno = 0;
    long n = v ? strtol(v, &end, 10) : 0;
    if (!v || errno || *end || n < 1 || n > 1 << 20) {
        fprintf(stderr, "bench_layers: %s needs a positive integer, got '%s'\n", flag, v ? v : "");
        exit(2);
    }
    return (int)n;
}

static void print_row(const layer *l, int batch, int rb, const double ref[2], const double fast[2])
{
    double f = layer_flops(l, batch);
    char gf[2][16] = {"", ""};
    if (f > 0) {
        snprintf(gf[0], sizeof gf[0], "%.1f", f / (fast[0] * 1e6));
        snprintf(gf[1], sizeof gf[1], "%.1f", 2 * f / (fast[1] * 1e6));
    }
    printf("%-34s %10.3f%c %9.3f %7s %6.1fx | %10.3f%c %9.3f %7s %6.1fx\n", l->name, ref[0],
           rb < batch ? '*' : ' ', fast[0], gf[0], ref[0] / fast[0], ref[1], rb < batch ? '*' : ' ', fast[1],
           gf[1], ref[1] / fast[1]);
}

int main(int argc, char **argv)
{
    int threads = 0, reps = 10, batch = 64;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads"))
            threads = parse_int(argv[i], argv[i + 1]), i++;
        else if (!strcmp(argv[i], "--reps"))
            reps = parse_int(argv[i], argv[i + 1]), i++;
        else if (!strcmp(argv[i], "--batch"))
            batch = parse_int(argv[i], argv[i + 1]), i++;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr, "usage: bench_layers [--threads N] [--reps R] [--batch B] [--only SUBSTRING]\n");
            return 2;
        }
    }
    pl_backend_set_threads(threads);
    const pl_backend *ref = pl_backend_ref(), *fast = pl_backend_fast();
    if (!ref || !fast) {
        fprintf(stderr, "bench_layers: a backend is missing\n");
        return 1;
    }
    int ref_reps = reps / 5 > 1 ? reps / 5 : 1;
    printf("threads: %d (omp_get_max_threads %d), batch %d, fast reps %d, ref reps %d (ref single-threaded)\n",
           pl_backend_threads(), omp_get_max_threads(), batch, reps, ref_reps);
    printf("times: median ms; GFLOP/s of fast; * = ref timed on a smaller batch, scaled to %d\n\n", batch);
    printf("%-34s %11s %9s %7s %7s | %11s %9s %7s %7s\n", "layer", "fwd ref", "fast", "GF/s", "speedup",
           "bwd ref", "fast", "GF/s", "speedup");
    for (size_t i = 0; i < sizeof g_layers / sizeof *g_layers; i++) {
        const layer *l = &g_layers[i];
        if (only && !strstr(l->name, only))
            continue;
        int rb = ref_batch(l, batch);
        ctx c;
        double r[2], f[2];
        ctx_init(&c, ref, l, rb);
        time_layer(&c, ref_reps, &r[0], &r[1]);
        ctx_free(&c);
        r[0] *= (double)batch / rb;
        r[1] *= (double)batch / rb;
        ctx_init(&c, fast, l, batch);
        time_layer(&c, reps, &f[0], &f[1]);
        ctx_free(&c);
        print_row(l, batch, rb, r, f);
        fflush(stdout);
    }
    return 0;
}
