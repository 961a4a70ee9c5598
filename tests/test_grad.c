/* test_grad.c — finite-difference gradient check of every ref-backend kernel.
 *
 * For each case: L = sum(y .* r) for a fixed random r. The analytic gradient
 * of every input comes from the backward kernel, called with dy = r into
 * buffers that start at ACC0 (subtracted afterwards, which proves backward
 * adds). The numeric gradient is the central difference (L(x+h) - L(x-h))/2h
 * of the float forward, with L summed in double. The two must agree to a
 * relative-norm tolerance. Piecewise kernels get inputs kept away from their
 * kinks (and max-pool inputs distinct by more than 2h) so that differences
 * never straddle a kink. Multi-input kernels are also called with all but one
 * gradient pointer NULL, which must give the same gradient.
 *
 * gemm has no backward kernel: its gradients are the gemm products a linear
 * layer uses (dA = dC op(B)^T, dB = op(A)^T dC, dC_in = beta dC), which checks
 * all transpose combinations of gemm against finite differences.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "peerless/backend.h"
#include "peerless/rng.h"
#include "test.h"

#define MAX_IN 4
#define ACC0 0.5f
#define STEP 1e-2f
#define TOL 1e-3

typedef struct gcase gcase;

/* One kernel under test: its inputs, gradients, output and parameters. */
struct gcase {
    char name[96];
    const pl_backend *be;
    int nin;
    const char *in_name[MAX_IN];
    float *in[MAX_IN];   /* owned */
    float *grad[MAX_IN]; /* borrowed by bwd; NULL entries are skipped */
    size_t n_in[MAX_IN];
    float *y; /* owned */
    size_t ny;
    void (*fwd)(gcase *g);
    void (*bwd)(gcase *g, const float *dy);
    /* kernel parameters */
    pl_conv2d_desc conv;
    void *plan;
    pl_pool_desc pool;
    int32_t *argmax; /* owned */
    pl_adapool_desc ada;
    pl_bn_desc bn;
    float *stats; /* owned: train mean, var, invstd [3*c] */
    pl_act act;
    int rows, cols;
    int ta, tb, m, n, k;
    float alpha, beta;
};

static unsigned g_seed = 1;

static float *falloc(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    if (!p) {
        fprintf(stderr, "test_grad: out of memory allocating %zu floats\n", n);
        exit(2);
    }
    return p;
}

/* Add an input of n floats, uniform in [lo, hi); returns its data. */
static float *add_input(gcase *g, const char *name, size_t n, float lo, float hi)
{
    int i = g->nin++;
    g->in_name[i] = name;
    g->n_in[i] = n;
    g->in[i] = falloc(n);
    pl_test_fill(g->in[i], n, g_seed++, lo, hi);
    return g->in[i];
}

static void gcase_free(gcase *g)
{
    for (int i = 0; i < g->nin; i++)
        free(g->in[i]);
    free(g->y);
    free(g->argmax);
    free(g->stats);
    if (g->plan)
        g->be->conv2d_plan_free(g->plan);
}

static double loss(gcase *g, const float *r)
{
    g->fwd(g);
    double s = 0;
    for (size_t i = 0; i < g->ny; i++)
        s += (double)g->y[i] * r[i];
    return s;
}

/* Central differences of L with respect to every element of input k. */
static void numeric_grad(gcase *g, int k, const float *r, float *num)
{
    float *x = g->in[k];
    for (size_t i = 0; i < g->n_in[k]; i++) {
        float x0 = x[i];
        x[i] = x0 + STEP;
        double lp = loss(g, r);
        x[i] = x0 - STEP;
        double lm = loss(g, r);
        x[i] = x0;
        /* Divide by the step actually taken after float rounding. */
        num[i] = (float)((lp - lm) / ((double)(x0 + STEP) - (double)(x0 - STEP)));
    }
}

/* Backward with only gradient `only` requested (others NULL); must match. */
static void check_null_skipping(gcase *g, const float *r, float *const *ana)
{
    for (int k = 0; k < g->nin; k++) {
        float *buf = falloc(g->n_in[k]);
        for (int j = 0; j < g->nin; j++)
            g->grad[j] = j == k ? buf : NULL;
        g->fwd(g);
        g->bwd(g, r);
        double e = pl_test_rel_err(buf, ana[k], g->n_in[k]);
        PL_CHECK(e < 1e-6, "%s: d%s with other gradients NULL differs (rel %.3g)", g->name,
                 g->in_name[k], e);
        free(buf);
    }
}

static void run_case(gcase *g)
{
    float *r = falloc(g->ny), *ana[MAX_IN];
    pl_test_fill(r, g->ny, g_seed++, -1.0f, 1.0f);
    for (int k = 0; k < g->nin; k++) {
        ana[k] = falloc(g->n_in[k]);
        for (size_t i = 0; i < g->n_in[k]; i++)
            ana[k][i] = ACC0;
        g->grad[k] = ana[k];
    }
    g->fwd(g); /* backward reads what forward saved at the base point */
    g->bwd(g, r);
    for (int k = 0; k < g->nin; k++) {
        float *num = falloc(g->n_in[k]);
        for (size_t i = 0; i < g->n_in[k]; i++)
            ana[k][i] -= ACC0;
        numeric_grad(g, k, r, num);
        double e = pl_test_rel_err(ana[k], num, g->n_in[k]);
        printf("grad %-44s d%-6s rel_err %.2e %s\n", g->name, g->in_name[k], e,
               e <= TOL ? "ok" : "FAIL");
        PL_CHECK(e <= TOL, "%s: d%s analytic vs numeric rel err %.3g", g->name, g->in_name[k], e);
        free(num);
    }
    if (g->nin > 1)
        check_null_skipping(g, r, ana);
    for (int k = 0; k < g->nin; k++)
        free(ana[k]);
    free(r);
    gcase_free(g);
}

/* ---- convolution ---- */

static void conv_fwd(gcase *g)
{
    g->be->conv2d_fwd(g->plan, g->in[0], g->in[1], g->conv.has_bias ? g->in[2] : NULL, g->y);
}

static void conv_bwd(gcase *g, const float *dy)
{
    g->be->conv2d_bwd(g->plan, g->in[0], g->in[1], dy, g->grad[0], g->grad[1],
                      g->conv.has_bias ? g->grad[2] : NULL);
}

typedef struct conv_cfg {
    const char *what;
    int n, c_in, h, w, c_out, kh, kw, sh, sw, ph, pw, dh, dw, groups, bias;
} conv_cfg;

static const conv_cfg conv_cfgs[] = {
    {"3x3 pad1", 2, 3, 6, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {"3x3 stride2 pad1", 2, 3, 7, 7, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
    {"3x3 no bias", 1, 2, 5, 5, 3, 3, 3, 1, 1, 0, 0, 1, 1, 1, 0},
    {"1x1", 2, 4, 4, 4, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1},
    {"groups2", 2, 4, 5, 5, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2, 1},
    {"depthwise stride2", 2, 4, 7, 7, 4, 3, 3, 2, 2, 1, 1, 1, 1, 4, 0},
    {"dilation2", 1, 2, 8, 8, 3, 3, 3, 1, 1, 2, 2, 2, 2, 1, 1},
    {"2x4 kernel stride 2x1", 2, 2, 7, 8, 3, 2, 4, 2, 1, 1, 2, 1, 1, 1, 1},
};

static void conv_case(const pl_backend *be, const conv_cfg *c)
{
    gcase g = {.be = be, .fwd = conv_fwd, .bwd = conv_bwd};
    pl_conv2d_desc d = {.n = c->n, .c_in = c->c_in, .h_in = c->h, .w_in = c->w, .c_out = c->c_out,
                        .kh = c->kh, .kw = c->kw, .stride_h = c->sh, .stride_w = c->sw,
                        .pad_h = c->ph, .pad_w = c->pw, .dil_h = c->dh, .dil_w = c->dw,
                        .groups = c->groups, .has_bias = c->bias};
    pl_err err = {0};
    int rc = pl_conv2d_desc_init(&d, &err);
    if (rc == PL_OK)
        rc = be->conv2d_plan(&d, &g.plan, &err);
    PL_CHECK(rc == PL_OK, "conv %s: %s", c->what, err.msg);
    if (rc != PL_OK)
        return;
    g.conv = d;
    snprintf(g.name, sizeof g.name, "conv2d %s", c->what);
    add_input(&g, "x", (size_t)d.n * d.c_in * d.h_in * d.w_in, -1, 1);
    add_input(&g, "w", (size_t)d.c_out * (d.c_in / d.groups) * d.kh * d.kw, -1, 1);
    if (d.has_bias)
        add_input(&g, "b", (size_t)d.c_out, -1, 1);
    g.ny = (size_t)d.n * d.c_out * d.h_out * d.w_out;
    g.y = falloc(g.ny);
    run_case(&g);
}

/* ---- batch norm ---- */

static void bn_train_fwd(gcase *g)
{
    int c = g->bn.c;
    g->be->bn_fwd_train(&g->bn, g->in[0], g->in[1], g->in[2], g->y, g->stats, g->stats + c,
                        g->stats + 2 * c);
}

static void bn_train_bwd(gcase *g, const float *dy)
{
    int c = g->bn.c;
    g->be->bn_bwd_train(&g->bn, g->in[0], g->in[1], g->stats, g->stats + 2 * c, dy, g->grad[0],
                        g->grad[1], g->grad[2]);
}

/* Eval mode: running mean/var live in stats[0..c) and stats[c..2c). */
static void bn_eval_fwd(gcase *g)
{
    int c = g->bn.c;
    g->be->bn_fwd_eval(&g->bn, g->in[0], g->in[1], g->in[2], g->stats, g->stats + c, g->y);
}

static void bn_eval_bwd(gcase *g, const float *dy)
{
    int c = g->bn.c;
    g->be->bn_bwd_eval(&g->bn, g->in[0], g->in[1], g->stats, g->stats + c, dy, g->grad[0],
                       g->grad[1], g->grad[2]);
}

static void bn_case(const pl_backend *be, int train, int n, int c, int hw, float eps)
{
    gcase g = {.be = be, .fwd = train ? bn_train_fwd : bn_eval_fwd,
               .bwd = train ? bn_train_bwd : bn_eval_bwd};
    g.bn = (pl_bn_desc){.n = n, .c = c, .hw = hw, .eps = eps};
    snprintf(g.name, sizeof g.name, "batchnorm %s n=%d c=%d hw=%d eps=%g", train ? "train" : "eval",
             n, c, hw, eps);
    add_input(&g, "x", (size_t)n * c * hw, -2, 3);
    add_input(&g, "gamma", (size_t)c, 0.5f, 1.5f);
    add_input(&g, "beta", (size_t)c, -1, 1);
    g.stats = falloc(3 * (size_t)c);
    pl_test_fill(g.stats, (size_t)c, g_seed++, -0.5f, 0.5f);
    pl_test_fill(g.stats + c, (size_t)c, g_seed++, 0.5f, 2.0f);
    g.ny = (size_t)n * c * hw;
    g.y = falloc(g.ny);
    run_case(&g);
}

/* ---- pooling ---- */

static void maxpool_fwd(gcase *g) { g->be->maxpool_fwd(&g->pool, g->in[0], g->y, g->argmax); }
static void maxpool_bwd(gcase *g, const float *dy)
{
    g->be->maxpool_bwd(&g->pool, g->argmax, dy, g->grad[0]);
}
static void avgpool_fwd(gcase *g) { g->be->avgpool_fwd(&g->pool, g->in[0], g->y); }
static void avgpool_bwd(gcase *g, const float *dy) { g->be->avgpool_bwd(&g->pool, dy, g->grad[0]); }

typedef struct pool_cfg {
    const char *what;
    int n, c, h, w, kh, kw, sh, sw, ph, pw, ceil;
} pool_cfg;

static const pool_cfg pool_cfgs[] = {
    {"2x2 s2", 2, 2, 6, 6, 2, 2, 2, 2, 0, 0, 0},
    {"3x3 s2 ceil", 1, 2, 7, 8, 3, 3, 2, 2, 0, 0, 1},
    {"3x3 s2 pad1", 1, 2, 7, 6, 3, 3, 2, 2, 1, 1, 0},
    {"3x3 s2 pad1 ceil", 1, 2, 8, 6, 3, 3, 2, 2, 1, 1, 1},
    {"3x2 s3x2 pad1 ceil", 2, 1, 7, 7, 3, 2, 3, 2, 1, 1, 1},
    {"3x3 s1 pad1", 1, 2, 5, 5, 3, 3, 1, 1, 1, 1, 0},
};

/* Every value distinct and at least 0.1 (> 2*STEP) from every other. */
static void fill_distinct(float *x, size_t n)
{
    uint32_t *idx = malloc(n * sizeof *idx);
    if (!idx) {
        fprintf(stderr, "test_grad: out of memory\n");
        exit(2);
    }
    pl_rng r;
    pl_rng_seed(&r, g_seed++, 3);
    for (size_t i = 0; i < n; i++)
        idx[i] = (uint32_t)i;
    pl_rng_shuffle_u32(&r, idx, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        x[i] = 0.1f * ((float)idx[i] - (float)n / 2);
    free(idx);
}

static void pool_case(const pl_backend *be, const pool_cfg *c, int max, int cip)
{
    gcase g = {.be = be, .fwd = max ? maxpool_fwd : avgpool_fwd, .bwd = max ? maxpool_bwd : avgpool_bwd};
    pl_pool_desc d = {.n = c->n, .c = c->c, .h_in = c->h, .w_in = c->w, .kh = c->kh, .kw = c->kw,
                      .stride_h = c->sh, .stride_w = c->sw, .pad_h = c->ph, .pad_w = c->pw,
                      .ceil_mode = c->ceil, .count_include_pad = cip};
    pl_err err = {0};
    int rc = pl_pool_desc_init(&d, &err);
    PL_CHECK(rc == PL_OK, "pool %s: %s", c->what, err.msg);
    if (rc != PL_OK)
        return;
    g.pool = d;
    snprintf(g.name, sizeof g.name, "%s %s%s", max ? "maxpool" : "avgpool", c->what,
             max ? "" : (cip ? " incl_pad" : " excl_pad"));
    float *x = add_input(&g, "x", (size_t)d.n * d.c * d.h_in * d.w_in, -1, 1);
    if (max)
        fill_distinct(x, g.n_in[0]);
    g.ny = (size_t)d.n * d.c * d.h_out * d.w_out;
    g.y = falloc(g.ny);
    g.argmax = calloc(g.ny, sizeof *g.argmax);
    PL_CHECK(g.argmax != NULL, "out of memory");
    if (g.argmax)
        run_case(&g);
}

static void ada_fwd(gcase *g) { g->be->adapool_fwd(&g->ada, g->in[0], g->y); }
static void ada_bwd(gcase *g, const float *dy) { g->be->adapool_bwd(&g->ada, dy, g->grad[0]); }

static void ada_case(const pl_backend *be, int h, int w, int ho, int wo)
{
    gcase g = {.be = be, .fwd = ada_fwd, .bwd = ada_bwd};
    g.ada = (pl_adapool_desc){.n = 2, .c = 2, .h_in = h, .w_in = w, .h_out = ho, .w_out = wo};
    snprintf(g.name, sizeof g.name, "adapool %dx%d -> %dx%d", h, w, ho, wo);
    add_input(&g, "x", (size_t)4 * h * w, -1, 1);
    g.ny = (size_t)4 * ho * wo;
    g.y = falloc(g.ny);
    run_case(&g);
}

/* ---- activations, log-softmax ---- */

static void act_fwd(gcase *g) { g->be->act_fwd(g->act, g->n_in[0], g->in[0], g->y); }
static void act_bwd(gcase *g, const float *dy)
{
    g->be->act_bwd(g->act, g->n_in[0], g->in[0], dy, g->grad[0]);
}

/* Move x at least 0.05 (> 2*STEP) away from the kinks -3, 0, 3 and 6. */
static float off_kink(float x)
{
    static const float kinks[] = {-3.0f, 0.0f, 3.0f, 6.0f};
    for (size_t i = 0; i < sizeof kinks / sizeof kinks[0]; i++)
        if (fabsf(x - kinks[i]) < 0.05f)
            x = kinks[i] + (x < kinks[i] ? -0.05f : 0.05f);
    return x;
}

static void act_case(const pl_backend *be, pl_act kind, const char *name)
{
    gcase g = {.be = be, .fwd = act_fwd, .bwd = act_bwd, .act = kind};
    snprintf(g.name, sizeof g.name, "act %s", name);
    float *x = add_input(&g, "x", 400, -8, 8);
    for (size_t i = 0; i < 400; i++)
        x[i] = off_kink(x[i]);
    g.ny = 400;
    g.y = falloc(g.ny);
    run_case(&g);
}

static void lsm_fwd(gcase *g) { g->be->logsoftmax_fwd(g->rows, g->cols, g->in[0], g->y); }
static void lsm_bwd(gcase *g, const float *dy)
{
    g->be->logsoftmax_bwd(g->rows, g->cols, g->y, dy, g->grad[0]);
}

static void lsm_case(const pl_backend *be, int rows, int cols)
{
    gcase g = {.be = be, .fwd = lsm_fwd, .bwd = lsm_bwd, .rows = rows, .cols = cols};
    snprintf(g.name, sizeof g.name, "log_softmax %dx%d", rows, cols);
    add_input(&g, "x", (size_t)rows * cols, -3, 3);
    g.ny = (size_t)rows * cols;
    g.y = falloc(g.ny);
    run_case(&g);
}

/* ---- gemm: y[m,n] = alpha op(A) op(B) + beta C ---- */

static void gemm_fwd(gcase *g)
{
    memcpy(g->y, g->in[2], g->ny * sizeof *g->y);
    g->be->gemm(g->ta, g->tb, g->m, g->n, g->k, g->alpha, g->in[0], g->ta ? g->m : g->k, g->in[1],
                g->tb ? g->k : g->n, g->beta, g->y, g->n);
}

static void gemm_bwd(gcase *g, const float *dy)
{
    const float *a = g->in[0], *b = g->in[1];
    int lda = g->ta ? g->m : g->k, ldb = g->tb ? g->k : g->n, m = g->m, n = g->n, k = g->k;
    /* dop(A) = dY op(B)^T; stored transposed when ta: dA = op(B) dY^T. */
    if (g->grad[0] && !g->ta)
        g->be->gemm(0, !g->tb, m, k, n, g->alpha, dy, n, b, ldb, 1.0f, g->grad[0], k);
    if (g->grad[0] && g->ta)
        g->be->gemm(g->tb, 1, k, m, n, g->alpha, b, ldb, dy, n, 1.0f, g->grad[0], m);
    /* dop(B) = op(A)^T dY; stored transposed when tb: dB = dY^T op(A). */
    if (g->grad[1] && !g->tb)
        g->be->gemm(!g->ta, 0, k, n, m, g->alpha, a, lda, dy, n, 1.0f, g->grad[1], n);
    if (g->grad[1] && g->tb)
        g->be->gemm(1, g->ta, n, k, m, g->alpha, dy, n, a, lda, 1.0f, g->grad[1], k);
    if (g->grad[2])
        for (size_t i = 0; i < g->ny; i++)
            g->grad[2][i] += g->beta * dy[i];
}

static void gemm_case(const pl_backend *be, int ta, int tb)
{
    gcase g = {.be = be, .fwd = gemm_fwd, .bwd = gemm_bwd, .ta = ta, .tb = tb,
               .m = 4, .n = 5, .k = 3, .alpha = 0.7f, .beta = -1.3f};
    snprintf(g.name, sizeof g.name, "gemm trans_a=%d trans_b=%d", ta, tb);
    add_input(&g, "A", (size_t)g.m * g.k, -1, 1);
    add_input(&g, "B", (size_t)g.k * g.n, -1, 1);
    add_input(&g, "C", (size_t)g.m * g.n, -1, 1);
    g.ny = (size_t)g.m * g.n;
    g.y = falloc(g.ny);
    run_case(&g);
}

int main(void)
{
    const pl_backend *be = pl_backend_ref();
    PL_CHECK(be != NULL, "pl_backend_ref() returned NULL");
    if (!be)
        PL_TEST_MAIN();
    for (size_t i = 0; i < sizeof conv_cfgs / sizeof conv_cfgs[0]; i++)
        conv_case(be, &conv_cfgs[i]);
    for (int train = 1; train >= 0; train--) {
        bn_case(be, train, 4, 3, 5, 1e-5f);
        bn_case(be, train, 6, 2, 1, 1e-3f);
    }
    for (size_t i = 0; i < sizeof pool_cfgs / sizeof pool_cfgs[0]; i++) {
        pool_case(be, &pool_cfgs[i], 1, 1);
        pool_case(be, &pool_cfgs[i], 0, 1);
        pool_case(be, &pool_cfgs[i], 0, 0);
    }
    ada_case(be, 5, 7, 3, 2);
    ada_case(be, 4, 4, 4, 4);
    ada_case(be, 2, 3, 7, 5);
    ada_case(be, 1, 1, 3, 3);
    act_case(be, PL_ACT_RELU, "relu");
    act_case(be, PL_ACT_RELU6, "relu6");
    act_case(be, PL_ACT_HARDSWISH, "hardswish");
    act_case(be, PL_ACT_HARDSIGMOID, "hardsigmoid");
    lsm_case(be, 3, 7);
    lsm_case(be, 2, 1);
    for (int t = 0; t < 4; t++)
        gemm_case(be, t >> 1, t & 1);
    PL_TEST_MAIN();
}
