/* test_fast.c — the fast backend against the reference backend.
 *
 * Every kernel runs on both backends with the same inputs; forward outputs
 * must agree to a relative error of 1e-4 (max-pool argmax exactly), and
 * backward kernels, called on gradient buffers pre-filled with the same
 * nonzero values, must add the same increment (so overwriting instead of
 * accumulating fails). NULL gradient pointers are exercised too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peerless/backend.h"
#include "test.h"

#define TOL 1e-4

static const pl_backend *R, *F;

static float *rnd(size_t n, unsigned seed, float lo, float hi)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    pl_test_fill(p, n, seed, lo, hi);
    return p;
}

static float *dup(const float *a, size_t n)
{
    float *p = rnd(n, 0, 0, 0);
    memcpy(p, a, n * sizeof *p);
    return p;
}

static void cmp(const char *what, const char *cfg, const float *got, const float *want, size_t n)
{
    double e = pl_test_rel_err(got, want, n);
    PL_CHECK(e <= TOL, "%s %s: relative error %.3g", cfg, what, e);
}

/* Compare the increments got-base and want-base added by a backward kernel. */
static void cmp_add(const char *what, const char *cfg, const float *got, const float *want,
                    const float *base, size_t n)
{
    float *dg = rnd(n, 0, 0, 0), *dw = rnd(n, 0, 0, 0);
    for (size_t i = 0; i < n; i++) {
        dg[i] = got[i] - base[i];
        dw[i] = want[i] - base[i];
    }
    cmp(what, cfg, dg, dw, n);
    free(dg);
    free(dw);
}

/* ---- convolution ---- */

typedef struct conv_case {
    const char *name;
    pl_conv2d_desc d;
} conv_case;

/* Backward with the gradient subset (dx?, dw?, db?) given by mask bits 1, 2, 4. */
static void conv_bwd_case(const char *name, const pl_conv2d_desc *d, void *pr, void *pf, const float *x,
                          const float *w, const float *dy, int mask)
{
    size_t nx = (size_t)d->n * d->c_in * d->h_in * d->w_in;
    size_t nw = (size_t)d->c_out * (d->c_in / d->groups) * d->kh * d->kw, nb = (size_t)d->c_out;
    float *bx = rnd(nx, 11, -1, 1), *bw = rnd(nw, 12, -1, 1), *bb = rnd(nb, 13, -1, 1);
    float *rx = dup(bx, nx), *fx = dup(bx, nx), *rw = dup(bw, nw), *fw = dup(bw, nw);
    float *rb = dup(bb, nb), *fb = dup(bb, nb);
    int b_ok = d->has_bias && (mask & 4);
    PL_CHECK(R->conv2d_bwd(pr, x, w, dy, mask & 1 ? rx : NULL, mask & 2 ? rw : NULL, b_ok ? rb : NULL) == PL_OK,
             "%s ref bwd", name);
    PL_CHECK(F->conv2d_bwd(pf, x, w, dy, mask & 1 ? fx : NULL, mask & 2 ? fw : NULL, b_ok ? fb : NULL) == PL_OK,
             "%s fast bwd", name);
    if (mask & 1)
        cmp_add("dx", name, fx, rx, bx, nx);
    if (mask & 2)
        cmp_add("dw", name, fw, rw, bw, nw);
    if (b_ok)
        cmp_add("db", name, fb, rb, bb, nb);
    if (!(mask & 1))
        PL_CHECK(memcmp(fx, bx, nx * sizeof *fx) == 0, "%s: dx touched though NULL", name);
    if (!(mask & 2))
        PL_CHECK(memcmp(fw, bw, nw * sizeof *fw) == 0, "%s: dw touched though NULL", name);
    free(bx), free(bw), free(bb), free(rx), free(fx), free(rw), free(fw), free(rb), free(fb);
}

static void conv_run(const conv_case *c)
{
    pl_conv2d_desc d = c->d;
    pl_err err = {0};
    PL_CHECK(pl_conv2d_desc_init(&d, &err) == PL_OK, "%s: %s", c->name, err.msg);
    void *pr = NULL, *pf = NULL;
    PL_CHECK(R->conv2d_plan(&d, &pr, &err) == PL_OK, "%s ref plan: %s", c->name, err.msg);
    PL_CHECK(F->conv2d_plan(&d, &pf, &err) == PL_OK, "%s fast plan: %s", c->name, err.msg);
    if (!pr || !pf) {
        R->conv2d_plan_free(pr);
        F->conv2d_plan_free(pf);
        return;
    }
    size_t nx = (size_t)d.n * d.c_in * d.h_in * d.w_in, ny = (size_t)d.n * d.c_out * d.h_out * d.w_out;
    size_t nw = (size_t)d.c_out * (d.c_in / d.groups) * d.kh * d.kw;
    float *x = rnd(nx, 1, -1, 1), *w = rnd(nw, 2, -0.5f, 0.5f), *b = rnd((size_t)d.c_out, 3, -1, 1);
    float *yr = rnd(ny, 4, 0, 0), *yf = rnd(ny, 5, 7, 8), *dy = rnd(ny, 6, -1, 1);
    PL_CHECK(R->conv2d_fwd(pr, x, w, d.has_bias ? b : NULL, yr) == PL_OK, "%s ref fwd", c->name);
    PL_CHECK(F->conv2d_fwd(pf, x, w, d.has_bias ? b : NULL, yf) == PL_OK, "%s fast fwd", c->name);
    cmp("y", c->name, yf, yr, ny);
    for (int mask = 1; mask <= 7; mask++)
        conv_bwd_case(c->name, &d, pr, pf, x, w, dy, mask);
    R->conv2d_plan_free(pr);
    F->conv2d_plan_free(pf);
    free(x), free(w), free(b), free(yr), free(yf), free(dy);
}

/* n c_in h w  c_out kh kw  sh sw ph pw dh dw  groups bias */
#define CONV(nm, n, ci, h, w, co, kh, kw, sh, sw, ph, pw, dh, dw, g, b)                             \
    {nm, {n, ci, h, w, co, kh, kw, sh, sw, ph, pw, dh, dw, g, b, 0, 0}}

/* A plan needs an initialised descriptor; a bias-layer called with b == NULL adds no bias. */
static void test_conv_edges(void)
{
    pl_conv2d_desc d = {2, 4, 6, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    pl_err err = {0};
    void *p = NULL;
    PL_CHECK(F->conv2d_plan(&d, &p, &err) == PL_ERR_ARG && p == NULL, "uninitialised descriptor rejected");
    PL_CHECK(strstr(err.msg, "pl_conv2d_desc_init") != NULL, "message names the fix: %s", err.msg);
    void *pr = NULL;
    PL_CHECK(pl_conv2d_desc_init(&d, &err) == PL_OK && F->conv2d_plan(&d, &p, &err) == PL_OK &&
                 R->conv2d_plan(&d, &pr, &err) == PL_OK,
             "plans: %s", err.msg);
    size_t nx = 2 * 4 * 36, ny = nx;
    float *x = rnd(nx, 81, -1, 1), *w = rnd(144, 82, -1, 1), *yr = rnd(ny, 0, 0, 0), *yf = rnd(ny, 83, 1, 2);
    if (p && pr) {
        R->conv2d_fwd(pr, x, w, NULL, yr);
        PL_CHECK(F->conv2d_fwd(p, x, w, NULL, yf) == PL_OK, "fwd without bias pointer");
        cmp("y (b == NULL)", "bias layer", yf, yr, ny);
    }
    F->conv2d_plan_free(p);
    R->conv2d_plan_free(pr);
    F->conv2d_plan_free(NULL);
    free(x), free(w), free(yr), free(yf);
}

static void test_conv(void)
{
    static const conv_case cases[] = {
        CONV("3x3 pad1 bias", 2, 3, 9, 9, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),
        CONV("3x3 stride2 even", 2, 16, 10, 10, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1),
        CONV("5x5 no bias lenet", 8, 1, 16, 16, 6, 5, 5, 1, 1, 0, 0, 1, 1, 1, 0),
        CONV("1x1 batch1", 1, 16, 7, 7, 32, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1),
        CONV("1x1 stride2 unused rows", 2, 8, 10, 10, 8, 1, 1, 2, 2, 0, 0, 1, 1, 1, 0),
        CONV("groups2", 2, 8, 8, 8, 12, 3, 3, 1, 1, 1, 1, 1, 1, 2, 1),
        CONV("depthwise s2 odd", 2, 16, 11, 11, 16, 3, 3, 2, 2, 1, 1, 1, 1, 16, 0),
        CONV("depthwise 5x5 x2", 1, 8, 9, 9, 16, 5, 5, 1, 1, 2, 2, 1, 1, 8, 1),
        CONV("dilation2", 2, 4, 12, 12, 8, 3, 3, 1, 1, 2, 2, 2, 2, 1, 1),
        CONV("3x5 nonsquare", 2, 3, 8, 13, 4, 3, 5, 1, 2, 1, 2, 1, 1, 1, 1),
        CONV("batch8 32ch", 8, 32, 8, 8, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),
        CONV("7x7 s2 p3 odd", 2, 3, 15, 17, 8, 7, 7, 2, 2, 3, 3, 1, 1, 1, 0),
        CONV("3x3 on 1x1 map (taps cropped)", 3, 16, 1, 1, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),
        CONV("3x3 s2 on 2x2 map (cropped)", 2, 16, 2, 2, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0),
        CONV("depthwise 5x5 on 1x1 (cropped)", 2, 16, 1, 1, 16, 5, 5, 1, 1, 2, 2, 1, 1, 16, 0),
        CONV("3x3 on 1x6 rows (cropped h)", 2, 8, 1, 6, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1),
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        conv_run(&cases[i]);
}

/* ---- gemm ---- */

static void gemm_case(int ta, int tb, int m, int n, int k, float alpha, float beta, int pad)
{
    char cfg[96];
    snprintf(cfg, sizeof cfg, "gemm %c%c %dx%dx%d a=%g b=%g", ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k,
             alpha, beta);
    int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    size_t na = (size_t)(ta ? k : m) * lda, nb = (size_t)(tb ? n : k) * ldb, nc = (size_t)m * ldc;
    float *a = rnd(na, 21, -1, 1), *b = rnd(nb, 22, -1, 1), *c0 = rnd(nc, 23, -1, 1);
    float *cr = dup(c0, nc), *cf = dup(c0, nc);
    R->gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, cr, ldc);
    F->gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, cf, ldc);
    cmp("C", cfg, cf, cr, nc);
    free(a), free(b), free(c0), free(cr), free(cf);
}

static void test_gemm(void)
{
    for (int t = 0; t < 4; t++) {
        gemm_case(t & 1, t >> 1, 37, 29, 53, 0.7f, 0.0f, 3);
        gemm_case(t & 1, t >> 1, 37, 29, 53, 1.0f, 0.5f, 0);
        gemm_case(t & 1, t >> 1, 64, 256, 128, -1.5f, 1.0f, 1);
    }
}

/* ---- batch norm ---- */

static void bn_case(int n, int c, int hw)
{
    char cfg[64];
    snprintf(cfg, sizeof cfg, "bn n=%d c=%d hw=%d", n, c, hw);
    pl_bn_desc d = {n, c, hw, 1e-5f};
    size_t nx = (size_t)n * c * hw, nc = (size_t)c;
    float *x = rnd(nx, 31, -2, 3), *g = rnd(nc, 32, 0.5f, 1.5f), *be = rnd(nc, 33, -1, 1);
    float *dy = rnd(nx, 34, -1, 1), *rm = rnd(nc, 35, -0.5f, 0.5f), *rv = rnd(nc, 36, 0.5f, 2);
    float *yr = rnd(nx, 0, 0, 0), *yf = rnd(nx, 0, 0, 0), *st = rnd(6 * nc, 0, 0, 0);
    R->bn_fwd_train(&d, x, g, be, yr, st, st + nc, st + 2 * nc);
    F->bn_fwd_train(&d, x, g, be, yf, st + 3 * nc, st + 4 * nc, st + 5 * nc);
    cmp("train y", cfg, yf, yr, nx);
    cmp("mean", cfg, st + 3 * nc, st, nc);
    cmp("var", cfg, st + 4 * nc, st + nc, nc);
    cmp("invstd", cfg, st + 5 * nc, st + 2 * nc, nc);
    float *bx = rnd(nx, 37, -1, 1), *bg = rnd(nc, 38, -1, 1), *bb = rnd(nc, 39, -1, 1);
    for (int eval = 0; eval < 2; eval++) {
        float *rx = dup(bx, nx), *fx = dup(bx, nx), *rg = dup(bg, nc), *fg = dup(bg, nc);
        float *rb = dup(bb, nc), *fb = dup(bb, nc);
        if (eval) {
            R->bn_fwd_eval(&d, x, g, be, rm, rv, yr);
            F->bn_fwd_eval(&d, x, g, be, rm, rv, yf);
            cmp("eval y", cfg, yf, yr, nx);
            R->bn_bwd_eval(&d, x, g, rm, rv, dy, rx, rg, rb);
            F->bn_bwd_eval(&d, x, g, rm, rv, dy, fx, fg, fb);
        } else {
            R->bn_bwd_train(&d, x, g, st, st + 2 * nc, dy, rx, rg, rb);
            F->bn_bwd_train(&d, x, g, st, st + 2 * nc, dy, fx, fg, fb);
        }
        cmp_add(eval ? "eval dx" : "train dx", cfg, fx, rx, bx, nx);
        cmp_add(eval ? "eval dgamma" : "train dgamma", cfg, fg, rg, bg, nc);
        cmp_add(eval ? "eval dbeta" : "train dbeta", cfg, fb, rb, bb, nc);
        /* Only dx requested. */
        memcpy(fg, bg, nc * sizeof *fg);
        memcpy(rx, fx, nx * sizeof *rx);
        if (eval)
            F->bn_bwd_eval(&d, x, g, rm, rv, dy, fx, NULL, NULL);
        else
            F->bn_bwd_train(&d, x, g, st, st + 2 * nc, dy, fx, NULL, NULL);
        PL_CHECK(memcmp(fx, rx, nx * sizeof *fx) != 0, "%s: dx-only backward added nothing", cfg);
        free(rx), free(fx), free(rg), free(fg), free(rb), free(fb);
    }
    free(x), free(g), free(be), free(dy), free(rm), free(rv), free(yr), free(yf), free(st);
    free(bx), free(bg), free(bb);
}

static void test_bn(void)
{
    bn_case(4, 5, 49);
    bn_case(16, 8, 1);
    bn_case(8, 32, 64);
}

/* ---- pooling ---- */

typedef struct pool_case {
    int kh, kw, sh, sw, ph, pw, ceil;
} pool_case;

static const pool_case g_pools[] = {
    {2, 2, 2, 2, 0, 0, 0}, {3, 3, 2, 2, 1, 1, 0}, {3, 3, 2, 2, 0, 0, 1}, {3, 3, 2, 2, 1, 1, 1},
    {2, 3, 1, 2, 1, 1, 0}, {2, 2, 2, 2, 1, 1, 1}, {3, 2, 3, 2, 1, 0, 1},
};

/* Inputs quantised to a few levels make ties, testing "first max wins". */
static void maxpool_case(const pl_pool_desc *d, const char *cfg, int ties)
{
    size_t nx = (size_t)d->n * d->c * d->h_in * d->w_in, ny = (size_t)d->n * d->c * d->h_out * d->w_out;
    float *x = rnd(nx, 41, -3, 3), *yr = rnd(ny, 0, 0, 0), *yf = rnd(ny, 0, 0, 0), *dy = rnd(ny, 42, -1, 1);
    if (ties)
        for (size_t i = 0; i < nx; i++)
            x[i] = (float)(int)x[i];
    if (ties && nx > 50) /* a NaN is taken and propagates through its window */
        x[nx / 3] = x[nx / 2] = NAN;
    int32_t *ar = calloc(ny, sizeof *ar), *af = calloc(ny, sizeof *af);
    if (!ar || !af)
        exit(2);
    R->maxpool_fwd(d, x, yr, ar);
    F->maxpool_fwd(d, x, yf, af);
    PL_CHECK(memcmp(yr, yf, ny * sizeof *yr) == 0, "%s: max pool output differs (ties=%d)", cfg, ties);
    PL_CHECK(memcmp(ar, af, ny * sizeof *ar) == 0, "%s: argmax differs (ties=%d)", cfg, ties);
    float *bx = rnd(nx, 43, -1, 1), *rx = dup(bx, nx), *fx = dup(bx, nx);
    R->maxpool_bwd(d, ar, dy, rx);
    F->maxpool_bwd(d, ar, dy, fx);
    cmp_add("max dx", cfg, fx, rx, bx, nx);
    free(x), free(yr), free(yf), free(dy), free(ar), free(af), free(bx), free(rx), free(fx);
}

static void avgpool_case(const pl_pool_desc *d, const char *cfg)
{
    size_t nx = (size_t)d->n * d->c * d->h_in * d->w_in, ny = (size_t)d->n * d->c * d->h_out * d->w_out;
    float *x = rnd(nx, 44, -3, 3), *yr = rnd(ny, 0, 0, 0), *yf = rnd(ny, 0, 0, 0), *dy = rnd(ny, 45, -1, 1);
    R->avgpool_fwd(d, x, yr);
    F->avgpool_fwd(d, x, yf);
    cmp("avg y", cfg, yf, yr, ny);
    float *bx = rnd(nx, 46, -1, 1), *rx = dup(bx, nx), *fx = dup(bx, nx);
    R->avgpool_bwd(d, dy, rx);
    F->avgpool_bwd(d, dy, fx);
    cmp_add("avg dx", cfg, fx, rx, bx, nx);
    free(x), free(yr), free(yf), free(dy), free(bx), free(rx), free(fx);
}

static void test_pool(void)
{
    /* Small planes run serially, big ones in parallel, wide rows (>= 16
     * outputs) through the row-vectorised max pool, narrow ones in groups of
     * 8 planes plus a remainder (15 planes): test every path. */
    static const int sizes[][4] = {{2, 3, 9, 11}, {4, 64, 16, 15}, {2, 3, 7, 70}, {3, 5, 9, 9}};
    for (size_t s = 0; s < 4; s++)
        for (size_t i = 0; i < sizeof g_pools / sizeof *g_pools; i++)
            for (int cip = 0; cip < 2; cip++) {
                const pool_case *p = &g_pools[i];
                pl_pool_desc d = {sizes[s][0], sizes[s][1], sizes[s][2], sizes[s][3], p->kh, p->kw, p->sh,
                                  p->sw, p->ph, p->pw, p->ceil, cip, 0, 0};
                pl_err err = {0};
                char cfg[96];
                snprintf(cfg, sizeof cfg, "pool %dx%d k%dx%d s%dx%d p%dx%d ceil=%d cip=%d", d.h_in, d.w_in,
                         p->kh, p->kw, p->sh, p->sw, p->ph, p->pw, p->ceil, cip);
                PL_CHECK(pl_pool_desc_init(&d, &err) == PL_OK, "%s: %s", cfg, err.msg);
                if (err.status)
                    continue;
                if (!cip) {
                    maxpool_case(&d, cfg, 0);
                    maxpool_case(&d, cfg, 1);
                }
                avgpool_case(&d, cfg);
            }
}

static void test_adapool(void)
{
    static const int cases[][4] = {{7, 7, 1, 1}, {7, 7, 3, 3}, {5, 5, 5, 5}, {3, 4, 7, 9}, {7, 5, 2, 3}, {32, 32, 7, 7}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        pl_adapool_desc d = {3, 40, cases[i][0], cases[i][1], cases[i][2], cases[i][3]};
        char cfg[64];
        snprintf(cfg, sizeof cfg, "adapool %dx%d->%dx%d", d.h_in, d.w_in, d.h_out, d.w_out);
        size_t nx = (size_t)d.n * d.c * d.h_in * d.w_in, ny = (size_t)d.n * d.c * d.h_out * d.w_out;
        float *x = rnd(nx, 51, -2, 2), *yr = rnd(ny, 0, 0, 0), *yf = rnd(ny, 0, 0, 0), *dy = rnd(ny, 52, -1, 1);
        R->adapool_fwd(&d, x, yr);
        F->adapool_fwd(&d, x, yf);
        cmp("y", cfg, yf, yr, ny);
        float *bx = rnd(nx, 53, -1, 1), *rx = dup(bx, nx), *fx = dup(bx, nx);
        R->adapool_bwd(&d, dy, rx);
        F->adapool_bwd(&d, dy, fx);
        cmp_add("dx", cfg, fx, rx, bx, nx);
        free(x), free(yr), free(yf), free(dy), free(bx), free(rx), free(fx);
    }
}

/* ---- activations and log-softmax ---- */

static void test_act(void)
{
    static const char *names[PL_ACT_COUNT_] = {"relu", "relu6", "hardswish", "hardsigmoid"};
    static const float edges[] = {-3.0f, 0.0f, 3.0f, 6.0f, -6.0f, 2.999f, -2.999f, 6.001f};
    size_t ne = sizeof edges / sizeof *edges;
    for (size_t n = 100; n <= 100000; n *= 1000)
        for (int k = 0; k < PL_ACT_COUNT_; k++) {
            char cfg[64];
            snprintf(cfg, sizeof cfg, "%s n=%zu", names[k], n);
            float *x = rnd(n, 61, -8, 8), *dy = rnd(n, 62, -1, 1), *bx = rnd(n, 63, -1, 1);
            memcpy(x, edges, ne * sizeof *x);
            float *yr = rnd(n, 0, 0, 0), *yf = rnd(n, 0, 0, 0), *rx = dup(bx, n), *fx = dup(bx, n);
            R->act_fwd((pl_act)k, n, x, yr);
            F->act_fwd((pl_act)k, n, x, yf);
            cmp("y", cfg, yf, yr, n);
            R->act_bwd((pl_act)k, n, x, dy, rx);
            F->act_bwd((pl_act)k, n, x, dy, fx);
            cmp_add("dx", cfg, fx, rx, bx, n);
            float *xa = dup(x, n);
            F->act_fwd((pl_act)k, n, xa, xa);
            cmp("y in place", cfg, xa, yr, n);
            free(x), free(dy), free(bx), free(yr), free(yf), free(rx), free(fx), free(xa);
        }
}

static void test_logsoftmax(void)
{
    static const int shapes[][2] = {{7, 1000}, {4000, 10}, {1, 3}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        int rows = shapes[i][0], cols = shapes[i][1];
        size_t n = (size_t)rows * cols;
        char cfg[64];
        snprintf(cfg, sizeof cfg, "log_softmax %dx%d", rows, cols);
        float *x = rnd(n, 71, -10, 10), *dy = rnd(n, 72, -1, 1), *bx = rnd(n, 73, -1, 1);
        float *yr = rnd(n, 0, 0, 0), *yf = rnd(n, 0, 0, 0), *rx = dup(bx, n), *fx = dup(bx, n);
        R->logsoftmax_fwd(rows, cols, x, yr);
        F->logsoftmax_fwd(rows, cols, x, yf);
        cmp("y", cfg, yf, yr, n);
        R->logsoftmax_bwd(rows, cols, yr, dy, rx);
        F->logsoftmax_bwd(rows, cols, yr, dy, fx);
        cmp_add("dx", cfg, fx, rx, bx, n);
        free(x), free(dy), free(bx), free(yr), free(yf), free(rx), free(fx);
    }
}

int main(void)
{
    R = pl_backend_ref();
    F = pl_backend_fast();
    PL_CHECK(R && F, "both backends exist");
    if (!R || !F)
        PL_TEST_MAIN();
    pl_backend_set_threads(2);
    test_gemm();
    test_conv();
    test_conv_edges();
    test_bn();
    test_pool();
    test_adapool();
    test_act();
    test_logsoftmax();
    PL_TEST_MAIN();
}
