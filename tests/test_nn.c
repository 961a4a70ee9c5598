/* test_nn.c — whole-graph checks of the layer engine:
 *   1. finite differences on a graph that uses every layer kind (ref backend),
 *      through cross-entropy and through log_softmax + NLL;
 *   2. fast backend against ref on the same graph, lenet5 and mlp
 *      (loss, every parameter gradient, running statistics);
 *   3. workspaces: alternating batch sizes give the same results as fresh runs;
 *   4. shape errors are reported, not crashed on. */
#include <stdlib.h>
#include <string.h>

#include "peerless/models.h"
#include "peerless/nn.h"
#include "test.h"

/* Every layer kind in one graph: [N,3,9,9] -> [N,5] (or log-probs). */
static pl_model *build_zoo_graph(const pl_backend *be, int logsoftmax_head)
{
    pl_model *m = pl_model_create(be, 3, 9, 9);
    int x = pl_nn_conv2d(m, "stem", 0, 4, pl_conv(3, 1, 1, 1, 1));
    x = pl_nn_batchnorm2d(m, "stem_bn", x, 1e-3f, 0.01f);
    x = pl_nn_act(m, x, PL_ACT_RELU);
    int a = pl_nn_conv2d(m, "branch_a", x, 4, pl_conv(1, 1, 0, 1, 0));
    a = pl_nn_act(m, a, PL_ACT_HARDSWISH);
    int b = pl_nn_conv2d(m, "branch_b", x, 4, pl_conv(3, 1, 1, 4, 1)); /* depthwise */
    b = pl_nn_act(m, b, PL_ACT_RELU6);
    int cat[2] = {a, b};
    x = pl_nn_concat(m, cat, 2);                     /* [N,8,9,9] */
    x = pl_nn_maxpool2d(m, x, 3, 2, 1, 1);           /* ceil_mode: [N,8,5,5] */
    int s = pl_nn_adaptive_avgpool2d(m, x, 1, 1);    /* squeeze-excitation */
    s = pl_nn_conv2d(m, "se.fc1", s, 2, pl_conv(1, 1, 0, 1, 1));
    s = pl_nn_act(m, s, PL_ACT_RELU);
    s = pl_nn_conv2d(m, "se.fc2", s, 8, pl_conv(1, 1, 0, 1, 1));
    s = pl_nn_act(m, s, PL_ACT_HARDSIGMOID);
    int y = pl_nn_chmul(m, x, s);
    x = pl_nn_add(m, y, x);
    x = pl_nn_avgpool2d(m, x, 2, 1, 1, 0, 0);        /* [N,8,6,6], count_include_pad off */
    x = pl_nn_conv2d(m, "strided", x, 6, (pl_conv_opts){3, 2, 2, 1, 1, 0, 2, 1, 2, 1}); /* dil 2 rows */
    x = pl_nn_adaptive_avgpool2d(m, x, 3, 3);        /* larger than its input */
    x = pl_nn_dropout(m, x, 0.25f);
    x = pl_nn_flatten(m, x);
    x = pl_nn_linear(m, "head", x, 5, 1);
    if (logsoftmax_head)
        pl_nn_logsoftmax(m, x);
    return m;
}

/* Loss of one train-mode forward with a fixed dropout mask. */
static double loss_of(pl_model *m, const float *x, int n, int h, int w, const int32_t *t, pl_loss_kind k)
{
    pl_err err = {0, ""};
    float l = NAN;
    pl_model_seed_dropout(m, 99, 1);
    if (pl_model_forward(m, x, n, h, w, PL_MODE_TRAIN, &err) || pl_model_loss(m, t, k, &l, &err))
        fprintf(stderr, "loss_of: %s\n", err.msg);
    return l;
}

static void grad_check(pl_model *m, const float *x, int n, int h, int w, const int32_t *t, pl_loss_kind k,
                       const char *what)
{
    pl_err err = {0, ""};
    pl_flat *p = pl_model_params(m), *g = pl_model_grads(m);
    pl_model_zero_grad(m);
    loss_of(m, x, n, h, w, t, k);
    PL_CHECK(pl_model_backward(m, &err) == PL_OK, "%s: backward: %s", what, err.msg);
    const float hstep = 3e-3f; /* small enough to stay clear of relu/maxpool kinks */
    for (int v = 0; v < p->nviews; v++) {
        size_t off = p->views[v].offset, cnt = (size_t)pl_shape_numel(&p->views[v].shape);
        size_t stride = cnt > 12 ? cnt / 12 : 1;
        double num2 = 0, den2 = 0;
        for (size_t i = 0; i < cnt; i += stride) {
            float keep = p->data[off + i];
            p->data[off + i] = keep + hstep;
            double lp = loss_of(m, x, n, h, w, t, k);
            p->data[off + i] = keep - hstep;
            double lm = loss_of(m, x, n, h, w, t, k);
            p->data[off + i] = keep;
            double fd = (lp - lm) / (2.0 * hstep), an = g->data[off + i];
            num2 += (fd - an) * (fd - an);
            den2 += an * an;
        }
        double rel = sqrt(num2) / (sqrt(den2) > 1e-3 ? sqrt(den2) : 1e-3);
        PL_CHECK(rel < 3e-2, "%s: gradient of %s differs from finite differences: rel %.3g", what,
                 p->views[v].name, rel);
    }
}

static void fill_batch(float *x, size_t n, int32_t *t, int nb, int k, unsigned seed)
{
    pl_test_fill(x, n, seed, -1.5f, 1.5f);
    for (int i = 0; i < nb; i++)
        t[i] = (int32_t)((i * 7 + seed) % (unsigned)k);
}

static void test_fd(void)
{
    enum { N = 3, C = 3, H = 9, W = 9 };
    float x[N * C * H * W];
    int32_t t[N];
    fill_batch(x, sizeof x / sizeof x[0], t, N, 5, 3);
    pl_err err = {0, ""};
    for (int head = 0; head < 2; head++) {
        pl_model *m = build_zoo_graph(pl_backend_ref(), head);
        PL_CHECK(pl_model_finish(m, &err) == PL_OK, "finish: %s", err.msg);
        pl_model_init(m, 5);
        grad_check(m, x, N, H, W, t, head ? PL_LOSS_NLL : PL_LOSS_CROSS_ENTROPY,
                   head ? "graph + log_softmax + nll" : "graph + cross_entropy");
        pl_model_destroy(m);
    }
}

/* One train step's loss, gradients and buffers on a backend. */
static void run_step(pl_model *m, const float *x, int n, int h, int w, const int32_t *t, float *loss)
{
    pl_err err = {0, ""};
    pl_model_zero_grad(m);
    *loss = (float)loss_of(m, x, n, h, w, t, PL_LOSS_CROSS_ENTROPY);
    PL_CHECK(pl_model_backward(m, &err) == PL_OK, "backward: %s", err.msg);
}

static void compare_backends(pl_model *ref, pl_model *fast, const float *x, int n, int h, int w,
                             const int32_t *t, const char *what)
{
    float lr, lf;
    run_step(ref, x, n, h, w, t, &lr);
    run_step(fast, x, n, h, w, t, &lf);
    PL_CHECK_NEAR(lf, lr, 1e-5, what);
    pl_flat *gr = pl_model_grads(ref), *gf = pl_model_grads(fast);
    double all = 0;
    for (size_t i = 0; i < gr->count; i++)
        all += (double)gr->data[i] * gr->data[i];
    all = sqrt(all);
    for (int v = 0; v < gr->nviews; v++) {
        /* Relative to the view, but not below 1e-3 of the whole gradient:
         * a conv bias before batch norm has a gradient of pure rounding. */
        size_t cnt = (size_t)pl_shape_numel(&gr->views[v].shape);
        const float *a = pl_flat_ptr(gf, v), *b = pl_flat_ptr(gr, v);
        double num = 0, den = 0;
        for (size_t i = 0; i < cnt; i++) {
            num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
            den += (double)b[i] * b[i];
        }
        double e = sqrt(num) / fmax(sqrt(den), 1e-3 * all + 1e-30);
        PL_CHECK(e < 1e-4, "%s: fast gradient of %s differs from ref: rel %.3g", what, gr->views[v].name, e);
    }
    pl_flat *br = pl_model_buffers(ref), *bf = pl_model_buffers(fast);
    double e = pl_test_rel_err(bf->data, br->data, br->count);
    PL_CHECK(br->count == 0 || e < 1e-5, "%s: running statistics differ: rel %.3g", what, e);
}

static void test_fast_vs_ref(void)
{
    pl_err err = {0, ""};
    enum { N = 4 };
    static float x[N * 3 * 32 * 32];
    int32_t t[N];
    fill_batch(x, sizeof x / sizeof x[0], t, N, 5, 11);
    pl_model *r = build_zoo_graph(pl_backend_ref(), 0), *f = build_zoo_graph(pl_backend_fast(), 0);
    PL_CHECK(!pl_model_finish(r, &err) && !pl_model_finish(f, &err), "finish: %s", err.msg);
    pl_model_init(r, 8);
    pl_model_init(f, 8);
    compare_backends(r, f, x, N, 9, 9, t, "graph");
    pl_model_destroy(r);
    pl_model_destroy(f);

    const char *names[] = {"lenet5", "mlp"};
    for (int i = 0; i < 2; i++) {
        pl_model *a = NULL, *b = NULL;
        PL_CHECK(!pl_models_build(names[i], pl_backend_ref(), 3, 32, 32, 10, 4, &a, &err), "%s", err.msg);
        PL_CHECK(!pl_models_build(names[i], pl_backend_fast(), 3, 32, 32, 10, 4, &b, &err), "%s", err.msg);
        if (a && b) {
            PL_CHECK(pl_flat_checksum(pl_model_params(a)) == pl_flat_checksum(pl_model_params(b)),
                     "%s: same seed must give the same initial weights", names[i]);
            for (int j = 0; j < N; j++)
                t[j] = (j * 3) % 10;
            compare_backends(a, b, x, N, 32, 32, t, names[i]);
        }
        pl_model_destroy(a);
        pl_model_destroy(b);
    }
}

/* Workspaces are cached per shape: interleaving batch sizes must not change
 * results. */
static void test_workspaces(void)
{
    pl_err err = {0, ""};
    static float x[8 * 1 * 32 * 32];
    int32_t t[8];
    fill_batch(x, sizeof x / sizeof x[0], t, 8, 10, 5);
    pl_model *m = NULL;
    PL_CHECK(!pl_models_build("lenet5", pl_backend_fast(), 1, 32, 32, 10, 1, &m, &err), "%s", err.msg);
    if (!m)
        return;
    float l8a, l3, l8b, l5, l1;
    run_step(m, x, 8, 32, 32, t, &l8a);
    run_step(m, x, 3, 32, 32, t, &l3);
    run_step(m, x, 5, 32, 32, t, &l5);
    run_step(m, x, 2, 32, 32, t, &l1);
    run_step(m, x, 7, 32, 32, t, &l1); /* evicts the least recently used */
    run_step(m, x, 8, 32, 32, t, &l8b);
    PL_CHECK(l8a == l8b, "same batch after other shapes: %.9g vs %.9g", (double)l8a, (double)l8b);
    /* Eval mode with batch statistics off: a batch split in two gives the
     * same per-sample outputs. */
    PL_CHECK(!pl_model_forward(m, x, 8, 32, 32, PL_MODE_EVAL, &err), "%s", err.msg);
    int n, k;
    float whole[8 * 10];
    memcpy(whole, pl_model_output(m, &n, &k), sizeof whole);
    PL_CHECK(!pl_model_forward(m, x + 3 * 32 * 32, 5, 32, 32, PL_MODE_EVAL, &err), "%s", err.msg);
    const float *part = pl_model_output(m, &n, &k);
    PL_CHECK(n == 5 && k == 10, "output shape %dx%d", n, k);
    PL_CHECK(pl_test_rel_err(part, whole + 30, 50) < 1e-5, "eval outputs depend on batch composition");
    pl_model_destroy(m);
}

static void test_errors(void)
{
    pl_err err = {0, ""};
    pl_model *m = NULL;
    PL_CHECK(pl_models_build("lenet5", pl_backend_ref(), 1, 28, 28, 10, 1, &m, &err) == PL_ERR_SHAPE && !m,
             "lenet5 at 28x28 must be refused");
    PL_CHECK(strstr(err.msg, "32x32") != NULL, "message names the minimum: %s", err.msg);
    PL_CHECK(pl_models_build("resnet1000", pl_backend_ref(), 1, 32, 32, 10, 1, &m, &err) == PL_ERR_NOTFOUND,
             "unknown model");
    PL_CHECK(strstr(err.msg, "lenet5") != NULL, "message lists the models: %s", err.msg);

    /* A graph error is sticky and reported by finish. */
    m = pl_model_create(pl_backend_ref(), 3, 8, 8);
    int a = pl_nn_conv2d(m, "a", 0, 4, pl_conv(3, 1, 1, 1, 1));
    int b = pl_nn_conv2d(m, "b", 0, 4, pl_conv(3, 2, 1, 1, 1));
    int c = pl_nn_add(m, a, b);
    PL_CHECK(c < 0, "adding [1,4,8,8] and [1,4,4,4] must fail");
    PL_CHECK(pl_model_finish(m, &err) == PL_ERR_SHAPE, "finish reports the shape error");
    PL_CHECK(strstr(err.msg, "add") && strstr(err.msg, "[1, 4, 4, 4]"), "message: %s", err.msg);
    pl_model_destroy(m);

    /* A different input size that the linear layer cannot take. */
    PL_CHECK(!pl_models_build("lenet5", pl_backend_ref(), 1, 32, 32, 10, 1, &m, &err), "%s", err.msg);
    static float x[2 * 40 * 40];
    PL_CHECK(pl_model_forward(m, x, 2, 40, 40, PL_MODE_EVAL, &err) == PL_ERR_SHAPE, "40x40 into lenet5");
    PL_CHECK(strstr(err.msg, "fc1") || strstr(err.msg, "input features"), "message: %s", err.msg);
    int32_t bad[2] = {0, 10};
    PL_CHECK(!pl_model_forward(m, x, 2, 32, 32, PL_MODE_TRAIN, &err), "%s", err.msg);
    float l;
    PL_CHECK(pl_model_loss(m, bad, PL_LOSS_CROSS_ENTROPY, &l, &err) == PL_ERR_ARG, "target 10 of 10 classes");
    pl_model_destroy(m);

    /* Batch norm in training needs more than one value per channel. */
    m = pl_model_create(pl_backend_ref(), 2, 1, 1);
    int y = pl_nn_batchnorm2d(m, "bn", 0, 1e-5f, 0.1f);
    y = pl_nn_flatten(m, y);
    pl_nn_linear(m, "fc", y, 3, 1);
    PL_CHECK(!pl_model_finish(m, &err), "%s", err.msg);
    float one[2] = {1, 2};
    PL_CHECK(pl_model_forward(m, one, 1, 1, 1, PL_MODE_TRAIN, &err) == PL_ERR_SHAPE, "bn with one value");
    pl_model_destroy(m);
}

/* Running statistics follow PyTorch's update rule (unbiased variance). */
static void test_bn_running_stats(void)
{
    pl_err err = {0, ""};
    pl_model *m = pl_model_create(pl_backend_ref(), 1, 2, 2);
    int y = pl_nn_batchnorm2d(m, "bn", 0, 1e-5f, 0.1f);
    y = pl_nn_flatten(m, y);
    pl_nn_linear(m, "fc", y, 2, 1);
    PL_CHECK(!pl_model_finish(m, &err), "%s", err.msg);
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    PL_CHECK(!pl_model_forward(m, x, 2, 2, 2, PL_MODE_TRAIN, &err), "%s", err.msg);
    pl_flat *b = pl_model_buffers(m);
    double mean = 4.5, var_unbiased = 42.0 / 7.0;
    PL_CHECK_NEAR(b->data[0], 0.1 * mean, 1e-6, "running_mean");
    PL_CHECK_NEAR(b->data[1], 0.9 + 0.1 * var_unbiased, 1e-6, "running_var");
    PL_CHECK_NEAR(b->data[2], 1.0, 0, "num_batches_tracked");
    PL_CHECK(b->views[2].kind == PL_VIEW_I64 && !strcmp(b->views[2].name, "bn.num_batches_tracked"),
             "num_batches_tracked is exported as int64");
    pl_model_destroy(m);
}

int main(void)
{
    test_fd();
    test_fast_vs_ref();
    test_workspaces();
    test_errors();
    test_bn_running_stats();
    PL_TEST_MAIN();
}
