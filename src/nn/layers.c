/* layers.c — one vtable per layer kind. Compute-heavy work goes through the
 * model's backend; pure data movement (concat, add, channel multiply,
 * dropout) is done here with OpenMP loops. Each forward states its shapes;
 * each backward ADDS into its inputs' gradients and parameter gradients. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn_internal.h"

#define ST(ws, id) (&(ws)->st[(id)])
#define IN(nd, ws, i) ST(ws, (nd)->in[i])
#define OUT(nd, ws) (&(ws)->st[(nd) - m->nodes])

static size_t numel(const pl_shape *s) { return (size_t)pl_shape_numel(s); }

static int need4(const pl_shape *s, pl_err *err)
{
    if (s->ndim != 4)
        return pl_err_set(err, PL_ERR_SHAPE, "expects a 4-D [N, C, H, W] input, got %d dims", s->ndim);
    return PL_OK;
}

/* ---- input ---- */

static int input_infer(const pl_model *m, const pl_node *nd, const pl_shape *in, pl_shape *out, pl_err *err)
{
    (void)m, (void)nd, (void)err;
    *out = in[0];
    return PL_OK;
}

const pl_layer_ops pl_layer_input = {.kind = "input", .infer = input_infer};

/* ---- conv2d: x [N,Cin,H,W] -> y [N,Cout,Ho,Wo]; w [Cout,Cin/g,kh,kw]; b [Cout] ---- */

static void conv_desc(const pl_node *nd, const pl_shape *in, pl_conv2d_desc *d)
{
    const pl_conv_opts *o = &nd->cfg.conv.o;
    memset(d, 0, sizeof *d);
    d->n = (int)in->dim[0];
    d->c_in = (int)in->dim[1];
    d->h_in = (int)in->dim[2];
    d->w_in = (int)in->dim[3];
    d->c_out = nd->cfg.conv.c_out;
    d->kh = o->kh;
    d->kw = o->kw;
    d->stride_h = o->stride_h;
    d->stride_w = o->stride_w;
    d->pad_h = o->pad_h;
    d->pad_w = o->pad_w;
    d->dil_h = o->dil_h;
    d->dil_w = o->dil_w;
    d->groups = o->groups;
    d->has_bias = o->bias;
}

static int conv_infer(const pl_model *m, const pl_node *nd, const pl_shape *in, pl_shape *out, pl_err *err)
{
    (void)m;
    int st = need4(in, err);
    if (st)
        return st;
    if (nd->p[0] >= 0) {
        int64_t want = m->params.views[nd->p[0]].shape.dim[1] * nd->cfg.conv.o.groups;
        if (in->dim[1] != want)
            return pl_err_set(err, PL_ERR_SHAPE, "expects %lld input channels, got %lld", (long long)want,
                              (long long)in->dim[1]);
    }
    pl_conv2d_desc d;
    conv_desc(nd, in, &d);
    st = pl_conv2d_desc_init(&d, err);
    if (st)
        return st;
    *out = pl_shape4(d.n, d.c_out, d.h_out, d.w_out);
    return PL_OK;
}

/* kaiming_uniform_(a=sqrt(5)) gives bound 1/sqrt(fan_in), as does the bias. */
static void init_fan_in(pl_model *m, pl_node *nd, pl_rng *r, int64_t fan_in)
{
    float bound = fan_in > 0 ? 1.0f / sqrtf((float)fan_in) : 0.0f;
    for (int i = 0; i < 2; i++) {
        if (nd->p[i] < 0)
            continue;
        float *p = pl_node_param(m, nd, i);
        size_t n = numel(&m->params.views[nd->p[i]].shape);
        for (size_t j = 0; j < n; j++)
            p[j] = pl_rng_uniform_range(r, -bound, bound);
    }
}

static void conv_init(pl_model *m, pl_node *nd, pl_rng *r)
{
    const pl_shape *w = &m->params.views[nd->p[0]].shape;
    init_fan_in(m, nd, r, w->dim[1] * w->dim[2] * w->dim[3]);
}

/* The plan belongs to whichever backend created it; the model frees all
 * workspaces before switching backends, so the current one owns it. The
 * release hook has no model pointer, so conv plans record their backend. */
typedef struct conv_priv {
    const pl_backend *be;
    void *plan;
} conv_priv;

static int conv_prepare(pl_model *m, pl_node *nd, pl_ws *ws, pl_err *err)
{
    pl_conv2d_desc d;
    conv_desc(nd, &IN(nd, ws, 0)->shape, &d);
    int st = pl_conv2d_desc_init(&d, err);
    if (st)
        return st;
    conv_priv *cp = calloc(1, sizeof *cp);
    if (!cp)
        return pl_err_set(err, PL_ERR_NOMEM, "conv2d: out of memory");
    cp->be = m->be;
    OUT(nd, ws)->priv = cp;
    return m->be->conv2d_plan(&d, &cp->plan, err);
}

static void conv_release(void *priv)
{
    conv_priv *cp = priv;
    if (cp->plan)
        cp->be->conv2d_plan_free(cp->plan);
    free(cp);
}

static int conv_forward(pl_model *m, pl_node *nd, pl_ws *ws, int mode, pl_err *err)
{
    conv_priv *cp = OUT(nd, ws)->priv;
    (void)mode;
    int st = m->be->conv2d_fwd(cp->plan, IN(nd, ws, 0)->y, pl_node_param(m, nd, 0), pl_node_param(m, nd, 1),
                               OUT(nd, ws)->y);
    return st ? pl_err_set(err, st, "conv2d %s forward failed", nd->name) : PL_OK;
}

static int conv_backward(pl_model *m, pl_node *nd, pl_ws *ws, pl_err *err)
{
    conv_priv *cp = OUT(nd, ws)->priv;
    int st = m->be->conv2d_bwd(cp->plan, IN(nd, ws, 0)->y, pl_node_param(m, nd, 0), OUT(nd, ws)->dy,
                               IN(nd, ws, 0)->dy, pl_node_grad(m, nd, 0), pl_node_grad(m, nd, 1));
    return st ? pl_err_set(err, st, "conv2d %s backward failed", nd->name) : PL_OK;
}

const pl_layer_ops pl_layer_conv2d = {
    .kind = "conv2d",
    .infer = conv_infer,
    .prepare = conv_prepare,
    .release = conv_release,
    .forward = conv_forward,
    .backward = conv_backward,
    .init = conv_init,
};

/* ---- batchnorm: x [N,C,H,W] or [N,C] -> y same; weight/bias [C]; buffers ---- */

typedef struct bn_priv {
    float *mean, *var, *invstd; /* [C] batch statistics of the last train-mode forward */
    int trained;                /* last forward used batch statistics */
} bn_priv;

static pl_bn_desc bn_desc(const pl_node *nd, const pl_shape *s)
{
    pl_bn_desc d;
    d.n = (int)s->dim[0];
    d.c = (int)s->dim[1];
    d.hw = s->ndim == 4 ? (int)(s->dim[2] * s->dim[3]) : 1;
    d.eps = nd->cfg.bn.eps;
    return d;
}

static int bn_infer(const pl_model *m, const pl_node *nd, const pl_shape *in, pl_shape *out, pl_err *err)
{
    if (in->ndim != 4 && in->ndim != 2)
        return pl_err_set(err, PL_ERR_SHAPE, "expects [N, C, H, W] or [N, C], got %d dims", in->ndim);
    if (nd->p[0] >= 0 && m->params.views[nd->p[0]].shape.dim[0] != in->dim[1])
        return pl_err_set(err, PL_ERR_SHAPE, "expects %lld channels, got %lld",
                          (long long)m->params.views[nd->p[0]].shape.dim[0], (long long)in->dim[1]);
    if (!(nd->cfg.bn.eps > 0) || !(nd->cfg.bn.momentum >= 0 && nd->cfg.bn.momentum <= 1))
        return pl_err_set(err, PL_ERR_ARG, "eps %g must be > 0 and momentum %g in [0, 1]",
                          (double)nd->cfg.bn.eps, (double)nd->cfg.bn.momentum);
    *out = *in;
    return PL_OK;
}

static void bn_release(void *priv)
{
    bn_priv *p = priv;
    free(p->mean);
    free(p);
}

static int bn_prepare(pl_model *m, pl_node *nd, pl_ws *ws, pl_err *err)
{
    (void)m;
    int c = (int)IN(nd, ws, 0)->shape.dim[1];
    bn_priv *p = calloc(1, sizeof *p);
    float *buf = calloc((size_t)c * 3, sizeof(float));
    if (!p || !buf) {
        free(p);
        free(buf);
        return pl_err_set(err, PL_ERR_NOMEM, "batchnorm: out of memory");
    }
    p->mean = buf;
    p->var = buf + c;
    p->invstd = buf + 2 * c;
    OUT(nd, ws)->priv = p;
    return PL_OK;
}

static int bn_forward(pl_model *m, pl_node *nd, pl_ws *ws, int mode, pl_err *err)
{
    bn_priv *p = OUT(nd, ws)->priv;
    pl_bn_desc d = bn_desc(nd, &IN(nd, ws, 0)->shape);
    const float *x = IN(nd, ws, 0)->y;
    float *y = OUT(nd, ws)->y, *gamma = pl_node_param(m, nd, 0), *beta = pl_node_param(m, nd, 1);
    float *rmean = pl_node_buffer(m, nd, 0), *rvar = pl_node_buffer(m, nd, 1);
    p->trained = (mode & PL_MODE_BN_BATCH) != 0;
    if (!p->trained) {
        m->be->bn_fwd_eval(&d, x, gamma, beta, rmean, rvar, y);
        return PL_OK;
    }
    int64_t count = (int64_t)d.n * d.hw;
    if (count < 2)
        return pl_err_set(err, PL_ERR_SHAPE,
                          "batchnorm %s: expected more than 1 value per channel in training (batch %d)", nd->name,
                          d.n);
    m->be->bn_fwd_train(&d, x, gamma, beta, y, p->mean, p->var, p->invstd);
    /* Running statistics as PyTorch: unbiased variance, momentum-weighted. */
    float mom = nd->cfg.bn.momentum;
    double unbias = (double)count / (double)(count - 1);
    for (int c = 0; c < d.c; c++) {
        rmean[c] = (1.0f - mom) * rmean[c] + mom * p->mean[c];
        rvar[c] = (1.0f - mom) * rvar[c] + mom * (float)(p->var[c] * unbias);
    }
    pl_node_buffer(m, nd, 2)[0] += 1.0f;
    return PL_OK;
}

static int bn_backward(pl_model *m, pl_node *nd, pl_ws *ws, pl_err *err)
{
    (void)err;
    bn_priv *p = OUT(nd, ws)->priv;
    pl_bn_desc d = bn_desc(nd, &IN(nd, ws, 0)->shape);
    const float *x = IN(nd, ws, 0)->y, *dy = OUT(nd, ws)->dy;
    float *dx = IN(nd, ws, 0)->dy, *gamma = pl_node_param(m, nd, 0);
    float *dg = pl_node_grad(m, nd, 0), *db = pl_node_grad(m, nd, 1);
    if (p->trained)
        m->be->bn_bwd_train(&d, x, gamma, p->mean, p->invstd, dy, dx, dg, db);
    else
        m->be->bn_bwd_eval(&d, x, gamma, pl_node_buffer(m, nd, 0), pl_node_buffer(m, nd, 1), dy, dx, dg, db);
    return PL_OK;
}

static void bn_init(pl_model *m, pl_node *nd, pl_rng *r)
{
    (void)r;
    size_t c = numel(&m->params.views[nd->p[0]].shape);
    float *w = pl_node_param(m, nd, 0), *b = pl_node_param(m, nd, 1);
    float *rm = pl_node_buffer(m, nd, 0), *rv = pl_node_buffer(m, nd, 1);
    for (size_t i = 0; i < c; i++) {
        w[i] = 1.0f;
        b[i] = 0.0f;
        rm[i] = 0.0f;
        rv[i] = 1.0f;
    }
    pl_node_buffer(m, nd, 2)[0] = 0.0f;
}

const pl_layer_ops pl_layer_bn = {
    .kind = "batchnorm",
    .infer = bn_infer,
    .prepare = bn_prepare,
    .release = bn_release,
    .forward = bn_forward,
    .backward = bn_backward,
    .init = bn_init,
};

/* ---- linear: x [N,F] -> y [N,O] = x W^T + b; W [O,F]; b [O] ---- */

static int linear_infer(const pl_model *m, const pl_node *nd, const pl_shape *in, pl_shape *out, pl_err *err)
{
    if (in->ndim != 2)
        return pl_err_set(err, PL_ERR_SHAPE, "expects a 2-D [N, features] input (add flatten), got %d dims",
                          in->ndim);
    if (nd->p[0] >= 0 && m->params.views[nd->p[0]].shape.dim[1] != in->dim[1])
        return pl_err_set(err, PL_ERR_SHAPE, "expects %lld input features, got %lld",
                          (long long)m->params.views[nd->p[0]].shape.dim[1], (long long)in->dim[1]);
    if (nd->cfg.linear.out <= 0)
        return pl_err_set(err, PL_ERR_ARG, "out_features %d must be positive", nd->cfg.linear.out);
    *out = pl_shape2(in->dim[0], nd->cfg.linear.out);
    return PL_OK;
}

static int linear_forward(pl_model *m, pl_node *nd, pl_ws *ws, int mode, pl_err *err)
{
    (void)mode, (void)err;
    const pl_shape *s = &IN(nd, ws, 0)->shape;
    int n = (int)s->dim[0], f = (int)s->dim[1], o = nd->cfg.linear.out;
    float *y = OUT(nd, ws)->y;
    const float *b = pl_node_param(m, nd, 1);
    m->be->gemm(0, 1, n, o, f, 1.0f, IN(nd, ws, 0)->y, f, pl_node_param(m, nd, 0), f, 0.0f, y, o);
    if (b)
        for (int i = 0; i < n; i++)
            for (int j = 0; j < o; j++)
                y[(size_t)i * o + j] += b[j];
    return PL_OK;
}

static int linear_backward(pl_model *m, pl_node *nd, pl_ws *ws, pl_err *err)
{
    (void)err;
    const pl_shape *s = &IN(nd, ws, 0)->shape;
    int n = (int)s->dim[0], f = (int)s->dim[1], o = nd->cfg.linear.out;
    const float *dy = OUT(nd, ws)->dy;
    float *dx = IN(nd, ws, 0)->dy, *db = pl_node_grad(m, nd, 1);
    if (dx) /* dx [N,F] += dy [N,O] W [O,F] */
        m->be->gemm(0, 0, n, f, o, 1.0f, dy, o, pl_node_param(m, nd, 0), f, 1.0f, dx, f);
    /* dW [O,F] += dy^T [O,N] x [N,F] */
    m->be->gemm(1, 0, o, f, n, 1.0f, dy, o, IN(nd, ws, 0)->y, f, 1.0f, pl_node_grad(m, nd, 0), f);
    if (db)
        for (int i = 0; i < n; i++)
            for (int j = 0; j < o; j++)
                db[j] += dy[(size_t)i * o + j];
    return PL_OK;
}

static void linear_init(pl_model *m, pl_node *nd, pl_rng *r)
{
    init_fan_in(m, nd, r, m->params.views[nd->p[0]].shape.dim[1]);
}

const pl_layer_ops pl_layer_linear = {
    .kind = "linear",
    .infer = linear_infer,
    .forward = linear_forward,
    .backward = linear_backward,
    .init = linear_init,
};

/* ---- activations: y = act(x), any shape ---- */

static int same_infer(const pl_model *m, const pl_node *nd, const pl_shape *in, pl_shape *out, pl_err *err)
{
    (void)m, (void)nd, (void)err;
    *out = in[0];
    return PL_OK;
}

static int act_forward(pl_model *m, pl_node *nd, pl_ws *ws, int mode, pl_err *err)
{
    (void)mode, (void)err;
    m->be->act_fwd(nd->cfg.act.kind, numel(&OUT(nd, ws)->shape), IN(nd, ws, 0)->y, OUT(nd, ws)->y);
    return PL_OK;
}

static int act_backward(pl_model *m, pl_node *nd, pl_ws *ws, pl_err *err)
{
    (void)err;
    if (IN(nd, ws, 0)->dy)
        m->be->act_bwd(nd->cfg.act.kind, numel(&OUT(nd, ws)->shape), IN(nd, ws, 0)->y, OUT(nd, ws)->dy,
                       IN(nd, ws, 0)->dy);
    return PL_OK;
}

const pl_layer_ops pl_layer_act = {
    .kind = "activation",
    .infer = same_infer,
    .forward = act_forward,
    .backward = act_backward,
};

/* ---- pooling: x [N,C,H,W] -> y [N,C,Ho,Wo] ---- */

typedef struct pool_priv {
    pl_pool_desc d;
    int32_t *argmax; /* max pool only: [N*C*Ho*Wo] */
} pool_priv;

static int pool_make_desc(const pl_node *nd, const pl_shape *in, pl_pool_desc *d, pl_err *err)
{
    memset(d, 0, sizeof *d);
    d->n = (int)in->dim[0];
    d->c = (int)in->dim[1];
    d->h_in = (int)in->dim[2];
    d->w_in = (int)in->dim[3];
    d->kh = d->kw = nd->cfg.pool.k;
    d->stride_h = d->stride_w = nd->cfg.pool.stride;
    d->pad_h = d->pad_w = nd->cfg.pool.pad;
    d->ceil_mode = nd->cfg.pool.ceil_mode;
    d->count_include_pad = nd->cfg.pool.count_include_pad;
    return pl_pool_desc_init(d, err);
}

static int pool_infer(const pl_model *m, const pl_node *nd, const pl_shape *in, pl_shape *out, pl_err *err)
{
    (void)m;
    int st = need4(in, err);
    pl_pool_desc d;
    if (!st)
        st = pool_make_desc(nd, in, &d, err);
    if (st)
        return st;
    *out = pl_shape4(d.n, d.c, d.h_out, d.w_out);
    return PL_OK;
}

static void pool_release(void *priv)
{
    pool_priv *p = priv;
    free(p->argmax);
    free(p);
}

static int pool_prepare_common(pl_node *nd, pl_ws *ws, int with_argmax, pl_model *m, pl_err *err)
{
    pool_priv *p = calloc(1, sizeof *p);
    if (!p)
        return pl_err_set(err, PL_ERR_NOMEM, "pool: out of memory");
    OUT(nd, ws)->priv = p;
    int st = pool_make_desc(nd, &IN(nd, ws, 0)->shape, &p->d, err);
    if (st)
        return st;
    if (with_argmax) {
        p->argmax = malloc(numel(&OUT(nd, ws)->shape) * sizeof(int32_t));
        if (!p->argmax)
            return pl_err_set(err, PL_ERR_NOMEM, "maxpool: out of memory");
    }
    return PL_OK;
}

static int maxpool_prepare(pl_model *m, pl_node *nd, pl_ws *ws, pl_err *err)
{
    return pool_prepare_common(nd, ws, 1, m, err);
}

static int avgpool_prepare(pl_model *m, pl_node *nd, pl_ws *ws, pl_err *err)
{
    return pool_prepare_common(nd, ws, 0, m, err);
}

static int maxpool_forward(pl_model *m, pl_node *nd, pl_ws *ws, int mode, pl_err *err)
{
    (void)mode, (void)err;
    pool_priv *p = OUT(nd, ws)->priv;
    m->be->maxpool_fwd(&p->d, IN(nd, ws, 0)->y, OUT(nd, ws)->y, p->argmax);
    return PL_OK;
}

static int maxpool_backward(pl_model *m, pl_node *nd, pl_ws *ws, pl_err *err)
{
    (void)err;
    pool_priv *p = OUT(nd, ws)->priv;
    if (IN(nd, ws, 0)->dy)
        m->be->maxpool_bwd(&p->d, p->argmax, OUT(nd, ws)->dy, IN(nd, ws, 0)->dy);
    return PL_OK;
}

static int avgpool_forward(pl_model *m, pl_node *nd, pl_ws *ws, int mode, pl_err *err)
{
    (void)mode, (void)err;
    pool_priv *p = OUT(nd, ws)->priv;
    m->be->avgpool_fwd(&p->d, IN(nd, ws, 0)->y, OUT(nd, ws)->y);
    return PL_OK;
}

static int avgpool_backward(pl_model *m, pl_node *nd, pl_ws *ws, pl_err *err)
{
    (void)err;
    pool_priv *p = OUT(nd, ws)->priv;
    if (IN(nd, ws, 0)->dy)
        m->be->avgpool_bwd(&p->d, OUT(nd, ws)->dy, IN(nd, ws, 0)->dy);
    return PL_OK;
}

const pl_layer_ops pl_layer_maxpool = {
    .kind = "maxpool",
    .infer = pool_infer,
    .prepare = maxpool_prepare,
    .release = pool_release,
    .forward = maxpool_forward,
    .backward = maxpool_backward,
};

const pl_layer_ops pl_layer_avgpool = {
    .kind = "avgpool",
    .infer = pool_infer,
    .prepare = avgpool_prepare,
    .release = pool_release,
    .forward = avgpool_forward,
    .backward = avgpool_backward,
};

/* ---- adaptive average pool: x [N,C,H,W] -> y [N,C,h,w] ---- */

static pl_adapool_desc adapool_desc(const pl_node *nd, const pl_shape *in)
{
    pl_adapool_desc d = {(int)in->dim[0], (int)in->dim[1], (int)in->dim[2], (int)in->dim[3],
                         nd->cfg.adapool.h, nd->cfg.adapool.w};
    return d;
}

static int adapool_infer(const pl_model *m, const pl_node *nd, const pl_shape *in, pl_shape *out, pl_err *err)
{
    (void)m;
    int st = need4(in, err);
    if (st)
        return st;
    if (nd->cfg.adapool.h <= 0 || nd->cfg.adapool.w <= 0)
        return pl_err_set(err, PL_ERR_ARG, "output size %dx%d must be positive", nd->cfg.adapool.h,
                          nd->cfg.adapool.w);
    *out = pl_shape4(in->dim[0], in->dim[1], nd->cfg.adapool.h, nd->cfg.adapool.w);
    return PL_OK;
}

static int adapool_forward(pl_model *m, pl_node *nd, pl_ws *ws, int mode, pl_err *err)
{
    (void)mode, (void)err;
    pl_adapool_desc d = adapool_desc(nd, &IN(nd, ws, 0)->shape);
    m->be->adapool_fwd(&d, IN(nd, ws, 0)->y, OUT(nd, ws)->y);
    return PL_OK;
}

static int adapool_backward(pl_model *m, pl_node *nd, pl_ws *ws, pl_err *err)
{
    (void)err;
    pl_adapool_desc d = adapool_desc(nd, &IN(nd, ws, 0)->shape);
    if (IN(nd, ws, 0)->dy)
        m->be->adapool_bwd(&d, OUT(nd, ws)->dy, IN(nd, ws, 0)->dy);
    return PL_OK;
}

const pl_layer_ops pl_layer_adapool = {
    .kind = "adaptive_avgpool",
    .infer = adapool_infer,
    .forward = adapool_forward,
    .backward = adapool_backward,
};

/* ---- dropout: y = x * mask / (1 - p) in training, y = x otherwise ---- */

typedef struct dropout_priv {
    float *scale; /* [numel]: 0 or 1/(1-p) for the last training forward */
    int active;
} dropout_priv;

static int dropout_infer(const pl_model *m, const pl_node *nd, const pl_shape *in, pl_shape *out, pl_err *err)
{
    (void)m;
    if (!(nd->cfg.dropout.p >= 0.0f && nd->cfg.dropout.p < 1.0f))
        return pl_err_set(err, PL_ERR_ARG, "probability %g must be in [0, 1)", (double)nd->cfg.dropout.p);
    *out = in[0];
    return PL_OK;
}

static void dropout_release(void *priv)
{
    dropout_priv *p = priv;
    pl_free(p->scale);
    free(p);
}

static int dropout_prepare(pl_model *m, pl_node *nd, pl_ws *ws, pl_err *err)
{
    (void)m;
    dropout_priv *p = calloc(1, sizeof *p);
    if (p)
        p->scale = pl_alloc(numel(&OUT(nd, ws)->shape) * sizeof(float));
    if (!p || !p->scale) {
        free(p);
        return pl_err_set(err, PL_ERR_NOMEM, "dropout: out of memory");
    }
    OUT(nd, ws)->priv = p;
    return PL_OK;
}

static int dropout_forward(pl_model *m, pl_node *nd, pl_ws *ws, int mode, pl_err *err)
{
    (void)err;
    dropout_priv *p = OUT(nd, ws)->priv;
    size_t n = numel(&OUT(nd, ws)->shape);
    const float *x = IN(nd, ws, 0)->y;
    float *y = OUT(nd, ws)->y;
    float prob = nd->cfg.dropout.p;
    p->active = (mode & PL_MODE_DROPOUT) && prob > 0.0f;
    if (!p->active) {
        memcpy(y, x, n * sizeof(float));
        return PL_OK;
    }
    float keep = 1.0f / (1.0f - prob);
    for (size_t i = 0; i < n; i++)
        p->scale[i] = pl_rng_uniform(&m->drop_rng) < prob ? 0.0f : keep;
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] * p->scale[i];
    return PL_OK;
}

static int dropout_backward(pl_model *m, pl_node *nd, pl_ws *ws, pl_err *err)
{
    (void)m, (void)err;
    dropout_priv *p = OUT(nd, ws)->priv;
    size_t n = numel(&OUT(nd, ws)->shape);
    const float *dy = OUT(nd, ws)->dy;
    float *dx = IN(nd, ws, 0)->dy;
    if (!dx)
        return PL_OK;
    if (p->active)
        for (size_t i = 0; i < n; i++)
            dx[i] += dy[i] * p->scale[i];
    else
        for (size_t i = 0; i < n; i++)
            dx[i] += dy[i];
    return PL_OK;
}

const pl_layer_ops pl_layer_dropout = {
    .kind = "dropout",
    .infer = dropout_infer,
    .prepare = dropout_prepare,
    .release = dropout_release,
    .forward = dropout_forward,
    .backward = dropout_backward,
};

/* ---- flatten: [N, ...] -> [N, prod(...)], shares its input's buffers ---- */

static int flatten_infer(const pl_model *m, const pl_node *nd, const pl_shape *in, pl_shape *out, pl_err *err)
{
    (void)m, (void)nd, (void)err;
    int64_t rest = 1;
    for (int i = 1; i < in->ndim; i++)
        rest *= in->dim[i];
    *out = pl_shape2(in->dim[0], rest);
    return PL_OK;
}

const pl_layer_ops pl_layer_flatten = {.kind = "flatten", .alias = 1, .infer = flatten_infer};

/* ---- concat along channels: xs[i] [N,Ci,H,W] -> y [N,sum Ci,H,W] ---- */

static int concat_infer(const pl_model *m, const pl_node *nd, const pl_shape *in, pl_shape *out, pl_err *err)
{
    (void)m;
    int64_t c = 0;
    for (int i = 0; i < nd->nin; i++) {
        int st = need4(&in[i], err);
        if (st)
            return st;
        if (in[i].dim[0] != in[0].dim[0] || in[i].dim[2] != in[0].dim[2] || in[i].dim[3] != in[0].dim[3]) {
            char a[64], b[64];
            return pl_err_set(err, PL_ERR_SHAPE, "input %d %s does not match input 0 %s outside channels", i,
                              pl_shape_str(&in[i], a, sizeof a), pl_shape_str(&in[0], b, sizeof b));
        }
        c += in[i].dim[1];
    }
    *out = pl_shape4(in[0].dim[0], c, in[0].dim[2], in[0].dim[3]);
    return PL_OK;
}

static int concat_forward(pl_model *m, pl_node *nd, pl_ws *ws, int mode, pl_err *err)
{
    (void)m, (void)mode, (void)err;
    const pl_shape *o = &OUT(nd, ws)->shape;
    int n = (int)o->dim[0];
    size_t hw = (size_t)(o->dim[2] * o->dim[3]), ctot = (size_t)o->dim[1];
    float *y = OUT(nd, ws)->y;
    #pragma omp parallel for if (n * ctot * hw > 65536)
    for (int b = 0; b < n; b++) {
        size_t c0 = 0;
        for (int i = 0; i < nd->nin; i++) {
            size_t ci = (size_t)IN(nd, ws, i)->shape.dim[1];
            memcpy(y + ((size_t)b * ctot + c0) * hw, IN(nd, ws, i)->y + (size_t)b * ci * hw, ci * hw * sizeof(float));
            c0 += ci;
        }
    }
    return PL_OK;
}

static int concat_backward(pl_model *m, pl_node *nd, pl_ws *ws, pl_err *err)
{
    (void)m, (void)err;
    const pl_shape *o = &OUT(nd, ws)->shape;
    int n = (int)o->dim[0];
    size_t hw = (size_t)(o->dim[2] * o->dim[3]), ctot = (size_t)o->dim[1];
    const float *dy = OUT(nd, ws)->dy;
    #pragma omp parallel for if (n * ctot * hw > 65536)
    for (int b = 0; b < n; b++) {
        size_t c0 = 0;
        for (int i = 0; i < nd->nin; i++) {
            size_t ci = (size_t)IN(nd, ws, i)->shape.dim[1];
            float *dx = IN(nd, ws, i)->dy;
            if (dx) {
                const float *src = dy + ((size_t)b * ctot + c0) * hw;
                float *dst = dx + (size_t)b * ci * hw;
                for (size_t j = 0; j < ci * hw; j++)
                    dst[j] += src[j];
            }
            c0 += ci;
        }
    }
    return PL_OK;
}

const pl_layer_ops pl_layer_concat = {
    .kind = "concat",
    .infer = concat_infer,
    .forward = concat_forward,
    .backward = concat_backward,
};

/* ---- add: a, b [same shape] -> y = a + b ---- */

static int add_infer(const pl_model *m, const pl_node *nd, const pl_shape *in, pl_shape *out, pl_err *err)
{
    (void)m, (void)nd;
    if (!pl_shape_eq(&in[0], &in[1])) {
        char a[64], b[64];
        return pl_err_set(err, PL_ERR_SHAPE, "operands %s and %s differ", pl_shape_str(&in[0], a, sizeof a),
                          pl_shape_str(&in[1], b, sizeof b));
    }
    *out = in[0];
    return PL_OK;
}

static int add_forward(pl_model *m, pl_node *nd, pl_ws *ws, int mode, pl_err *err)
{
    (void)m, (void)mode, (void)err;
    size_t n = numel(&OUT(nd, ws)->shape);
    const float *a = IN(nd, ws, 0)->y, *b = IN(nd, ws, 1)->y;
    float *y = OUT(nd, ws)->y;
    #pragma omp parallel for simd if (n > 65536)
    for (size_t i = 0; i < n; i++)
        y[i] = a[i] + b[i];
    return PL_OK;
}

static void add_into(float *dst, const float *src, size_t n)
{
    if (!dst)
        return;
    #pragma omp parallel for simd if (n > 65536)
    for (size_t i = 0; i < n; i++)
        dst[i] += src[i];
}

static int add_backward(pl_model *m, pl_node *nd, pl_ws *ws, pl_err *err)
{
    (void)m, (void)err;
    size_t n = numel(&OUT(nd, ws)->shape);
    add_into(IN(nd, ws, 0)->dy, OUT(nd, ws)->dy, n);
    add_into(IN(nd, ws, 1)->dy, OUT(nd, ws)->dy, n);
    return PL_OK;
}

const pl_layer_ops pl_layer_add = {
    .kind = "add",
    .infer = add_infer,
    .forward = add_forward,
    .backward = add_backward,
};

/* ---- channel multiply: x [N,C,H,W] * s [N,C,1,1] -> y [N,C,H,W] ---- */

static int chmul_infer(const pl_model *m, const pl_node *nd, const pl_shape *in, pl_shape *out, pl_err *err)
{
    (void)m, (void)nd;
    int st = need4(&in[0], err);
    if (st)
        return st;
    if (in[1].ndim != 4 || in[1].dim[0] != in[0].dim[0] || in[1].dim[1] != in[0].dim[1] || in[1].dim[2] != 1 ||
        in[1].dim[3] != 1) {
        char a[64], b[64];
        return pl_err_set(err, PL_ERR_SHAPE, "scale %s must be [N, C, 1, 1] for input %s",
                          pl_shape_str(&in[1], a, sizeof a), pl_shape_str(&in[0], b, sizeof b));
    }
    *out = in[0];
    return PL_OK;
}

static int chmul_forward(pl_model *m, pl_node *nd, pl_ws *ws, int mode, pl_err *err)
{
    (void)m, (void)mode, (void)err;
    const pl_shape *o = &OUT(nd, ws)->shape;
    int nc = (int)(o->dim[0] * o->dim[1]);
    size_t hw = (size_t)(o->dim[2] * o->dim[3]);
    const float *x = IN(nd, ws, 0)->y, *s = IN(nd, ws, 1)->y;
    float *y = OUT(nd, ws)->y;
    #pragma omp parallel for if (nc * hw > 65536)
    for (int i = 0; i < nc; i++)
        for (size_t j = 0; j < hw; j++)
            y[(size_t)i * hw + j] = x[(size_t)i * hw + j] * s[i];
    return PL_OK;
}

static int chmul_backward(pl_model *m, pl_node *nd, pl_ws *ws, pl_err *err)
{
    (void)m, (void)err;
    const pl_shape *o = &OUT(nd, ws)->shape;
    int nc = (int)(o->dim[0] * o->dim[1]);
    size_t hw = (size_t)(o->dim[2] * o->dim[3]);
    const float *x = IN(nd, ws, 0)->y, *s = IN(nd, ws, 1)->y, *dy = OUT(nd, ws)->dy;
    float *dx = IN(nd, ws, 0)->dy, *ds = IN(nd, ws, 1)->dy;
    #pragma omp parallel for if (nc * hw > 65536)
    for (int i = 0; i < nc; i++) {
        double acc = 0;
        for (size_t j = 0; j < hw; j++) {
            size_t k = (size_t)i * hw + j;
            if (dx)
                dx[k] += dy[k] * s[i];
            acc += (double)dy[k] * x[k];
        }
        if (ds)
            ds[i] += (float)acc;
    }
    return PL_OK;
}

const pl_layer_ops pl_layer_chmul = {
    .kind = "chmul",
    .infer = chmul_infer,
    .forward = chmul_forward,
    .backward = chmul_backward,
};

/* ---- log_softmax over dim 1: x [N,K] -> y [N,K] ---- */

static int lsm_infer(const pl_model *m, const pl_node *nd, const pl_shape *in, pl_shape *out, pl_err *err)
{
    (void)m, (void)nd;
    if (in->ndim != 2)
        return pl_err_set(err, PL_ERR_SHAPE, "expects [N, K], got %d dims", in->ndim);
    *out = in[0];
    return PL_OK;
}

static int lsm_forward(pl_model *m, pl_node *nd, pl_ws *ws, int mode, pl_err *err)
{
    (void)mode, (void)err;
    const pl_shape *s = &OUT(nd, ws)->shape;
    m->be->logsoftmax_fwd((int)s->dim[0], (int)s->dim[1], IN(nd, ws, 0)->y, OUT(nd, ws)->y);
    return PL_OK;
}

static int lsm_backward(pl_model *m, pl_node *nd, pl_ws *ws, pl_err *err)
{
    (void)err;
    const pl_shape *s = &OUT(nd, ws)->shape;
    if (IN(nd, ws, 0)->dy)
        m->be->logsoftmax_bwd((int)s->dim[0], (int)s->dim[1], OUT(nd, ws)->y, OUT(nd, ws)->dy, IN(nd, ws, 0)->dy);
    return PL_OK;
}

const pl_layer_ops pl_layer_logsoftmax = {
    .kind = "log_softmax",
    .infer = lsm_infer,
    .forward = lsm_forward,
    .backward = lsm_backward,
};
